//! Schema and serde tests for the CRD types.

use serde_json::json;

use super::*;

fn mirror_yaml() -> &'static str {
    r#"
apiVersion: kubemirror.dev/v1alpha1
kind: ImageMirror
metadata:
  name: nginx
  namespace: default
spec:
  source:
    repository: docker.io/library/nginx
    credentialsSecretRef: {name: src-pull}
    tlsVerify: true
    caSecretRef: {name: src-ca, key: ca.crt}
  destination:
    repository: registry.internal:5000/mirror/nginx
    credentialsSecretRef: {name: dst-push}
  tags:
    names: ["1.27", "latest"]
    pattern: '^1\.2[6-9]\.[0-9]+$'
    semver: ">=1.26.0 <2.0.0"
    latest: 5
  platforms: ["linux/amd64", "linux/arm64"]
  signatures: Require
  verification:
    keys:
      - type: GPG
        secretRef: {name: release-key, key: pubring.gpg}
  interval: 1h
  suspend: false
"#
}

#[test]
fn image_mirror_round_trips() {
    let m: ImageMirror = serde_yaml::from_str(mirror_yaml()).unwrap();
    assert_eq!(m.spec.signatures, Some(SignaturePolicy::Require));
    assert_eq!(m.spec.tags.latest, Some(5));
    assert_eq!(
        m.spec.verification.as_ref().unwrap().keys[0].type_,
        KeyType::Gpg
    );
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(
        v["spec"]["source"]["credentialsSecretRef"]["name"],
        "src-pull"
    );
    assert_eq!(v["spec"]["verification"]["keys"][0]["type"], "GPG");
    assert!(v.get("status").is_none() || v["status"].is_null());
    let back: ImageMirror = serde_json::from_value(v).unwrap();
    assert_eq!(back, m);
}

#[test]
fn minimal_documents_serialise_without_defaults() {
    let m: ImageMirror = serde_yaml::from_str(
        "apiVersion: kubemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: a}\nspec:\n  source: {repository: a}\n  destination: {repository: b}\n  tags: {names: [v1]}\n",
    )
    .unwrap();
    let v = serde_json::to_value(&m.spec).unwrap();
    assert_eq!(
        v,
        json!({"source": {"repository": "a"}, "destination": {"repository": "b"}, "tags": {"names": ["v1"]}})
    );
}

#[test]
fn invalid_specs_do_not_deserialise() {
    let base = serde_yaml::from_str::<serde_json::Value>(mirror_yaml()).unwrap();
    let mut bad = base.clone();
    bad["spec"]["signatures"] = json!("Keep");
    assert!(serde_json::from_value::<ImageMirror>(bad).is_err());
    let mut bad = base.clone();
    bad["spec"]["verification"]["keys"][0]["type"] = json!("gpg");
    assert!(serde_json::from_value::<ImageMirror>(bad).is_err());
    let mut bad = base.clone();
    bad["spec"].as_object_mut().unwrap().remove("source");
    assert!(serde_json::from_value::<ImageMirror>(bad).is_err());
}

fn spec_schema(crd_index: usize) -> serde_json::Value {
    let crd = serde_json::to_value(&crds()[crd_index]).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

#[test]
fn mirror_schema_refuses_what_it_can() {
    let s = spec_schema(0);
    assert_eq!(s["required"], json!(["destination", "source", "tags"]));
    assert_eq!(s["properties"]["tags"]["minProperties"], 1);
    assert_eq!(
        s["properties"]["tags"]["properties"]["latest"]["minimum"],
        1.0
    );
    assert_eq!(
        s["properties"]["signatures"]["enum"],
        json!(["Copy", "Drop", "Require"])
    );
    assert_eq!(
        s["properties"]["verification"]["properties"]["keys"]["items"]["properties"]["type"]["enum"],
        json!(["Sigstore", "GPG"])
    );
    assert_eq!(
        s["properties"]["platforms"]["items"]["pattern"],
        PLATFORM_PATTERN
    );
    assert_eq!(s["properties"]["interval"]["pattern"], DURATION_PATTERN);
    assert_eq!(s["properties"]["source"]["required"], json!(["repository"]));
}

#[test]
fn inspection_schema_refuses_what_it_can() {
    let s = spec_schema(1);
    assert_eq!(s["required"], json!(["image"]));
    assert_eq!(s["properties"]["platform"]["pattern"], PLATFORM_PATTERN);
    assert_eq!(s["properties"]["interval"]["pattern"], DURATION_PATTERN);
}

#[test]
fn patterns_accept_and_refuse() {
    let platform = regex::Regex::new(PLATFORM_PATTERN).unwrap();
    for ok in ["linux/amd64", "linux/arm64/v8", "linux/x86_64"] {
        assert!(platform.is_match(ok), "{ok}");
    }
    for bad in ["linux", "Linux/amd64", "linux/amd64/v8/x", "linux/"] {
        assert!(!platform.is_match(bad), "{bad}");
    }
    let duration = regex::Regex::new(DURATION_PATTERN).unwrap();
    for ok in ["1h", "30m", "1h30m", "2s", "1.5h", "100ms"] {
        assert!(duration.is_match(ok), "{ok}");
        assert!(parse_go_duration(ok).is_ok(), "{ok}");
    }
    for bad in ["1d", "h", "-1s", "1 h", ""] {
        assert!(!duration.is_match(bad), "{bad}");
    }
}

#[test]
fn printer_columns_match_the_design() {
    let names = |i: usize| -> Vec<String> {
        let crd = serde_json::to_value(&crds()[i]).unwrap();
        crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(0),
        [
            "Source",
            "Destination",
            "Ready",
            "Synced",
            "Last Sync",
            "Age"
        ]
    );
    assert_eq!(
        names(1),
        ["Image", "Digest", "Arch", "Ready", "Signatures", "Age"]
    );
    let crd = serde_json::to_value(&crds()[0]).unwrap();
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["imir"]));
    assert_eq!(
        crd["spec"]["versions"][0]["subresources"]["status"],
        json!({})
    );
}

/// `crds/` must hold exactly what `kubemirror crds` prints.
#[test]
fn committed_crds_match_the_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/kubemirror.dev_crds.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == crds_yaml(),
        "{path} is out of date: run `cargo run -- crds > crds/kubemirror.dev_crds.yaml`"
    );
}
