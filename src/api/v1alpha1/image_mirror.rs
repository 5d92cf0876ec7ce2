//! `ImageMirror`: keep a destination repository in step with the selected tags
//! of a source repository.

// Each `printcolumn(...)` repeats `type_ = ...`: not a duplicate.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{SecretKeyRef, SecretRef, VerificationSpec};
use super::{Condition, Time};

/// Mirror the selected tags of `source.repository` to `destination.repository`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "kubemirror.dev",
    version = "v1alpha1",
    kind = "ImageMirror",
    plural = "imagemirrors",
    singular = "imagemirror",
    shortname = "imir",
    namespaced,
    status = "ImageMirrorStatus",
    derive = "PartialEq",
    doc = "Mirrors the selected tags of a source repository to a destination repository",
    printcolumn(
        name = "Source",
        type_ = "string",
        json_path = ".spec.source.repository"
    ),
    printcolumn(
        name = "Destination",
        type_ = "string",
        json_path = ".spec.destination.repository"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Synced",
        type_ = "integer",
        description = "Tags in step with the source",
        json_path = ".status.summary.synced"
    ),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.lastSyncTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ImageMirrorSpec {
    /// Where images are read from.
    pub source: RepositorySpec,
    /// Where images are written to.
    pub destination: RepositorySpec,
    /// Which source tags to mirror; at least one selector.
    pub tags: TagSelector,
    /// Platforms to copy from an index (`os/arch[/variant]`); empty: every platform.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(super::PLATFORM_PATTERN)))]
    pub platforms: Vec<String>,
    /// `Copy` (default) copies signatures, `Drop` leaves them, `Require` fails a tag without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<SignaturePolicy>,
    /// Mirror only what trusted keys signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSpec>,
    /// Re-sync period, Go duration syntax (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(super::DURATION_PATTERN))]
    pub interval: Option<String>,
    /// Stop reconciling while true (`Ready` then says `Suspended`); set it
    /// to false to resume, which syncs at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Delete destination tags this mirror wrote that left the selection
    /// (gone at the source, out of range, no longer among `latest`). Never a
    /// tag it did not write, nor one whose digest changed since it wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
    /// The most tags one sync may prune (default 10): a plan deleting more
    /// deletes none and says so, so that a source listing no tags cannot
    /// empty the mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub prune_limit: Option<i32>,
    /// What to do with a destination tag someone else changed:
    /// `Overwrite` (default) restores it, `Keep` leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_policy: Option<DriftPolicy>,
    /// What happens to the destination when the object is deleted:
    /// `Retain` (default) keeps it, `Delete` removes the tags this mirror
    /// wrote (same rules as `prune`) before the object goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Default of `spec.pruneLimit`.
pub const DEFAULT_PRUNE_LIMIT: i32 = 10;

impl ImageMirrorSpec {
    /// `spec.pruneLimit` or its default (negative values count as 0).
    pub fn prune_limit(&self) -> usize {
        self.prune_limit.unwrap_or(DEFAULT_PRUNE_LIMIT).max(0) as usize
    }
}

/// `spec.driftPolicy`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DriftPolicy {
    /// Restore the tag to the source's image.
    #[default]
    Overwrite,
    /// Leave the tag as someone else set it (and report it).
    Keep,
}

/// `spec.deletionPolicy`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the destination's tags when the object is deleted.
    #[default]
    Retain,
    /// Delete the tags this mirror wrote before the object goes.
    Delete,
}

/// One side of a mirror: a repository and how to reach it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositorySpec {
    /// A repository without tag (`registry:5000/mirror/app`); transport-qualified
    /// (`oci:/path`, `dir:/path`) allowed, `docker://` is the default.
    #[schemars(length(min = 1))]
    pub repository: String,
    /// A `kubernetes.io/dockerconfigjson` Secret with credentials for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// Require HTTPS and verify certificates (default true); false also allows plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    /// An extra CA certificate (PEM) to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Simple-signing lookaside URL (`https://`, `file://`): read for the source, written for the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_lookaside: Option<String>,
}

/// Which source tags to mirror. Names are taken as listed; `pattern` and
/// `semver` filter the source's tag list (both must match when both are set),
/// and `latest` keeps the N highest of the filtered tags (of all tags when it
/// is the only filter).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1))]
pub struct TagSelector {
    /// Tags to mirror by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// A regular expression (Rust `regex` syntax) over the source tag list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// A semver range (`>=1.26.0 <2.0.0`, `~1.27`, `^1 || ^2`); a leading `v` on tags is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// Keep only the N highest tags after filtering (by semver, else lexically).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub latest: Option<i32>,
}

/// What happens to signatures.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum SignaturePolicy {
    /// Copy whatever signatures the source has.
    #[default]
    Copy,
    /// Copy none.
    Drop,
    /// Copy them, and fail a tag that has none.
    Require,
}

/// What the controller last saw and did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageMirrorStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// When a sync last changed this status (a sync that finds everything
    /// up to date is not written, so this is the last change, not the last check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// One entry per selected tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagStatus>,
    /// Counts over `tags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<TagSummary>,
    /// With `spec.prune` (or a deletion under `deletionPolicy: Delete`):
    /// the last prune plan, one entry per tag this mirror wrote that left
    /// the selection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<PruneStatus>,
    /// How many entries of each list were left out to keep the status
    /// small (`tags: 800`); absent when nothing was.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub omitted: std::collections::BTreeMap<String, i64>,
}

/// The last copy of one tag.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_digest: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub destination_digest: String,
    /// When this tag was last written (or found up to date for the first time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<Time>,
    #[serde(default)]
    pub bytes_copied: i64,
    #[serde(default)]
    pub blobs_copied: i64,
    #[serde(default)]
    pub blobs_skipped: i64,
    /// Signatures copied.
    #[serde(default)]
    pub signatures: i64,
    /// OCI 1.1 referrers (signatures, attestations, SBOMs naming the image
    /// as `subject`) copied with it; absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub referrers: i64,
    /// With `spec.verification`: whether a trusted key signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Why this tag failed; empty when it succeeded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The destination tag was changed by someone else since this mirror
    /// wrote it (restored or kept, per `spec.driftPolicy`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drifted: bool,
}

/// One tag of a prune plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PruneStatus {
    pub name: String,
    /// The digest this mirror wrote under the tag.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// `Deleted`, `Planned` (dry run), `Pending` (over `spec.pruneLimit`),
    /// `Skipped` (changed by someone else, or shares its manifest with a
    /// tag that stays), `Gone` (already absent) or `Failed`.
    pub action: String,
    /// Why, for every action but `Deleted`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// Counts over the selected tags.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct TagSummary {
    pub selected: i64,
    pub synced: i64,
    pub failed: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}
