//! `kubemirror controller`: run the Kubernetes controller against the cluster
//! in KUBECONFIG (or the in-cluster config) until SIGTERM / SIGINT.

use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{CliResult, GlobalArgs};
use crate::controller::leader::Timing;
use crate::controller::shard::{MAX_SHARDS, ShardConfig};
use crate::controller::{self, Config, defaults};

#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Address to serve Prometheus metrics on
    #[arg(long, default_value = defaults::METRICS_ADDR)]
    pub metrics_addr: String,
    /// Address to serve /healthz and /readyz on
    #[arg(long, default_value = defaults::HEALTH_ADDR)]
    pub health_addr: String,
    /// Hold a Lease so that only one replica reconciles at a time
    #[arg(long)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease
    #[arg(long, default_value = defaults::LEASE_NAME)]
    pub lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else the kubeconfig's namespace)
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long a Lease stays valid after its last renewal, as a standby sees it
    #[arg(long, default_value = "15s", value_parser = duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps working without a successful renewal (then it
    /// stops all work and exits); must be shorter than the lease duration
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub leader_elect_renew_deadline: Duration,
    /// Time between renewals and between tries to acquire the Lease
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub leader_elect_retry_period: Duration,
    /// This replica's identity in the Lease, Events and registry User-Agent
    /// (default: $POD_NAME or the hostname, plus a random suffix)
    #[arg(long)]
    pub identity: Option<String>,
    /// Watch only this namespace (default: all namespaces)
    #[arg(long)]
    pub namespace: Option<String>,
    /// Reconciles run at once
    #[arg(long, default_value_t = defaults::CONCURRENCY)]
    pub concurrency: u16,
    /// Blobs copied at once per image; also the most blob transfers at once
    /// to one registry host over all of the controller's copies
    #[arg(long, value_name = "N", default_value_t = defaults::JOBS)]
    pub jobs: usize,
    /// Allow resources to use local transports (oci:, dir:, docker-archive:,
    /// oci-archive:) with paths under DIR (repeatable; default: docker:// only)
    #[arg(long = "allow-local-transports-under", value_name = "DIR")]
    pub allow_local_transports_under: Vec<std::path::PathBuf>,
    /// Tags read at most from one registry tag listing (past it the object
    /// fails with an error naming this limit)
    #[arg(long, default_value_t = defaults::MAX_TAGS)]
    pub max_tags: usize,
    #[command(flatten)]
    pub sharding: ShardingArgs,
}

/// Sharded scale-out (kept together: one group of flags).
#[derive(Debug, clap::Args)]
pub struct ShardingArgs {
    /// Active-active replicas: objects map to this many shards (label
    /// kubemirror.dev/shard), and each replica reconciles the shards whose
    /// Leases (`<lease-name>-shard-N`, timed by the --leader-elect-* flags)
    /// it holds; 0: off, one replica reconciles everything
    #[arg(long, default_value_t = 0, conflicts_with = "leader_elect")]
    pub shards: u32,
}

pub async fn run(args: ControllerArgs, g: &GlobalArgs) -> CliResult {
    let config = config(args)?;
    let (signature_storage, policy) = g.resource_signatures()?;
    let config = Config {
        signature_storage,
        policy,
        ..config
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

/// The controller's configuration from its flags (what needs no file or
/// cluster: signature storage and policy are added by [`run`]).
fn config(args: ControllerArgs) -> Result<Config, String> {
    let parse = |flag: &str, v: &str| {
        v.parse()
            .map_err(|e| format!("--{flag} {v:?}: want HOST:PORT ({e})"))
    };
    if args.jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    Ok(Config {
        metrics_addr: parse("metrics-addr", &args.metrics_addr)?,
        health_addr: parse("health-addr", &args.health_addr)?,
        leader_elect: args.leader_elect,
        lease_timing: lease_timing(&args)?,
        lease_name: args.lease_name,
        lease_namespace: args.lease_namespace,
        identity: args.identity,
        namespace: args.namespace,
        concurrency: args.concurrency.max(1),
        jobs: args.jobs,
        local_transports: crate::reconcile::LocalTransports::under(
            &args.allow_local_transports_under,
        )?,
        max_tags: args.max_tags.max(1),
        signature_storage: None,
        policy: None,
        sharding: sharding(&args.sharding)?,
    })
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::api::v1alpha1::parse_go_duration(s)
}

/// `--shards`, checked: 0 is off, else 1..=MAX_SHARDS.
fn sharding(args: &ShardingArgs) -> Result<Option<ShardConfig>, String> {
    match args.shards {
        0 => Ok(None),
        n if n > MAX_SHARDS => Err(format!(
            "--shards {n}: at most {MAX_SHARDS} (each shard is a Lease renewed every --leader-elect-retry-period)"
        )),
        n => Ok(Some(ShardConfig { shards: n })),
    }
}

/// The Lease timing, checked: a leader must give up before a standby may take over.
fn lease_timing(args: &ControllerArgs) -> Result<Timing, String> {
    let t = Timing {
        lease_duration: args.leader_elect_lease_duration,
        renew_deadline: args.leader_elect_renew_deadline,
        retry_period: args.leader_elect_retry_period,
    };
    if t.renew_deadline >= t.lease_duration {
        return Err(format!(
            "--leader-elect-renew-deadline ({:?}) must be shorter than --leader-elect-lease-duration ({:?})",
            t.renew_deadline, t.lease_duration
        ));
    }
    if t.retry_period.is_zero() || t.retry_period >= t.renew_deadline {
        return Err(format!(
            "--leader-elect-retry-period ({:?}) must be above zero and shorter than --leader-elect-renew-deadline ({:?})",
            t.retry_period, t.renew_deadline
        ));
    }
    Ok(t)
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: ControllerArgs,
    }

    fn parse(argv: &[&str]) -> Result<Config, String> {
        let argv = std::iter::once("controller").chain(argv.iter().copied());
        config(Cmd::try_parse_from(argv).map_err(|e| e.to_string())?.args)
    }

    /// Flags and `Config::default()` cannot drift apart: no flag given is
    /// the default configuration.
    #[test]
    fn no_flags_is_the_default_config() {
        // --lease-namespace falls back to $POD_NAMESPACE, which is the environment's.
        let got = parse(&[]).unwrap();
        let want = Config {
            lease_namespace: got.lease_namespace.clone(),
            ..Config::default()
        };
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }

    #[test]
    fn jobs_is_a_flag() {
        assert_eq!(parse(&["--jobs", "9"]).unwrap().jobs, 9);
        let e = parse(&["--jobs", "0"]).unwrap_err();
        assert!(e.contains("--jobs must be at least 1"), "{e}");
    }
}
