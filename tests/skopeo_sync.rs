//! skopeo's own `sync --src … --dest …` with kubemirror in skopeo's place
//! (issue 15): the same command line on the same input lays the destination
//! out exactly as real skopeo 1.9.3 does (compared file by file), what one
//! writes the other reads, and `--dry-run`, `--keep-going`, `--all`,
//! `--scoped`, `--sign-by`, the YAML source format and the refusals behave
//! as skopeo's.
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use support::cmd::{err, km, run};
use support::registry::Registry;

fn ok(o: &Output) -> (String, String) {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Every file under `root`: relative path → bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn assert_same_tree(ours: &Path, skopeos: &Path) {
    let (a, b) = (tree(ours), tree(skopeos));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "file names differ"
    );
    for (k, v) in &a {
        assert!(v == &b[k], "{k} differs from skopeo's");
    }
}

/// Two tags of `ns/app` and one of `other/app` (same last name: a collision
/// without --scoped), pushed by skopeo; returns the registry host.
fn seed(tmp: &Path, reg: &Registry) -> String {
    let layout = tmp.join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "2", "--layer-size", "2K"],
    );
    support::mkimage(
        &layout,
        &[
            "--tag",
            "v2",
            "--layers",
            "1",
            "--layer-size",
            "1K",
            "--seed",
            "2",
        ],
    );
    for (tag, to) in [
        ("v1", "ns/app:v1"),
        ("v2", "ns/app:v2"),
        ("v1", "other/app:v1"),
    ] {
        let mut c = support::skopeo();
        c.args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{}:{tag}", layout.display()),
            &reg.image(to),
        ]);
        ok(&run(c));
    }
    reg.image("")
        .trim_start_matches("docker://")
        .trim_end_matches('/')
        .to_string()
}

/// Run the same sync with kubemirror (into `DEST_km`) and skopeo (into `DEST_sk`).
fn both(args: &[&str], dest: &Path) -> (Output, Output) {
    let mut ours = km();
    ours.arg("sync")
        .args(args)
        .arg(format!("{}_km", dest.display()));
    let mut theirs = support::skopeo();
    theirs
        .arg("sync")
        .args(args)
        .arg(format!("{}_sk", dest.display()));
    (run(ours), run(theirs))
}

#[test]
fn docker_to_dir_lays_out_exactly_as_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::plain();
    let host = seed(tmp.path(), &reg);
    let repo = format!("{host}/ns/app");
    // A repository: every tag, named by its last path element.
    let d = tmp.path().join("plain");
    let (a, b) = both(
        &[
            "--src",
            "docker",
            "--dest",
            "dir",
            "--src-tls-verify=false",
            &repo,
        ],
        &d,
    );
    let (stdout, stderr) = ok(&a);
    ok(&b);
    assert_same_tree(&tmp.path().join("plain_km"), &tmp.path().join("plain_sk"));
    assert!(tmp.path().join("plain_km/app:v1/manifest.json").is_file());
    // skopeo's progress lines for each image, its log lines on stderr.
    assert_eq!(
        stdout.matches("Getting image source signatures\n").count(),
        2
    );
    assert_eq!(stdout, String::from_utf8_lossy(&b.stdout));
    for needle in [
        "level=info msg=\"Copying image ref 1/2\" from=\"docker://",
        "level=info msg=\"Synced 2 images from 1 sources\"",
    ] {
        assert!(stderr.contains(needle), "{stderr} lacks {needle}");
        assert!(String::from_utf8_lossy(&b.stderr).contains(needle));
    }
    // One image, --scoped: the registry and path are part of the name.
    let d = tmp.path().join("scoped");
    let image = format!("{repo}:v2");
    let (a, b) = both(
        &[
            "--src",
            "docker",
            "--dest",
            "dir",
            "--scoped",
            "--src-tls-verify=false",
            &image,
        ],
        &d,
    );
    ok(&a);
    ok(&b);
    assert_same_tree(&tmp.path().join("scoped_km"), &tmp.path().join("scoped_sk"));
    assert!(
        tmp.path()
            .join(format!("scoped_km/{host}/ns/app:v2/manifest.json"))
            .is_file()
    );
    // A destination directory that exists is refused, as skopeo refuses it.
    let (a, b) = both(
        &[
            "--src",
            "docker",
            "--dest",
            "dir",
            "--scoped",
            "--src-tls-verify=false",
            &image,
        ],
        &d,
    );
    let needle = "Refusing to overwrite destination directory";
    assert!(err(&a).contains(needle));
    assert!(err(&b).contains(needle));
}

