//! The `ImageMirror` driver: read the object, mark it `Reconciling` on a new
//! generation, run the reconciler, write the status if it changed, record
//! Events and metrics, and pick the requeue.

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::{Context, Error, Round, now};
use crate::api::v1alpha1::ImageMirror;
use crate::reconcile::{self, DEFAULT_MIRROR_INTERVAL, TagResult, status};

const KIND: &str = "ImageMirror";

pub async fn reconcile(obj: Arc<ImageMirror>, ctx: Arc<Context>) -> Result<Action, Error> {
    let suspended = obj.spec.suspend == Some(true);
    let Some(round) = Round::begin(obj.as_ref(), obj.status.clone(), suspended, &ctx).await? else {
        return Ok(Action::await_change());
    };
    let (key, current, generation) = (&round.key, &round.current, round.generation);
    ctx.metrics.name_repository(&obj.spec.source.repository);
    ctx.metrics
        .name_repository(&obj.spec.destination.repository);
    let started = Instant::now();
    // Validated once: the reconcile uses what was parsed, and the requeue
    // its interval.
    let (outcome, interval) = match reconcile::ValidMirror::new(&obj.spec) {
        Ok(valid) => (
            reconcile::reconcile_valid_mirror(&valid, &round.secrets, &ctx.env).await,
            valid.interval,
        ),
        Err(e) => (Err(e), DEFAULT_MIRROR_INTERVAL),
    };
    let seconds = started.elapsed().as_secs_f64();
    let new = status::mirror_status(
        current.as_ref(),
        generation,
        &outcome,
        &obj.spec.destination.repository,
        &now(),
    );
    round.write(&new, outcome.is_ok()).await?;

    let m = &ctx.metrics;
    match outcome {
        Ok(o) => {
            let mut written = Vec::new();
            let mut failed = Vec::new();
            for t in &o.tags {
                match &t.result {
                    TagResult::Copied { report, .. } => {
                        m.tags_synced.inc();
                        m.bytes_copied.inc_by(report.bytes_copied);
                        // Something changed at the destination: new blobs, or a
                        // digest status did not hold yet (local layouts rewrite
                        // manifests on every pass, so `manifests_written` is no sign).
                        let before = current
                            .as_ref()
                            .and_then(|s| s.tags.iter().find(|p| p.name == t.tag))
                            .map(|p| p.destination_digest.as_str());
                        if !report.up_to_date
                            && (report.blobs_copied > 0
                                || before != Some(report.destination_digest.as_str()))
                        {
                            written.push(t.tag.as_str());
                        }
                    }
                    TagResult::Failed(e) => {
                        m.tags_failed.inc();
                        failed.push((t.tag.as_str(), e.message.as_str()));
                    }
                }
            }
            let dest = &obj.spec.destination.repository;
            if !written.is_empty() {
                let note = format!("mirrored {} to {dest}", written.join(", "));
                ctx.event(obj.as_ref(), EventType::Normal, "Synced", "Sync", note)
                    .await;
            }
            for (tag, e) in &failed {
                let note = format!("tag {tag}: {e}");
                ctx.event(obj.as_ref(), EventType::Warning, "TagFailed", "Sync", note)
                    .await;
            }
            if failed.is_empty() {
                m.reconciled(KIND, "ok", seconds);
                ctx.reset_backoff(key);
                tracing::info!(object = %key, tags = o.tags.len(), written = written.len(), "synced");
                Ok(Action::requeue(interval))
            } else if let Some(retry_after) = o.rate_limited() {
                // Every failure was a 429: try again when the registry's
                // cool-off (its Retry-After, or ours, which doubles with each
                // 429 it sends) ends — the registry's state, not the object's.
                m.reconciled(KIND, "rate_limited", seconds);
                let wait = match retry_after {
                    Some(after) => super::context::rate_limit_wait(after),
                    None => ctx.backoff(key).min(interval),
                };
                tracing::warn!(object = %key, failed = failed.len(), ?wait, "rate limited by a registry; backing off");
                Ok(Action::requeue(wait))
            } else {
                m.reconciled(KIND, "tags_failed", seconds);
                tracing::warn!(object = %key, failed = failed.len(), "some tags failed");
                Ok(Action::requeue(ctx.backoff(key).min(interval)))
            }
        }
        Err(e) => {
            m.reconciled(KIND, e.metric_label(), seconds);
            ctx.event(
                obj.as_ref(),
                EventType::Warning,
                e.reason(),
                "Sync",
                e.to_string(),
            )
            .await;
            Err(e.into())
        }
    }
}
