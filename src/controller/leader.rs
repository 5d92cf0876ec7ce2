//! Leader election on a Lease (kube-lease-manager): only the holder runs the
//! controllers. Losing the Lease stops them and ends [`super::run`] with an
//! error, so the process exits and its replacement stands for election again.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;

use super::Config;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub async fn run_as_leader<F, Fut>(
    client: &Client,
    config: &Config,
    shutdown: &CancellationToken,
    ready: &Arc<AtomicBool>,
    controllers: F,
) -> Result<(), BoxError>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let namespace = config
        .lease_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let identity = config.identity.clone().unwrap_or_else(default_identity);
    let manager = LeaseManagerBuilder::new(client.clone(), &config.lease_name)
        .with_namespace(&namespace)
        .with_identity(&identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .map_err(|e| format!("leader election: {e}"))?;
    let (mut leader, task) = manager.watch().await;
    ready.store(true, Ordering::Relaxed);
    tracing::info!(lease = %config.lease_name, %namespace, %identity, "waiting for leadership");
    while !*leader.borrow_and_update() {
        tokio::select! {
            changed = leader.changed() => {
                if changed.is_err() {
                    return Err("leader election stopped".into());
                }
            }
            _ = shutdown.cancelled() => {
                drop(leader);
                let _ = task.await;
                return Ok(());
            }
        }
    }
    tracing::info!(%identity, "became leader");
    // Run the controllers until shutdown or until the Lease is lost.
    let stop = shutdown.child_token();
    let lost = AtomicBool::new(false);
    let watch_lease = async {
        loop {
            tokio::select! {
                r = leader.changed() => {
                    if r.is_err() || !*leader.borrow_and_update() {
                        lost.store(true, Ordering::Relaxed);
                        stop.cancel();
                        break;
                    }
                }
                _ = stop.cancelled() => break,
            }
        }
    };
    let run = async {
        controllers(stop.clone()).await;
        stop.cancel();
    };
    tokio::join!(watch_lease, run);
    drop(leader);
    if let Ok(Ok(manager)) = task.await {
        let _ = manager.release().await;
    }
    if lost.load(Ordering::Relaxed) && !shutdown.is_cancelled() {
        tracing::error!(%identity, "lost the leader Lease");
        return Err("lost the leader Lease".into());
    }
    Ok(())
}

fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "kubemirror".into());
    format!("{host}-{:08x}", rand::random::<u32>())
}
