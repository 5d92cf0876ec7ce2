//! `deletionPolicy: Delete` for `ImageMirror`s: the [`FINALIZER`] is on the
//! object exactly while the policy is `Delete`; when the object is deleted,
//! the tags the mirror wrote are deleted (the rules of prune: only what it
//! wrote and still holds what it wrote), then the finalizer goes and the
//! API server removes the object. A deletion that cannot finish (a
//! registry refusing deletes, an unreachable registry) keeps the object,
//! says why in `Ready` (reason `DeletionBlocked`) and in a Warning Event,
//! and retries with backoff; setting `deletionPolicy: Retain` lets it go.
//!
//! The finalizer list is written by a merge patch carrying the
//! `resourceVersion` read, so a concurrent change fails (409) instead of
//! being overwritten.

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::mirror::{FINALIZER, blocked_reason, blocked_status, deletes, prune_events};
use super::secrets::ApiSecrets;
use super::{Context, Error, FIELD_MANAGER, object_key, write_status};
use crate::api::v1alpha1::ImageMirror;
use crate::reconcile;

/// `namespace/name`: the mirror's identity at the destination (its record).
pub fn mirror_id(obj: &ImageMirror) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

fn has_finalizer(obj: &ImageMirror) -> bool {
    obj.finalizers().iter().any(|f| f == FINALIZER)
}

/// Add or remove the finalizer so that it is there exactly with `Delete`
/// (and a destination that can delete: otherwise the spec is refused as
/// `Stalled`, and a finalizer would only hold the object forever).
pub async fn keep_in_step(obj: &ImageMirror, ctx: &Context) -> Result<(), Error> {
    let wanted = deletes(obj) && reconcile::destination_deletes(&obj.spec);
    match (wanted, has_finalizer(obj)) {
        (true, false) => {
            let mut list = obj.finalizers().to_vec();
            list.push(FINALIZER.to_string());
            set_finalizers(obj, ctx, list).await
        }
        (false, true) => remove(obj, ctx).await,
        _ => Ok(()),
    }
}

async fn remove(obj: &ImageMirror, ctx: &Context) -> Result<(), Error> {
    let list: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(obj, ctx, list).await
}

async fn set_finalizers(obj: &ImageMirror, ctx: &Context, list: Vec<String>) -> Result<(), Error> {
    let ns = obj
        .namespace()
        .ok_or_else(|| Error::NoNamespace(object_key(obj)))?;
    let api: Api<ImageMirror> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": list,
            "resourceVersion": obj.resource_version(),
        }
    });
    api.patch(
        &obj.name_any(),
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        },
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Status {
        object: object_key(obj),
        source,
    })
}

/// The object is being deleted: clean up what the mirror wrote (with
/// `Delete`), then remove the finalizer.
pub async fn finalize(obj: &ImageMirror, ctx: &Context) -> Result<Action, Error> {
    if !has_finalizer(obj) {
        return Ok(Action::await_change());
    }
    let key = object_key(obj);
    if !deletes(obj) {
        remove(obj, ctx).await?;
        return Ok(Action::await_change());
    }
    let ns = obj
        .namespace()
        .ok_or_else(|| Error::NoNamespace(key.clone()))?;
    let secrets = ApiSecrets {
        api: Api::namespaced(ctx.client.clone(), &ns),
        config_maps: Api::namespaced(ctx.client.clone(), &ns),
        namespace: ns.clone(),
    };
    let id = mirror_id(obj);
    let why = match reconcile::cleanup_mirror(&obj.spec, &id, &secrets, &ctx.env).await {
        Ok(p) => {
            prune_events(obj, ctx, &p).await;
            if p.finished() {
                tracing::info!(object = %key, deleted = p.count(reconcile::prune::Action::Deleted), "destination cleaned up; releasing the object");
                remove(obj, ctx).await?;
                ctx.reset_backoff(&key);
                return Ok(Action::await_change());
            }
            blocked_reason(&p)
        }
        Err(e) => reconcile::one_line(&e),
    };
    tracing::warn!(object = %key, reason = %why, "deletion blocked");
    let st = blocked_status(obj, &why);
    if reconcile::status::differs(obj.status.as_ref(), &st) {
        let api: Api<ImageMirror> = Api::namespaced(ctx.client.clone(), &ns);
        write_status(&api, &obj.name_any(), &st).await?;
    }
    ctx.event(
        obj,
        EventType::Warning,
        "DeletionBlocked",
        "Delete",
        format!("deletion blocked: {why}"),
    )
    .await;
    Ok(Action::requeue(ctx.backoff(&key)))
}
