//! The shard Leases and member Leases of one replica (`coordination.k8s.io/v1`),
//! written by hand for the same reason as [`super::super::leader`]: fencing
//! must stop the work of a shard whose Lease is not renewed in time, which no
//! lease crate does.
//!
//! In the Lease namespace, with label `kubemirror.dev/lease-of=<lease name>`:
//! `<lease name>-shard-<n>` for each shard and `<lease name>-member-<id>` for
//! each replica (a heartbeat: the replicas alive). Every `retry_period` a
//! replica lists them (one request), renews its member Lease and its shard
//! Leases (updates carrying the resourceVersion read: compare-and-swap),
//! computes its fair share `ceil(shards / live members)`, releases the excess
//! (work stopped first) and takes free shards up to its share. A Lease is free
//! when it has no holder, or when this replica has seen its record unchanged
//! for its `leaseDurationSeconds` by its own clock (no clock-skew assumption).
//! A member Lease counts as live under the same rule.
//!
//! Fencing: a separate task stops a shard's work once it has not been renewed
//! for `renew_deadline` (shorter than the lease duration), so a replica cut
//! off from the API server has stopped before anyone may take its shards.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Drop, Shards};
use crate::controller::leader::Timing;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Label on every Lease of a replica group: the `--lease-name`.
pub const GROUP_LABEL: &str = "kubemirror.dev/lease-of";
/// Label saying what a Lease is for: `shard` or `member`.
pub const ROLE_LABEL: &str = "kubemirror.dev/lease-role";

/// `<group>-shard-<n>`.
pub fn shard_lease_name(group: &str, shard: u32) -> String {
    format!("{group}-shard-{shard}")
}

/// `<group>-member-<identity, as a DNS label>-<hash>`: a valid object name
/// for any identity, distinct for distinct identities.
pub fn member_lease_name(group: &str, identity: &str) -> String {
    let clean: String = identity
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let hash = hex::encode(&Sha256::digest(identity.as_bytes())[..4]);
    format!("{group}-member-{}-{hash}", clean.trim_matches('-'))
}

/// Run `controllers` while taking part in the shard group: `Ok` after
/// `shutdown` (controllers drained, then every shard released and the
/// member Lease deleted).
pub async fn run_sharded<F, Fut>(
    api: Api<Lease>,
    group: String,
    identity: String,
    timing: Timing,
    shards: Arc<Shards>,
    shutdown: &CancellationToken,
    controllers: F,
) -> Result<(), BoxError>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut c = Coordinator {
        member: member_lease_name(&group, &identity),
        api,
        group,
        identity,
        timing,
        shards: shards.clone(),
        observed: HashMap::new(),
        renewed: Arc::new(Mutex::new(BTreeMap::new())),
        leases: HashMap::new(),
    };
    tracing::info!(group = %c.group, identity = %c.identity, shards = shards.shards, "joining the shard group");
    let stop = shutdown.child_token();
    let done = CancellationToken::new();
    let fencing = fence(shards.clone(), c.renewed.clone(), timing, done.clone());
    let coordinating = async {
        let mut first = true;
        loop {
            // While shutting down, renew but take nothing new.
            let attempt = c.round(!first && !stop.is_cancelled());
            match tokio::time::timeout(timing.renew_deadline, attempt).await {
                Ok(Ok(())) => first = false,
                Ok(Err(e)) => tracing::warn!(error = %e, "shard Leases"),
                Err(_) => tracing::warn!("shard Leases: no answer within the renew deadline"),
            }
            // The next round: after the retry period, or as soon as a
            // Lease another replica holds expires (1 ms past it).
            let wait = c.next_expiry().map_or(timing.retry_period, |d| {
                (d + Duration::from_millis(1)).min(timing.retry_period)
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = done.cancelled() => return,
            }
        }
    };
    let working = async {
        controllers(stop.clone()).await;
        done.cancel();
    };
    tokio::join!(fencing, coordinating, working);
    c.leave().await;
    Ok(())
}

