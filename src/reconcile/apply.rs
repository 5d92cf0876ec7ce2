//! Apply: the I/O step. Copies each planned tag with the copy engine (one
//! failing tag does not stop the others) and inspects images. Results are
//! data for `status`; nothing here knows about Kubernetes.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use tracing::Instrument;

use super::plan::MirrorPlan;
use super::resolve::{Endpoint, ResolvedInspection, ResolvedMirror};
use super::{Error, one_line};
use crate::api::v1alpha1::{PlatformDigest, SignaturePolicy, SignatureStatus};
use crate::copy::{self, CopyOptions, CopyReport, Progress};
use crate::image::{self, Image, ImageInspectInfo, ImageReference, SystemContext};
use crate::manifest::{Manifest, Parsed, Platform};
use crate::signature::verify::{self, SignatureReport, Subject};
use crate::signature::{self, Target, TrustedKeys};

/// Knobs the driver sets for the I/O step.
#[derive(Clone)]
pub struct ApplyOptions {
    /// Blobs copied at once per image.
    pub jobs: usize,
    /// Tags copied at once.
    pub tag_concurrency: usize,
    pub progress: Option<Arc<dyn Progress>>,
    /// The driver's trust policy (`--policy`): every copy must satisfy it
    /// besides `spec.verification`.
    pub policy: Option<Arc<crate::signature::Policy>>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            jobs: 4,
            tag_concurrency: 2,
            progress: None,
            policy: None,
        }
    }
}

/// What happened to each planned tag, in plan order.
#[derive(Debug, Clone, Default)]
pub struct MirrorOutcome {
    pub tags: Vec<TagOutcome>,
    /// With `spec.prune`: the prune plan and what came of it.
    pub prune: Option<super::prune::PruneOutcome>,
    /// A dry run: the tags the sync would copy (nothing was written).
    pub dry_run: Option<Vec<String>>,
    /// Writing the record of what the mirror wrote failed (the next sync
    /// tries again; an unrecorded tag is never deleted).
    pub record_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TagOutcome {
    pub tag: String,
    pub result: TagResult,
    /// The destination tag was changed by someone else since this mirror
    /// wrote it: what it named then (`None`: absent).
    pub drifted: Option<Option<String>>,
}

#[derive(Debug, Clone)]
pub enum TagResult {
    Copied {
        report: CopyReport,
        /// With `spec.verification`: whether a trusted key signed it.
        verified: Option<bool>,
    },
    /// Drifted and left as found (`spec.driftPolicy: Keep`).
    Kept,
    Failed(TagError),
}

/// How `mirror` treats destination tags changed by someone else.
#[derive(Debug, Clone, Default)]
pub struct DriftCheck {
    /// tag → the digest this mirror last wrote there.
    pub expected: std::collections::BTreeMap<String, String>,
    /// `Keep`: look before copying, and leave a drifted tag.
    pub keep: bool,
}

/// Why one tag failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagError {
    /// What went wrong and what to fix, on one line.
    pub message: String,
    /// `Some` when a registry answered 429 (rate limiting), with its
    /// `Retry-After` if it sent one: the driver waits at least that long.
    pub rate_limited: Option<Option<Duration>>,
}

impl From<String> for TagError {
    fn from(message: String) -> Self {
        TagError {
            message,
            rate_limited: None,
        }
    }
}

impl From<&str> for TagError {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

impl From<image::Error> for TagError {
    fn from(e: image::Error) -> Self {
        TagError {
            message: one_line(&e),
            rate_limited: (e.kind() == image::ErrorKind::RateLimited).then(|| e.retry_after()),
        }
    }
}

impl MirrorOutcome {
    pub fn failed(&self) -> impl Iterator<Item = (&str, &TagError)> {
        self.tags.iter().filter_map(|t| match &t.result {
            TagResult::Failed(e) => Some((t.tag.as_str(), e)),
            TagResult::Copied { .. } | TagResult::Kept => None,
        })
    }

