//! An in-process kube-emulator with the "release namespace" created, and
//! the real kubectl against it (its own `--cache-dir`). Everything the tests
//! do themselves goes through kubectl, so its User-Agent tells the test's
//! requests from the controller's.

use std::path::{Path, PathBuf};

use kube_emulator::Emulator;
use tempfile::TempDir;

/// The namespace the chart is installed in (the Lease lives here).
pub const RELEASE_NAMESPACE: &str = "kubemirror-system";

pub struct Cluster {
    pub emu: Emulator,
    pub dir: TempDir,
}

#[derive(Debug)]
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Cluster {
    /// An emulator with only the namespaces a new cluster has.
    pub async fn start_empty() -> Cluster {
        let emu = Emulator::start("127.0.0.1:0")
            .await
            .expect("start kube-emulator");
        let dir = tempfile::tempdir().unwrap();
        // Its namespace is `default`: the controller must find the release
        // namespace from POD_NAMESPACE, as in a pod.
        emu.write_kubeconfig(dir.path().join("kubeconfig")).unwrap();
        Cluster { emu, dir }
    }

    /// An emulator with the release namespace created.
    pub async fn start() -> Cluster {
        let c = Self::start_empty().await;
        c.apply_text(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {RELEASE_NAMESPACE}\n"
        ))
        .await;
        c
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("kubectl must be installed");
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = child.wait_with_output().await.unwrap();
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `kubectl apply -f FILE`, which must succeed.
    pub async fn apply_file(&self, file: &Path) -> Output {
        let out = self
            .kubectl(&["apply", "-f", file.to_str().unwrap()], None)
            .await;
        assert!(out.ok, "kubectl apply -f {}: {out:?}", file.display());
        out
    }

    /// `kubectl apply -f -` with `text`, which must succeed.
    pub async fn apply_text(&self, text: &str) -> Output {
        let out = self.kubectl(&["apply", "-f", "-"], Some(text)).await;
        assert!(out.ok, "kubectl apply:\n{text}\n{out:?}");
        out
    }

    /// Install the chart's CRDs and wait until they are served.
    pub async fn install_crds(&self) {
        let crds = crate::template::chart_dir().join("crds/kubemirror.dev_crds.yaml");
        self.apply_file(&crds).await;
        let out = self
            .kubectl(
                &[
                    "wait",
                    "--for=condition=Established",
                    "crd/imagemirrors.kubemirror.dev",
                    "crd/imageinspections.kubemirror.dev",
                    "--timeout=30s",
                ],
                None,
            )
            .await;
        assert!(out.ok, "{out:?}");
    }
}
