//! `kubemirror controller`: run the Kubernetes controller (to be implemented
//! with `controller`).

use super::{CliResult, GlobalArgs};

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
    /// Watch only this namespace (default: all namespaces)
    #[arg(long)]
    pub namespace: Option<String>,
    /// Reconciles run at once
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
}

pub async fn run(_args: ControllerArgs, _g: &GlobalArgs) -> CliResult {
    Err("controller: not implemented yet".into())
}
