//! skopeo's other commands with kubemirror in skopeo's place (issue 15):
//! `delete`, `manifest-digest`, `login` / `logout`, against real
//! Distribution registries and compared with real skopeo 1.9.3.
mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use support::cmd::{err, ok, run};
use support::registry::{Registry, RegistryOptions};

fn km(args: &[&str]) -> Output {
    let mut c = support::kubemirror();
    c.args(args);
    run(c)
}

fn sk(args: &[&str]) -> Output {
    let mut c = support::skopeo();
    c.args(args);
    run(c)
}

fn push(src: &str, reg: &Registry, repo: &str) -> String {
    let dst = reg.image(repo);
    ok(&sk(&["copy", "-q", "--dest-tls-verify=false", src, &dst]));
    dst
}

#[test]
fn delete_removes_the_manifest_and_says_when_the_registry_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "1K"],
    );
    let src = format!("oci:{}:v1", layout.display());
    let reg = Registry::plain();
    let a = push(&src, &reg, "del/a:v1");
    // By tag: the manifest goes; skopeo then sees it gone.
    ok(&km(&["delete", "--tls-verify=false", &a]));
    let e = err(&sk(&["inspect", "--tls-verify=false", &a]));
    assert!(e.contains("manifest unknown"), "{e}");
    // By digest, and what skopeo deletes we see gone too.
    let b = push(&src, &reg, "del/b:v1");
    let digest = ok(&km(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &b,
    ]));
    let by_digest = format!("{}@{}", reg.image("del/b"), digest.trim());
    ok(&km(&["delete", "--tls-verify=false", &by_digest]));
    let e = err(&km(&["inspect", "--tls-verify=false", &b]));
    assert!(e.contains("manifest unknown: manifest unknown"), "{e}");
    let c = push(&src, &reg, "del/c:v1");
    ok(&sk(&["delete", "--tls-verify=false", &c]));
    let e = err(&km(&["delete", "--tls-verify=false", &c]));
    assert!(e.contains("manifest unknown"), "{e}");
    // A registry that does not allow deletes (Distribution's default).
    let strict = Registry::start(RegistryOptions {
        delete_disabled: true,
        ..Default::default()
    });
    let d = push(&src, &strict, "del/d:v1");
    let e = err(&km(&["delete", "--tls-verify=false", &d]));
    assert!(e.contains("405 Method Not Allowed"), "{e}");
    assert!(e.contains("REGISTRY_STORAGE_DELETE_ENABLED=true"), "{e}");
    assert!(e.contains("unsupported"), "{e}");
    ok(&sk(&["inspect", "--tls-verify=false", &d]));
    // Other transports: a message, not a usage error.
    let e = err(&km(&["delete", &src]));
    assert!(e.contains("not supported"), "{e}");
}

#[test]
fn manifest_digest_matches_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "1K"],
    );
    let dir = tmp.path().join("dir");
    ok(&sk(&[
        "copy",
        "-q",
        &format!("oci:{}:v1", layout.display()),
        &format!("dir:{}", dir.display()),
    ]));
    for file in [dir.join("manifest.json"), layout.join("index.json")] {
        let f = file.to_str().unwrap();
        let ours = ok(&km(&["manifest-digest", f]));
        assert_eq!(ours, ok(&sk(&["manifest-digest", f])));
        assert!(ours.starts_with("sha256:") && ours.ends_with('\n'));
    }
    let e = err(&km(&["manifest-digest", "/nonexistent/manifest.json"]));
    assert!(e.contains("/nonexistent/manifest.json"), "{e}");
}

