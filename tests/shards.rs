//! Sharded scale-out (issue 19), through the path a user takes: the
//! controller binary as three replicas (`kubemirror controller --shards 8`)
//! against kube-emulator, mirroring between real Distribution registries
//! behind proxies that record which replica sent each request (the
//! `User-Agent` names it).
//!
//! What must hold: every object is labelled with its shard and gets Ready;
//! shards are spread fairly and rebalance when a replica joins; a SIGKILLed
//! replica's shards are taken over and their objects reconciled within the
//! lease duration plus a margin; and no object is ever worked on by two
//! replicas at once (each object's registry requests come from one replica
//! at a time, and its image is copied exactly once); a replica cut off from
//! the API server stops its shards' work before another may take them.
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use kubemirror::api::v1alpha1::ImageMirror;
use kubemirror::controller::shard::{SHARD_LABEL, shard_of};
use support::cluster::Cluster;
use support::controller_proc::ControllerProc;
use support::proxy::{Action, Gate, Proxy, Seen};
use support::registry::Registry;
use support::relay::Relay;

const SHARDS: u32 = 8;
const OBJECTS: usize = 24;
const LEASE_SECS: u64 = 4;
const TIMING: [&str; 4] = [
    "--shards=8",
    "--leader-elect-lease-duration=4s",
    "--leader-elect-renew-deadline=3s",
    "--leader-elect-retry-period=500ms",
];

/// Poll `f` every 100 ms until it returns `Some`; fail naming `what` after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Shard → holder, from the shard Leases (held ones only).
async fn holders(c: &Cluster) -> BTreeMap<u32, String> {
    let leases: Api<Lease> = Api::namespaced(c.client(), "default");
    let list = leases
        .list(&ListParams::default().labels("kubemirror.dev/lease-role=shard"))
        .await
        .unwrap();
    list.items
        .into_iter()
        .filter_map(|l| {
            let shard = l
                .name_any()
                .strip_prefix("kubemirror-controller-shard-")?
                .parse()
                .ok()?;
            let holder = l.spec?.holder_identity.filter(|h| !h.is_empty())?;
            Some((shard, holder))
        })
        .collect()
}

fn count_by_holder(h: &BTreeMap<u32, String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for who in h.values() {
        *out.entry(who.clone()).or_default() += 1;
    }
    out
}

/// Whether `m` is Ready=True for its generation, synced after `after`.
fn ready_since(m: &ImageMirror, after: Option<jiff::Timestamp>) -> bool {
    let Some(st) = &m.status else { return false };
    let ready = st.conditions.iter().any(|c| {
        c.type_ == "Ready" && c.status == "True" && c.observed_generation == m.metadata.generation
    });
    let fresh = match after {
        None => true,
        Some(t) => st.last_sync_time.as_ref().is_some_and(|s| s.0 > t),
    };
    ready && fresh && st.observed_generation == m.metadata.generation
}

