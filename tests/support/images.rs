//! Images in real registries, by the real skopeo: synthetic images pushed,
//! digests read back.

use std::path::Path;

use super::registry::Registry;

/// Write a synthetic image with `mkimage.py` (`mkimage_args`, e.g.
/// `["--layers", "1", "--layer-size", "2K", "--seed", "a"]`) in a layout
/// under `dir` and push it to plain-HTTP `registry` as `repo_tag` with
/// skopeo; returns its manifest digest as skopeo reads it back.
pub fn push(registry: &Registry, dir: &Path, repo_tag: &str, mkimage_args: &[&str]) -> String {
    let name: String = repo_tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let layout = dir.join(format!("layout-{name}-{}", mkimage_args.join("-")));
    let mut args = vec!["--tag", "t"];
    args.extend_from_slice(mkimage_args);
    super::mkimage(&layout, &args);
    let image = registry.image(repo_tag);
    super::run(
        super::skopeo()
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:t", layout.display()))
            .arg(&image),
    );
    skopeo_digest(&["--tls-verify=false", &image])
}

/// `skopeo inspect ARGS…`'s `Digest`.
pub fn skopeo_digest(args: &[&str]) -> String {
    let out = super::run(super::skopeo().arg("inspect").args(args));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Digest"]
        .as_str()
        .unwrap_or_else(|| panic!("skopeo inspect {args:?}: no Digest"))
        .to_string()
}
