//! The scale benchmark's machinery at 20 objects (`tests/support/scale.rs`,
//! the same code `benches/scale.rs` runs at 1,000): every object reaches the
//! right `Ready` state under the real controller binary, and a warm re-sync
//! of an unchanged tag costs at most two registry requests (a HEAD of the
//! source manifest and a HEAD of the destination's).
mod support;

use std::time::Duration;

use support::scale::{Class, Options, Side};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_mirrors_settle_and_a_warm_resync_costs_two_heads_a_tag() {
    let report = support::scale::run(Options {
        objects: 20,
        miss_every: 5,
        repos: 2,
        tags: 2,
        concurrency: 4,
        controller_bin: env!("CARGO_BIN_EXE_kubemirror").into(),
        interval_secs: None,
        deadline: Duration::from_secs(40),
        latency: Duration::ZERO,
        logs: None,
    })
    .await;
    // `run` panics unless every object settled as expected; check the split.
    assert_eq!((report.hits, report.misses), (16, 4));
    assert_eq!(report.images, 4);

    // Misses say why: the tag, the repository and the registry's 404.
    let cases = support::scale::cases(&report.options);
    for (name, reason, message) in &report.miss_conditions {
        let case = cases.iter().find(|c| &c.name == name).unwrap();
        assert_eq!(reason, "TagsFailed", "{name}: {message}");
        for part in [
            format!("{}: 404 Not Found", case.tag),
            format!("for repository {}", case.source_repo),
            format!("manifest {}", case.tag),
        ] {
            assert!(
                message.contains(&part),
                "{name}: no {part:?} in {message:?}"
            );
        }
    }

    // The cold run copied every hit (each into its own repository).
    let cold = &report.cold.requests;
    assert!(cold.get(Side::Destination, Class::Hit, "PUT") >= report.hits);

    let warm = &report.warm[0];
    assert_eq!(warm.method, "restart");
    assert_eq!(warm.hit_reconciles, report.hits as u64, "{warm:?}");
    // Nothing changed upstream: each object's status is written once, to
    // move lastSyncTime (a write the controller's own watch ignores).
    assert_eq!(warm.status_writes, report.objects, "{warm:?}");
    assert!(
        warm.per_tag_total() <= 2.0,
        "a warm re-sync of an unchanged tag costs {} requests: {:?}",
        warm.per_tag_total(),
        warm.requests
    );
    assert_eq!(warm.per_tag(Side::Source, "HEAD"), 1.0, "{warm:?}");
    assert_eq!(warm.per_tag(Side::Destination, "HEAD"), 1.0, "{warm:?}");
}

/// The scale-out benchmark's machinery (`tests/support/scale_out.rs`, which
/// `scripts/scale --replicas …` runs at 10,000) at 24 objects and two
/// replicas sharing 8 shards behind a latency proxy: every object settles,
/// each replica's peak RSS is read, a warm restart of both costs at most two
/// registry requests per unchanged tag in total (no shard worked twice), and
/// a SIGKILLed replica's shards are taken over and reconciled within the
/// lease duration plus 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_work_and_take_over() {
    use support::scale_out::{self, Replicas};
    let lease = Duration::from_secs(4);
    let r = scale_out::run(
        Options {
            objects: 24,
            miss_every: 6,
            repos: 2,
            tags: 2,
            concurrency: 4,
            controller_bin: env!("CARGO_BIN_EXE_kubemirror").into(),
            interval_secs: None,
            deadline: Duration::from_secs(60),
            latency: Duration::from_millis(5),
            logs: None,
        },
        Replicas {
            count: 2,
            shards: 8,
            lease_duration: lease,
        },
    )
    .await;
    assert_eq!((r.objects, r.hits), (24, 20));
    assert_eq!(r.cold_peak_rss_kib.len(), 2);
    assert!(r.cold_peak_rss_kib.iter().all(|k| *k > 0), "{r:?}");
    assert!(
        r.warm_per_tag <= 2.0,
        "a warm re-sync by two replicas costs {} requests a tag: {:?}",
        r.warm_per_tag,
        r.warm_requests
    );
    assert!(r.takeover_shards > 0 && r.takeover_objects > 0, "{r:?}");
    let takeover = r.takeover_seconds.expect("measured");
    assert!(
        takeover <= (lease + Duration::from_secs(5)).as_secs_f64(),
        "takeover took {takeover} s"
    );
}
