//! The command line as a user meets it: one-line errors and exit 1 for bad
//! input, nothing written on failure, the trust policy enforced before any
//! write, `inspect` equal to skopeo's on the fields skopeo prints.
mod support;

use std::path::Path;

fn km(args: &[&str]) -> (bool, String, String) {
    support::kubemirror_run(args)
}

/// A small single-image layout, written once per test.
fn layout(dir: &Path) -> String {
    let p = dir.join("src");
    support::mkimage(&p, &["--tag", "v1", "--layers", "2", "--layer-size", "4K"]);
    p.display().to_string()
}

fn assert_one_line_error(args: &[&str], expect: &str) {
    let (ok, out, err) = km(args);
    assert!(!ok, "{args:?} succeeded: {out}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
    assert!(err.starts_with("Error: "), "{err}");
    assert!(
        err.contains(expect),
        "{args:?}: {err:?} does not mention {expect:?}"
    );
}

#[test]
fn bad_input_gives_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    assert_one_line_error(&["inspect", "foo:bar"], "unknown transport \"foo\"");
    assert_one_line_error(&["inspect", "alpine"], "expected TRANSPORT:REFERENCE");
    assert_one_line_error(&["inspect", "docker://x::y"], "invalid reference \"x::y\"");
    assert_one_line_error(&["inspect", "docker://Upper/Case"], "lowercase");
    assert_one_line_error(
        &["inspect", &format!("oci:{t}/missing:v1")],
        &format!("{t}/missing"),
    );
    assert_one_line_error(
        &[
            "copy",
            &format!("dir:{t}/nothing"),
            &format!("oci:{t}/out:v1"),
        ],
        "nothing",
    );
    assert!(
        !Path::new(&format!("{t}/out/index.json")).exists(),
        "a failed copy wrote an index"
    );
    assert_one_line_error(
        &["copy", "--platform", "linux", "oci:/x", "oci:/y"],
        "invalid platform \"linux\"",
    );
}

#[test]
fn copy_enforces_the_trust_policy_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(tmp.path());
    let t = tmp.path().display().to_string();
    let reject = tmp.path().join("reject.json");
    std::fs::write(&reject, r#"{"default":[{"type":"reject"}]}"#).unwrap();
    let (ok, _, err) = km(&[
        "--policy",
        reject.to_str().unwrap(),
        "copy",
        &format!("oci:{src}:v1"),
        &format!("dir:{t}/out"),
    ]);
    assert!(!ok);
    assert!(err.contains("rejected"), "{err}");
    assert!(!Path::new(&format!("{t}/out/manifest.json")).exists());
    // An unsigned image fails a signedBy policy too; accept-anything passes.
    let accept = tmp.path().join("accept.json");
    std::fs::write(
        &accept,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let (ok, _, err) = km(&[
        "--policy",
        accept.to_str().unwrap(),
        "copy",
        &format!("oci:{src}:v1"),
        &format!("dir:{t}/out"),
    ]);
    assert!(ok, "{err}");
    assert!(Path::new(&format!("{t}/out/manifest.json")).exists());
}

#[test]
fn inspect_matches_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(tmp.path());
    let image = format!("oci:{src}:v1");
    let (ok, ours, err) = km(&["inspect", &image]);
    assert!(ok, "{err}");
    let theirs = support::run(support::skopeo().args(["inspect", &image]));
    let ours: serde_json::Value = serde_json::from_str(&ours).unwrap();
    let theirs: serde_json::Value = serde_json::from_slice(&theirs.stdout).unwrap();
    for field in [
        "Name",
        "Digest",
        "RepoTags",
        "Created",
        "DockerVersion",
        "Labels",
        "Architecture",
        "Variant",
        "Os",
        "Layers",
        "Env",
    ] {
        assert_eq!(ours.get(field), theirs.get(field), "field {field}");
    }
    // skopeo 1.9 predates LayersData (added in skopeo 1.10): check it against Layers.
    let digests = |v: &serde_json::Value, f: &dyn Fn(&serde_json::Value) -> String| {
        v.as_array().unwrap().iter().map(f).collect::<Vec<String>>()
    };
    assert_eq!(
        digests(&ours["LayersData"], &|l| l["Digest"]
            .as_str()
            .unwrap()
            .to_string()),
        digests(&ours["Layers"], &|l| l.as_str().unwrap().to_string())
    );
    // The same bytes too, but for LayersData (skopeo 1.9 indents with 4 spaces as we do).
    let (_, text, _) = km(&["inspect", &image]);
    let theirs_text = support::run(support::skopeo().args(["inspect", &image])).stdout;
    let theirs_text = String::from_utf8(theirs_text).unwrap();
    let drop_layers_data = |s: &str| {
        let start = s.find("    \"LayersData\"").unwrap_or(s.len());
        let end = s[start..]
            .find("    ],\n")
            .map(|i| start + i + 7)
            .unwrap_or(start);
        format!("{}{}", &s[..start], &s[end..])
    };
    assert_eq!(drop_layers_data(&text), theirs_text);
    let (ok, raw, _) = km(&["inspect", "--raw", &image]);
    assert!(ok);
    let theirs = support::run(support::skopeo().args(["inspect", "--raw", &image]));
    assert_eq!(
        raw.as_bytes(),
        theirs.stdout.as_slice(),
        "--raw prints the exact bytes"
    );
    let (ok, config, _) = km(&["inspect", "--config", "--raw", &image]);
    assert!(ok);
    let theirs = support::run(support::skopeo().args(["inspect", "--config", "--raw", &image]));
    assert_eq!(config.as_bytes(), theirs.stdout.as_slice());
}
