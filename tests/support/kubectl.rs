//! The real kubectl, run against a test cluster's kubeconfig: the one place
//! the tests start it (stdin fed, output captured, a 90 s bound so that a
//! hung kubectl fails the test instead of hanging it).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// What one kubectl run gave.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// [`run`] for a test cluster kept in `dir`: `dir/kubeconfig`, with
/// kubectl's discovery cache in `dir/cache`.
pub async fn in_dir(dir: &Path, args: &[&str], stdin: &str) -> Out {
    run(
        &dir.join("kubeconfig"),
        Some(&dir.join("cache")),
        args,
        stdin,
    )
    .await
}

/// `kubectl --kubeconfig KUBECONFIG [--cache-dir CACHE] ARGS`, `stdin` on its
/// standard input.
pub async fn run(kubeconfig: &Path, cache_dir: Option<&Path>, args: &[&str], stdin: &str) -> Out {
    let mut cmd = tokio::process::Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig);
    if let Some(dir) = cache_dir {
        cmd.arg("--cache-dir").arg(dir);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl is installed");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("kubectl timed out")
        .unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}