#[test]
fn yaml_source_as_skopeo_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::plain();
    let host = seed(tmp.path(), &reg);
    let digest = {
        let o = ok(&run({
            let mut c = support::skopeo();
            c.args([
                "inspect",
                "--tls-verify=false",
                "--format",
                "{{.Digest}}",
                &reg.image("ns/app:v1"),
            ]);
            c
        }))
        .0;
        o.trim().to_string()
    };
    let file = tmp.path().join("sync.yaml");
    std::fs::write(
        &file,
        format!(
            "{host}:\n  tls-verify: false\n  images:\n    ns/app:\n      - v1\n      - \"{digest}\"\n    other/app: []\n    missing/repo: []\n  images-by-tag-regex:\n    ns/app: ^v2$\n"
        ),
    )
    .unwrap();
    let f = file.display().to_string();
    let d = tmp.path().join("y");
    let (a, b) = both(&["--src", "yaml", "--dest", "dir", "--scoped", &f], &d);
    let (_, stderr) = ok(&a);
    ok(&b);
    assert_same_tree(&tmp.path().join("y_km"), &tmp.path().join("y_sk"));
    assert!(
        tmp.path()
            .join(format!("y_km/{host}/ns/app@{digest}/manifest.json"))
            .is_file()
    );
    // A repository that cannot be listed is logged and skipped, as skopeo does.
    assert!(
        stderr.contains("level=error msg=\"Error processing repo, skipping\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("Synced 4 images from 3 sources"),
        "{stderr}"
    );
    // Without --scoped, ns/app:v1 and other/app:v1 are both app:v1: refused.
    let d = tmp.path().join("flat");
    let (a, b) = both(&["--src", "yaml", "--dest", "dir", &f], &d);
    let needle = "Refusing to overwrite destination directory";
    assert!(err(&a).contains(needle));
    assert!(err(&b).contains(needle));
    // A key skopeo would silently ignore is named.
    std::fs::write(
        &file,
        format!("{host}:\n  images-by-semver:\n    a: '>=1'\n"),
    )
    .unwrap();
    let e = err(&run({
        let mut c = km();
        c.args([
            "sync",
            "--src",
            "yaml",
            "--dest",
            "dir",
            &f,
            "/nonexistent/x",
        ]);
        c
    }));
    assert!(e.contains("images-by-semver"), "{e}");
}

