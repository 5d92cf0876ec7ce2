//! Shared helpers for the integration tests: real Distribution registries on
//! loopback ports, fixtures written by `../shared/bench/mkimage.py`, and the
//! real skopeo. Every helper panics with a message that says what is missing
//! (a test that cannot run its real parts fails; it never skips).
#![allow(dead_code, unused_imports)]

pub mod cluster;
pub mod cmd;
pub mod controller_proc;
pub mod copyloop;
pub mod cosign;
pub mod hostile;
pub mod images;
pub mod kubectl;
pub mod proxy;
pub mod referrers;
pub mod registry;
pub mod relay;
pub mod scale;
pub mod scale_out;
pub mod test_sigstore;
pub mod token;
pub mod wait;

pub use images::{push, skopeo_digest};
pub use wait::eventually;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/bench` beside the repository (CI lays it there too); from a
/// git worktree one level further down (`wt/NAME`), `../../shared/bench`.
pub fn bench_dir() -> PathBuf {
    let p = repo_root().join("../shared/bench");
    let q = repo_root().join("../../shared/bench");
    if !p.join("mkimage.py").exists() && q.join("mkimage.py").exists() {
        return q;
    }
    assert!(
        p.join("mkimage.py").exists(),
        "missing {}: the shared/ folder must sit beside the repository",
        p.display()
    );
    p
}

/// A free loopback TCP port (bound then released; the OS does not hand it out again at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Write a synthetic OCI layout with `mkimage.py` (args as the script takes them).
pub fn mkimage(out: &Path, args: &[&str]) {
    run(Command::new("python3")
        .arg(bench_dir().join("mkimage.py"))
        .arg(out)
        .args(args));
}

/// A `Command` for the real skopeo, with a private policy that accepts anything
/// (tests must not depend on the machine's /etc/containers/policy.json).
pub fn skopeo() -> Command {
    let policy = std::env::temp_dir().join("kubemirror-test-policy.json");
    if !policy.exists() {
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
    }
    let mut c = Command::new("skopeo");
    c.arg("--policy").arg(policy);
    c
}

/// A `Command` for the kubemirror binary built for these tests.
pub fn kubemirror() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kubemirror"))
}

/// Run kubemirror; return (success, stdout, stderr).
pub fn kubemirror_run(args: &[&str]) -> (bool, String, String) {
    let out = kubemirror().args(args).output().expect("run kubemirror");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A throwaway GnuPG home with one key (protected by `passphrase` unless
/// empty); returns (home, fingerprint).
pub fn gpg_key(dir: &Path, passphrase: &str) -> (PathBuf, String) {
    let home = dir.join(format!("gnupg{}", passphrase.len()));
    std::fs::create_dir(&home).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    run(Command::new("gpg").env("GNUPGHOME", &home).args([
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        passphrase,
        "--quick-gen-key",
        "test@example.com",
        "default",
        "default",
        "never",
    ]));
    let out = run(Command::new("gpg")
        .env("GNUPGHOME", &home)
        .args(["--list-keys", "--with-colons"]));
    let fpr = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .unwrap();
    (home, fpr)
}