/// Stop the work of every shard not renewed within the renew deadline.
async fn fence(
    shards: Arc<Shards>,
    renewed: Arc<Mutex<BTreeMap<u32, Instant>>>,
    timing: Timing,
    done: CancellationToken,
) {
    let tick =
        (timing.retry_period / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = done.cancelled() => return,
        }
        let late: Vec<u32> = {
            let mut r = renewed.lock().unwrap_or_else(|e| e.into_inner());
            let late: Vec<u32> = r
                .iter()
                .filter(|(_, at)| at.elapsed() >= timing.renew_deadline)
                .map(|(s, _)| *s)
                .collect();
            for s in &late {
                r.remove(s);
            }
            late
        };
        for s in late {
            tracing::error!(shard = s, deadline = ?timing.renew_deadline,
                "no shard Lease renewal within the deadline: stopping its work");
            shards.stop(s, Drop::Lost);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    transitions: Option<i32>,
}

impl Record {
    fn of(l: &Lease) -> Record {
        let spec = l.spec.clone().unwrap_or_default();
        Record {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            renew_time: spec.renew_time,
            transitions: spec.lease_transitions,
        }
    }
}

struct Coordinator {
    api: Api<Lease>,
    group: String,
    identity: String,
    member: String,
    timing: Timing,
    shards: Arc<Shards>,
    /// Per Lease name: the last record seen and when it was first seen.
    observed: HashMap<String, (Record, Instant)>,
    /// Per held shard: when its last successful renewal was sent.
    renewed: Arc<Mutex<BTreeMap<u32, Instant>>>,
    /// The latest copy of each Lease (as listed, or as written back).
    leases: HashMap<String, Lease>,
}

impl Coordinator {
    fn seconds(&self) -> i32 {
        i32::try_from(self.timing.lease_duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1)
    }

    /// Whether the Lease `name` (as last listed) is held by someone alive
    /// other than this replica.
    fn held_by_other(&self, name: &str) -> bool {
        let Some(l) = self.leases.get(name) else {
            return false;
        };
        let rec = Record::of(l);
        if rec.holder.is_none() || rec.holder.as_deref() == Some(self.identity.as_str()) {
            return false;
        }
        let duration = self.duration_of(l);
        self.observed
            .get(name)
            .is_none_or(|(_, at)| at.elapsed() < duration)
    }

    /// A Lease's `leaseDurationSeconds`, or this replica's lease duration.
    fn duration_of(&self, l: &Lease) -> Duration {
        l.spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .map_or(self.timing.lease_duration, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            })
    }

    /// How long until the first Lease now held by another replica expires
    /// by this replica's clock (`None`: no other holder). The next round
    /// starts then if that is sooner than the retry period, so a dead
    /// replica's shards are taken when they expire, not up to a retry
    /// period later.
    fn next_expiry(&self) -> Option<Duration> {
        self.leases
            .iter()
            .filter(|(name, _)| self.held_by_other(name))
            .filter_map(|(name, l)| {
                let (_, at) = self.observed.get(name)?;
                Some((*at + self.duration_of(l)).saturating_duration_since(Instant::now()))
            })
            .min()
    }

    fn set_renewed(&self, shard: u32, at: Instant) {
        self.renewed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(shard, at);
    }

    fn forget_renewed(&self, shard: u32) {
        self.renewed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&shard);
    }

    /// One round: list, heartbeat, renew, rebalance; free shards are taken
    /// only if `may_take` (not in the first round, so that replicas starting
    /// together see one another first; not while shutting down).
    async fn round(&mut self, may_take: bool) -> Result<(), kube::Error> {
        let lp = ListParams::default().labels(&format!("{GROUP_LABEL}={}", self.group));
        let list = self.api.list(&lp).await?;
        self.leases.clear();
        for l in list.items {
            let Some(name) = l.metadata.name.clone() else {
                continue;
            };
            let rec = Record::of(&l);
            match self.observed.get(&name) {
                Some((r, _)) if *r == rec => {}
                _ => {
                    self.observed.insert(name.clone(), (rec, Instant::now()));
                }
            }
            self.leases.insert(name, l);
        }
        self.observed.retain(|n, _| self.leases.contains_key(n));

        self.heartbeat().await?;
        let prefix = format!("{}-member-", self.group);
        let others = self
            .leases
            .keys()
            .filter(|n| n.starts_with(&prefix) && **n != self.member)
            .filter(|n| self.held_by_other(n))
            .count();
        let live = others as u32 + 1;
        let total = self.shards.shards;
        let target = total.div_ceil(live);

        // Renew what is held; a Lease someone else took is lost.
        for s in self.shards.held() {
            let name = shard_lease_name(&self.group, s);
            let Some(l) = self.leases.get(&name).cloned() else {
                tracing::error!(shard = s, "shard Lease deleted: stopping its work");
                self.forget_renewed(s);
                self.shards.stop(s, Drop::Lost);
                continue;
            };
            if Record::of(&l).holder.as_deref() != Some(self.identity.as_str()) {
                tracing::error!(
                    shard = s,
                    "shard Lease taken by another replica: stopping its work"
                );
                self.forget_renewed(s);
                self.shards.stop(s, Drop::Lost);
                continue;
            }
            let attempt = Instant::now();
            if let Some(new) = self.write(l, false).await? {
                self.set_renewed(s, attempt);
                self.leases.insert(name, new);
            }
        }

        // Give up the excess: work stopped and drained first, then the Lease.
        let mut held: Vec<u32> = self.shards.held().into_iter().collect();
        while held.len() > target as usize {
            let Some(s) = held.pop() else { break };
            self.forget_renewed(s);
            self.shards.stop(s, Drop::Released);
            if !self.shards.drained(s, self.timing.retry_period).await {
                tracing::warn!(
                    shard = s,
                    "reconciles did not stop: leaving the Lease to expire"
                );
                continue;
            }
            let name = shard_lease_name(&self.group, s);
            if let Some(l) = self.leases.get(&name).cloned() {
                self.release(l).await?;
            }
            tracing::info!(
                shard = s,
                target,
                live,
                "released a shard for another replica"
            );
        }
        if !may_take {
            return Ok(());
        }

        // Take free shards up to the share, starting at a point that
        // depends on the identity (replicas starting together spread out).
        let start = super::shard_of("", &self.identity, total);
        let mut taken = Vec::new();
        for i in 0..total {
            if self.shards.held().len() + taken.len() >= target as usize {
                break;
            }
            let s = (start + i) % total;
            if self.shards.is_held(s) {
                continue;
            }
            let name = shard_lease_name(&self.group, s);
            if self.held_by_other(&name) {
                continue;
            }
            let attempt = Instant::now();
            let got = match self.leases.get(&name).cloned() {
                None => self.create(&name, "shard").await?,
                Some(l) => self.write(l, true).await?,
            };
            if let Some(new) = got {
                self.leases.insert(name, new);
                self.set_renewed(s, attempt);
                taken.push(s);
                tracing::info!(shard = s, target, live, "took a shard");
            }
        }
        // Work starts on all of them at once (one restart of the watches).
        self.shards.take_all(&taken);
        Ok(())
    }

    /// Create or renew this replica's member Lease.
    async fn heartbeat(&mut self) -> Result<(), kube::Error> {
        let name = self.member.clone();
        let new = match self.leases.get(&name).cloned() {
            None => self.create(&name, "member").await?,
            Some(l) => self.write(l, true).await?,
        };
        if let Some(new) = new {
            self.leases.insert(name, new);
        }
        Ok(())
    }

    /// Create Lease `name` held by this replica; `None` if another replica
    /// created it first.
    async fn create(&self, name: &str, role: &str) -> Result<Option<Lease>, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    [
                        (GROUP_LABEL.to_string(), self.group.clone()),
                        (ROLE_LABEL.to_string(), role.to_string()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(l) => Ok(Some(l)),
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write `lease` as held by this replica (`take`: it may have been
    /// someone else's); `None` when it changed since it was read.
    async fn write(&self, mut lease: Lease, take: bool) -> Result<Option<Lease>, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let name = lease.metadata.name.clone().unwrap_or_default();
        let spec = lease.spec.get_or_insert_with(Default::default);
        let ours = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        if !ours {
            if !take {
                return Ok(None);
            }
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(self.seconds());
        spec.renew_time = Some(now);
        match self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await
        {
            Ok(l) => Ok(Some(l)),
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Clear the holder of `lease` if it is this replica's (a successor need
    /// not wait for it to expire).
    async fn release(&self, mut lease: Lease) -> Result<(), kube::Error> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        match self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// At shutdown (controllers drained): release every shard and delete
    /// the member Lease, so the others rebalance at once.
    async fn leave(&mut self) {
        for s in self.shards.held() {
            self.forget_renewed(s);
            self.shards.stop(s, Drop::Released);
            let name = shard_lease_name(&self.group, s);
            let current = match self.api.get_opt(&name).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(shard = s, error = %e, "releasing a shard Lease");
                    continue;
                }
            };
            if let Some(l) = current
                && let Err(e) = self.release(l).await
            {
                tracing::warn!(shard = s, error = %e, "releasing a shard Lease");
            }
        }
        if let Err(e) = self
            .api
            .delete(&self.member, &DeleteParams::default())
            .await
        {
            tracing::warn!(error = %e, "deleting the member Lease");
        }
        tracing::info!(identity = %self.identity, "left the shard group");
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator(emu: &kube_emulator::Emulator, identity: &str, timing: Timing) -> Coordinator {
        let client = kube::Client::try_from(kube::Config::new(emu.url().parse().expect("url")))
            .expect("client");
        Coordinator {
            api: Api::namespaced(client, "default"),
            group: "g".into(),
            identity: identity.into(),
            member: member_lease_name("g", identity),
            timing,
            shards: Shards::new(4, Arc::new(crate::controller::Metrics::new())),
            observed: HashMap::new(),
            renewed: Arc::new(Mutex::new(BTreeMap::new())),
            leases: HashMap::new(),
        }
    }

    /// The next round of a replica that sees another's Leases comes when
    /// they expire by its clock, not a retry period later; with no other
    /// holder there is nothing to wake for.
    #[tokio::test]
    async fn next_round_comes_when_another_replicas_lease_expires() {
        let emu = kube_emulator::Emulator::start("127.0.0.1:0").await.unwrap();
        let t = Timing {
            lease_duration: Duration::from_secs(30),
            renew_deadline: Duration::from_secs(20),
            retry_period: Duration::from_secs(4),
        };
        let mut a = coordinator(&emu, "a", t);
        a.round(false).await.unwrap();
        assert_eq!(a.next_expiry(), None, "alone: no other holder");
        a.round(true).await.unwrap();
        assert_eq!(a.shards.held().len(), 4, "alone, it takes every shard");

        let mut b = coordinator(&emu, "b", t);
        b.round(false).await.unwrap();
        let left = b.next_expiry().expect("a holds Leases");
        assert!(
            left <= t.lease_duration && left > t.lease_duration - Duration::from_secs(5),
            "{left:?}"
        );
        // Seen unchanged for a while: the wait shrinks with it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.round(false).await.unwrap();
        let later = b.next_expiry().expect("a holds Leases");
        assert!(later < left, "{later:?} !< {left:?}");
    }

    #[test]
    fn member_names_are_object_names() {
        let n = member_lease_name(
            "kubemirror",
            "Pod_Name.With Spaces/and-more-than-forty-characters-in-it",
        );
        assert!(
            n.starts_with("kubemirror-member-pod-name-with-spaces-and-more"),
            "{n}"
        );
        assert!(n.len() <= 63 + 20, "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{n}"
        );
        assert_ne!(member_lease_name("g", "a"), member_lease_name("g", "A"));
    }
}
