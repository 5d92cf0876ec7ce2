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
pub mod resolve;
pub mod status;
mod transports;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

pub use apply::{ApplyOptions, InspectOutcome, MirrorOutcome, TagError, TagOutcome, TagResult};
pub use error::{Error, ErrorKind};
pub use resolve::{SecretData, SecretSource, StaticSecrets};
pub use transports::LocalTransports;
pub use validate::{ValidInspection, ValidMirror};

use crate::api::v1alpha1::{ImageInspectionSpec, ImageMirrorSpec, parse_go_duration};
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

/// One `ImageMirror` reconcile: validate, then [`reconcile_valid_mirror`].
pub async fn reconcile_mirror(
    spec: &ImageMirrorSpec,
    secrets: &dyn SecretSource,
    env: &Env,
) -> Result<MirrorOutcome, Error> {
    reconcile_valid_mirror(&ValidMirror::new(spec)?, secrets, env).await
}

/// One `ImageMirror` reconcile of a validated spec: resolve, plan, copy.
/// `Err` for failures of the whole object; per-tag failures are in the outcome.
pub async fn reconcile_valid_mirror(
    valid: &ValidMirror<'_>,
    secrets: &dyn SecretSource,
    env: &Env,
) -> Result<MirrorOutcome, Error> {
    let spec = valid.spec;
    let selector = &valid.selector;
    let mut resolved =
        resolve::resolve_mirror(spec, secrets, &env.base, &env.local_transports).await?;
    let keep = selector.clone();
    resolved.source.ctx.tag_listing.keep = Some(Arc::new(move |t: &str| keep.keeps(t)));
    let available = if selector.needs_tag_list() {
        Some(apply::list_tags(&resolved.source).await?)
    } else {
        None
    };
    let plan = plan::plan_mirror(selector, available.as_deref(), valid.multi_arch.clone())?;
    Ok(apply::mirror(
        &resolved,
        &plan,
        available.as_deref(),
        valid.signatures,
        &env.apply,
    )
    .await)
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
