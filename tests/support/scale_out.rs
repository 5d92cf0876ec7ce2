//! The scale-out benchmark (issue 19), on the scale rig ([`super::scale`]):
//! the same N `ImageMirror`s reconciled by R controller replicas as
//! subprocesses (`--shards S` when R > 1; R = 1 is the single replica as
//! it runs without sharding), with latency added by the registry proxies.
//!
//! [`run`] measures, for one R, on a fresh rig:
//! 1. cold: from the replicas' start until every object is settled; each
//!    replica's peak RSS;
//! 2. warm re-sync by restart: every replica restarted at once; registry
//!    requests per unchanged tag across all replicas, counted until they
//!    stay quiet (a shard reconciled twice, by two replicas or by one after
//!    a rebalance, would show here);
//! 3. takeover (R > 1): one replica SIGKILLed; the time until every shard it
//!    held is held by another replica and every hit of those shards has been
//!    reconciled again (`status.lastSyncTime` after the kill).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use kubemirror::controller::shard::shard_of;

use super::controller_proc::ControllerProc;
use super::scale::{Class, Counts, NAMESPACE, Options, Rig, Side};

/// The replicas' lease duration by default (the chart's; renew deadline
/// and retry period scale with it: 2/3 and 2/15 of it).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

/// What one replica count measured.
#[derive(Debug, Clone)]
pub struct ScaleOut {
    pub replicas: usize,
    pub shards: u32,
    pub objects: usize,
    pub hits: usize,
    /// Cold: start → all settled.
    pub cold_seconds: f64,
    /// Peak RSS of each replica in the cold run (KiB).
    pub cold_peak_rss_kib: Vec<u64>,
    pub cold_requests: usize,
    /// Warm re-sync by restart of every replica.
    pub warm_seconds: f64,
    pub warm_requests: Counts,
    /// Registry requests for hits per hit object (all replicas together).
    pub warm_per_tag: f64,
    pub warm_peak_rss_kib: Vec<u64>,
    /// SIGKILL → its shards held elsewhere and their hits reconciled.
    pub takeover_seconds: Option<f64>,
    /// Shards and hit objects the killed replica held.
    pub takeover_shards: usize,
    pub takeover_objects: usize,
}

/// How the replicas run.
#[derive(Debug, Clone, Copy)]
pub struct Replicas {
    pub count: usize,
    /// `--shards` (with more than one replica).
    pub shards: u32,
    pub lease_duration: Duration,
}

fn args(opts: &Options, r: Replicas) -> Vec<String> {
    let mut a = vec![format!("--concurrency={}", opts.concurrency)];
    if r.count > 1 {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        a.push(format!("--shards={}", r.shards));
        a.push(format!(
            "--leader-elect-lease-duration={}",
            ms(r.lease_duration)
        ));
        a.push(format!(
            "--leader-elect-renew-deadline={}",
            ms(r.lease_duration * 2 / 3)
        ));
        a.push(format!(
            "--leader-elect-retry-period={}",
            ms(r.lease_duration * 2 / 15)
        ));
    }
    a
}

fn start_all(rig: &Rig, opts: &Options, r: Replicas, round: usize) -> Vec<ControllerProc> {
    let replicas = r.count;
    let a = args(opts, r);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    (0..replicas)
        .map(|i| {
            let log = rig.log_path(&format!("{replicas}-replicas-{i}-round-{round}"));
            ControllerProc::spawn(
                &opts.controller_bin,
                &rig.kubeconfig(),
                log,
                &format!("replica-{i}"),
                &a,
            )
        })
        .collect()
}

