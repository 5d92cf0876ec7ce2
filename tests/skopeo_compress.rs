//! skopeo's layer compression flags with kubemirror in skopeo's place
//! (issue 15): `--dest-compress`, `--dest-compress-format gzip|zstd`,
//! `--dest-compress-level`, `--dest-decompress`. What kubemirror writes,
//! real skopeo 1.9.3 reads back, with the same `rootfs.diff_ids`; the
//! recompression streams (peak RSS measured on a 64 MiB layer).
mod support;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::cmd::{err, km, ok, run, sk};
use support::registry::Registry;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// The config's diff_ids as skopeo shows them.
fn diff_ids(image: &str, tls: &[&str]) -> Value {
    let mut args = vec!["inspect", "--config"];
    args.extend_from_slice(tls);
    args.push(image);
    json(&sk(&args))["rootfs"]["diff_ids"].clone()
}

fn layer_types(image: &str, tls: &[&str]) -> Vec<String> {
    let mut args = vec!["inspect", "--raw"];
    args.extend_from_slice(tls);
    args.push(image);
    json(&sk(&args))["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Every layer file of a `dir:` image, decoded, hashes to its diff_id.
fn assert_dir_layers_match_diff_ids(dir: &Path) {
    let m = json(&std::fs::read_to_string(dir.join("manifest.json")).unwrap());
    let config = m["config"]["digest"].as_str().unwrap();
    let cfg = json(&std::fs::read_to_string(dir.join(&config[7..])).unwrap());
    for (l, want) in m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(cfg["rootfs"]["diff_ids"].as_array().unwrap())
    {
        let raw = std::fs::read(dir.join(&l["digest"].as_str().unwrap()[7..])).unwrap();
        assert_eq!(
            format!("sha256:{}", sha256_hex(&raw)),
            l["digest"].as_str().unwrap()
        );
        let mut plain = Vec::new();
        match l["mediaType"].as_str().unwrap() {
            t if t.ends_with("gzip") => {
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_end(&mut plain)
                    .unwrap();
            }
            t if t.ends_with("zstd") => plain = zstd::decode_all(&raw[..]).unwrap(),
            _ => plain = raw,
        }
        assert_eq!(
            format!("sha256:{}", sha256_hex(&plain)),
            want.as_str().unwrap()
        );
    }
}

#[test]
fn zstd_gzip_and_plain_layers_round_trip_through_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let layout = tmp.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "2", "--layer-size", "64K"],
    );
    let src = format!("oci:{}:v1", layout.display());
    let want = diff_ids(&src, &[]);
    let reg = Registry::plain();
    let tls = ["--tls-verify=false"];

    // gzip → zstd, registry to registry: OCI zstd layers, same diff_ids.
    let gz = reg.image("c/gz:v1");
    sk(&["copy", "-q", "--dest-tls-verify=false", &src, &gz]);
    let zs = reg.image("c/zstd:v1");
    ok(&run({
        let mut c = km();
        c.args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--dest-compress-format",
            "zstd",
            "--dest-compress-level",
            "19",
            &gz,
            &zs,
        ]);
        c
    }));
    assert_eq!(
        layer_types(&zs, &tls),
        ["application/vnd.oci.image.layer.v1.tar+zstd"; 2]
    );
    assert_eq!(diff_ids(&zs, &tls), want);
    // skopeo pulls it, decompressing: the layers hash to the diff_ids.
    sk(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--dest-decompress",
        &zs,
        &format!("dir:{t}/sk-plain"),
    ]);
    assert_dir_layers_match_diff_ids(&tmp.path().join("sk-plain"));

    // zstd → plain (--dest-decompress) into dir:, then --dest-compress
    // (gzip) back to a registry; skopeo reads both.
    ok(&run({
        let mut c = km();
        c.args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-decompress",
            &zs,
            &format!("dir:{t}/plain"),
        ]);
        c
    }));
    assert_dir_layers_match_diff_ids(&tmp.path().join("plain"));
    assert_eq!(
        layer_types(&format!("dir:{t}/plain"), &[]),
        ["application/vnd.oci.image.layer.v1.tar"; 2]
    );
    let back = reg.image("c/back:v1");
    ok(&run({
        let mut c = km();
        c.args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            "--dest-compress",
            &format!("dir:{t}/plain"),
            &back,
        ]);
        c
    }));
    assert_eq!(
        layer_types(&back, &tls),
        ["application/vnd.oci.image.layer.v1.tar+gzip"; 2]
    );
    assert_eq!(diff_ids(&back, &tls), want);
    sk(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &back,
        &format!("dir:{t}/sk-back"),
    ]);
    assert_dir_layers_match_diff_ids(&tmp.path().join("sk-back"));

    // --dest-compress alone keeps layers already compressed (zstd stays zstd).
    ok(&run({
        let mut c = km();
        c.args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-compress",
            &zs,
            &format!("dir:{t}/kept"),
        ]);
        c
    }));
    assert_eq!(
        layer_types(&format!("dir:{t}/kept"), &[]),
        ["application/vnd.oci.image.layer.v1.tar+zstd"; 2]
    );

    // A Docker schema 2 image gets an OCI manifest for zstd layers; gzip
    // keeps it Docker.
    let v2s2 = reg.image("c/v2s2:v1");
    sk(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &src,
        &v2s2,
    ]);
    ok(&run({
        let mut c = km();
        c.args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-compress-format=zstd",
            &v2s2,
            &format!("dir:{t}/v2s2-zstd"),
        ]);
        c
    }));
    let m = json(&sk(&["inspect", "--raw", &format!("dir:{t}/v2s2-zstd")]));
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(diff_ids(&format!("dir:{t}/v2s2-zstd"), &[]), want);
    ok(&run({
        let mut c = km();
        c.args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-decompress",
            &v2s2,
            &format!("dir:{t}/v2s2-plain"),
        ]);
        c
    }));
    assert_eq!(
        layer_types(&format!("dir:{t}/v2s2-plain"), &[]),
        ["application/vnd.docker.image.rootfs.diff.tar"; 2]
    );
    assert_dir_layers_match_diff_ids(&tmp.path().join("v2s2-plain"));
    sk(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("dir:{t}/v2s2-plain"),
        &reg.image("c/v2s2-plain:v1"),
    ]);
}

