//! The `sif:` transport with kubemirror in skopeo's place (issue 15): SIF
//! files built here with the real tools (`mksquashfs` from squashfs-tools,
//! `siftool` from Debian's siftool package) are read by kubemirror and by
//! skopeo 1.9.3, and the results compared: config fields, and the layer's
//! entries (names, types, modes, owners, mtimes, contents, link targets,
//! devices). The layer tars are not byte-identical (skopeo's comes from GNU
//! tar over an unsquashfs extraction, with PAX headers; ours is written
//! straight from the squashfs), so neither are the digests.
mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::cmd::{err, km, ok, run, sk};

fn kmo(args: &[&str]) -> String {
    let mut c = km();
    c.args(args);
    ok(&run(c))
}

fn kme(args: &[&str]) -> String {
    let mut c = km();
    c.args(args);
    err(&run(c))
}

/// A root file system with every kind of entry skopeo's layer keeps.
fn rootfs(dir: &Path) -> PathBuf {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let r = dir.join("root");
    for d in ["etc", "bin", "opt/deep"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("etc/greeting"), "hello\n").unwrap();
    std::fs::set_permissions(r.join("etc/greeting"), PermissionsExt::from_mode(0o640)).unwrap();
    symlink("../etc/greeting", r.join("bin/link")).unwrap();
    std::fs::write(r.join("bin/tool"), "tool\n").unwrap();
    std::fs::set_permissions(r.join("bin/tool"), PermissionsExt::from_mode(0o4755)).unwrap();
    std::fs::hard_link(r.join("bin/tool"), r.join("bin/hard")).unwrap();
    // Same contents, not linked: must stay two files.
    std::fs::write(r.join("bin/copy"), "tool\n").unwrap();
    std::fs::set_permissions(r.join("opt/deep"), PermissionsExt::from_mode(0o1777)).unwrap();
    // A file bigger than one squashfs block (128 KiB), not compressible to nothing.
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(r.join("opt/big.bin"), big).unwrap();
    support::run(Command::new("mkfifo").arg(r.join("opt/fifo")));
    support::run(
        Command::new("touch")
            .args(["-d", "2020-01-02 03:04:05"])
            .arg(r.join("etc/greeting")),
    );
    r
}

