//! Apply over the in-memory transport (`transport::mem`): per-tag outcomes,
//! one writer per store that shares one file, `RepoTags` by capability, and
//! spans that name whose copy a warning is about.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tracing::Instrument;

use super::*;
use crate::copy::MultiArch;
use crate::image::RegistryContext;
use crate::reconcile::resolve::Endpoint;
use crate::transport::mem::{Store, add_image, mem, tag};

fn endpoint(store: &Arc<Store>, tag: &str, ctx: &SystemContext) -> Endpoint {
    Endpoint {
        reference: Box::new(mem(store, tag)),
        ctx: ctx.clone(),
    }
}

fn context() -> SystemContext {
    SystemContext {
        registry: RegistryContext::new(),
        ..Default::default()
    }
}

fn resolved(src: &Arc<Store>, dst: &Arc<Store>, ctx: &SystemContext) -> ResolvedMirror {
    ResolvedMirror {
        source: endpoint(src, "latest", ctx),
        destination: endpoint(dst, "latest", ctx),
        keys: Default::default(),
    }
}

fn plan(tags: &[&str], missing: &[&str]) -> MirrorPlan {
    MirrorPlan {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        missing: missing.iter().map(|t| t.to_string()).collect(),
        multi_arch: MultiArch::All,
    }
}

#[tokio::test]
async fn every_planned_tag_has_its_own_outcome() {
    let (src, dst) = (Arc::new(Store::default()), Arc::new(Store::default()));
    let (good, _) = add_image(&src, "good", 2, "amd64");
    let (bad, _) = add_image(&src, "bad", 2, "amd64");
    tag(&src, "v1", &good);
    tag(&src, "v2", &bad);
    let lie = src.manifests.lock().unwrap()[&bad]
        .image()
        .unwrap()
        .layers()[2]
        .digest()
        .to_string();
    *src.lie_about.lock().unwrap() = Some(lie);
    let ctx = context();
    let out = mirror(
        &resolved(&src, &dst, &ctx),
        &plan(&["v1", "v2"], &["v3"]),
        None,
        SignaturePolicy::Copy,
        &DriftCheck::default(),
        &ApplyOptions::default(),
    )
    .await;
    let tags: Vec<&str> = out.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(tags, ["v1", "v2", "v3"], "plan order, missing last");
    assert!(matches!(out.tags[0].result, TagResult::Copied { .. }));
    let failed: Vec<(&str, &TagError)> = out.failed().collect();
    assert_eq!(failed.len(), 2);
    assert!(
        failed[0].1.message.contains("digest mismatch"),
        "{failed:?}"
    );
    assert!(
        failed[1].1.message.contains("tag \"v3\" not found"),
        "{failed:?}"
    );
    assert_eq!(out.rate_limited(), None);
    // The failed tag was never written; the good one was.
    let written = dst.tags.lock().unwrap().clone();
    assert_eq!(written.get("v1"), Some(&good));
    assert!(!written.contains_key("v2"));
}

#[tokio::test]
async fn tags_of_a_store_sharing_one_file_are_written_one_at_a_time() {
    for (lock, overlap) in [(None, 3), (Some("/layout".to_string()), 1)] {
        let src = Arc::new(Store::default());
        for t in ["a", "b", "c"] {
            let (d, _) = add_image(&src, t, 3, "amd64");
            tag(&src, t, &d);
        }
        let dst = Arc::new(Store {
            write_lock: lock.clone(),
            ..Default::default()
        });
        let ctx = context();
        let opts = ApplyOptions {
            jobs: 1,
            tag_concurrency: 3,
            ..Default::default()
        };
        let out = mirror(
            &resolved(&src, &dst, &ctx),
            &plan(&["a", "b", "c"], &[]),
            None,
            SignaturePolicy::Copy,
            &DriftCheck::default(),
            &opts,
        )
        .await;
        assert_eq!(out.failed().count(), 0, "{:?}", out.tags);
        assert_eq!(
            dst.max_in_flight.load(Ordering::SeqCst),
            overlap,
            "write lock {lock:?}"
        );
    }
}

#[tokio::test]
async fn repo_tags_only_where_the_reference_lists_a_repository() {
    for lists in [false, true] {
        let store = Arc::new(Store {
            lists_repository_tags: lists,
            ..Default::default()
        });
        let (d, _) = add_image(&store, "a", 1, "amd64");
        tag(&store, "v1", &d);
        tag(&store, "v2", &d);
        let ctx = context();
        let r = ResolvedInspection {
            image: endpoint(&store, "v1", &ctx),
            keys: Default::default(),
        };
        let out = inspect(&r, None).await.unwrap();
        assert_eq!(out.info.digest, d);
        let want: &[&str] = if lists { &["v1", "v2"] } else { &[] };
        assert_eq!(out.info.repo_tags, want);
    }
}

/// A writer for the test's log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_blob_retry_warning_names_the_object_tag_copy_and_registry() {
    let (src, dst) = (Arc::new(Store::default()), Arc::new(Store::default()));
    let (d, _) = add_image(&src, "a", 1, "amd64");
    tag(&src, "v1", &d);
    src.fail_gets.store(1, Ordering::SeqCst);
    let ctx = SystemContext {
        retry_times: 1,
        ..context()
    };
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let out = mirror(
        &resolved(&src, &dst, &ctx),
        &plan(&["v1"], &[]),
        None,
        SignaturePolicy::Copy,
        &DriftCheck::default(),
        &ApplyOptions::default(),
    )
    .instrument(crate::reconcile::span("ImageMirror", "team-a", "app"))
    .await;
    assert_eq!(
        out.failed().count(),
        0,
        "retried and copied: {:?}",
        out.tags
    );
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("retrying blob"))
        .unwrap_or_else(|| panic!("no retry warning in:\n{text}"));
    for part in [
        "reconcile{kind=\"ImageMirror\" object=team-a/app}",
        "tag{tag=v1}",
        "copy{source=mem:v1 destination=mem:v1 registry=\"\"}",
    ] {
        assert!(line.contains(part), "{part:?} missing from: {line}");
    }
}