    /// When some tags failed and every failure was a registry's rate
    /// limiting: the longest `Retry-After` among them (`Some(None)`: none sent).
    pub fn rate_limited(&self) -> Option<Option<Duration>> {
        let mut failures = self.failed().peekable();
        failures.peek()?;
        let mut longest = None;
        for (_, e) in failures {
            longest = longest.max(e.rate_limited?);
        }
        Some(longest)
    }
}

/// The source's tags (for the plan).
pub async fn list_tags(src: &Endpoint) -> Result<Vec<String>, Error> {
    src.reference
        .list_tags(&src.ctx)
        .await
        .map_err(|e| Error::image(format!("listing tags of {}", src.reference), e))
}

/// Copy every planned tag; failures are per tag.
/// `source_tags`: the source's tag list when the plan needed it; attachments
/// are then looked up in it, and kept current on images already mirrored.
pub async fn mirror(
    r: &ResolvedMirror,
    plan: &MirrorPlan,
    source_tags: Option<&[String]>,
    signatures: SignaturePolicy,
    drift: &DriftCheck,
    opts: &ApplyOptions,
) -> MirrorOutcome {
    let copy_opts = CopyOptions {
        source_tags: source_tags.map(|t| Arc::new(t.iter().cloned().collect())),
        multi_arch: plan.multi_arch.clone(),
        jobs: opts.jobs.max(1),
        signatures: match signatures {
            SignaturePolicy::Drop => copy::SignaturePolicy::Drop,
            SignaturePolicy::Copy | SignaturePolicy::Require => copy::SignaturePolicy::Copy,
        },
        incremental: true,
        progress: opts.progress.clone(),
        // Cosign signatures, attestations, SBOMs and OCI referrers travel
        // with the image (registry to registry; not with `signatures: Drop`).
        attachments: true,
        // Trust is `spec.verification`'s, judged per tag before the copy,
        // and the driver's `--policy`, judged by the copy on the same bytes.
        policy: opts.policy.clone(),
        ..CopyOptions::default()
    };
    // Local layouts keep every tag in one file (`index.json`, an archive):
    // the copy engine writes them one at a time (`ImageReference::write_lock`),
    // whichever object or tag the copy is for.
    let concurrency = opts.tag_concurrency.max(1);
    let copy_opts = &copy_opts;
    let one = |tag: String| -> BoxFuture<'_, TagOutcome> {
        let span = tracing::info_span!("tag", tag = %tag);
        Box::pin(async move {
            let expected = drift.expected.get(&tag);
            if drift.keep
                && let Some(expected) = expected
            {
                match look(r, &tag).await {
                    Ok(found) if found.as_ref() != Some(expected) => {
                        return TagOutcome {
                            tag,
                            result: TagResult::Kept,
                            drifted: Some(found),
                        };
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return TagOutcome {
                            tag,
                            result: TagResult::Failed(e),
                            drifted: None,
                        };
                    }
                }
            }
            let result = match mirror_tag(r, &tag, signatures, copy_opts)
                .instrument(span)
                .await
            {
                Ok((report, verified)) => TagResult::Copied { report, verified },
                Err(e) => TagResult::Failed(e),
            };
            // What the copy found at the destination: drifted when it is
            // neither what this mirror wrote nor the source's image.
            let drifted = match (&result, expected) {
                (TagResult::Copied { report, .. }, Some(expected)) => {
                    report.destination_before.clone().filter(|before| {
                        before.as_ref() != Some(expected)
                            && before.as_ref() != Some(&report.destination_digest)
                    })
                }
                _ => None,
            };
            TagOutcome {
                tag,
                result,
                drifted,
            }
        })
    };
    let copied: Vec<TagOutcome> = futures::stream::iter(plan.tags.clone())
        .map(one)
        .buffered(concurrency)
        .collect()
        .await;
    let mut tags = copied;
    tags.extend(plan.missing.iter().map(|t| TagOutcome {
        tag: t.clone(),
        result: TagResult::Failed(format!("tag {t:?} not found in {}", r.source.reference).into()),
        drifted: None,
    }));
    MirrorOutcome {
        tags,
        ..Default::default()
    }
}

/// The digest the destination's `tag` names now (`None`: absent).
async fn look(r: &ResolvedMirror, tag: &str) -> Result<Option<String>, TagError> {
    let dst = r.destination.reference.with_tag(tag)?;
    let d = super::record::current_digest(dst.as_ref(), &r.destination.ctx).await?;
    Ok(d.map(|d| d.to_string()))
}

async fn mirror_tag(
    r: &ResolvedMirror,
    tag: &str,
    signatures: SignaturePolicy,
    opts: &CopyOptions,
) -> Result<(CopyReport, Option<bool>), TagError> {
    let err = TagError::from;
    let src = r.source.reference.with_tag(tag).map_err(err)?;
    let dst = r.destination.reference.with_tag(tag).map_err(err)?;
    let mut verified = None;
    let mut opts = std::borrow::Cow::Borrowed(opts);
    // `Require` is refused without keys (`reconcile_mirror`): with keys, a
    // tag needs a signature that verifies, whether or not it says Require.
    if !r.keys.is_empty() {
        // Judged before anything is written: a tag that fails leaves the
        // destination as it was. The manifest judged is the one copied.
        let (manifest, reports) = judge_signatures(src.as_ref(), &r.source.ctx, &r.keys)
            .await
            .map_err(err)?;
        if !verify::any_verified(&reports) {
            let why: Vec<&str> = reports.iter().map(|r| r.reason.as_str()).collect();
            let required = match signatures {
                SignaturePolicy::Require => "spec.signatures is Require",
                _ => "spec.verification",
            };
            return Err(TagError::from(if why.is_empty() {
                format!("{src} has no signatures; {required}: one by a trusted key is needed")
            } else {
                format!(
                    "no signature of {src} is by a trusted key ({required}): {}",
                    why.join("; ")
                )
            }));
        }
        verified = Some(true);
        opts.to_mut().manifest = Some(manifest);
    }
    copy::copy_image(
        src.as_ref(),
        &r.source.ctx,
        dst.as_ref(),
        &r.destination.ctx,
        &opts,
    )
    .await
    .map_err(|e| {
        // The copy engine speaks the command line's language; a spec has
        // its own switch for the same thing.
        let mut e = err(e);
        e.message = e
            .message
            .replace("--remove-signatures", "spec.signatures: Drop");
        e
    })
    .map(|report| (report, verified))
}