/// Wait until the proxies have logged no request for `quiet` (at most `limit`).
async fn until_quiet(
    rig: &Rig,
    quiet: Duration,
    limit: Duration,
) -> (Vec<super::proxy::Seen>, Vec<super::proxy::Seen>) {
    let until = Instant::now() + limit;
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    let mut last_change = Instant::now();
    loop {
        let (s, d) = (rig.src_proxy.take_log(), rig.dst_proxy.take_log());
        if !s.is_empty() || !d.is_empty() {
            last_change = Instant::now();
        }
        src.extend(s);
        dst.extend(d);
        if last_change.elapsed() >= quiet || Instant::now() >= until {
            return (src, dst);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Shard → holder.
async fn holders(rig: &Rig) -> BTreeMap<u32, String> {
    let leases: Api<Lease> = Api::namespaced(rig.client.clone(), NAMESPACE);
    let Ok(list) = leases
        .list(&ListParams::default().labels("kubemirror.dev/lease-role=shard"))
        .await
    else {
        return BTreeMap::new();
    };
    list.items
        .into_iter()
        .filter_map(|l| {
            let shard = l.name_any().rsplit_once("-shard-")?.1.parse().ok()?;
            let holder = l.spec?.holder_identity.filter(|h| !h.is_empty())?;
            Some((shard, holder))
        })
        .collect()
}

/// Measure one replica count (see the module docs).
pub async fn run(opts: Options, r: Replicas) -> ScaleOut {
    let (replicas, shards) = (r.count, r.shards);
    let rig = Rig::start(opts.clone()).await;
    let hits = rig.hits();
    rig.create_mirrors("1h").await;
    rig.take_counts();

    // Cold.
    let started = Instant::now();
    let mut procs = start_all(&rig, &opts, r, 1);
    rig.wait_settled().await;
    let cold_seconds = started.elapsed().as_secs_f64();
    let cold_requests = rig.take_counts().total();
    let cold_peak_rss_kib: Vec<u64> = procs.iter().map(|p| p.proc_kib("VmHWM")).collect();
    for p in procs.iter_mut() {
        p.kill();
    }

    // Warm, by restarting every replica at once.
    rig.take_counts();
    let started = Instant::now();
    let mut procs = start_all(&rig, &opts, r, 2);
    let until = Instant::now() + opts.deadline;
    loop {
        let mut ok = 0;
        for p in procs.iter_mut() {
            ok += p.reconciles().await.get("ok").copied().unwrap_or(0);
        }
        if ok >= hits as u64 {
            break;
        }
        assert!(
            Instant::now() < until,
            "warm re-sync: {ok} of {hits} hits reconciled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let warm_seconds = started.elapsed().as_secs_f64();
    // Then until the registries stay quiet: any duplicate work shows up too.
    let (src, dst) = until_quiet(&rig, Duration::from_secs(3), Duration::from_secs(60)).await;
    let warm_requests = rig.take_counts_from(src, dst);
    let warm_per_tag = (warm_requests.class(Side::Source, Class::Hit)
        + warm_requests.class(Side::Destination, Class::Hit)) as f64
        / hits.max(1) as f64;
    let warm_peak_rss_kib: Vec<u64> = procs.iter().map(|p| p.proc_kib("VmHWM")).collect();

    // Takeover.
    let mut takeover_seconds = None;
    let (mut takeover_shards, mut takeover_objects) = (0, 0);
    if replicas > 1 {
        let victim = procs[0].identity.clone();
        let held: HashSet<u32> = holders(&rig)
            .await
            .into_iter()
            .filter(|(_, h)| *h == victim)
            .map(|(s, _)| s)
            .collect();
        let objects: HashSet<String> = rig
            .cases
            .iter()
            .filter(|c| c.expect.is_hit() && held.contains(&shard_of(NAMESPACE, &c.name, shards)))
            .map(|c| c.name.clone())
            .collect();
        takeover_shards = held.len();
        takeover_objects = objects.len();
        let killed_at = jiff::Timestamp::now();
        let killed = Instant::now();
        procs[0].kill();
        let until = Instant::now() + opts.deadline;
        loop {
            let h = holders(&rig).await;
            if held.iter().all(|s| h.get(s).is_some_and(|w| *w != victim)) {
                break;
            }
            assert!(
                Instant::now() < until,
                "{victim}'s shards never taken over: {h:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        rig.wait_settled_since(Some((killed_at, &objects))).await;
        takeover_seconds = Some(killed.elapsed().as_secs_f64());
    }
    for p in procs.iter_mut() {
        p.kill();
    }
    ScaleOut {
        replicas,
        shards,
        objects: opts.objects,
        hits,
        cold_seconds,
        cold_peak_rss_kib,
        cold_requests,
        warm_seconds,
        warm_requests,
        warm_per_tag,
        warm_peak_rss_kib,
        takeover_seconds,
        takeover_shards,
        takeover_objects,
    }
}