#[test]
fn login_and_logout_write_the_auth_file_as_skopeo_does() {
    let reg = Registry::basic_auth("user", "secret");
    let tmp = tempfile::tempdir().unwrap();
    let cert = format!("--cert-dir={}", reg.cert_dir().display());
    let (ours, theirs) = (tmp.path().join("ours.json"), tmp.path().join("theirs.json"));
    let (o, t) = (ours.to_str().unwrap(), theirs.to_str().unwrap());
    let repo = format!("{}/team/app", reg.host);
    let login = |tool: fn(&[&str]) -> Output, file: &str, target: &str| {
        tool(&[
            "login",
            &cert,
            "--authfile",
            file,
            "-u",
            "user",
            "-p",
            "secret",
            target,
        ])
    };
    assert_eq!(ok(&login(km, o, &reg.host)), "Login Succeeded!\n");
    ok(&login(sk, t, &reg.host));
    // --password-stdin, and a repository key beside the registry's.
    for (file, tool) in [(o, "km"), (t, "sk")] {
        let mut c = if tool == "km" {
            support::kubemirror()
        } else {
            support::skopeo()
        };
        let mut child = c
            .args([
                "login",
                &cert,
                "--authfile",
                file,
                "-u",
                "user",
                "--password-stdin",
                &repo,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
        ok(&child.wait_with_output().unwrap());
    }
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&ours).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Wrong password: skopeo's words, and the file is unchanged.
    let before = std::fs::read(&ours).unwrap();
    let bad = km(&[
        "login",
        &cert,
        "--authfile",
        o,
        "-u",
        "user",
        "-p",
        "wrong",
        &reg.host,
    ]);
    let e = err(&bad);
    assert!(
        e.contains(&format!(
            "logging into \"{}\": invalid username/password",
            reg.host
        )),
        "{e}"
    );
    assert_eq!(std::fs::read(&ours).unwrap(), before);
    // The file works for both tools.
    let layout = tmp.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "1K"],
    );
    let src = format!("oci:{}:v1", layout.display());
    let dst = reg.image("team/app:v1");
    let dest_cert = format!("--dest-cert-dir={}", reg.cert_dir().display());
    ok(&km(&[
        "--insecure-policy",
        "copy",
        "-q",
        "--authfile",
        t,
        &dest_cert,
        &src,
        &dst,
    ]));
    ok(&sk(&["inspect", "--authfile", o, &cert, &dst]));
    // --get-login
    assert_eq!(
        ok(&km(&["login", "--authfile", o, "--get-login", &reg.host])),
        "user\n"
    );
    assert_eq!(
        ok(&km(&["login", "--authfile", o, "--get-login", &reg.host])),
        ok(&sk(&["login", "--authfile", t, "--get-login", &reg.host]))
    );
    let e = err(&km(&[
        "login",
        "--authfile",
        o,
        "--get-login",
        "127.0.0.1:1",
    ]));
    assert!(e.contains("not logged into 127.0.0.1:1"), "{e}");
    // logout one, then a second time (an error, as skopeo's), then --all.
    for (tool, file) in [(km as fn(&[&str]) -> Output, o), (sk, t)] {
        assert_eq!(
            ok(&tool(&["logout", "--authfile", file, &reg.host])),
            format!("Removed login credentials for {}\n", reg.host)
        );
        let e = err(&tool(&["logout", "--authfile", file, &reg.host]));
        assert!(e.contains(&format!("not logged into {}", reg.host)), "{e}");
    }
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap()
    );
    for (tool, file) in [(km as fn(&[&str]) -> Output, o), (sk, t)] {
        assert_eq!(
            ok(&tool(&["logout", "--authfile", file, "--all"])),
            "Removed login credentials for all registries\n"
        );
    }
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap()
    );
    // REGISTRY_AUTH_FILE when no --authfile.
    let env_file = tmp.path().join("env.json");
    let mut c = support::kubemirror();
    c.env("REGISTRY_AUTH_FILE", &env_file)
        .args(["login", &cert, "-u", "user", "-p", "secret", &reg.host]);
    ok(&run(c));
    assert!(
        std::fs::read_to_string(&env_file)
            .unwrap()
            .contains(&reg.host)
    );
}

