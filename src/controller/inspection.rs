//! The `ImageInspection` driver: like the mirror's, with the inspection
//! reconciler; an Event when the inspected digest changes.

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::secrets::ApiSecrets;
use super::{Context, Error, mark_progressing, now, object_key, write_status};
use crate::api::v1alpha1::ImageInspection;
use crate::reconcile::{self, DEFAULT_INSPECTION_INTERVAL, status};

const KIND: &str = "ImageInspection";

pub async fn reconcile(obj: Arc<ImageInspection>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = object_key(obj.as_ref());
    let ns = obj
        .namespace()
        .ok_or_else(|| Error::NoNamespace(key.clone()))?;
    let name = obj.name_any();
    if obj.metadata.deletion_timestamp.is_some() || obj.spec.suspend == Some(true) {
        return Ok(Action::await_change());
    }
    let api: Api<ImageInspection> = Api::namespaced(ctx.client.clone(), &ns);
    let generation = obj.metadata.generation;
    let current = mark_progressing(&api, &name, obj.status.clone(), generation).await?;

    let secrets = ApiSecrets {
        api: Api::namespaced(ctx.client.clone(), &ns),
        namespace: ns.clone(),
    };
    let started = Instant::now();
    let outcome = reconcile::reconcile_inspection(&obj.spec, &secrets, &ctx.env).await;
    let seconds = started.elapsed().as_secs_f64();
    let new = status::inspection_status(current.as_ref(), generation, &outcome, &now());
    let old_digest = current
        .as_ref()
        .map(|s| s.digest.clone())
        .unwrap_or_default();
    // A reconcile that reached the registries moves lastSyncTime (the
    // object is known to be current as of now); a failure writes only
    // what changed, so an outage does not rewrite every object each retry.
    if outcome.is_ok() || status::differs(current.as_ref(), &new) {
        write_status(&api, &name, &new).await?;
    }
    let interval = reconcile::interval(obj.spec.interval.as_deref(), DEFAULT_INSPECTION_INTERVAL)
        .unwrap_or(DEFAULT_INSPECTION_INTERVAL);
    match outcome {
        Ok(o) => {
            if o.info.digest != old_digest {
                let note = format!("{} is {}", o.reference, o.info.digest);
                ctx.event(
                    obj.as_ref(),
                    EventType::Normal,
                    "Inspected",
                    "Inspect",
                    note,
                )
                .await;
            }
            ctx.metrics.reconciled(KIND, "ok", seconds);
            ctx.reset_backoff(&key);
            Ok(Action::requeue(interval))
        }
        Err(e) => {
            ctx.metrics.reconciled(KIND, e.metric_label(), seconds);
            ctx.event(
                obj.as_ref(),
                EventType::Warning,
                e.reason(),
                "Inspect",
                e.to_string(),
            )
            .await;
            Err(e.into())
        }
    }
}