/// The replica named in a request's User-Agent (`(controller ID)`).
fn replica(s: &Seen) -> String {
    let ua = s.user_agent.clone().unwrap_or_default();
    ua.split("(controller ")
        .nth(1)
        .map(|r| r.trim_end_matches(')').to_string())
        .unwrap_or_else(|| format!("unknown: {ua}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_shards_rebalance_and_take_over_without_overlap() {
    let c = Cluster::start().await;
    let (src, dst) = (Registry::plain(), Registry::plain());
    let layout = c.dir.path().join("layout");
    support::mkimage(
        &layout,
        &[
            "--tag",
            "t",
            "--layers",
            "2",
            "--layer-size",
            "4K",
            "--seed",
            "19",
        ],
    );
    support::run(
        support::skopeo()
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:t", layout.display()))
            .arg(src.image("team/app:1.0")),
    );
    let (sp, dp) = (
        Proxy::start(&src.base_url()).await,
        Proxy::start(&dst.base_url()).await,
    );

    // Two replicas first: 4 shards each once both are seen.
    let mut a = ControllerProc::start(&c.kubeconfig, c.dir.path(), "replica-a", &TIMING);
    let b = ControllerProc::start(&c.kubeconfig, c.dir.path(), "replica-b", &TIMING);
    let logs = |procs: &[&ControllerProc]| {
        procs
            .iter()
            .map(|p| format!("--- {}:\n{}", p.identity, p.log_text()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    eventually(Duration::from_secs(30), "8 shards held, 4 each", || async {
        let h = holders(&c).await;
        let n = count_by_holder(&h);
        (h.len() == SHARDS as usize && n.values().all(|v| *v == 4) && n.len() == 2).then_some(())
    })
    .await;

    let mirrors = c.mirrors();
    let names: Vec<String> = (0..OBJECTS).map(|i| format!("m-{i:02}")).collect();
    for name in &names {
        let m: ImageMirror = serde_json::from_value(json!({
            "apiVersion": "kubemirror.dev/v1alpha1",
            "kind": "ImageMirror",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "source": {"repository": format!("{}/team/app", sp.host), "tlsVerify": false},
                "destination": {"repository": format!("{}/mirror/{name}", dp.host), "tlsVerify": false},
                "tags": {"names": ["1.0"]},
            }
        }))
        .unwrap();
        mirrors.create(&PostParams::default(), &m).await.unwrap();
    }
    let all_ready = |after: Option<jiff::Timestamp>, only: Option<BTreeSet<String>>| {
        let mirrors = mirrors.clone();
        async move {
            let list = mirrors.list(&ListParams::default()).await.unwrap();
            list.items
                .iter()
                .filter(|m| only.as_ref().is_none_or(|o| o.contains(&m.name_any())))
                .all(|m| ready_since(m, after))
                .then_some(list.items)
        }
    };
    let items = match tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(items) = all_ready(None, None).await {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    {
        Ok(items) => items,
        Err(_) => panic!("not all Ready\n{}", logs(&[&a, &b])),
    };
    // Each labelled with its shard, by the replica holding it.
    for m in &items {
        let want = shard_of("default", &m.name_any(), SHARDS).to_string();
        assert_eq!(m.labels().get(SHARD_LABEL), Some(&want), "{}", m.name_any());
    }

    // A third replica joins: within a lease duration (plus a margin for a
    // shared machine) it holds its share, ceil(8/3) at most each.
    let joined = Instant::now();
    let mut cc = ControllerProc::start(&c.kubeconfig, c.dir.path(), "replica-c", &TIMING);
    eventually(
        Duration::from_secs(LEASE_SECS + 10),
        "replica-c holds its share",
        || async {
            let h = holders(&c).await;
            let n = count_by_holder(&h);
            (h.len() == SHARDS as usize
                && n.get("replica-c").copied().unwrap_or(0) >= 2
                && n.values().all(|v| *v <= 3))
            .then_some(())
        },
    )
    .await;
    eprintln!(
        "rebalanced onto a joining replica in {:?}",
        joined.elapsed()
    );

    // SIGKILL replica-a: its shards expire and are taken over, and their
    // objects are reconciled again, by the others.
    let before = holders(&c).await;
    let orphaned: BTreeSet<u32> = before
        .iter()
        .filter(|(_, h)| *h == "replica-a")
        .map(|(s, _)| *s)
        .collect();
    assert!(!orphaned.is_empty(), "replica-a holds nothing: {before:?}");
    let of_a: BTreeSet<String> = names
        .iter()
        .filter(|n| orphaned.contains(&shard_of("default", n, SHARDS)))
        .cloned()
        .collect();
    let killed_at = jiff::Timestamp::now();
    let killed = Instant::now();
    a.kill();
    eventually(
        Duration::from_secs(LEASE_SECS + 10),
        "replica-a's shards taken over and their objects reconciled",
        || async {
            let h = holders(&c).await;
            let taken = orphaned
                .iter()
                .all(|s| h.get(s).is_some_and(|w| w != "replica-a"));
            if !taken {
                return None;
            }
            all_ready(Some(killed_at), Some(of_a.clone()))
                .await
                .map(|_| ())
        },
    )
    .await;
    let takeover = killed.elapsed();
    eprintln!(
        "shards {orphaned:?} of a SIGKILLed replica taken over, {} objects reconciled, in {takeover:?} (lease duration {LEASE_SECS}s)",
        of_a.len()
    );
    assert!(
        takeover <= Duration::from_secs(LEASE_SECS + 5),
        "takeover took {takeover:?}: more than the lease duration + 5 s\n{}",
        logs(&[&b, &cc])
    );
    let h = count_by_holder(&holders(&c).await);
    assert_eq!(
        h.values().sum::<usize>(),
        SHARDS as usize,
        "every shard held: {h:?}"
    );
    assert!(h.values().all(|v| *v == 4), "fair share of 2 live: {h:?}");

    // No object worked on by two replicas at once: per destination
    // repository, each replica's requests form one unbroken run (a shard
    // moves, its old holder stops, the new one starts), and the image was
    // written exactly once (later holders find it up to date).
    let log: Vec<Seen> = dp.log();
    let src_log: Vec<Seen> = sp.log();
    for name in &names {
        let prefix = format!("/v2/mirror/{name}/");
        let mut reqs: Vec<&Seen> = log.iter().filter(|s| s.path.starts_with(&prefix)).collect();
        reqs.sort_by_key(|s| s.at);
        let mut runs: Vec<String> = Vec::new();
        for s in &reqs {
            let r = replica(s);
            if runs.last() != Some(&r) {
                runs.push(r);
            }
        }
        let distinct: BTreeSet<&String> = runs.iter().collect();
        assert_eq!(
            distinct.len(),
            runs.len(),
            "{name}: replicas interleave: {runs:?}"
        );
        let manifest_puts = reqs
            .iter()
            .filter(|s| s.method == "PUT" && s.path.contains("/manifests/"))
            .count();
        assert_eq!(manifest_puts, 1, "{name}: {reqs:#?}");
    }
    assert!(
        log.iter()
            .chain(&src_log)
            .all(|s| !replica(s).starts_with("unknown")),
        "unattributed registry requests"
    );
    // The replicas report their shards.
    let metrics = reqwest::get(format!("http://{}/metrics", b.metrics_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("kubemirror_shards_held 4"), "{metrics}");
    assert!(
        metrics.contains("kubemirror_shard_changes_total{event=\"acquired\"}"),
        "{metrics}"
    );
    cc.assert_running();
}

/// Fencing: replica-a, alone, holds every shard and is copying (its blob
/// transfer held mid-way at a gate) when it is cut off from the API server.
/// It must stop that shard's work at its renew deadline, before replica-b
/// may take the shard: once replica-b holds it and the held transfer is let
/// go, no request of replica-a reaches a registry, and replica-b finishes
/// the copy alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_stops_its_shards_before_they_are_taken() {
    let c = Cluster::start().await;
    let (src, dst) = (Registry::plain(), Registry::plain());
    let layout = c.dir.path().join("layout");
    support::mkimage(
        &layout,
        &[
            "--tag",
            "t",
            "--layers",
            "2",
            "--layer-size",
            "512K",
            "--seed",
            "91",
        ],
    );
    support::run(
        support::skopeo()
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:t", layout.display()))
            .arg(src.image("team/app:2.0")),
    );
    let gate = Gate::new();
    let sp = Proxy::start(&src.base_url()).await;
    {
        let gate = gate.clone();
        sp.set_rule(move |method, path, _| {
            if method == "GET" && path.contains("/blobs/") {
                Action::Hold(gate.clone(), 64 * 1024)
            } else {
                Action::Forward
            }
        });
    }
    let dp = Proxy::start(&dst.base_url()).await;

    let relay = Relay::start(c.emu.url().trim_start_matches("http://").parse().unwrap()).await;
    let kubeconfig_a = c.dir.path().join("kubeconfig-a");
    std::fs::write(&kubeconfig_a, kube_emulator::kubeconfig_yaml(&relay.url())).unwrap();
    let timing = [
        "--shards=2",
        "--leader-elect-lease-duration=6s",
        "--leader-elect-renew-deadline=3s",
        "--leader-elect-retry-period=500ms",
    ];
    let a = ControllerProc::start(&kubeconfig_a, c.dir.path(), "replica-a", &timing);
    eventually(
        Duration::from_secs(30),
        "replica-a holds both shards",
        || async {
            let h = holders(&c).await;
            (h.len() == 2 && h.values().all(|w| w == "replica-a")).then_some(())
        },
    )
    .await;
    let m: ImageMirror = serde_json::from_value(json!({
        "apiVersion": "kubemirror.dev/v1alpha1",
        "kind": "ImageMirror",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {
            "source": {"repository": format!("{}/team/app", sp.host), "tlsVerify": false},
            "destination": {"repository": format!("{}/mirror/app", dp.host), "tlsVerify": false},
            "tags": {"names": ["2.0"]},
        }
    }))
    .unwrap();
    c.mirrors()
        .create(&PostParams::default(), &m)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "replica-a's transfer caught at the gate",
        || async { (gate.held() >= 1).then_some(()) },
    )
    .await;

    relay.partition();
    let b = ControllerProc::start(&c.kubeconfig, c.dir.path(), "replica-b", &timing);
    eventually(
        Duration::from_secs(40),
        "replica-b holds both shards",
        || async {
            let h = holders(&c).await;
            (h.len() == 2 && h.values().all(|w| w == "replica-b")).then_some(())
        },
    )
    .await;
    let taken_over = Instant::now();
    gate.open();
    eventually(Duration::from_secs(60), "app Ready", || async {
        let m = c.mirrors().get("app").await.unwrap();
        ready_since(&m, None).then_some(())
    })
    .await;

    let all: Vec<Seen> = sp.log().into_iter().chain(dp.log()).collect();
    let late: Vec<&Seen> = all
        .iter()
        .filter(|s| replica(s) == "replica-a" && s.at >= taken_over)
        .collect();
    assert!(
        late.is_empty(),
        "replica-a still talked to registries after the takeover: {late:#?}\n{}",
        a.log_text()
    );
    assert!(
        all.iter().any(|s| replica(s) == "replica-b"
            && s.method == "PUT"
            && s.path.contains("/manifests/")),
        "replica-b did not write the image: {all:#?}\n{}",
        b.log_text()
    );
    assert!(
        a.log_text()
            .contains("no shard Lease renewal within the deadline: stopping its work"),
        "{}",
        a.log_text()
    );
}
