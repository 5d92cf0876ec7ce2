//! kubemirror in skopeo's place (issue 15): the same command line against
//! the same real Distribution registry gives the same output, byte for byte
//! where skopeo 1.9.3's is stable — `copy`'s progress lines on a
//! non-terminal, `copy -q`, `inspect --format` with Go templates — and the
//! same error text that scripts grep for.
mod support;

use std::process::{Command, Output};

use support::registry::Registry;

fn km() -> Command {
    let mut c = support::kubemirror();
    c.arg("--insecure-policy");
    c
}

fn out(mut c: Command) -> Output {
    c.output().expect("run")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A single image and a two-platform index in OCI layouts.
fn fixtures(dir: &std::path::Path) -> (String, String) {
    let single = dir.join("single");
    support::mkimage(
        &single,
        &["--tag", "v1", "--layers", "3", "--layer-size", "4K"],
    );
    let multi = dir.join("multi");
    support::mkimage(
        &multi,
        &[
            "--tag",
            "v1",
            "--layers",
            "2",
            "--layer-size",
            "2K",
            "--platforms",
            "linux/amd64,linux/arm64",
        ],
    );
    (
        format!("oci:{}:v1", single.display()),
        format!("oci:{}:v1", multi.display()),
    )
}

#[test]
fn copy_prints_skopeos_progress_lines_on_a_pipe() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let (single, multi) = fixtures(tmp.path());
    let copy = |tool: Command, extra: &[&str], src: &str, dst: &str| {
        let mut c = tool;
        c.args(["copy", "--dest-tls-verify=false"])
            .args(extra)
            .args([src, &reg.image(dst)]);
        out(c)
    };
    for (extra, src, name) in [
        (&[][..], &single, "single"),
        (&["--all"][..], &multi, "list"),
        (&[][..], &multi, "one-of-list"),
        (&["--remove-signatures"][..], &single, "nosigs"),
    ] {
        let theirs = copy(support::skopeo(), extra, src, &format!("s/{name}:v1"));
        let ours = copy(km(), extra, src, &format!("k/{name}:v1"));
        let (theirs, ours) = (stdout(&theirs), stdout(&ours));
        assert!(theirs.contains("Writing manifest"), "{theirs}");
        assert_eq!(ours, theirs, "{name}: stdout differs from skopeo's");
        assert!(ours.contains("Copying blob sha256:"));
    }
    // -q / --quiet: nothing on stdout, nothing on stderr.
    for q in ["-q", "--quiet"] {
        let o = copy(km(), &[q], &single, "k/quiet:v1");
        assert_eq!(stdout(&o), "");
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = copy(support::skopeo(), &[q], &single, "s/quiet:v1");
        assert_eq!(stdout(&o), "");
    }
    // Already there: nothing is written, and the line says so (as newer skopeo).
    let o = copy(km(), &[], &single, "k/single:v1");
    assert_eq!(
        stdout(&o),
        "Getting image source signatures\nSkipping: image already present at destination\n"
    );
}

#[test]
fn inspect_format_prints_what_skopeo_prints() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let (single, _) = fixtures(tmp.path());
    let image = reg.image("app/x:v1");
    support::run(support::skopeo().args([
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &single,
        &image,
    ]));
    let inspect = |tool: Command, format: &str| {
        let mut c = tool;
        c.args(["inspect", "--tls-verify=false", "--format", format, &image]);
        out(c)
    };
    for format in [
        "{{.Digest}}",
        "{{.Architecture}}",
        "{{.Name}}",
        "{{ .Os }}/{{.Architecture}}",
        r#"{{index .Labels "bench.seed"}}"#,
        r#"{{index .Labels "missing"}}"#,
        "{{.Labels.missing}}",
        "{{range .RepoTags}}{{.}},{{end}}",
        "{{len .Layers}}",
        "{{.Layers}}",
        "{{.Labels}}",
        "{{.Env}}",
        "{{.RepoTags}}",
        "{{.Created}}",
        r"{{.Digest}}\n",
        "  {{.Os}}  ",
        "{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}",
        "{{range $i, $l := .Layers}}{{$i}}:{{$l}} {{end}}",
        r#"{{if eq .Os "linux"}}L{{else}}O{{end}}"#,
        r#"{{with .Labels}}{{index . "bench.seed"}}{{end}}"#,
        r#"{{printf "%s-%q-%d" .Os .Architecture 3}}"#,
        "{{$n := .Name}}{{$n}} {{- \" x\" -}} y",
        "{{/* comment */}}{{index .Layers 0}}",
        "plain text",
    ] {
        let theirs = inspect(support::skopeo(), format);
        let ours = inspect(km(), format);
        assert_eq!(
            stdout(&ours),
            stdout(&theirs),
            "--format {format:?} differs from skopeo's"
        );
    }
    // `{{json .}}` is the plain output, as skopeo's (which lacks LayersData, added in skopeo 1.10).
    let plain = stdout(&inspect(km(), "json"));
    for f in ["{{json .}}", " {{ json . }} "] {
        assert_eq!(stdout(&inspect(km(), f)), plain);
    }
    // What skopeo 1.9 cannot do but later skopeo and scripts use: json of a field, "\n" literals.
    let labels = stdout(&inspect(km(), "{{json .Labels}}"));
    let v: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(v["bench.seed"], "1");
    assert_eq!(
        stdout(&inspect(km(), r#"{{range .Layers}}{{.}}{{"\n"}}{{end}}"#))
            .lines()
            .count(),
        3
    );
    assert_eq!(stdout(&inspect(km(), "{{json .RepoTags}}")), "[\"v1\"]\n");
    // Errors name the field, as Go's do; nothing on stdout.
    let o = inspect(km(), "{{.Nope}}");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("can't evaluate field Nope"), "{err}");
    let o = inspect(km(), "{{nope .}}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("function \"nope\" not defined"));
    // -n / --no-tags: RepoTags empty, as skopeo.
    for flag in ["-n", "--no-tags"] {
        let mut c = km();
        c.args([
            "inspect",
            "--tls-verify=false",
            flag,
            "--format",
            "{{json .RepoTags}}",
            &image,
        ]);
        assert_eq!(stdout(&out(c)), "[]\n");
        let mut c = support::skopeo();
        c.args([
            "inspect",
            "--tls-verify=false",
            flag,
            "--format",
            "{{.RepoTags}}",
            &image,
        ]);
        assert_eq!(stdout(&out(c)), "[]\n");
    }
}

