//! Every example under `examples/` is accepted by the CRD schema (the chart's
//! CRDs, applied to the API emulator with the real kubectl, which asks for
//! strict field validation: an unknown or misspelt field fails).

use std::path::Path;

use crate::cluster::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_are_accepted_by_the_crds() {
    let cluster = Cluster::start().await;
    cluster.install_crds().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_owned())
        .collect();
    for want in [
        "mirror-semver.yaml",
        "inspect-signed.yaml",
        "quickstart.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "examples/{want} is missing: {names:?}"
        );
    }
    let mut objects = 0;
    for f in &files {
        let out = cluster.apply_file(f).await;
        assert!(
            !out.stderr.to_lowercase().contains("warning"),
            "{}: {}",
            f.display(),
            out.stderr
        );
        objects += out
            .stdout
            .lines()
            .filter(|l| l.contains("kubemirror.dev/"))
            .count();
    }
    let out = cluster
        .kubectl(
            &["get", "imagemirrors,imageinspections", "-A", "-o", "name"],
            None,
        )
        .await;
    assert!(out.ok, "{out:?}");
    assert_eq!(out.stdout.lines().count(), objects, "{}", out.stdout);
    assert!(objects >= 4, "{}", out.stdout);

    // And the schema does bite: a misspelt field is refused.
    let bad = std::fs::read_to_string(dir.join("mirror-semver.yaml"))
        .unwrap()
        .replace("latest: 5", "lattest: 5");
    let out = cluster.kubectl(&["apply", "-f", "-"], Some(&bad)).await;
    assert!(!out.ok && out.stderr.contains("lattest"), "{out:?}");
    cluster.emu.shutdown().await;
}
