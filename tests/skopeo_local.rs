//! Local transports with kubemirror in skopeo's place (issue 15):
//! docker-archive files compressed with gzip, xz or zstd (as `docker save |
//! gzip` leaves them) are read; `copy --additional-tag` writes more
//! `RepoTags`, which real skopeo 1.9.3 lists and reads exactly as from an
//! archive it wrote itself; `oci:` with `--src-`/`--dest-shared-blob-dir`
//! lays blobs out as skopeo does, and each reads what the other wrote.
mod support;

use std::path::Path;
use std::process::Command;
use support::cmd::{err, km, ok, run, sk};

fn kmo(args: &[&str]) -> String {
    let mut c = km();
    c.args(args);
    ok(&run(c))
}

fn layout(dir: &Path) -> String {
    let l = dir.join("img");
    support::mkimage(&l, &["--tag", "v1", "--layers", "2", "--layer-size", "8K"]);
    format!("oci:{}:v1", l.display())
}

#[test]
fn compressed_archives_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(tmp.path());
    let plain = tmp.path().join("a.tar");
    sk(&[
        "copy",
        "-q",
        &src,
        &format!("docker-archive:{}:team/app:v1", plain.display()),
    ]);
    let plain_ref = format!("docker-archive:{}", plain.display());
    let digest = kmo(&["inspect", "--format", "{{.Digest}}", &plain_ref]);
    let config = sk(&["inspect", "--config", &plain_ref]);
    for (tool, flag, ext) in [
        ("gzip", "-k", "gz"),
        ("xz", "-k", "xz"),
        ("zstd", "-q", "zst"),
    ] {
        support::run(Command::new(tool).arg(flag).arg(&plain));
        let packed = format!("{}.{ext}", plain.display());
        let r = format!("docker-archive:{packed}");
        // The same image as from the plain archive, tags included.
        assert_eq!(
            kmo(&["inspect", "--format", "{{.Digest}}", &r]),
            digest,
            "{ext}"
        );
        assert_eq!(
            kmo(&["list-tags", &r]),
            kmo(&["list-tags", &plain_ref]),
            "{ext}"
        );
        let out = tmp.path().join(format!("out-{ext}"));
        kmo(&[
            "copy",
            "-q",
            &format!("{r}:team/app:v1"),
            &format!("oci:{}:v1", out.display()),
        ]);
        assert_eq!(
            sk(&["inspect", "--config", &format!("oci:{}:v1", out.display())]),
            config,
            "{ext}"
        );
        // skopeo 1.9.3 reads xz and zstd archives too: the same tags.
        if ext != "gz" {
            assert_eq!(sk(&["list-tags", &r]), kmo(&["list-tags", &r]), "{ext}");
        }
    }
    // A compressed file that is not a tar inside says so, in one line.
    let bad = tmp.path().join("bad.tar.gz");
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2]).unwrap();
    let e = err(&run({
        let mut c = km();
        c.args(["inspect", &format!("docker-archive:{}", bad.display())]);
        c
    }));
    assert!(e.contains("bad.tar.gz"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

#[test]
fn additional_tags_as_skopeo_writes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(tmp.path());
    let ours = tmp.path().join("ours.tar");
    let theirs = tmp.path().join("theirs.tar");
    let flags = [
        "--additional-tag",
        "team/app:v2",
        "--additional-tag",
        "other:latest",
    ];
    let mut c = km();
    c.args(["copy", "-q"]).args(flags).args([
        &src,
        &format!("docker-archive:{}:team/app:v1", ours.display()),
    ]);
    ok(&run(c));
    let mut c = support::skopeo();
    c.args(["copy", "-q"]).args(flags).args([
        &src,
        &format!("docker-archive:{}:team/app:v1", theirs.display()),
    ]);
    ok(&run(c));
    let listed = sk(&["list-tags", &format!("docker-archive:{}", ours.display())]);
    assert_eq!(
        listed,
        sk(&["list-tags", &format!("docker-archive:{}", theirs.display())])
    );
    assert!(
        listed.contains("docker.io/library/other:latest"),
        "{listed}"
    );
    // skopeo reads the image under each tag.
    for tag in ["team/app:v1", "team/app:v2", "other:latest"] {
        sk(&[
            "inspect",
            &format!("docker-archive:{}:{tag}", ours.display()),
        ]);
    }
    // Without a NAME:TAG of its own, the additional tags are the RepoTags.
    let bare = tmp.path().join("bare.tar");
    let mut c = km();
    c.args(["copy", "-q", "--additional-tag", "x/y:z", &src])
        .arg(format!("docker-archive:{}", bare.display()));
    ok(&run(c));
    assert!(
        kmo(&["list-tags", &format!("docker-archive:{}", bare.display())])
            .contains("\"docker.io/x/y:z\"")
    );
    // skopeo's checks, skopeo's words.
    let mut c = km();
    c.args(["copy", "--additional-tag", "x/y", &src])
        .arg(format!("docker-archive:{}/n.tar", tmp.path().display()));
    let e = err(&run(c));
    assert!(
        e.contains("additional-tag 'x/y' must be a tagged reference"),
        "{e}"
    );
    // Other destinations ignore them, as skopeo does (with a warning here).
    let mut c = km();
    c.args(["copy", "-q", "--additional-tag", "x/y:z", &src])
        .arg(format!("dir:{}/d", tmp.path().display()));
    let o = run(c);
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--additional-tag applies to docker-archive")
    );
}