/// Both tools fail, and both stderrs contain `needle`; returns ours.
fn both_fail_with(args: &[&str], needle: &str) -> String {
    let mut theirs = support::skopeo();
    theirs.args(args);
    let theirs = out(theirs);
    let ours = out({
        let mut c = support::kubemirror();
        c.args(args);
        c
    });
    for (tool, o) in [("skopeo", &theirs), ("kubemirror", &ours)] {
        assert!(!o.status.success(), "{tool} {args:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(needle),
            "{tool} {args:?}: {err:?} lacks {needle:?}"
        );
    }
    let err = String::from_utf8_lossy(&ours.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

#[test]
fn errors_carry_what_skopeos_carry() {
    let tmp = tempfile::tempdir().unwrap();
    let (single, multi) = fixtures(tmp.path());
    let t = tmp.path().display().to_string();
    let reg = Registry::plain();
    let index = reg.image("app/multi:v1");
    support::run(support::skopeo().args([
        "copy",
        "-q",
        "--all",
        "--dest-tls-verify=false",
        &multi,
        &index,
    ]));
    // The registry's code and message.
    let _ = both_fail_with(
        &[
            "inspect",
            "--tls-verify=false",
            &reg.image("app/multi:nope"),
        ],
        "manifest unknown: manifest unknown",
    );
    let _ = both_fail_with(
        &["inspect", "--tls-verify=false", &reg.image("app/absent:v1")],
        "manifest unknown: manifest unknown",
    );
    let auth = Registry::basic_auth("user", "secret");
    let cert_dir = format!("--cert-dir={}", auth.cert_dir().display());
    for creds in [None, Some("--creds=user:wrong")] {
        let mut args = vec!["inspect", &cert_dir];
        args.extend(creds);
        let image = auth.image("app/x:v1");
        args.push(&image);
        let _ = both_fail_with(&args, "unauthorized: authentication required");
    }
    // No image for the platform asked for (skopeo's global --override-*);
    // skopeo's log line escapes the quotes, so the shared part stops before them.
    let ours = both_fail_with(
        &[
            "--override-arch",
            "s390x",
            "--override-variant",
            "v9",
            "copy",
            "--src-tls-verify=false",
            &index,
            &format!("dir:{t}/none"),
        ],
        "no image found in image index for architecture s390x, variant ",
    );
    assert!(
        ours.contains(
            r#"no image found in image index for architecture s390x, variant "v9", OS linux"#
        ),
        "{ours}"
    );
    let ours = both_fail_with(
        &[
            "--override-arch",
            "s390x",
            "inspect",
            "--tls-verify=false",
            &index,
        ],
        "no image found in image index for architecture s390x, variant ",
    );
    assert!(
        ours.contains(
            r#"no image found in image index for architecture s390x, variant "", OS linux"#
        ),
        "{ours}"
    );
    // Policy rejections.
    let reject = tmp.path().join("reject.json");
    std::fs::write(&reject, r#"{"default":[{"type":"reject"}]}"#).unwrap();
    let run_policy = |policy: &std::path::Path, needle: &str| {
        for tool in ["skopeo", "kubemirror"] {
            let mut c = if tool == "skopeo" {
                Command::new("skopeo")
            } else {
                support::kubemirror()
            };
            c.arg("--policy")
                .arg(policy)
                .args(["copy", &single, &format!("dir:{t}/{tool}-p")]);
            let o = out(c);
            assert!(!o.status.success());
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains(needle), "{tool}: {err:?} lacks {needle:?}");
        }
    };
    run_policy(
        &reject,
        &format!("Source image rejected: Running image {single} is rejected by policy."),
    );
    let (home, _) = support::gpg_key(tmp.path(), "");
    let key = tmp.path().join("key.gpg");
    let exported = support::run(Command::new("gpg").env("GNUPGHOME", &home).arg("--export"));
    std::fs::write(&key, exported.stdout).unwrap();
    let signed_by = tmp.path().join("signed.json");
    std::fs::write(
        &signed_by,
        format!(
            r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{}"}}]}}"#,
            key.display()
        ),
    )
    .unwrap();
    run_policy(
        &signed_by,
        "Source image rejected: A signature was required, but no signature exists",
    );
}

#[test]
fn copy_flags_as_skopeos() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let (single, multi) = fixtures(tmp.path());
    let km_ok = |args: &[&str]| {
        stdout(&out({
            let mut c = km();
            c.args(args);
            c
        }))
    };
    let km_err = |args: &[&str]| {
        let o = out({
            let mut c = km();
            c.args(args);
            c
        });
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let media_type = |path: String| -> String {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        v["mediaType"].as_str().unwrap().to_string()
    };
    // --format v2s2 / oci: what is written has that type, and skopeo reads it.
    km_ok(&[
        "copy",
        "-q",
        "--format",
        "v2s2",
        &single,
        &format!("dir:{t}/v2s2"),
    ]);
    assert_eq!(
        media_type(format!("{t}/v2s2/manifest.json")),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let pushed = reg.image("fmt/list:v1");
    km_ok(&[
        "copy",
        "-q",
        "--all",
        "-f",
        "v2s2",
        "--dest-tls-verify=false",
        &multi,
        &pushed,
    ]);
    let raw =
        support::run(support::skopeo().args(["inspect", "--raw", "--tls-verify=false", &pushed]));
    let list: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    support::run(support::skopeo().args([
        "copy",
        "-q",
        "--all",
        "--src-tls-verify=false",
        &pushed,
        &format!("oci:{t}/back:v1"),
    ]));
    km_ok(&[
        "copy",
        "-q",
        "--format",
        "oci",
        &format!("dir:{t}/v2s2"),
        &format!("dir:{t}/oci"),
    ]);
    assert_eq!(
        media_type(format!("{t}/oci/manifest.json")),
        "application/vnd.oci.image.manifest.v1+json"
    );
    support::run(support::skopeo().args(["inspect", &format!("dir:{t}/oci")]));
    let e = km_err(&[
        "copy",
        "--format",
        "v2s1",
        &single,
        &format!("dir:{t}/v2s1"),
    ]);
    assert!(
        e.contains("--format v2s1 is not supported by kubemirror"),
        "{e}"
    );
    // --preserve-digests: refused before writing when a conversion would change a digest.
    let e = km_err(&[
        "copy",
        "--preserve-digests",
        "--format",
        "v2s2",
        &single,
        &format!("dir:{t}/pd"),
    ]);
    assert!(e.contains("--preserve-digests"), "{e}");
    assert!(!std::path::Path::new(&format!("{t}/pd/manifest.json")).exists());
    km_ok(&[
        "copy",
        "-q",
        "--preserve-digests",
        &single,
        &format!("dir:{t}/pd"),
    ]);
    // Hidden aliases and deprecated flags skopeo still accepts.
    let dst = reg.image("alias/x:v1");
    km_ok(&[
        "copy",
        "-q",
        "--dcreds",
        "u:p",
        "--screds",
        "u:p",
        "--tls-verify=false",
        &single,
        &dst,
    ]);
    km_ok(&[
        "copy",
        "-q",
        "--dest-username",
        "u",
        "--dest-password",
        "p",
        "--dest-tls-verify=false",
        "--dest-precompute-digests",
        "--image-parallel-copies",
        "2",
        &single,
        &dst,
    ]);
    let e = km_err(&["copy", "--dest-username", "u", &single, &dst]);
    assert!(
        e.contains("password must be specified when username is specified"),
        "{e}"
    );
    let e = km_err(&[
        "copy",
        "--dest-creds",
        "u:p",
        "--dest-no-creds",
        &single,
        &dst,
    ]);
    assert!(
        e.contains("creds and no-creds cannot be specified at the same time"),
        "{e}"
    );
    // skopeo flags kubemirror leaves out: refused with a reason, not a usage error.
    for flag in [
        &["--encrypt-layer", "0"][..],
        &["--encryption-key", "jwe:/k.pem"],
        &["--dest-registry-token", "t"],
    ] {
        let refused = format!("dir:{t}/refused");
        let args = [&["copy"][..], flag, &[&single, &refused]].concat();
        let e = km_err(&args);
        assert!(
            e.contains("is not supported by kubemirror: "),
            "{flag:?}: {e}"
        );
        assert!(!e.contains("Usage"), "{e}");
    }
}
