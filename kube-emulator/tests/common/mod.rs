//! Shared test helpers: an emulator per test, a kubectl runner with its own
//! kubeconfig and cache dir, and a kube-rs client.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use kube_emulator::Emulator;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

/// The Widget CRD used by the tests.
pub const WIDGET_CRD: &str = include_str!("../fixtures/widget-crd.yaml");

/// An emulator plus a private directory for kubeconfig and kubectl cache.
pub struct Env {
    pub emu: Emulator,
    pub dir: TempDir,
}

/// Output of one kubectl run.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    pub async fn start() -> Env {
        let emu = Emulator::start("127.0.0.1:0")
            .await
            .expect("start emulator");
        let dir = tempfile::tempdir().expect("tempdir");
        emu.write_kubeconfig(dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        Env { emu, dir }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"));
        c.args(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Runs kubectl with `args`, feeding `stdin`.
    pub async fn kubectl_in(&self, args: &[&str], stdin: &str) -> Out {
        let mut child = self.command(args).spawn().expect("spawn kubectl");
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.as_bytes())
            .await
            .expect("write stdin");
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl timed out")
            .expect("kubectl output");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// Runs kubectl with `args`.
    pub async fn kubectl(&self, args: &[&str]) -> Out {
        self.kubectl_in(args, "").await
    }

    /// Spawns kubectl without waiting.
    pub fn kubectl_spawn(&self, args: &[&str]) -> tokio::process::Child {
        let mut c = self.command(args);
        c.stdin(Stdio::null());
        c.spawn().expect("spawn kubectl")
    }

    /// A kube-rs client for the emulator.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.emu.url().parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }

    /// Creates the Widget CRD through kube-rs.
    pub async fn install_widget_crd(&self) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let crd: CustomResourceDefinition = serde_yaml::from_str(WIDGET_CRD).expect("crd yaml");
        let api: kube::Api<CustomResourceDefinition> = kube::Api::all(self.client());
        api.create(&Default::default(), &crd)
            .await
            .expect("create crd");
    }
}

/// Polls `f` until it returns `Some`, failing after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The HTTP code of an API error (panics on other errors).
pub fn code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("not an API error: {other:?}"),
    }
}

/// The message of an API error (panics on other errors).
pub fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => panic!("not an API error: {other:?}"),
    }
}

/// PatchParams for an ordinary (Update) write by `manager`.
pub fn update_by(manager: &str) -> kube::api::PatchParams {
    kube::api::PatchParams {
        field_manager: Some(manager.into()),
        ..Default::default()
    }
}
