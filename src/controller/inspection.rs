//! The `ImageInspection` driver: like the mirror's, with the inspection
//! reconciler; an Event when the inspected digest changes.

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::{Context, Error, Round, now};
use crate::api::v1alpha1::ImageInspection;
use crate::reconcile::{self, DEFAULT_INSPECTION_INTERVAL, status};

const KIND: &str = "ImageInspection";

pub async fn reconcile(obj: Arc<ImageInspection>, ctx: Arc<Context>) -> Result<Action, Error> {
    let suspended = obj.spec.suspend == Some(true);
    let Some(round) = Round::begin(obj.as_ref(), obj.status.clone(), suspended, &ctx).await? else {
        return Ok(Action::await_change());
    };
    let (key, current, generation) = (&round.key, &round.current, round.generation);
    ctx.metrics.name_repository(&obj.spec.image);
    let started = Instant::now();
    let (outcome, interval) = match reconcile::ValidInspection::new(&obj.spec) {
        Ok(valid) => (
            reconcile::reconcile_valid_inspection(&valid, &round.secrets, &ctx.env).await,
            valid.interval,
        ),
        Err(e) => (Err(e), DEFAULT_INSPECTION_INTERVAL),
    };
    let seconds = started.elapsed().as_secs_f64();
    let new = status::inspection_status(current.as_ref(), generation, &outcome, &now());
    let old_digest = current
        .as_ref()
        .map(|s| s.digest.clone())
        .unwrap_or_default();
    round.write(&new, outcome.is_ok()).await?;
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
            ctx.reset_backoff(key);
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