/// Read the top-level manifest of an image once, and its signatures (the
/// transport's, lookaside, sigstore attachments), judged against `keys`:
/// (the manifest judged, one report per signature). Copy that manifest,
/// not what the tag names later.
async fn judge_signatures(
    reference: &dyn ImageReference,
    ctx: &SystemContext,
    keys: &TrustedKeys,
) -> image::Result<(Manifest, Vec<SignatureReport>)> {
    let source = reference.new_image_source(ctx).await?;
    let manifest = source.get_manifest(None).await?;
    let digest = manifest.digest();
    let mut sigs = signature::read(source.as_ref(), Target::TopLevel(&digest)).await?;
    sigs.extend(referrer_bundles(reference, ctx, keys, &digest).await?);
    let docker = reference.docker_reference();
    let subject = Subject {
        reference: docker.as_ref(),
        manifest_digest: &digest,
        manifest: Some(&manifest.bytes),
    };
    let reports = verify::report(keys, &subject, &sigs, None);
    Ok((manifest, reports))
}

/// With keyless verification, the Sigstore bundles attached to `digest` as
/// OCI referrers (fallback tag schema; registries only): cosign 3 signs so.
async fn referrer_bundles(
    reference: &dyn ImageReference,
    ctx: &SystemContext,
    keys: &TrustedKeys,
    digest: &crate::digest::Digest,
) -> image::Result<Vec<crate::image::Signature>> {
    if keys.keyless.is_none() || !reference.stores_attachments() {
        return Ok(Vec::new());
    }
    signature::referrers::read_bundles(reference, ctx, digest).await
}

/// What an inspection found.
#[derive(Debug, Clone, Default)]
pub struct InspectOutcome {
    /// The reference inspected, for messages.
    pub reference: String,
    pub info: ImageInspectInfo,
    pub platforms: Vec<PlatformDigest>,
    pub signatures: Vec<SignatureStatus>,
}

/// Inspect the image for `platform` (the host's, else the index's first, when `None`).
pub async fn inspect(
    r: &ResolvedInspection,
    platform: Option<&Platform>,
) -> Result<InspectOutcome, Error> {
    let reference = &r.image.reference;
    let ctx = &r.image.ctx;
    let what = format!("inspecting {reference}");
    let source = reference
        .new_image_source(ctx)
        .await
        .map_err(|e| Error::image(&what, e))?;
    let image = Image::new(source);
    let top = image.manifest().await.map_err(|e| Error::image(&what, e))?;
    let mut platforms = Vec::new();
    if let Ok(Parsed::Index(index)) = top.parse() {
        for d in index.manifests() {
            if let Some(p) = Platform::of(d) {
                platforms.push(PlatformDigest {
                    platform: p.to_string(),
                    digest: d.digest().to_string(),
                });
            }
        }
    }
    let mut info = match image.inspect(platform).await {
        Ok(i) => i,
        Err(e) if platform.is_none() && !platforms.is_empty() => {
            // Not the host's platform: describe the index's first image.
            let first =
                Platform::parse(&platforms[0].platform).map_err(|_| Error::image(&what, e))?;
            image
                .inspect(Some(&first))
                .await
                .map_err(|e| Error::image(&what, e))?
        }
        Err(e) => return Err(Error::image(&what, e)),
    };
    if let Some(d) = reference.docker_reference() {
        info.name = crate::reference::name(&d);
        info.tag = d.tag().unwrap_or_default().to_string();
    }
    if reference.lists_repository_tags() {
        info.repo_tags = reference
            .list_tags(ctx)
            .await
            .map_err(|e| Error::image(format!("listing tags of {reference}"), e))?;
    }
    let top_digest = top.digest();
    let mut sigs = signature::read(image.source(), Target::TopLevel(&top_digest))
        .await
        .map_err(|e| Error::image(format!("reading signatures of {reference}"), e))?;
    sigs.extend(
        referrer_bundles(reference.as_ref(), ctx, &r.keys, &top_digest)
            .await
            .map_err(|e| Error::image(format!("reading referrers of {reference}"), e))?,
    );
    let docker = reference.docker_reference();
    let subject = Subject {
        reference: docker.as_ref(),
        manifest_digest: &top_digest,
        manifest: Some(&top.bytes),
    };
    let signatures = verify::report(&r.keys, &subject, &sigs, None)
        .into_iter()
        .map(signature_status)
        .collect();
    Ok(InspectOutcome {
        reference: reference.to_string(),
        info,
        platforms,
        signatures,
    })
}

/// A verification report as status shows it.
fn signature_status(r: SignatureReport) -> SignatureStatus {
    SignatureStatus {
        type_: r.type_,
        manifest_digest: r.manifest_digest,
        identity: r.identity,
        key_id: r.key_id,
        issuer: r.issuer,
        log_index: r.log_index,
        integrated_time: r.integrated_time,
        verified: r.verified,
        reason: r.reason,
        payload: r.payload,
    }
}

#[cfg(test)]
mod tests;
