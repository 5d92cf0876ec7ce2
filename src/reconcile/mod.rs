//! The reconcilers, cluster-agnostic: a spec and the Secrets it names in, a
//! status out. Steps as Stackable operators split them:
//!
//! 0. [`validate`]: the spec checked and parsed once ([`ValidMirror`],
//!    [`ValidInspection`]; the drivers take the interval from it);
//! 1. [`resolve`]: repositories → image references; Secrets → credentials,
//!    CAs, keys (through [`SecretSource`], which the driver implements);
//! 2. [`plan`]: which tags and platforms (pure);
//! 3. [`apply`]: copy / inspect (I/O through the image traits only);
//! 4. [`status`]: conditions and per-tag results (pure).
//!
//! The controller and `kubemirror sync` are two drivers of
//! [`reconcile_mirror`] / [`reconcile_inspection`] + [`status`].

pub mod apply;
mod error;
pub mod plan;
pub mod prune;
pub mod record;
pub mod resolve;
pub mod status;
mod transports;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

pub use apply::{
    ApplyOptions, DriftCheck, InspectOutcome, MirrorOutcome, TagError, TagOutcome, TagResult,
};
pub use error::{Error, ErrorKind};
pub use prune::PruneOutcome;
pub use resolve::{SecretData, SecretSource, StaticSecrets};
pub use transports::LocalTransports;
pub use validate::{ValidInspection, ValidMirror};

use crate::api::v1alpha1::{
    DeletionPolicy, DriftPolicy, ImageInspectionSpec, ImageMirrorSpec, ImageMirrorStatus,
    parse_go_duration,
};
use crate::image::SystemContext;
pub use crate::image::one_line;

/// Re-sync period of an `ImageMirror` without `spec.interval`.
pub const DEFAULT_MIRROR_INTERVAL: Duration = Duration::from_secs(3600);
/// Re-inspection period of an `ImageInspection` without `spec.interval`.
pub const DEFAULT_INSPECTION_INTERVAL: Duration = Duration::from_secs(1800);
/// The shortest interval honoured (a typo like `1ms` must not hammer registries).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What the driver provides to every reconcile.
#[derive(Clone, Default)]
pub struct Env {
    /// The base of every side's context (an auth-file store, an observer).
    pub base: SystemContext,
    pub apply: ApplyOptions,
    /// Where local transports may point (default: `docker://` only).
    pub local_transports: LocalTransports,
    /// Plan only: read both sides, write nothing (`sync -f --dry-run`).
    pub dry_run: bool,
}

/// Who an `ImageMirror` reconcile is for, and what it last reported.
#[derive(Debug, Clone, Copy)]
pub struct MirrorInput<'a> {
    /// `namespace/name`: names the record of what the mirror wrote (see [`record`]).
    pub id: &'a str,
    /// The status before this reconcile: without a record, drift is judged
    /// against the digests it lists.
    pub status: Option<&'a ImageMirrorStatus>,
}

/// The span every reconcile runs in, whichever driver runs it:
/// `reconcile{kind, object="namespace/name"}`. The tag and copy spans nest
/// in it, so that a warning deep inside a copy (a blob retried) says whose
/// copy it is.
pub fn span(kind: &str, namespace: &str, name: &str) -> tracing::Span {
    tracing::info_span!("reconcile", kind, object = %format_args!("{namespace}/{name}"))
}

/// `spec.interval` (or the default), checked.
pub fn interval(spec: Option<&str>, default: Duration) -> Result<Duration, Error> {
    match spec {
        None => Ok(default),
        Some(s) => parse_go_duration(s)
            .map(|d| d.max(MIN_INTERVAL))
            .map_err(|e| Error::Spec(format!("spec.interval: {e}"))),
    }
}

/// Whether the mirror keeps a [`record`] of what it wrote: with prune, with
/// `deletionPolicy: Delete`, and with `driftPolicy: Keep` (drift is then
/// judged against what it wrote, not against the last status).
pub fn keeps_record(spec: &ImageMirrorSpec) -> bool {
    spec.prune == Some(true)
        || spec.deletion_policy == Some(DeletionPolicy::Delete)
        || spec.drift_policy == Some(DriftPolicy::Keep)
}

