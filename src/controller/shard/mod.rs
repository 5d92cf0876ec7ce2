//! Sharded scale-out: active-active replicas, each reconciling the objects
//! of the shards whose Leases it holds.
//!
//! - **Which shard**: an object's shard is the value of its
//!   [`SHARD_LABEL`] label; the label is set once, by the replica holding
//!   [`shard_of`]`(namespace, name)` (a stable hash: SHA-256 of
//!   `namespace/name`, so every replica and every version computes the same
//!   value), and never changed while it names a shard that exists
//!   (`0..shards`). Ownership follows the label, not the hash: a label a user
//!   set to another valid shard still has exactly one owner.
//! - **Who reconciles**: the holder of the shard's Lease ([`leases`]), which
//!   watches only its shards (label selector `kubemirror.dev/shard in (…)`,
//!   restarted when its set changes, [`watch`]), and runs each reconcile
//!   inside a per-shard [`Gate`]: a reconcile of a shard not held does not
//!   start, and a shard given up or lost cancels its in-flight reconciles
//!   (their copies stop before the next write) *before* its Lease is
//!   released or can expire.
//! - **Fencing** is the leader Lease's ([`super::leader`]): a shard not
//!   renewed for `renew_deadline` stops its work; another replica takes a
//!   Lease only after seeing it unchanged for `lease_duration` by its own
//!   clock, and every Lease write is a compare-and-swap on resourceVersion.
//! - **Fair share**: replicas announce themselves with member Leases; each
//!   aims at `ceil(shards / live members)` and releases the excess (work
//!   stopped first), so a join or a leave rebalances within a lease duration.

pub mod leases;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Resource;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// The label that assigns an object to a shard.
pub const SHARD_LABEL: &str = "kubemirror.dev/shard";

/// Shards at most (`--shards`): bounds the Lease count and the selector length.
pub const MAX_SHARDS: u32 = 256;

/// The `--shards` group of flags (kept together for the controller's flags).
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// Number of shards (1..=[`MAX_SHARDS`]).
    pub shards: u32,
}

/// The shard of `namespace/name` among `shards` (stable across processes,
/// platforms and versions: the first 8 bytes of SHA-256, big-endian, mod `shards`).
pub fn shard_of(namespace: &str, name: &str, shards: u32) -> u32 {
    let digest = Sha256::new()
        .chain_update(namespace.as_bytes())
        .chain_update(b"/")
        .chain_update(name.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(shards.max(1))) as u32
}

/// The shard an object's label names, if it is a shard that exists.
pub fn labelled_shard<K: Resource>(obj: &K, shards: u32) -> Option<u32> {
    let v = obj.meta().labels.as_ref()?.get(SHARD_LABEL)?;
    parse_shard(v, shards)
}

/// A label value naming an existing shard (`"7"`, not `"07"` or `"+7"`).
pub fn parse_shard(v: &str, shards: u32) -> Option<u32> {
    let n: u32 = v.parse().ok()?;
    (n < shards && n.to_string() == v).then_some(n)
}

/// `kubemirror.dev/shard in (0,3,7)`: the objects of `held`.
pub fn selector_for(held: &BTreeSet<u32>) -> String {
    let list: Vec<String> = held.iter().map(u32::to_string).collect();
    format!("{SHARD_LABEL} in ({})", list.join(","))
}

/// `kubemirror.dev/shard notin (0,…,S-1)`: objects without a valid label
/// (none, or one naming no shard).
pub fn unlabelled_selector(shards: u32) -> String {
    let list: Vec<String> = (0..shards).map(|s| s.to_string()).collect();
    format!("{SHARD_LABEL} notin ({})", list.join(","))
}

/// The shards this replica holds, and the work running in each.
pub struct Shards {
    pub shards: u32,
    state: Mutex<State>,
    /// The held set, for the watches (restarted on change).
    held_tx: tokio::sync::watch::Sender<BTreeSet<u32>>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct State {
    held: BTreeMap<u32, Held>,
    /// Bumped each time a shard is taken: objects seen under an earlier
    /// holding reconcile again (their requeues were dropped with it).
    epoch: BTreeMap<u32, u64>,
    /// Reconciles running, per shard (held or being given up).
    running: BTreeMap<u32, usize>,
}

struct Held {
    stop: CancellationToken,
}

/// Why a shard stops being held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Given up for another replica (rebalancing) or at shutdown.
    Released,
    /// Not renewed in time, or taken by another replica.
    Lost,
}

