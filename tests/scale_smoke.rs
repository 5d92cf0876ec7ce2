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