#[test]
fn dir_to_docker_and_back_with_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let src_reg = Registry::plain();
    let host = seed(tmp.path(), &src_reg);
    // skopeo lays a tree out; kubemirror pushes it to another registry.
    let tree_dir = tmp.path().join("tree");
    ok(&run({
        let mut c = support::skopeo();
        c.args([
            "sync",
            "--src",
            "docker",
            "--dest",
            "dir",
            "--src-tls-verify=false",
            &format!("{host}/ns/app"),
            &tree_dir.join("team").display().to_string(),
        ]);
        c
    }));
    let dst = Registry::plain();
    let dst_host = dst
        .image("")
        .trim_start_matches("docker://")
        .trim_end_matches('/')
        .to_string();
    let t = tree_dir.display().to_string();
    let (_, stderr) = ok(&run({
        let mut c = km();
        c.args([
            "sync",
            "--src",
            "dir",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
            &t,
            &format!("{dst_host}/mirror"),
        ]);
        c
    }));
    assert!(
        stderr.contains("Synced 2 images from 1 sources"),
        "{stderr}"
    );
    // skopeo reads both tags, with the source's digests.
    for tag in ["v1", "v2"] {
        let digest = |image: String| {
            let mut c = support::skopeo();
            c.args([
                "inspect",
                "--tls-verify=false",
                "--format",
                "{{.Digest}}",
                &image,
            ]);
            ok(&run(c)).0
        };
        assert_eq!(
            digest(dst.image(&format!("mirror/app:{tag}"))),
            digest(src_reg.image(&format!("ns/app:{tag}")))
        );
    }
    // --scoped keeps the path below the source directory.
    ok(&run({
        let mut c = km();
        c.args([
            "sync",
            "-s",
            "dir",
            "-d",
            "docker",
            "--scoped",
            "--dest-tls-verify=false",
            &t,
            &format!("{dst_host}/scoped"),
        ]);
        c
    }));
    let tags = ok(&run({
        let mut c = support::skopeo();
        c.args([
            "list-tags",
            "--tls-verify=false",
            &dst.image("scoped/team/app"),
        ]);
        c
    }))
    .0;
    assert!(tags.contains("\"v1\"") && tags.contains("\"v2\""), "{tags}");
    // dir to dir is refused as skopeo refuses it.
    let e = err(&run({
        let mut c = km();
        c.args([
            "sync",
            "--src",
            "dir",
            "--dest",
            "dir",
            &t,
            "/nonexistent/x",
        ]);
        c
    }));
    assert!(
        e.contains("sync from 'dir' to 'dir' not implemented"),
        "{e}"
    );
}

