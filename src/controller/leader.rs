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
        expires_in: None,
    };
    ready.store(true, Ordering::Relaxed);
    tracing::info!(lease = %lease.name, %namespace, %identity, "waiting for leadership");
    let mut renewed = loop {
        let attempt = Instant::now();
        match lease.try_acquire_or_renew().await {
            Ok(Round::Held) => break attempt,
            Ok(Round::HeldByOther | Round::Conflict) => {}
            Err(e) => tracing::warn!(lease = %lease.name, error = %e, "leader election"),
        }
        // Again after the retry period, or the moment the holder's Lease
        // expires (1 ms past it) if that comes first.
        let wait = lease
            .expires_in
            .take()
            .map_or(lease.timing.retry_period, |d| {
                (d + Duration::from_millis(1)).min(lease.timing.retry_period)
            });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
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
                Ok(Ok(Round::Held)) => renewed = attempt,
                Ok(Ok(Round::HeldByOther)) => {
                    tracing::error!(%identity, "another replica holds the Lease");
                    lost.cancel();
                    return;
                }
                // Someone else wrote the Lease meanwhile: read it again next round.
                Ok(Ok(Round::Conflict)) => {}
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
    /// After a round that found the Lease held by another: how long until
    /// it expires by this candidate's clock (the standby tries again then,
    /// if that is sooner than the retry period).
    expires_in: Option<Duration>,
}

/// What one round of [`Elector::try_acquire_or_renew`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// This candidate holds the Lease (acquired or renewed).
    Held,
    /// Another candidate holds it and it has not expired.
    HeldByOther,
    /// The Lease changed between read and write (or was created meanwhile).
    Conflict,
}

#[derive(Debug, Clone, PartialEq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    transitions: Option<i32>,
}

impl Elector {
    /// One round: read the Lease, and write it if this candidate holds it or
    /// may take it (free, released, or unchanged for its duration).
    async fn try_acquire_or_renew(&mut self) -> Result<Round, kube::Error> {
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
                Ok(_) => Ok(Round::Held),
                Err(e) if is_conflict(&e) => Ok(Round::Conflict),
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
                self.expires_in = Some(held_for.saturating_sub(seen_at.elapsed()));
                return Ok(Round::HeldByOther);
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
            Ok(_) => Ok(Round::Held),
            Err(e) if is_conflict(&e) => Ok(Round::Conflict),
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn elector(emu: &kube_emulator::Emulator, identity: &str, timing: Timing) -> Elector {
        let client =
            Client::try_from(kube::Config::new(emu.url().parse().expect("url"))).expect("client");
        Elector {
            api: Api::namespaced(client, "default"),
            name: "lease".into(),
            identity: identity.into(),
            timing,
            observed: None,
            expires_in: None,
        }
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_release_hands_over() {
        let emu = kube_emulator::Emulator::start("127.0.0.1:0").await.unwrap();
        let t = Timing::default();
        let (mut a, mut b) = (elector(&emu, "a", t).await, elector(&emu, "b", t).await);
        // Both try to create the missing Lease at once: exactly one wins.
        let (ra, rb) = tokio::join!(a.try_acquire_or_renew(), b.try_acquire_or_renew());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(
            [ra, rb].iter().filter(|r| **r == Round::Held).count(),
            1,
            "{ra:?} {rb:?}"
        );
        let (holder, standby) = if ra == Round::Held {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        assert_eq!(holder.try_acquire_or_renew().await.unwrap(), Round::Held);
        assert_eq!(
            standby.try_acquire_or_renew().await.unwrap(),
            Round::HeldByOther
        );
        holder.release().await.unwrap();
        // Released: the standby need not wait for the Lease to expire.
        assert_eq!(standby.try_acquire_or_renew().await.unwrap(), Round::Held);
        assert_eq!(
            holder.try_acquire_or_renew().await.unwrap(),
            Round::HeldByOther
        );
        let lease = standby.api.get("lease").await.unwrap().spec.unwrap();
        assert_eq!(
            lease.holder_identity.as_deref(),
            Some(standby.identity.as_str())
        );
        assert_eq!(lease.lease_transitions, Some(1));
    }

    /// A standby takes an unreleased Lease only after seeing it unchanged for
    /// a whole lease duration by its own clock (the holder's clock and the
    /// renewTime it wrote are not trusted).
    #[tokio::test]
    async fn a_standby_waits_out_a_full_duration_of_silence() {
        let emu = kube_emulator::Emulator::start("127.0.0.1:0").await.unwrap();
        let t = Timing {
            lease_duration: Duration::from_secs(1),
            renew_deadline: Duration::from_millis(600),
            retry_period: Duration::from_millis(100),
        };
        let (mut a, mut b) = (elector(&emu, "a", t).await, elector(&emu, "b", t).await);
        assert_eq!(a.try_acquire_or_renew().await.unwrap(), Round::Held);
        let first_seen = Instant::now();
        assert_eq!(b.try_acquire_or_renew().await.unwrap(), Round::HeldByOther);
        // It knows when to look again: when the Lease expires by its clock.
        let left = b
            .expires_in
            .expect("the standby knows when the Lease expires");
        assert!(
            left <= t.lease_duration && left > t.lease_duration / 2,
            "{left:?}"
        );
        // The holder goes silent; the standby polls.
        loop {
            match b.try_acquire_or_renew().await.unwrap() {
                Round::Held => break,
                Round::HeldByOther => {}
                Round::Conflict => panic!("nobody else writes"),
            }
            assert!(
                first_seen.elapsed() < Duration::from_secs(10),
                "never took over"
            );
            tokio::time::sleep(t.retry_period).await;
        }
        assert!(first_seen.elapsed() >= t.lease_duration);
        // The old holder, back, finds the Lease taken.
        assert_eq!(a.try_acquire_or_renew().await.unwrap(), Round::HeldByOther);
    }
}