/// `mksquashfs ROOT` with `comp`, devices and owners from pseudo definitions
/// (no root needed), wrapped by `siftool` as partition `parttype` (2: the
/// primary system partition), after a definition file when `def` is given.
fn make_sif(
    dir: &Path,
    root: &Path,
    name: &str,
    comp: &str,
    def: Option<&str>,
    parttype: &str,
) -> PathBuf {
    let sq = dir.join(format!("{name}.sqfs"));
    support::run(
        Command::new("mksquashfs")
            .arg(root)
            .arg(&sq)
            .args(["-quiet", "-noappend", "-comp", comp])
            .args(["-p", "dev d 755 0 0"])
            .args(["-p", "dev/null c 666 0 0 1 3"])
            .args(["-p", "dev/sda b 660 0 6 8 0"])
            .args(["-p", "etc/greeting m 640 1000 1001"]),
    );
    let sif = dir.join(format!("{name}.sif"));
    support::run(Command::new("siftool").arg("new").arg(&sif));
    if let Some(def) = def {
        let f = dir.join(format!("{name}.def"));
        std::fs::write(&f, def).unwrap();
        support::run(
            Command::new("siftool")
                .args(["add", "--datatype", "1"])
                .arg(&sif)
                .arg(&f),
        );
    }
    support::run(
        Command::new("siftool")
            .args([
                "add",
                "--datatype",
                "4",
                "--parttype",
                parttype,
                "--partfs",
                "1",
                "--partarch",
                "2",
            ])
            .arg(&sif)
            .arg(&sq),
    );
    sif
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// A blob of an OCI layout.
fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

/// (manifest, config) of the one image in an OCI layout.
fn image(layout: &Path) -> (Value, Value) {
    let index = json(&std::fs::read_to_string(layout.join("index.json")).unwrap());
    let m: Value = serde_json::from_slice(&blob(
        layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let c: Value =
        serde_json::from_slice(&blob(layout, m["config"]["digest"].as_str().unwrap())).unwrap();
    (m, c)
}

/// One tar entry as compared: type, mode, uid, gid, mtime, then contents
/// (files), target (links) or device numbers.
type Entry = (char, u32, u64, u64, u64, String);

/// The entries of the layer of the image in `layout`, by name (`./` prefix
/// and directories' `/` removed); gzip layers are unpacked first.
fn entries(layout: &Path) -> BTreeMap<String, Entry> {
    let (m, _) = image(layout);
    let layer = &m["layers"][0];
    let data = blob(layout, layer["digest"].as_str().unwrap());
    let plain = if layer["mediaType"].as_str().unwrap().ends_with("+gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        data
    };
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(&plain[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let h = e.header().clone();
        let kind = h.entry_type();
        let (c, rest) = match kind {
            tar::EntryType::Regular => {
                let mut s = Vec::new();
                e.read_to_end(&mut s).unwrap();
                (
                    '-',
                    format!(
                        "{} bytes sha256 {}",
                        s.len(),
                        kubemirror::digest::sha256(&s)
                    ),
                )
            }
            tar::EntryType::Directory => ('d', String::new()),
            tar::EntryType::Symlink => ('l', e.link_name().unwrap().unwrap().display().to_string()),
            tar::EntryType::Link => ('h', e.link_name().unwrap().unwrap().display().to_string()),
            tar::EntryType::Char | tar::EntryType::Block => (
                if kind == tar::EntryType::Char {
                    'c'
                } else {
                    'b'
                },
                format!(
                    "{},{}",
                    h.device_major().unwrap().unwrap(),
                    h.device_minor().unwrap().unwrap()
                ),
            ),
            tar::EntryType::Fifo => ('p', String::new()),
            other => panic!("unexpected entry type {other:?} for {name}"),
        };
        let link = rest.trim_start_matches("./").to_string();
        out.insert(
            name,
            (
                c,
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                link,
            ),
        );
    }
    out
}

/// `a` and `b` are one hard-linked file: one is the file, the other a link
/// to it (which one depends on each tool's walk order). Make both the file.
fn unlink(m: &mut BTreeMap<String, Entry>, a: &str, b: &str) {
    let (file, link) = if m[a].0 == 'h' { (b, a) } else { (a, b) };
    assert_eq!(m[file].0, '-', "{file}: {:?}", m[file]);
    assert_eq!((m[link].0, m[link].5.as_str()), ('h', file), "{link}");
    let f = m[file].clone();
    m.insert(link.to_string(), f);
}

#[test]
fn copy_matches_skopeo_and_skopeo_reads_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let root = rootfs(tmp.path());
    let sif = make_sif(tmp.path(), &root, "plain", "gzip", None, "2");
    let src = format!("sif:{}", sif.display());
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    kmo(&["copy", "-q", &src, &format!("oci:{}:x", ours.display())]);
    sk(&["copy", "-q", &src, &format!("oci:{}:x", theirs.display())]);

    let (om, oc) = image(&ours);
    let (_, tc) = image(&theirs);
    // The layer is as the source made it: one uncompressed tar, whose digest is its diff ID.
    assert_eq!(om["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        om["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(om["layers"][0]["digest"], oc["rootfs"]["diff_ids"][0]);
    for field in ["created", "architecture", "os", "config"] {
        assert_eq!(oc[field], tc[field], "{field}");
    }
    assert_eq!(oc["architecture"], "amd64");
    assert_eq!(oc["config"], json(r#"{"Cmd":["bash"]}"#));
    assert_eq!(oc["rootfs"]["type"], "layers");
    // History: skopeo's two entries, the ADD naming each tool's own diff ID.
    let ours_h = oc["history"].to_string().replace(
        oc["rootfs"]["diff_ids"][0]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
        "DIFF",
    );
    let theirs_h = tc["history"].to_string().replace(
        tc["rootfs"]["diff_ids"][0]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
        "DIFF",
    );
    assert_eq!(ours_h, theirs_h);
    assert!(ours_h.contains("imported from SIF, uuid: "), "{ours_h}");
    // Byte for byte skopeo's config (Go's field order, compact), but for the diff ID.
    let raw = |layout: &Path, c: &Value| {
        let (m, _) = image(layout);
        let hex = c["rootfs"]["diff_ids"][0]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        String::from_utf8(blob(layout, m["config"]["digest"].as_str().unwrap()))
            .unwrap()
            .replace(&hex, "DIFF")
    };
    assert_eq!(raw(&ours, &oc), raw(&theirs, &tc));

    // The layers hold the same entries, except that a hard link is a link
    // to whichever name each tool stored first.
    let mut o = entries(&ours);
    let mut t = entries(&theirs);
    assert_eq!(o.keys().collect::<Vec<_>>(), t.keys().collect::<Vec<_>>());
    for m in [&mut o, &mut t] {
        unlink(m, "bin/hard", "bin/tool");
    }
    assert_eq!(o, t);
    assert_eq!(o["etc/greeting"].1, 0o640);
    assert_eq!((o["etc/greeting"].2, o["etc/greeting"].3), (1000, 1001));
    assert_eq!(o["bin/tool"].1, 0o4755);
    assert_eq!(o["opt/deep"].1, 0o1777);
    assert_eq!(o["dev/sda"].5, "8,0");
    assert_eq!(o["bin/copy"].0, '-', "equal contents are not a hard link");

    // What we wrote, skopeo reads.
    let inspected = json(&sk(&["inspect", &format!("oci:{}:x", ours.display())]));
    assert_eq!(inspected["Architecture"], "amd64");
    assert_eq!(inspected["Layers"][0], om["layers"][0]["digest"]);
    sk(&[
        "copy",
        "-q",
        &format!("oci:{}:x", ours.display()),
        &format!("dir:{}", tmp.path().join("d").display()),
    ]);

    // dir: too.
    let d = tmp.path().join("ours-dir");
    kmo(&["copy", "-q", &src, &format!("dir:{}", d.display())]);
    assert!(d.join("manifest.json").exists());
}

#[test]
fn inspect_matches_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let root = rootfs(tmp.path());
    let sif = make_sif(tmp.path(), &root, "i", "gzip", None, "2");
    let src = format!("sif:{}", sif.display());
    let mut ours = json(&kmo(&["inspect", &src]));
    let mut theirs = json(&sk(&["inspect", &src]));
    // The digests name each tool's own layer tar.
    for v in [&mut ours, &mut theirs] {
        v["Digest"] = Value::Null;
        v["Layers"] = Value::Null;
        v.as_object_mut().unwrap().remove("LayersData");
    }
    assert_eq!(ours, theirs);
    assert_eq!(ours["Architecture"], "amd64");
    assert_eq!(
        kmo(&["inspect", "--format", "{{.Os}}/{{.Architecture}}", &src]).trim(),
        "linux/amd64"
    );
    let oc = json(&kmo(&["inspect", "--config", &src]));
    let tc = json(&sk(&["inspect", "--config", &src]));
    assert_eq!(oc["created"], tc["created"]);
    assert_eq!(oc["config"], tc["config"]);
}

#[test]
fn definition_file_becomes_the_runscript() {
    let tmp = tempfile::tempdir().unwrap();
    let root = rootfs(tmp.path());
    let def = "Bootstrap: docker\nFrom: alpine\n%environment\n  # set A\n  export A=1\n\n%post\n  echo build\n%runscript\n  echo hi \"$@\"\n";
    let sif = make_sif(tmp.path(), &root, "def", "gzip", Some(def), "2");
    let src = format!("sif:{}", sif.display());
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    kmo(&["copy", "-q", &src, &format!("oci:{}:x", ours.display())]);
    sk(&["copy", "-q", &src, &format!("oci:{}:x", theirs.display())]);
    let (_, oc) = image(&ours);
    let (_, tc) = image(&theirs);
    assert_eq!(oc["config"], json(r#"{"Cmd":["/podman/runscript"]}"#));
    assert_eq!(oc["config"], tc["config"]);
    let o = entries(&ours);
    let t = entries(&theirs);
    // Same script, mode and owner; the mtime is each tool's own clock.
    let (os, ts) = (&o["podman/runscript"], &t["podman/runscript"]);
    assert_eq!(
        (os.0, os.1, os.2, os.3, &os.5),
        (ts.0, ts.1, ts.2, ts.3, &ts.5)
    );
    assert_eq!(
        (o["podman"].0, o["podman"].1),
        (t["podman"].0, t["podman"].1)
    );
    let (_, plain) = (0, make_sif(tmp.path(), &root, "nodef", "gzip", None, "2"));
    let p = tmp.path().join("p");
    kmo(&[
        "copy",
        "-q",
        &format!("sif:{}", plain.display()),
        &format!("oci:{}:x", p.display()),
    ]);
    assert!(!entries(&p).contains_key("podman/runscript"));
}

#[test]
fn xz_and_zstd_squashfs_give_the_same_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = rootfs(tmp.path());
    let mut seen = Vec::new();
    for comp in ["gzip", "xz", "zstd"] {
        let sif = make_sif(tmp.path(), &root, comp, comp, None, "2");
        let out = tmp.path().join(format!("o-{comp}"));
        kmo(&[
            "copy",
            "-q",
            &format!("sif:{}", sif.display()),
            &format!("oci:{}:x", out.display()),
        ]);
        let mut e = entries(&out);
        // mksquashfs stamps pseudo-defined entries with its own clock.
        for v in e.values_mut() {
            v.4 = 0;
        }
        seen.push(e);
    }
    assert_eq!(seen[0], seen[1], "xz");
    assert_eq!(seen[0], seen[2], "zstd");
}

#[test]
fn copy_to_a_registry() {
    let reg = support::registry::Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let root = rootfs(tmp.path());
    let sif = make_sif(tmp.path(), &root, "r", "gzip", None, "2");
    let dest = reg.image("sif/app:v1");
    let mut args = vec!["copy".to_string(), "-q".into()];
    args.extend(reg.tls_flags("dest"));
    args.push(format!("sif:{}", sif.display()));
    args.push(dest.clone());
    kmo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut args = vec!["inspect".to_string()];
    args.extend(reg.tls_flags(""));
    args.push(dest.clone());
    let v = json(&sk(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    // skopeo pulls it back with the same files.
    let back = tmp.path().join("back");
    let mut args = vec!["copy".to_string(), "-q".into()];
    args.extend(reg.tls_flags("src"));
    args.push(dest);
    args.push(format!("oci:{}:x", back.display()));
    sk(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        entries(&back)["etc/greeting"].5,
        "6 bytes sha256 sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
}

/// Each bad file fails with one line that says what is wrong, and no panic.
#[test]
fn bad_input_is_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = rootfs(tmp.path());
    let good = make_sif(tmp.path(), &root, "g", "gzip", None, "2");
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, b: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, b).unwrap();
        format!("sif:{}", p.display())
    };
    let check = |src: &str, want: &str| {
        let out = tmp.path().join("out");
        let e = kme(&["copy", "-q", src, &format!("oci:{}:x", out.display())]);
        assert!(e.contains(want), "{src}: want {want:?} in {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{src}: not one line: {e}");
        assert!(!e.contains("panicked"), "{e}");
        let e = kme(&["inspect", src]);
        assert!(e.contains(want), "{src}: want {want:?} in {e}");
    };
    // Not a SIF at all.
    check(
        &write("text.sif", b"hello, this is not a SIF file at all\n"),
        "not a SIF file",
    );
    // Truncated: the descriptor table is cut off.
    check(
        &write("trunc.sif", &bytes[..5000]),
        "extends past the end of the file",
    );
    // Truncated inside the squashfs partition.
    check(
        &write("trunc2.sif", &bytes[..bytes.len() - 2000]),
        "extends past the end of the file",
    );
    // The partition's descriptor points past the end.
    let mut b = bytes.clone();
    let d = 4096 + 17; // first descriptor's offset field
    b[d..d + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
    check(&write("range.sif", &b), "extends past the end of the file");
    // A squashfs partition full of garbage.
    let mut b = bytes.clone();
    let off = i64::from_le_bytes(b[d..d + 8].try_into().unwrap()) as usize;
    for x in &mut b[off..off + 96] {
        *x = 0x5a;
    }
    check(&write("garbage.sif", &b), "reading the squashfs partition");
    // A squashfs superblock whose table offsets lie (bytes_used past the
    // partition): backhand's own log lines must not reach stderr.
    let mut b = bytes.clone();
    b[off + 40..off + 48].copy_from_slice(&u64::MAX.to_le_bytes());
    check(
        &write("lying.sif", &b),
        "corrupted or invalid squashfs image",
    );
    // A fragment table entry pointing outside its block (found by the fuzz
    // target; the squashfs reader panicked on it): a one-line error, no
    // "panicked" on stderr.
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/sif/fragment-out-of-range");
    check(
        &format!("sif:{}", corpus.display()),
        "corrupt data (its tables point outside its blocks)",
    );
    // No primary system partition (a plain system partition only).
    let sys = make_sif(tmp.path(), &root, "sys", "gzip", None, "1");
    check(
        &format!("sif:{}", sys.display()),
        "no primary system partition",
    );
    // A missing file.
    let e = kme(&[
        "inspect",
        &format!("sif:{}", tmp.path().join("nope.sif").display()),
    ]);
    assert!(e.contains("nope.sif"), "{e}");
    // sif: is never a destination.
    let e = kme(&[
        "copy",
        "-q",
        &format!("sif:{}", good.display()),
        &format!("sif:{}", tmp.path().join("w.sif").display()),
    ]);
    assert!(e.contains("sif: is read-only, as in skopeo"), "{e}");
}