#[test]
fn standalone_sign_and_verify_interoperate_with_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "1K"],
    );
    let dir = tmp.path().join("dir");
    ok(&sk(&[
        "copy",
        "-q",
        &format!("oci:{}:v1", layout.display()),
        &format!("dir:{}", dir.display()),
    ]));
    let manifest = dir.join("manifest.json");
    let m = manifest.to_str().unwrap();
    let other = layout.join("index.json");
    let digest = ok(&km(&["manifest-digest", m]));
    let name = "registry.example/team/app:v1";
    for passphrase in ["", "secret words"] {
        let (home, fpr) = support::gpg_key(tmp.path(), passphrase);
        let pass_file = tmp.path().join("pass");
        std::fs::write(&pass_file, format!("{passphrase}\n")).unwrap();
        let pf = pass_file.to_str().unwrap();
        let with_home = |tool: &str, args: &[&str]| {
            let mut c = if tool == "km" {
                support::kubemirror()
            } else {
                support::skopeo()
            };
            c.env("GNUPGHOME", &home).args(args);
            run(c)
        };
        let (ours, theirs) = (tmp.path().join("ours.sig"), tmp.path().join("theirs.sig"));
        let (o, t) = (ours.to_str().unwrap(), theirs.to_str().unwrap());
        let mut sign = vec!["standalone-sign", m, name, &fpr];
        if !passphrase.is_empty() {
            sign.extend(["--passphrase-file", pf]);
        }
        ok(&with_home("km", &[&sign[..], &["-o", o]].concat()));
        ok(&with_home("sk", &[&sign[..], &["-o", t]].concat()));
        // Each verifies the other's, with the same words.
        for sig in [o, t] {
            let expect = format!("Signature verified, digest {}", digest.trim());
            assert_eq!(
                ok(&with_home("km", &["standalone-verify", m, name, &fpr, sig])).trim(),
                expect
            );
            assert_eq!(
                ok(&with_home("sk", &["standalone-verify", m, name, &fpr, sig])).trim(),
                expect
            );
        }
        // What a script greps when verification fails.
        let o_other = other.to_str().unwrap();
        for (args, needle) in [
            (
                vec![
                    "standalone-verify",
                    m,
                    "registry.example/team/other:v1",
                    &fpr,
                    o,
                ],
                format!("Docker reference {name} does not match registry.example/team/other:v1"),
            ),
            (
                vec!["standalone-verify", o_other, name, &fpr, o],
                format!(
                    "Signature for docker digest \"{}\" does not match",
                    digest.trim()
                ),
            ),
            (
                vec!["standalone-verify", m, name, "0123456789ABCDEF", o],
                format!("Signature by {fpr} does not match expected fingerprint 0123456789ABCDEF"),
            ),
        ] {
            let e = err(&with_home("km", &args));
            assert!(e.contains(&needle), "{e} lacks {needle}");
            let e = err(&with_home("sk", &args));
            assert!(
                e.contains(&needle.replace('"', "\\\"")),
                "skopeo: {e} lacks {needle}"
            );
        }
    }
}

