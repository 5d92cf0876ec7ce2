//! The copy engine between real registries: what a cold, an incremental and
//! a no-op copy leave at the destination (manifest and every blob equal to the
//! source's), index copies, and attached artifacts carried byte for byte.
mod support;

use support::registry::Registry;

fn km(args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = support::kubemirror_run(args);
    assert!(ok, "kubemirror {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
}

fn skopeo_raw(image: &str) -> Vec<u8> {
    support::run(support::skopeo().args(["inspect", "--raw", "--tls-verify=false", image])).stdout
}

/// Every blob digest an image (or index) references, via skopeo.
fn blobs(image_repo: &str, raw: &[u8]) -> Vec<String> {
    let m: serde_json::Value = serde_json::from_slice(raw).unwrap();
    if let Some(list) = m["manifests"].as_array() {
        return list
            .iter()
            .flat_map(|d| {
                let r = format!("{image_repo}@{}", d["digest"].as_str().unwrap());
                blobs(image_repo, &skopeo_raw(&r))
            })
            .collect();
    }
    let mut out = vec![m["config"]["digest"].as_str().unwrap().to_string()];
    out.extend(
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string()),
    );
    out
}

fn push(layout: &str, reg: &Registry, repo_tag: &str, all: bool) {
    let mut c = support::skopeo();
    c.args(["copy", "--dest-tls-verify=false"]);
    if all {
        c.arg("--all");
    }
    support::run(c.arg(layout).arg(reg.image(repo_tag)));
}

#[test]
fn cold_incremental_and_noop_copies_leave_an_exact_destination() {
    let (src, dst) = (Registry::plain(), Registry::plain());
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("l");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "4", "--layer-size", "64K"],
    );
    support::mkimage(
        &layout,
        &[
            "--tag",
            "multi",
            "--layers",
            "2",
            "--layer-size",
            "32K",
            "--platforms",
            "linux/amd64,linux/arm64",
        ],
    );
    let l = layout.display().to_string();
    push(&format!("oci:{l}:v1"), &src, "app:v1", false);
    push(&format!("oci:{l}:multi"), &src, "app:multi", true);
    let flags = [
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--report",
    ];
    let copy = |from: &str, to: &str, extra: &[&str]| {
        let mut a = vec!["copy"];
        a.extend(flags);
        a.extend(extra);
        a.push(from);
        a.push(to);
        km(&a)
    };

    let cold = copy(&src.image("app:v1"), &dst.image("mirror/app:v1"), &[]);
    assert_eq!(cold["blobsCopied"], 5, "{cold}");
    let want = skopeo_raw(&src.image("app:v1"));
    assert_eq!(
        skopeo_raw(&dst.image("mirror/app:v1")),
        want,
        "manifest bytes equal"
    );
    for b in blobs(&src.image("app"), &want) {
        support::run(
            support::skopeo()
                .args(["inspect", "--raw", "--tls-verify=false"])
                .arg(dst.image("mirror/app:v1")),
        );
        let url = format!("{}/v2/mirror/app/blobs/{b}", dst.base_url());
        let out = support::run(std::process::Command::new("curl").args(["-sf", &url]));
        assert_eq!(
            kubemirror::digest::sha256(&out.stdout).to_string(),
            b,
            "blob {b} intact"
        );
    }

    let noop = copy(&src.image("app:v1"), &dst.image("mirror/app:v1"), &[]);
    assert_eq!(noop["upToDate"], true, "{noop}");
    // Another tag of the same image in another repository: blobs mount or are skipped.
    let again = copy(&src.image("app:v1"), &dst.image("other/app:v1"), &[]);
    assert_eq!(
        again["blobsCopied"], 5,
        "other registry: a fresh repository needs every blob: {again}"
    );
    let local = copy(&dst.image("mirror/app:v1"), &dst.image("third/app:v1"), &[]);
    assert_eq!(local["blobsMounted"], 5, "same registry: mounted: {local}");
    assert_eq!(local["bytesCopied"], 0, "{local}");

    let multi = copy(
        &src.image("app:multi"),
        &dst.image("mirror/app:multi"),
        &["--all"],
    );
    assert_eq!(
        skopeo_raw(&dst.image("mirror/app:multi")),
        skopeo_raw(&src.image("app:multi"))
    );
    assert_eq!(multi["manifestsWritten"], 3, "{multi}");
}

#[test]
fn attached_artifacts_travel_byte_for_byte() {
    let (src, dst) = (Registry::plain(), Registry::plain());
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("l");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "8K"],
    );
    support::mkimage(
        &layout,
        &[
            "--tag",
            "sig",
            "--layers",
            "1",
            "--layer-size",
            "1K",
            "--seed",
            "9",
        ],
    );
    support::mkimage(
        &layout,
        &[
            "--tag",
            "att",
            "--layers",
            "1",
            "--layer-size",
            "1K",
            "--seed",
            "10",
        ],
    );
    let l = layout.display().to_string();
    push(&format!("oci:{l}:v1"), &src, "app:v1", false);
    let digest = kubemirror::digest::sha256(&skopeo_raw(&src.image("app:v1")));
    let hex = digest.digest();
    // Stand-ins for cosign's artifacts, under cosign's tag names.
    push(
        &format!("oci:{l}:sig"),
        &src,
        &format!("app:sha256-{hex}.sig"),
        false,
    );
    push(
        &format!("oci:{l}:att"),
        &src,
        &format!("app:sha256-{hex}.att"),
        false,
    );
    let flags = [
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--report",
    ];
    let (from, to_m, to_n) = (
        src.image("app:v1"),
        dst.image("m/app:v1"),
        dst.image("n/app:v1"),
    );
    let mut a = flags.to_vec();
    a.extend([from.as_str(), to_m.as_str()]);
    let plain = km(&a);
    assert_eq!(
        plain["attachmentsCopied"], 0,
        "skopeo's default: attachments stay: {plain}"
    );

    let mut a = flags.to_vec();
    a.push("--copy-attachments");
    a.extend([from.as_str(), to_n.as_str()]);
    let with = km(&a);
    assert_eq!(with["attachmentsCopied"], 2, "{with}");
    for suffix in ["sig", "att"] {
        let tag = format!("sha256-{hex}.{suffix}");
        assert_eq!(
            skopeo_raw(&dst.image(&format!("n/app:{tag}"))),
            skopeo_raw(&src.image(&format!("app:{tag}"))),
            "{tag} byte for byte"
        );
    }
}