/// Every file under `root`: relative path → bytes.
fn files(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn shared_blob_dirs_as_skopeo_lays_them_out() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let src = layout(tmp.path());
    // Both write the same blobs to the shared directory, none in the layout.
    sk(&[
        "copy",
        "-q",
        "--dest-shared-blob-dir",
        &format!("{t}/sk-blobs"),
        &src,
        &format!("oci:{t}/sk-layout:v1"),
    ]);
    kmo(&[
        "copy",
        "-q",
        "--dest-shared-blob-dir",
        &format!("{t}/km-blobs"),
        &src,
        &format!("oci:{t}/km-layout:v1"),
    ]);
    let ours = files(&tmp.path().join("km-blobs"));
    assert_eq!(ours, files(&tmp.path().join("sk-blobs")));
    assert!(
        ours.keys().all(|k| k.starts_with("sha256/")),
        "{:?}",
        ours.keys()
    );
    assert_eq!(ours.len(), 4, "manifest, config, two layers");
    let layout_files = files(&tmp.path().join("km-layout"));
    assert_eq!(
        layout_files.keys().collect::<Vec<_>>(),
        ["index.json", "oci-layout"]
    );
    assert!(tmp.path().join("km-layout/blobs").is_dir());
    // Each reads what the other wrote.
    let digest = |out: String| out.trim().to_string();
    let want = digest(kmo(&["inspect", "--format", "{{.Digest}}", &src]));
    assert_eq!(
        digest(sk(&[
            "inspect",
            "--shared-blob-dir",
            &format!("{t}/km-blobs"),
            "--format",
            "{{.Digest}}",
            &format!("oci:{t}/km-layout:v1"),
        ])),
        want
    );
    assert_eq!(
        digest(kmo(&[
            "inspect",
            "--shared-blob-dir",
            &format!("{t}/sk-blobs"),
            "--format",
            "{{.Digest}}",
            &format!("oci:{t}/sk-layout:v1"),
        ])),
        want
    );
    sk(&[
        "copy",
        "-q",
        "--src-shared-blob-dir",
        &format!("{t}/km-blobs"),
        &format!("oci:{t}/km-layout:v1"),
        &format!("dir:{t}/sk-out"),
    ]);
    kmo(&[
        "copy",
        "-q",
        "--src-shared-blob-dir",
        &format!("{t}/sk-blobs"),
        &format!("oci:{t}/sk-layout:v1"),
        &format!("dir:{t}/km-out"),
    ]);
    assert_eq!(
        files(&tmp.path().join("km-out")),
        files(&tmp.path().join("sk-out"))
    );
    // A second layout shares the blobs: nothing new is written.
    kmo(&[
        "copy",
        "-q",
        "--dest-shared-blob-dir",
        &format!("{t}/km-blobs"),
        &src,
        &format!("oci:{t}/km-second:v1"),
    ]);
    assert_eq!(files(&tmp.path().join("km-blobs")), ours);
    assert_eq!(
        kmo(&[
            "list-tags",
            "--shared-blob-dir",
            &format!("{t}/km-blobs"),
            &format!("oci:{t}/km-second")
        ]),
        kmo(&["list-tags", &format!("oci:{t}/km-layout")]).replace("km-layout", "km-second")
    );
}