#[test]
fn dry_run_keep_going_all_and_sign_by() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::plain();
    let host = seed(tmp.path(), &reg);
    let repo = format!("{host}/ns/app");
    // --dry-run: skopeo's lines, nothing written (skopeo 1.9.3 still
    // creates the empty directories; kubemirror creates none).
    let d = tmp.path().join("dry");
    let (_, stderr) = ok(&run({
        let mut c = km();
        c.args([
            "sync",
            "--dry-run",
            "--src",
            "docker",
            "--dest",
            "dir",
            "--src-tls-verify=false",
            &repo,
            &d.display().to_string(),
        ]);
        c
    }));
    assert!(stderr.contains("level=warning msg=\"Running in dry-run mode\""));
    assert!(
        stderr.contains("msg=\"Would have copied image ref 2/2\""),
        "{stderr}"
    );
    assert!(stderr.contains("Would have synced 2 images from 1 sources"));
    assert!(!d.exists());

    // --keep-going: a missing digest fails, the other image is still copied.
    let file = tmp.path().join("s.yaml");
    let missing = format!("sha256:{}", "0".repeat(64));
    std::fs::write(
        &file,
        format!("{host}:\n  tls-verify: false\n  images:\n    ns/app: [\"{missing}\", v2]\n"),
    )
    .unwrap();
    let f = file.display().to_string();
    let sync_yaml = |extra: &[&str], to: &str| {
        let mut c = km();
        c.args(["sync", "--src", "yaml", "--dest", "dir"])
            .args(extra)
            .args([&f, &tmp.path().join(to).display().to_string()]);
        run(c)
    };
    let e = err(&sync_yaml(&[], "stop"));
    assert!(
        e.contains(&format!("Error copying ref \"docker://{repo}@{missing}\"")),
        "{e}"
    );
    assert!(!tmp.path().join("stop/app:v2").exists());
    let e = err(&sync_yaml(&["--keep-going"], "go"));
    assert!(e.contains("level=error msg=\"Error copying ref"), "{e}");
    assert!(
        e.contains("Sync failed due to previous reported error(s) for one or more images"),
        "{e}"
    );
    assert!(tmp.path().join("go/app:v2/manifest.json").is_file());

    // --all copies every image of an index; skopeo reads the result.
    let multi = tmp.path().join("multi");
    support::mkimage(
        &multi,
        &[
            "--tag",
            "v1",
            "--layers",
            "1",
            "--layer-size",
            "1K",
            "--platforms",
            "linux/amd64,linux/arm64",
        ],
    );
    ok(&run({
        let mut c = support::skopeo();
        c.args([
            "copy",
            "-q",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", multi.display()),
            &reg.image("multi/app:v1"),
        ]);
        c
    }));
    let all = tmp.path().join("all");
    ok(&run({
        let mut c = km();
        c.args([
            "sync",
            "--all",
            "--src",
            "docker",
            "--dest",
            "dir",
            "--src-tls-verify=false",
            &format!("{host}/multi/app"),
            &all.display().to_string(),
        ]);
        c
    }));
    let files = tree(&all.join("app:v1"));
    assert_eq!(
        files
            .keys()
            .filter(|k| k.ends_with(".manifest.json"))
            .count(),
        2,
        "{:?}",
        files.keys()
    );
    ok(&run({
        let mut c = support::skopeo();
        c.args([
            "copy",
            "-q",
            "--all",
            &format!("dir:{}/app:v1", all.display()),
            &format!("oci:{}/back:v1", tmp.path().display()),
        ]);
        c
    }));

    // --sign-by: simple signatures in the destination's lookaside, which
    // skopeo's signedBy policy accepts.
    let (home, fpr) = support::gpg_key(tmp.path(), "");
    let dst = Registry::plain();
    let dst_host = dst
        .image("")
        .trim_start_matches("docker://")
        .trim_end_matches('/')
        .to_string();
    let regd = tmp.path().join("registries.d");
    let sigs = tmp.path().join("sigs");
    std::fs::create_dir_all(&regd).unwrap();
    std::fs::write(
        regd.join("d.yaml"),
        format!(
            "docker:\n  {dst_host}:\n    lookaside: file://{s}\n    lookaside-staging: file://{s}\n",
            s = sigs.display()
        ),
    )
    .unwrap();
    ok(&run({
        let mut c = km();
        c.env("GNUPGHOME", &home).args([
            "--registries.d",
            &regd.display().to_string(),
            "sync",
            "--sign-by",
            &fpr,
            "--src",
            "docker",
            "--dest",
            "docker",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("{repo}:v1"),
            &format!("{dst_host}/signed"),
        ]);
        c
    }));
    let public = support::run(Command::new("gpg").env("GNUPGHOME", &home).arg("--export"));
    std::fs::write(tmp.path().join("pub.gpg"), public.stdout).unwrap();
    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{"{dst_host}":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{}/pub.gpg"}}]}}}}}}"#,
            tmp.path().display()
        ),
    )
    .unwrap();
    let o = run({
        let mut c = Command::new("skopeo");
        c.arg("--policy").arg(&policy).args([
            "--registries.d",
            &regd.display().to_string(),
            "copy",
            "-q",
            "--src-tls-verify=false",
            &dst.image("signed/app:v1"),
            &format!("dir:{}/verified", tmp.path().display()),
        ]);
        c
    });
    ok(&o);
}

#[test]
fn refusals_and_usage() {
    for (args, needle) in [
        (
            vec!["sync", "--src", "oci", "--dest", "dir", "a", "b"],
            "Invalid source transport \"oci\"",
        ),
        (
            vec!["sync", "--src", "docker", "--dest", "yaml", "a", "b"],
            "Invalid destination transport \"yaml\"",
        ),
        (
            vec!["sync", "--src", "docker", "a", "b"],
            "A destination transport must be specified",
        ),
        (
            vec![
                "sync",
                "--src",
                "docker",
                "--dest",
                "dir",
                "--src-registry-token",
                "t",
                "a",
                "b",
            ],
            "--src-registry-token is not supported by kubemirror",
        ),
        (
            vec![
                "sync", "--src", "docker", "--dest", "dir", "-f", "v2s1", "a", "b",
            ],
            "--format v2s1 is not supported by kubemirror",
        ),
    ] {
        let e = err(&run({
            let mut c = km();
            c.args(&args);
            c
        }));
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    // `sync -f FILE` is still the ImageMirror sync.
    let e = err(&run({
        let mut c = km();
        c.args(["sync", "-f", "/nonexistent/file.yaml"]);
        c
    }));
    assert!(e.contains("/nonexistent/file.yaml"), "{e}");
}
