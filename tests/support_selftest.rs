//! The test support itself: a registry starts, skopeo pushes a fixture to it.
mod support;

use support::registry::Registry;

#[test]
fn registry_and_skopeo_work() {
    let reg = Registry::plain();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "1K"],
    );
    support::run(
        support::skopeo()
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:v1", layout.display()))
            .arg(reg.image("t/app:v1")),
    );
    let out = support::run(support::skopeo().args([
        "list-tags",
        "--tls-verify=false",
        &reg.image("t/app"),
    ]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("v1"));
}
