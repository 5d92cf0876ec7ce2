//! The `ImageMirror` driver: read the object, mark it `Reconciling` on a new
//! generation, run the reconciler, write the status if it changed, record
//! Events and metrics, and pick the requeue. With `deletionPolicy: Delete`
//! it keeps the [`FINALIZER`] on the object and, once the object is being
//! deleted, removes what the mirror wrote before letting it go.

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::{Context, Error, Round, now};
use crate::api::v1alpha1::{DeletionPolicy, ImageMirror};
use crate::reconcile::{self, DEFAULT_MIRROR_INTERVAL, MirrorInput, TagResult, prune, status};

const KIND: &str = "ImageMirror";

/// Held on an `ImageMirror` with `deletionPolicy: Delete`: the object goes
/// only after the tags the mirror wrote are deleted.
pub const FINALIZER: &str = "kubemirror.dev/cleanup";

pub async fn reconcile(obj: Arc<ImageMirror>, ctx: Arc<Context>) -> Result<Action, Error> {
    if obj.metadata.deletion_timestamp.is_some() {
        return super::finalizer::finalize(&obj, &ctx).await;
    }
    super::finalizer::keep_in_step(&obj, &ctx).await?;
    let suspended = obj.spec.suspend == Some(true);
    let Some(round) = Round::begin(obj.as_ref(), obj.status.clone(), suspended, &ctx).await? else {
        return Ok(Action::await_change());
    };
    let (key, current, generation) = (&round.key, &round.current, round.generation);
    ctx.metrics.name_repository(&obj.spec.source.repository);
    ctx.metrics
        .name_repository(&obj.spec.destination.repository);
    let started = Instant::now();
    let id = super::finalizer::mirror_id(&obj);
    let input = MirrorInput {
        id: &id,
        status: current.as_ref(),
    };
    // Validated once: the reconcile uses what was parsed, and the requeue
    // its interval.
    let (outcome, interval) = match reconcile::ValidMirror::new(&obj.spec) {
        Ok(valid) => (
            reconcile::reconcile_valid_mirror(&valid, input, &round.secrets, &ctx.env).await,
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
                    TagResult::Kept => {}
                }
                if let Some(found) = &t.drifted {
                    m.tags_drifted.inc();
                    let what = if matches!(t.result, TagResult::Kept) {
                        "kept (spec.driftPolicy: Keep)"
                    } else {
                        "restored"
                    };
                    let note = format!(
                        "tag {} at {} was changed by someone else (now {}); {what}",
                        t.tag,
                        obj.spec.destination.repository,
                        found.as_deref().unwrap_or("absent"),
                    );
                    ctx.event(obj.as_ref(), EventType::Warning, "Drifted", "Sync", note)
                        .await;
                }
            }
            if let Some(p) = &o.prune {
                prune_events(&obj, &ctx, p).await;
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

/// Events and metrics for a prune.
pub(super) async fn prune_events(obj: &ImageMirror, ctx: &Context, p: &prune::PruneOutcome) {
    let deleted: Vec<&str> = p
        .entries
        .iter()
        .filter(|e| e.action == prune::Action::Deleted)
        .map(|e| e.tag.as_str())
        .collect();
    ctx.metrics.tags_pruned.inc_by(deleted.len() as u64);
    let dest = &obj.spec.destination.repository;
    if !deleted.is_empty() {
        let note = format!("deleted {} from {dest}", deleted.join(", "));
        ctx.event(obj, EventType::Normal, "Pruned", "Prune", note)
            .await;
    }
    let problem = p.refused.clone().or_else(|| p.blocked.clone()).or_else(|| {
        p.entries
            .iter()
            .find(|e| e.action == prune::Action::Failed)
            .map(|e| format!("deleting {}: {}", e.tag, e.reason))
    });
    if let Some(why) = problem {
        ctx.event(obj, EventType::Warning, "PruneFailed", "Prune", why)
            .await;
    }
}

/// Whether the object asks for its tags to be deleted with it.
pub(super) fn deletes(obj: &ImageMirror) -> bool {
    obj.spec.deletion_policy == Some(DeletionPolicy::Delete)
}

/// The message for a deletion that cannot finish yet.
pub(super) fn blocked_reason(p: &prune::PruneOutcome) -> String {
    if let Some(r) = &p.refused {
        return r.clone();
    }
    let left: Vec<String> = p
        .entries
        .iter()
        .filter(|e| {
            !matches!(
                e.action,
                prune::Action::Deleted | prune::Action::Skipped | prune::Action::Gone
            )
        })
        .take(5)
        .map(|e| format!("{}: {}", e.tag, e.reason))
        .collect();
    left.join("; ")
}

/// A status for an object whose deletion is blocked.
pub(super) fn blocked_status(
    obj: &ImageMirror,
    why: &str,
) -> crate::api::v1alpha1::ImageMirrorStatus {
    let mut st = obj.status.clone().unwrap_or_default();
    status::deletion_blocked(&mut st.conditions, why, obj.metadata.generation, &now());
    st
}