/// One `ImageMirror` reconcile: validate, then [`reconcile_valid_mirror`].
pub async fn reconcile_mirror(
    spec: &ImageMirrorSpec,
    input: MirrorInput<'_>,
    secrets: &dyn SecretSource,
    env: &Env,
) -> Result<MirrorOutcome, Error> {
    reconcile_valid_mirror(&ValidMirror::new(spec)?, input, secrets, env).await
}

/// One `ImageMirror` reconcile of a validated spec: resolve, plan, copy,
/// prune. `Err` for failures of the whole object; per-tag failures are in
/// the outcome.
pub async fn reconcile_valid_mirror(
    valid: &ValidMirror<'_>,
    input: MirrorInput<'_>,
    secrets: &dyn SecretSource,
    env: &Env,
) -> Result<MirrorOutcome, Error> {
    let spec = valid.spec;
    let selector = &valid.selector;
    let mut resolved =
        resolve::resolve_mirror(spec, secrets, &env.base, &env.local_transports).await?;
    let prune = spec.prune == Some(true);
    require_deletes(spec, &resolved)?;
    let keep = selector.clone();
    resolved.source.ctx.tag_listing.keep = Some(Arc::new(move |t: &str| keep.keeps(t)));
    // Prune needs to know which names are gone at the source.
    let available = if selector.needs_tag_list() || prune {
        Some(apply::list_tags(&resolved.source).await?)
    } else {
        None
    };
    let mut plan = plan::plan_mirror(selector, available.as_deref(), valid.multi_arch.clone())?;
    // Another mirror's record (a source that is itself a mirror) is not an image.
    plan.tags.retain(|t| !record::is_record_tag(t));
    let dest = &resolved.destination;
    let loaded = if keeps_record(spec) {
        record::load(dest, input.id).await?
    } else {
        None
    };
    let mut rec = loaded
        .as_ref()
        .map(|(r, _)| r.clone())
        .unwrap_or_else(|| record::Record::new(input.id));
    let last_status = |tag: &str| {
        input
            .status
            .and_then(|s| s.tags.iter().find(|t| t.name == tag))
            .filter(|t| t.error.is_empty() && !t.drifted && !t.destination_digest.is_empty())
            .map(|t| t.destination_digest.clone())
    };
    let expected = if keeps_record(spec) {
        rec.tags.clone()
    } else {
        plan.tags
            .iter()
            .filter_map(|t| last_status(t).map(|d| (t.clone(), d)))
            .collect()
    };
    let selected: std::collections::BTreeSet<String> = plan.tags.iter().cloned().collect();
    if env.dry_run {
        let mut out = MirrorOutcome {
            dry_run: Some(plan.tags.clone()),
            ..Default::default()
        };
        if prune {
            let candidates = prune::candidates(&rec, Some(&selected));
            let facts = prune::facts(dest, &candidates, &Default::default()).await?;
            out.prune = Some(prune::plan(
                &candidates,
                &facts,
                Some(spec.prune_limit()),
                true,
            ));
        }
        return Ok(out);
    }
    let drift = DriftCheck {
        expected,
        keep: spec.drift_policy == Some(DriftPolicy::Keep),
    };
    let mut out = apply::mirror(
        &resolved,
        &plan,
        available.as_deref(),
        valid.signatures,
        &drift,
        &env.apply,
    )
    .await;
    if !keeps_record(spec) {
        return Ok(out);
    }
    // The record learns what this sync wrote, or found as its last status left it.
    let mut known = std::collections::BTreeMap::new();
    for t in &out.tags {
        if let TagResult::Copied { report, .. } = &t.result {
            let d = &report.destination_digest;
            known.insert(t.tag.clone(), d.clone());
            let ours = rec.tags.get(&t.tag) == Some(d) || last_status(&t.tag).as_ref() == Some(d);
            if !report.up_to_date || ours {
                rec.insert(&t.tag, d);
            }
        }
    }
    if prune {
        let candidates = prune::candidates(&rec, Some(&selected));
        if !candidates.is_empty() {
            let facts = prune::facts(dest, &candidates, &known).await?;
            let mut p = prune::plan(&candidates, &facts, Some(spec.prune_limit()), false);
            prune::execute(dest, &mut p).await;
            prune::update_record(&mut rec, &p);
            out.prune = Some(p);
        } else {
            out.prune = Some(PruneOutcome::default());
        }
    }
    if loaded.as_ref().map(|(r, _)| r) != Some(&rec)
        && (loaded.is_some() || !rec.tags.is_empty())
        && let Err(e) = record::store(dest, &rec).await
    {
        out.record_error = Some(one_line(&e));
    }
    Ok(out)
}

