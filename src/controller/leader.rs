//! Leader election on a `coordination.k8s.io/v1` Lease, fenced: only the
//! holder runs the controllers, and a holder that cannot renew stops copying
//! *before* any standby may take the Lease over.
//!
//! Written by hand (about client-go's `leaderelection` algorithm) rather than
//! with kube-lease-manager: that crate keeps reporting leadership while its
//! renewals fail, so a leader cut off from the API server would go on writing
//! to registries after its Lease expired and a standby had taken over — two
//! replicas copying into one destination, which is what election is for.
//!
//! Timing ([`Timing`]): the holder renews every `retry_period`; when no renewal
//! has succeeded for `renew_deadline` it drops its reconciles at once (their
//! copies stop before the next write; a copy never tags an incomplete image)
//! and [`run_as_leader`] fails, so the process exits. A standby takes the Lease
//! only after it has seen the Lease record unchanged for `lease_duration` by
//! its own clock (no clock-skew assumption), and `renew_deadline <
//! lease_duration` leaves the margin. Every write is an `update` carrying the
//! resourceVersion read, so two candidates cannot both win.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Config;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Lease timing (client-go's defaults for controllers, shortened a little).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a Lease record stays valid after it was last seen to change.
    pub lease_duration: Duration,
    /// How long the holder keeps going without a successful renewal.
    pub renew_deadline: Duration,
    /// Time between attempts (renewals, or tries to acquire).
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Stand for election, then run `controllers` while holding the Lease.
/// `Ok` after `shutdown` (the Lease released once the controllers have
/// stopped); `Err` when the Lease was lost — the controllers were dropped
/// mid-work, and the process should exit.
pub async fn run_as_leader<F, Fut>(
    client: &Client,
    config: &Config,
    identity: &str,
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
    let mut lease = Elector {
        api: Api::namespaced(client.clone(), &namespace),
        name: config.lease_name.clone(),
        identity: identity.to_string(),
        timing: config.lease_timing,
        observed: None,
    };
    ready.store(true, Ordering::Relaxed);
    tracing::info!(lease = %lease.name, %namespace, %identity, "waiting for leadership");
    let mut renewed = loop {
        let attempt = Instant::now();
        match lease.try_acquire_or_renew().await {
            Ok(true) => break attempt,
            Ok(false) => {}
            Err(e) => tracing::warn!(lease = %lease.name, error = %e, "leader election"),
        }
        tokio::select! {
            _ = tokio::time::sleep(lease.timing.retry_period) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    };
    tracing::info!(%identity, "became leader");

    // `stop`: graceful (shutdown: in-flight reconciles finish, the Lease is
    // renewed meanwhile). `lost`: the controllers are dropped at once.
    let stop = shutdown.child_token();
    let lost = CancellationToken::new();
    let done = CancellationToken::new();
    let renewing = async {
        loop {
            let deadline = renewed + lease.timing.renew_deadline;
            tokio::select! {
                _ = tokio::time::sleep(lease.timing.retry_period) => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = done.cancelled() => return,
            }
            let attempt = Instant::now();
            let outcome = tokio::time::timeout_at(deadline, lease.try_acquire_or_renew()).await;
            match outcome {
                Ok(Ok(true)) => renewed = attempt,
                Ok(Ok(false)) => {
                    tracing::error!(%identity, "another replica holds the Lease");
                    lost.cancel();
                    return;
                }
                Ok(Err(e)) => tracing::warn!(%identity, error = %e, "renewing the Lease"),
                Err(_) => {}
            }
            if Instant::now() >= renewed + lease.timing.renew_deadline {
                tracing::error!(%identity, deadline = ?lease.timing.renew_deadline,
                    "no Lease renewal within the deadline: stopping all work");
                lost.cancel();
                return;
            }
        }
    };
    let working = async {
        tokio::select! {
            _ = controllers(stop.clone()) => {}
            _ = lost.cancelled() => {}
        }
        stop.cancel();
        done.cancel();
    };
    tokio::join!(renewing, working);
    if lost.is_cancelled() {
        return Err("lost the leader Lease".into());
    }
    if let Err(e) = lease.release().await {
        tracing::warn!(%identity, error = %e, "releasing the Lease");
    }
    Ok(())
}

/// One candidate's view of the Lease.
struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    /// The last record seen (holder, renewTime, transitions) and when it was first seen.
    observed: Option<(Record, Instant)>,
}

#[derive(Debug, Clone, PartialEq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    transitions: Option<i32>,
}

impl Elector {
    /// One round: `Ok(true)` when this candidate holds the Lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let seconds = i32::try_from(self.timing.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let record = Record {
            holder: spec.holder_identity.clone().filter(|h| !h.is_empty()),
            renew_time: spec.renew_time.clone(),
            transitions: spec.lease_transitions,
        };
        let seen_at = match &self.observed {
            Some((r, at)) if *r == record => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((record.clone(), at));
                at
            }
        };
        let ours = record.holder.as_deref() == Some(self.identity.as_str());
        if !ours {
            let held_for = spec
                .lease_duration_seconds
                .map_or(self.timing.lease_duration, |s| {
                    Duration::from_secs(u64::try_from(s).unwrap_or(0))
                });
            if record.holder.is_some() && seen_at.elapsed() < held_for {
                return Ok(false);
            }
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(now);
        // The resourceVersion read makes this a compare-and-swap.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Give the Lease up (holder cleared, so a standby need not wait for it to expire).
    async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// `$POD_NAME` (else `$HOSTNAME`) and a random suffix: unique per process.
pub fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "kubemirror".into());
    format!("{host}-{:08x}", rand::random::<u32>())
}
