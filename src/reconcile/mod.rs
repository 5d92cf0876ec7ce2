//! The reconcilers, cluster-agnostic: a spec and the Secrets it names in, a
//! status out. Steps as Stackable operators split them:
//!
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

use std::sync::Arc;
use std::time::Duration;

pub use apply::{ApplyOptions, InspectOutcome, MirrorOutcome, TagError, TagOutcome, TagResult};
pub use error::{Error, ErrorKind};
pub use resolve::{SecretData, SecretSource, StaticSecrets};
pub use transports::LocalTransports;

use crate::api::v1alpha1::{
    ImageInspectionSpec, ImageMirrorSpec, SignaturePolicy, parse_go_duration,
};
use crate::image::SystemContext;
pub use crate::image::one_line;
use crate::manifest::Platform;

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

/// One `ImageMirror` reconcile: resolve, plan, copy. `Err` for failures of
/// the whole object; per-tag failures are in the outcome.
pub async fn reconcile_mirror(
    spec: &ImageMirrorSpec,
    secrets: &dyn SecretSource,
    env: &Env,
) -> Result<MirrorOutcome, Error> {
    let selector = plan::Selector::new(&spec.tags)?;
    plan::multi_arch(&spec.platforms)?;
    interval(spec.interval.as_deref(), DEFAULT_MIRROR_INTERVAL)?;
    require_has_keys(spec)?;
    let mut resolved =
        resolve::resolve_mirror(spec, secrets, &env.base, &env.local_transports).await?;
    let keep = selector.clone();
    resolved.source.ctx.tag_listing.keep = Some(Arc::new(move |t: &str| keep.keeps(t)));
    let available = if selector.needs_tag_list() {
        Some(apply::list_tags(&resolved.source).await?)
    } else {
        None
    };
    let plan = plan::plan_mirror(&selector, available.as_deref(), &spec.platforms)?;
    Ok(apply::mirror(
        &resolved,
        &plan,
        available.as_deref(),
        spec.signatures.unwrap_or_default(),
        &env.apply,
    )
    .await)
}

/// `signatures: Require` means a signature that verifies against
/// `spec.verification.keys`: without keys anyone's signature would do, so
/// the spec is refused (the CRD schema cannot say it without CEL).
fn require_has_keys(spec: &ImageMirrorSpec) -> Result<(), Error> {
    let keys = spec.verification.as_ref().map_or(0, |v| v.keys.len());
    if spec.signatures == Some(SignaturePolicy::Require) && keys == 0 {
        return Err(Error::Spec(
            "spec.verification.keys: required when spec.signatures is Require (list the public keys whose signatures count)".into(),
        ));
    }
    Ok(())
}

/// One `ImageInspection` reconcile: resolve, inspect.
pub async fn reconcile_inspection(
    spec: &ImageInspectionSpec,
    secrets: &dyn SecretSource,
    env: &Env,
) -> Result<InspectOutcome, Error> {
    let platform = spec
        .platform
        .as_deref()
        .map(|p| Platform::parse(p).map_err(|e| Error::Spec(format!("spec.platform: {e}"))))
        .transpose()?;
    interval(spec.interval.as_deref(), DEFAULT_INSPECTION_INTERVAL)?;
    let resolved =
        resolve::resolve_inspection(spec, secrets, &env.base, &env.local_transports).await?;
    apply::inspect(&resolved, platform.as_ref()).await
}