#[test]
fn compression_flags_refuse_what_cannot_work() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let layout = tmp.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "1K"],
    );
    let src = format!("oci:{}:v1", layout.display());
    for (args, needle) in [
        (
            vec!["--dest-compress", "--dest-decompress"],
            "--dest-decompress cannot be used with --dest-compress",
        ),
        (
            vec!["--dest-compress-format", "lz4"],
            "unknown compression format \"lz4\"",
        ),
        (
            vec![
                "--dest-compress-format",
                "zstd",
                "--dest-compress-level",
                "22",
            ],
            "--dest-compress-level 22: want 1..=19 for zstd",
        ),
        (
            vec!["--dest-compress-format", "zstd", "--format", "v2s2"],
            "zstd layers need an OCI manifest",
        ),
        (
            vec!["--dest-compress-format", "zstd", "--preserve-digests"],
            "--preserve-digests",
        ),
    ] {
        let e = err(&run({
            let mut c = km();
            c.arg("copy")
                .args(&args)
                .args([&src, &format!("dir:{t}/out-{}", args.len())]);
            c
        }));
        assert!(e.contains(needle), "{args:?}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    }
    // A docker-archive holds Docker schema 2 only: no zstd there.
    let e = err(&run({
        let mut c = km();
        c.args([
            "copy",
            "--dest-compress-format",
            "zstd",
            &src,
            &format!("docker-archive:{t}/a.tar:x/y:z"),
        ]);
        c
    }));
    assert!(e.contains("zstd layers need an OCI manifest"), "{e}");
}

/// Peak RSS of recompressing a 64 MiB layer (gzip → zstd) stays far below
/// the layer's size: the layer streams through a file, never into memory.
#[test]
fn recompression_memory_does_not_grow_with_the_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("big");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "64M"],
    );
    let out = tmp.path().join("out");
    let o = run({
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "MAXRSS %M"])
            .arg(env!("CARGO_BIN_EXE_kubemirror"))
            .args([
                "--insecure-policy",
                "copy",
                "-q",
                "--dest-compress-format",
                "zstd",
                &format!("oci:{}:v1", layout.display()),
                &format!("oci:{}:v1", out.display()),
            ]);
        c
    });
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    let kib: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("MAXRSS "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!("peak RSS recompressing a 64 MiB layer: {} MiB", kib / 1024);
    assert!(kib < 48 * 1024, "peak RSS {kib} KiB for a 64 MiB layer");
    let raw = sk(&["inspect", "--raw", &format!("oci:{}:v1", out.display())]);
    assert!(raw.contains("tar+zstd"), "{raw}");
    assert_eq!(
        diff_ids(&format!("oci:{}:v1", out.display()), &[]),
        diff_ids(&format!("oci:{}:v1", layout.display()), &[])
    );
}

/// Global `--tmpdir` (skopeo's): recompression stages its layers there. A
/// directory that does not exist fails the recompressing copy with a
/// one-line error naming it, while a copy that needs no temporary file
/// does not care; an existing directory works and is left empty.
#[test]
fn tmpdir_holds_the_temporary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let layout = tmp.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "16K"],
    );
    let src = format!("oci:{}:v1", layout.display());
    let copy = |tmpdir: &str, extra: &[&str], to: &str| {
        run({
            let mut c = km();
            c.args(["--tmpdir", tmpdir, "copy", "-q"])
                .args(extra)
                .args([&src, &format!("dir:{t}/{to}")]);
            c
        })
    };
    let missing = format!("{t}/no-such-dir");
    let zstd = ["--dest-compress-format", "zstd"];
    let e = err(&copy(&missing, &zstd, "a"));
    assert!(
        e.contains(&format!("create a temporary file in {missing}")),
        "{e}"
    );
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    ok(&copy(&missing, &[], "b"));
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    ok(&copy(&scratch.display().to_string(), &zstd, "c"));
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
}