#[test]
fn copy_signs_with_gpg_and_generated_sigstore_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let layout = tmp.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "1K"],
    );
    let src = format!("oci:{}:v1", layout.display());
    // --sign-by (GnuPG): skopeo's signedBy policy accepts what we signed.
    let (home, fpr) = support::gpg_key(tmp.path(), "");
    let mut c = support::kubemirror();
    c.env("GNUPGHOME", &home).args([
        "--insecure-policy",
        "copy",
        "-q",
        "--sign-by",
        &fpr,
        "--sign-identity",
        "registry.example/team/app:v1",
        &src,
        &format!("dir:{t}/gpg"),
    ]);
    ok(&run(c));
    let public = support::run(Command::new("gpg").env("GNUPGHOME", &home).arg("--export"));
    std::fs::write(tmp.path().join("pub.gpg"), public.stdout).unwrap();
    let policy = tmp.path().join("gpg-policy.json");
    std::fs::write(&policy, format!(
        r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{t}/pub.gpg","signedIdentity":{{"type":"exactReference","dockerReference":"registry.example/team/app:v1"}}}}]}}"#
    )).unwrap();
    let mut c = Command::new("skopeo");
    c.arg("--policy").arg(&policy).args([
        "copy",
        "-q",
        &format!("dir:{t}/gpg"),
        &format!("dir:{t}/gpg-back"),
    ]);
    ok(&run(c));
    // A destination without a docker reference needs --sign-identity.
    let mut c = support::kubemirror();
    c.env("GNUPGHOME", &home).args([
        "--insecure-policy",
        "copy",
        "--sign-by",
        &fpr,
        &src,
        &format!("dir:{t}/noid"),
    ]);
    assert!(err(&run(c)).contains("--sign-identity"));

    // generate-sigstore-key, then copy --sign-by-sigstore-private-key to a
    // registry (sigstore attachments) and a sigstoreSigned policy with the
    // .pub accepts it. (Debian's skopeo 1.9.3 is built with sigstore
    // disabled, so it can neither sign with nor verify such keys here.)
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "correct horse\n").unwrap();
    let prefix = format!("{t}/cosign");
    let p = pass.to_str().unwrap();
    let out = ok(&km(&[
        "generate-sigstore-key",
        "--output-prefix",
        &prefix,
        "--passphrase-file",
        p,
    ]));
    assert!(out.contains("cosign.private"), "{out}");
    let private = std::fs::read_to_string(format!("{prefix}.private")).unwrap();
    assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    assert!(
        std::fs::read_to_string(format!("{prefix}.pub"))
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let e = err(&km(&[
        "generate-sigstore-key",
        "--output-prefix",
        &prefix,
        "--passphrase-file",
        p,
    ]));
    assert!(e.contains("refusing to overwrite"), "{e}");
    let reg = Registry::plain();
    let regd = tmp.path().join("registries.d");
    std::fs::create_dir(&regd).unwrap();
    std::fs::write(
        regd.join("default.yaml"),
        format!(
            "docker:\n  {}:\n    use-sigstore-attachments: true\n",
            reg.host
        ),
    )
    .unwrap();
    let r = regd.to_str().unwrap();
    let dst = reg.image("signed/app:v1");
    let key = format!("{prefix}.private");
    ok(&km(&[
        "--insecure-policy",
        "--registries.d",
        r,
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--sign-by-sigstore-private-key",
        &key,
        "--sign-passphrase-file",
        p,
        &src,
        &dst,
    ]));
    let bad = tmp.path().join("bad");
    std::fs::write(&bad, "wrong\n").unwrap();
    let e = err(&km(&[
        "--insecure-policy",
        "copy",
        "--sign-by-sigstore-private-key",
        &key,
        "--sign-passphrase-file",
        bad.to_str().unwrap(),
        &src,
        &format!("dir:{t}/x"),
    ]));
    assert!(e.contains("wrong passphrase"), "{e}");
    let policy = tmp.path().join("sigstore-policy.json");
    std::fs::write(&policy, format!(
        r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{"{}/signed":[{{"type":"sigstoreSigned","keyPath":"{prefix}.pub","signedIdentity":{{"type":"matchRepository"}}}}]}}}}}}"#,
        reg.host
    )).unwrap();
    let pol = policy.to_str().unwrap();
    ok(&km(&[
        "--policy",
        pol,
        "--registries.d",
        r,
        "copy",
        "-q",
        "--src-tls-verify=false",
        &dst,
        &format!("dir:{t}/verified"),
    ]));
    // The same policy refuses the unsigned copy of the same image.
    let unsigned = reg.image("signed/plain:v1");
    ok(&km(&[
        "--insecure-policy",
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &src,
        &unsigned,
    ]));
    err(&km(&[
        "--policy",
        pol,
        "--registries.d",
        r,
        "copy",
        "--src-tls-verify=false",
        &unsigned,
        &format!("dir:{t}/refused"),
    ]));
}

#[test]
fn skopeo_features_left_out_fail_saying_so() {
    for args in [
        &["inspect", "--registry-token", "t", "docker://r.io/a:b"][..],
        &[
            "sync",
            "--src=docker",
            "--dest=dir",
            "--src-registry-token",
            "t",
            "r/a",
            "/tmp/x",
        ],
        &["list-tags", "--daemon-host", "h", "docker://r.io/a"],
        &[
            "copy",
            "--decryption-key",
            "k",
            "oci:/tmp/x:v1",
            "dir:/tmp/y",
        ],
    ] {
        let e = err(&km(args));
        assert!(e.contains("not supported by kubemirror"), "{args:?}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    }
}

#[test]
fn list_tags_of_a_docker_archive_prints_what_skopeo_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "1", "--layer-size", "1K"],
    );
    let archive = format!("docker-archive:{}/a.tar", tmp.path().display());
    ok(&sk(&[
        "copy",
        "-q",
        &format!("oci:{}:v1", layout.display()),
        &format!("{archive}:team/app:v1"),
    ]));
    let ours = ok(&km(&["list-tags", &archive]));
    assert_eq!(ours, ok(&sk(&["list-tags", &archive])));
    assert!(
        ours.contains("docker.io/team/app:v1") && !ours.contains("Repository"),
        "{ours}"
    );
}