impl Shards {
    pub fn new(shards: u32, metrics: Arc<Metrics>) -> Arc<Shards> {
        Arc::new(Shards {
            shards,
            state: Mutex::new(State::default()),
            held_tx: tokio::sync::watch::channel(BTreeSet::new()).0,
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shards held now.
    pub fn held(&self) -> BTreeSet<u32> {
        self.lock().held.keys().copied().collect()
    }

    pub fn is_held(&self, shard: u32) -> bool {
        self.lock().held.contains_key(&shard)
    }

    /// The held set as it changes (for the watches).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<BTreeSet<u32>> {
        self.held_tx.subscribe()
    }

    /// How many times `shard` has been taken by this replica.
    pub fn epoch(&self, shard: u32) -> u64 {
        self.lock().epoch.get(&shard).copied().unwrap_or(0)
    }

    /// Start reconciling `shard` (its Lease was just acquired).
    pub fn take(&self, shard: u32) {
        self.take_all(&[shard]);
    }

    /// Start reconciling `shards` at once (one change for the watches,
    /// which restart on each).
    pub fn take_all(&self, shards: &[u32]) {
        let mut taken = 0;
        {
            let mut st = self.lock();
            for &shard in shards {
                if st.held.contains_key(&shard) {
                    continue;
                }
                st.held.insert(
                    shard,
                    Held {
                        stop: CancellationToken::new(),
                    },
                );
                *st.epoch.entry(shard).or_default() += 1;
                taken += 1;
            }
        }
        if taken > 0 {
            self.changed("acquired", taken);
        }
    }

    /// Stop reconciling `shard` at once: its in-flight reconciles are
    /// cancelled (dropped at their next poll). See [`Shards::drained`].
    pub fn stop(&self, shard: u32, why: Drop) {
        let removed = self.lock().held.remove(&shard);
        if let Some(h) = removed {
            h.stop.cancel();
            let event = match why {
                Drop::Released => "released",
                Drop::Lost => "lost",
            };
            self.changed(event, 1);
        }
    }

    /// Wait (up to `limit`) until no reconcile of `shard` runs; true if none does.
    pub async fn drained(&self, shard: u32, limit: Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        loop {
            if self.lock().running.get(&shard).copied().unwrap_or(0) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn changed(&self, event: &str, n: u64) {
        let held = self.held();
        self.metrics.shards_held.set(held.len() as i64);
        self.metrics
            .shard_changes
            .get_or_create(&super::metrics::ShardLabels {
                event: event.into(),
            })
            .inc_by(n);
        tracing::info!(event, held = ?held, "shards changed");
        self.held_tx.send_replace(held);
    }

    /// Run `work` for an object of `shard` if the shard is held, cancelled
    /// if the shard stops being held meanwhile; `None` when it did not run
    /// to the end.
    pub async fn gate<T>(&self, shard: u32, work: impl Future<Output = T>) -> Option<T> {
        let stop = {
            let mut st = self.lock();
            let stop = st.held.get(&shard)?.stop.clone();
            *st.running.entry(shard).or_default() += 1;
            stop
        };
        let _running = Running {
            shards: self,
            shard,
        };
        tokio::select! {
            biased;
            _ = stop.cancelled() => None,
            out = work => Some(out),
        }
    }
}

/// Counts a reconcile as running until dropped (finished or cancelled).
struct Running<'a> {
    shards: &'a Shards,
    shard: u32,
}

impl std::ops::Drop for Running<'_> {
    fn drop(&mut self) {
        let mut st = self.shards.lock();
        if let Some(n) = st.running.get_mut(&self.shard) {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_of_is_stable_and_spread() {
        // Fixed values (checked with Python's hashlib): a change here would
        // move every labelled object's hash away from its label.
        assert_eq!(shard_of("default", "m-00000", 32), 19);
        assert_eq!(shard_of("team-a", "nginx", 32), 20);
        assert_eq!(shard_of("team-a", "nginx", 1000), 380);
        let mut counts = [0usize; 32];
        for i in 0..3200 {
            counts[shard_of("default", &format!("m-{i:05}"), 32) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (50..=150).contains(c)), "{counts:?}");
        assert_ne!(
            shard_of("a", "b/c", 1000),
            shard_of("a/b", "c", 1000) + 1000
        );
        assert_eq!(shard_of("x", "y", 0), 0);
    }

    #[test]
    fn labels_name_existing_shards_only() {
        assert_eq!(parse_shard("7", 32), Some(7));
        for bad in ["32", "07", "+7", "-1", "", "x", "99999999999"] {
            assert_eq!(parse_shard(bad, 32), None, "{bad}");
        }
        let held: BTreeSet<u32> = [0, 3, 7].into();
        assert_eq!(selector_for(&held), "kubemirror.dev/shard in (0,3,7)");
        assert_eq!(unlabelled_selector(3), "kubemirror.dev/shard notin (0,1,2)");
    }

    #[tokio::test]
    async fn a_stopped_shard_cancels_its_reconciles_and_runs_no_new_ones() {
        let s = Shards::new(4, Arc::new(Metrics::new()));
        assert_eq!(s.gate(1, async { 1 }).await, None, "not held: not run");
        s.take(1);
        assert_eq!(s.gate(1, async { 2 }).await, Some(2));
        let s2 = s.clone();
        let long = tokio::spawn(async move { s2.gate(1, std::future::pending::<()>()).await });
        while s.lock().running.get(&1).copied() != Some(1) {
            tokio::task::yield_now().await;
        }
        s.stop(1, Drop::Lost);
        assert_eq!(long.await.unwrap(), None);
        assert!(s.drained(1, Duration::from_secs(1)).await);
        assert!(!s.is_held(1));
        let e = s.epoch(1);
        s.take(1);
        assert_eq!(s.epoch(1), e + 1);
        let text = s.metrics.encode();
        assert!(text.contains("kubemirror_shards_held 1"), "{text}");
        assert!(
            text.contains("kubemirror_shard_changes_total{event=\"lost\"} 1"),
            "{text}"
        );
    }
}
