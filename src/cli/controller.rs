//! `kubemirror controller`: run the Kubernetes controller against the cluster
//! in KUBECONFIG (or the in-cluster config) until SIGTERM / SIGINT.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::{CliResult, GlobalArgs};
use crate::controller::{self, Config};

#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Address to serve Prometheus metrics on
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: String,
    /// Address to serve /healthz and /readyz on
    #[arg(long, default_value = "0.0.0.0:8081")]
    pub health_addr: String,
    /// Hold a Lease so that only one replica reconciles at a time
    #[arg(long)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease
    #[arg(long, default_value = "kubemirror-controller")]
    pub lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else the kubeconfig's namespace)
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease, Events and registry User-Agent
    /// (default: $POD_NAME or the hostname, plus a random suffix)
    #[arg(long)]
    pub identity: Option<String>,
    /// Watch only this namespace (default: all namespaces)
    #[arg(long)]
    pub namespace: Option<String>,
    /// Reconciles run at once
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
}

pub async fn run(args: ControllerArgs, _g: &GlobalArgs) -> CliResult {
    let parse = |flag: &str, v: &str| {
        v.parse()
            .map_err(|e| format!("--{flag} {v:?}: want HOST:PORT ({e})"))
    };
    let config = Config {
        metrics_addr: parse("metrics-addr", &args.metrics_addr)?,
        health_addr: parse("health-addr", &args.health_addr)?,
        leader_elect: args.leader_elect,
        lease_name: args.lease_name,
        lease_namespace: args.lease_namespace,
        identity: args.identity,
        lease_timing: Default::default(),
        namespace: args.namespace,
        concurrency: args.concurrency.max(1),
    };
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("connecting to the cluster (KUBECONFIG / in-cluster config): {e}"))?;
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        }
    });
    controller::run(client, config, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
