//! Starting, addressing and stopping an emulator, and its kubeconfig.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::context::Inner;
use crate::hooks::Hooks;

/// Errors of starting or configuring an emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding the listen address failed.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The cause.
        source: io::Error,
    },
    /// Writing the kubeconfig failed.
    #[error("writing kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// A running in-memory API server. Dropping it without [`Emulator::shutdown`]
/// aborts the server task.
#[derive(Debug)]
pub struct Emulator {
    inner: Arc<Inner>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds `addr` (such as `127.0.0.1:0`) and serves in a tokio task.
    /// The server is ready when this returns.
    pub async fn start(addr: &str) -> Result<Emulator, EmulatorError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: addr.into(),
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: addr.into(),
                source,
            })?;
        let inner = Inner::new(local);
        let (stop, stopped) = oneshot::channel::<()>();
        let app = crate::http::router(inner.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "kube-emulator server failed");
            }
        });
        Ok(Emulator {
            inner,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The base URL, such as `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The test hooks.
    pub fn hooks(&self) -> Hooks {
        Hooks {
            inner: self.inner.clone(),
        }
    }

    /// A kubeconfig (YAML) pointing at this emulator with a dummy token.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url())
    }

    /// Writes [`Emulator::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), EmulatorError> {
        let path = path.as_ref();
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| EmulatorError::Kubeconfig {
            path: path.display().to_string(),
            source,
        })
    }

    /// Closes all watches, stops accepting connections and waits (at most
    /// 5 s) for in-flight requests.
    pub async fn shutdown(mut self) {
        self.inner.close_all_watches();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A kubeconfig for `server` with cluster, user (dummy token) and context
/// all named `kube-emulator`, and it as current-context.
pub fn kubeconfig_yaml(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-emulator
  cluster:
    server: {server}
users:
- name: kube-emulator
  user:
    token: kube-emulator-dummy-token
contexts:
- name: kube-emulator
  context:
    cluster: kube-emulator
    user: kube-emulator
    namespace: default
current-context: kube-emulator
preferences: {{}}
"
    )
}