/// Whether the destination repository of `spec` is one kubemirror can
/// delete tags in (a registry); a spec that does not parse counts as not.
pub fn destination_deletes(spec: &ImageMirrorSpec) -> bool {
    crate::transport::parse_repository(spec.destination.repository.trim())
        .is_ok_and(|r| r.supports_delete())
}

/// Prune and `deletionPolicy: Delete` delete at the destination: only a
/// registry can.
fn require_deletes(spec: &ImageMirrorSpec, r: &resolve::ResolvedMirror) -> Result<(), Error> {
    if r.destination.reference.supports_delete() {
        return Ok(());
    }
    let field = if spec.prune == Some(true) {
        "spec.prune"
    } else if spec.deletion_policy == Some(DeletionPolicy::Delete) {
        "spec.deletionPolicy"
    } else {
        return Ok(());
    };
    Err(Error::Spec(format!(
        "{field}: deleting needs a docker:// destination ({} cannot delete tags)",
        r.destination.reference.transport()
    )))
}

/// The deletion of an `ImageMirror` with `deletionPolicy: Delete`: delete
/// every tag the mirror wrote (the rules of prune, without its limit), then
/// its record. The driver lets the object go when the outcome is
/// [`PruneOutcome::finished`].
pub async fn cleanup_mirror(
    spec: &ImageMirrorSpec,
    id: &str,
    secrets: &dyn SecretSource,
    env: &Env,
) -> Result<PruneOutcome, Error> {
    let resolved = resolve::resolve_mirror(spec, secrets, &env.base, &env.local_transports).await?;
    require_deletes(spec, &resolved)?;
    let dest = &resolved.destination;
    let Some((mut rec, digest)) = record::load(dest, id).await? else {
        return Ok(PruneOutcome::default());
    };
    let candidates = prune::candidates(&rec, None);
    let facts = prune::facts(dest, &candidates, &Default::default()).await?;
    let mut p = prune::plan(&candidates, &facts, None, env.dry_run);
    if env.dry_run {
        return Ok(p);
    }
    prune::execute(dest, &mut p).await;
    prune::update_record(&mut rec, &p);
    if p.finished() {
        record::remove(dest, &digest).await?;
    } else {
        record::store(dest, &rec).await?;
    }
    Ok(p)
}

/// One `ImageInspection` reconcile: validate, then [`reconcile_valid_inspection`].
pub async fn reconcile_inspection(
    spec: &ImageInspectionSpec,
    secrets: &dyn SecretSource,
    env: &Env,
) -> Result<InspectOutcome, Error> {
    reconcile_valid_inspection(&ValidInspection::new(spec)?, secrets, env).await
}

/// One `ImageInspection` reconcile of a validated spec: resolve, inspect.
pub async fn reconcile_valid_inspection(
    valid: &ValidInspection<'_>,
    secrets: &dyn SecretSource,
    env: &Env,
) -> Result<InspectOutcome, Error> {
    let resolved =
        resolve::resolve_inspection(valid.spec, secrets, &env.base, &env.local_transports).await?;
    apply::inspect(&resolved, valid.platform.as_ref()).await
}
