//! Keyless Sigstore (issue 14) through the command line: `copy --policy`
//! with containers-policy.json(5) `sigstoreSigned.fulcio`, against a real
//! Distribution registry holding cosign-layout attachments (pushed by
//! skopeo) whose certificates and Rekor entries come from a test Sigstore
//! (tests/support/test_sigstore.rs); and `verify-blob` over bundles.
mod support;

use std::path::Path;
use std::process::Output;

use support::registry::Registry;
use support::test_sigstore::{EMAIL, ISSUER, LeafSpec, T0, TestSigstore};
use support::{cosign, kubemirror};

fn km(args: &[&str]) -> Output {
    let mut c = kubemirror();
    c.args(args);
    c.output().expect("run kubemirror")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Push an image and its keyless signature made with `annotate`; returns the image reference.
fn signed_image(
    reg: &Registry,
    repo: &str,
    seed: &str,
    tmp: &Path,
    annotate: impl FnOnce(&[u8]) -> std::collections::BTreeMap<String, String>,
) -> String {
    let digest = cosign::push_image(&reg.host, &format!("{repo}:v1"), seed, tmp);
    let payload = cosign::payload(&format!("{}/{repo}", reg.host), &digest);
    let annotations = annotate(&payload)
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    cosign::push_signature(&reg.host, repo, &digest, &payload, annotations, tmp);
    reg.image(&format!("{repo}:v1"))
}

/// A policy file `name`.json trusting keyless signatures of `email` by `s`'s
/// CA, logged by the Rekor key `rekor_pem`, for HOST/keyless/*.
fn policy(
    reg: &Registry,
    dir: &Path,
    name: &str,
    (s, email, rekor_pem): (&TestSigstore, &str, &str),
) -> String {
    let ca = dir.join(format!("{name}-ca.pem"));
    let rekor = dir.join(format!("{name}-rekor.pub"));
    std::fs::write(&ca, s.ca_pem()).unwrap();
    std::fs::write(&rekor, rekor_pem).unwrap();
    let p = dir.join(format!("{name}.json"));
    let json = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {format!("{}/keyless", reg.host): [{
            "type": "sigstoreSigned",
            "fulcio": {"caPath": ca, "oidcIssuer": ISSUER, "subjectEmail": email},
            "rekorPublicKeyPath": rekor,
            "signedIdentity": {"type": "matchRepository"}
        }]}}
    });
    std::fs::write(&p, serde_json::to_vec(&json).unwrap()).unwrap();
    p.display().to_string()
}

#[test]
fn copy_policy_fulcio_verifies_keyless_signatures() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let reg = Registry::plain();
    let regd = tmp.path().join("registries.d");
    std::fs::create_dir(&regd).unwrap();
    std::fs::write(
        regd.join("default.yaml"),
        format!(
            "docker:\n  {}:\n    use-sigstore-attachments: true\n",
            reg.host
        ),
    )
    .unwrap();
    let r = regd.to_str().unwrap();
    let s = TestSigstore::new();
    let leaf = s.leaf(&LeafSpec::default());
    let good = signed_image(&reg, "keyless/app", "11", tmp.path(), |p| {
        s.cosign_annotations(&leaf, p, T0 + 60)
    });
    let pol = policy(&reg, tmp.path(), "good", (&s, EMAIL, &s.rekor_pem()));
    let copy = |pol: &str, image: &str, to: &str| {
        km(&[
            "--policy",
            pol,
            "--registries.d",
            r,
            "copy",
            "-q",
            "--src-tls-verify=false",
            image,
            &format!("dir:{t}/{to}"),
        ])
    };
    ok(&copy(&pol, &good, "good"));
    assert!(Path::new(&format!("{t}/good/manifest.json")).exists());

    // Another subject email in the policy: refused, saying why.
    let other = policy(
        &reg,
        tmp.path(),
        "other",
        (&s, "someone@else.example", &s.rekor_pem()),
    );
    let e = err(&copy(&other, &good, "wrong-identity"));
    assert!(e.contains("matches no trusted subject"), "{e}");
    assert!(!Path::new(&format!("{t}/wrong-identity/manifest.json")).exists());

    // A Rekor key the policy does not trust.
    let rogue = TestSigstore::with_rekor_seed(9);
    let unknown = policy(&reg, tmp.path(), "unknown", (&s, EMAIL, &rogue.rekor_pem()));
    let e = err(&copy(&unknown, &good, "unknown-log"));
    assert!(e.contains("which the trust root does not know"), "{e}");

    // A tampered SET (integrated time moved), a certificate of another CA,
    // a certificate expired at the integrated time.
    let tampered = signed_image(&reg, "keyless/tampered", "12", tmp.path(), |p| {
        let mut a = s.cosign_annotations(&leaf, p, T0 + 60);
        let mut b: serde_json::Value =
            serde_json::from_str(&a["dev.sigstore.cosign/bundle"]).unwrap();
        b["Payload"]["integratedTime"] = (T0 + 61).into();
        a.insert("dev.sigstore.cosign/bundle".into(), b.to_string());
        a
    });
    let e = err(&copy(&pol, &tampered, "tampered"));
    assert!(e.contains("signed entry timestamp does not verify"), "{e}");
    let other_ca = TestSigstore::new();
    let stranger = other_ca.leaf(&LeafSpec::default());
    let unchained = signed_image(&reg, "keyless/unchained", "13", tmp.path(), |p| {
        // Logged in our Rekor, certified by another CA.
        let mut a = other_ca.cosign_annotations(&stranger, p, T0 + 60);
        let ours = s.cosign_annotations(&stranger, p, T0 + 60);
        a.insert(
            "dev.sigstore.cosign/bundle".into(),
            ours["dev.sigstore.cosign/bundle"].clone(),
        );
        a.insert(
            "dev.cosignproject.cosign/signature".into(),
            ours["dev.cosignproject.cosign/signature"].clone(),
        );
        a
    });
    let e = err(&copy(&pol, &unchained, "unchained"));
    assert!(e.contains("does not chain to a Fulcio CA"), "{e}");
    let expired = signed_image(&reg, "keyless/expired", "14", tmp.path(), |p| {
        s.cosign_annotations(&leaf, p, T0 + 3600)
    });
    let e = err(&copy(&pol, &expired, "expired"));
    assert!(e.contains("not valid at the log's integrated time"), "{e}");

    // Policy mistakes are reported when it is loaded.
    let bad = tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        br#"{"default":[{"type":"sigstoreSigned","fulcio":{"caData":"","oidcIssuer":"i","subjectEmail":"e"}}]}"#,
    )
    .unwrap();
    let e = err(&copy(bad.to_str().unwrap(), &good, "bad"));
    assert!(e.contains("rekorPublicKeyPath"), "{e}");
}
