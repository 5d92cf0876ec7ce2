//! The image model: the seed's interfaces (containers/image `types.go`) in async
//! Rust. Transports implement [`ImageReference`], [`ImageSource`] and
//! [`ImageDestination`] (and, where a catalog exists, [`Registry`] /
//! [`Repository`]); the copy engine and the reconcilers see only these traits.
//!
//! Rules for implementers, in the order the copy engine calls them:
//! 1. Manifests are [`Manifest`]s: the exact bytes stored, never re-serialised.
//! 2. Blobs are streams ([`Blob`]); nothing here holds a whole blob in memory.
//! 3. [`ImageDestination::put_blob`] MUST check the bytes against the announced
//!    digest (and size, when given) and store nothing under that digest on a
//!    mismatch; use [`crate::digest::VerifyingStream`].
//! 4. A destination presents nothing as done before [`ImageDestination::commit`]
//!    (the registry transport: before the top-level `put_manifest`, which is the
//!    last write the copy engine makes apart from signatures).
//! 5. Every method takes `&self`: the engine calls `get_blob` / `put_blob`
//!    concurrently, so implementations use interior mutability.

pub mod error;
pub mod inspect;
pub mod registry_context;

mod cached;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use oci_spec::image::Descriptor;

pub use cached::Image;
pub use error::{Error, ErrorKind, Result, one_line, temp_file_op};
pub use inspect::{ImageInspectInfo, InspectLayer};
pub use registry_context::RegistryContext;

use crate::digest::Digest;
pub use crate::manifest::Manifest;
use crate::reference::Reference;

/// The bytes of a blob, as they arrive.
pub type BlobStream = BoxStream<'static, Result<Bytes>>;

/// A blob being read: its stream and, when the store knows it, its size.
pub struct Blob {
    pub stream: BlobStream,
    pub size: Option<u64>,
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blob").field("size", &self.size).finish()
    }
}

/// What is known of a blob before reading it (a manifest descriptor, mostly).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: Option<u64>,
    pub media_type: Option<String>,
}

impl BlobInfo {
    pub fn new(digest: Digest, size: Option<u64>) -> Self {
        BlobInfo {
            digest,
            size,
            media_type: None,
        }
    }
}

impl From<&Descriptor> for BlobInfo {
    fn from(d: &Descriptor) -> Self {
        BlobInfo {
            digest: d.digest().clone(),
            size: Some(d.size()),
            media_type: Some(d.media_type().to_string()),
        }
    }
}

/// A signature attached to an image (containers/image's internal
/// `signature.Signature`): stored apart from the image, copied with it.
#[derive(Clone, PartialEq, Eq)]
pub enum Signature {
    /// containers-signature(5) "simple signing": the whole binary OpenPGP
    /// message (the payload is inside it).
    SimpleSigning(Bytes),
    /// A sigstore (cosign) signature: the payload layer, its media type and the
    /// layer's annotations (the signature itself is in
    /// `dev.cosignproject.cosign/signature`).
    Sigstore {
        media_type: String,
        payload: Bytes,
        annotations: BTreeMap<String, String>,
    },
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signature::SimpleSigning(b) => write!(f, "SimpleSigning({} bytes)", b.len()),
            Signature::Sigstore { payload, .. } => write!(f, "Sigstore({} bytes)", payload.len()),
        }
    }
}

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself: only for putting on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Registry credentials.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Auth {
    /// Username and password (HTTP Basic, or the token server's Basic).
    Basic { username: String, password: Secret },
    /// An identity (refresh) token from `docker login`, used with the OAuth2
    /// POST form at the token server.
    IdentityToken { username: String, token: Secret },
}

impl Auth {
    /// Parse `--creds USER[:PASSWORD]`.
    pub fn from_creds(s: &str) -> Result<Self> {
        let (u, p) = s.split_once(':').unwrap_or((s, ""));
        if u.is_empty() {
            return Err(Error::Invalid(
                "invalid credentials: want USERNAME[:PASSWORD]".into(),
            ));
        }
        Ok(Auth::Basic {
            username: u.to_string(),
            password: Secret::new(p),
        })
    }
}

/// Where a transport finds credentials for a registry host when none were
/// given explicitly (auth files, credential helpers, Kubernetes Secrets).
/// Implemented in `crate::credentials`.
pub trait CredentialStore: Send + Sync {
    /// Credentials for `registry` (`host[:port]`; Docker Hub as `docker.io`),
    /// or `None` for anonymous access.
    fn lookup(&self, registry: &str) -> Result<Option<Auth>>;

    /// Credentials for `repository` (`path/name`, no host) on `registry`:
    /// stores that hold per-namespace entries (containers-auth.json(5)
    /// `host/namespace` keys) pick the longest match. Defaults to [`CredentialStore::lookup`].
    fn lookup_for_repository(&self, registry: &str, repository: &str) -> Result<Option<Auth>> {
        let _ = repository;
        self.lookup(registry)
    }

    /// A digest of everything the store answers from, when its answers
    /// depend on nothing else: stores with equal fingerprints share registry
    /// sessions (connections, tokens, the learned auth challenge) even when
    /// they are different objects, as the controller builds a fresh store
    /// from a Secret on every reconcile. `None` (the default, and for stores
    /// that run credential helpers): sessions are shared by the same object only.
    fn fingerprint(&self) -> Option<String> {
        None
    }
}

/// Where simple signatures of images in one registry or namespace live
/// (containers-registries.d(5)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureStorage {
    /// Lookaside base URL to read from (`file://` or `http(s)://`).
    pub lookaside: Option<String>,
    /// Lookaside base URL to write to (`lookaside-staging`, else `lookaside`).
    pub lookaside_staging: Option<String>,
    /// Whether sigstore attachments (`sha256-<digest>.sig`) are read and written.
    pub use_sigstore_attachments: bool,
}

/// registries.d configuration, resolved per image (implemented in
/// `crate::signature`).
pub trait SignatureStorageConfig: Send + Sync {
    fn storage_for(&self, image: &Reference) -> SignatureStorage;
}

/// Counts what a transport does on the wire, for reports and metrics.
pub trait RequestObserver: Send + Sync {
    /// One HTTP request was answered with `status` (0 for a connection failure).
    fn request(&self, host: &str, method: &str, status: u16);
}

/// Options for opening sources and destinations (containers/image's
/// `SystemContext`). One per side of a copy.
#[derive(Clone)]
pub struct SystemContext {
    /// Sessions, 429 cool-off and blob windows per registry host, shared by
    /// every context the CLI run or controller makes ([`RegistryContext`]).
    /// The default is the process-wide [`RegistryContext::process_default`],
    /// for callers that do not care.
    pub registry: Arc<RegistryContext>,
    /// `Some(false)`: skip TLS verification and allow plain HTTP.
    pub tls_verify: Option<bool>,
    /// containers-certs.d(5) directory: `*.crt` CAs, `*.cert`/`*.key` client pairs.
    pub cert_dir: Option<PathBuf>,
    /// Extra CA certificates (PEM), e.g. from a Kubernetes Secret.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Explicit credentials (`--creds`); take precedence over the store.
    pub credentials: Option<Auth>,
    /// Where to look credentials up when `credentials` is `None`.
    pub credential_store: Option<Arc<dyn CredentialStore>>,
    /// Retries after the first attempt for transient failures.
    pub retry_times: u32,
    /// registries.d: lookaside and sigstore-attachment settings.
    pub signature_storage: Option<Arc<dyn SignatureStorageConfig>>,
    /// Observes every registry request.
    pub observer: Option<Arc<dyn RequestObserver>>,
    /// While a registry cools off after a 429, fail its requests at once
    /// (an error with the wait as `retry_after`) instead of waiting: for the
    /// controller, which requeues the object rather than hold a worker.
    pub fail_fast_when_rate_limited: bool,
    /// `User-Agent` for registry requests (containers/image's
    /// `DockerRegistryUserAgent`); `None`: `kubemirror/VERSION`.
    pub user_agent: Option<String>,
    /// How registry tag listings are bounded and filtered.
    pub tag_listing: TagListing,
}

impl Default for SystemContext {
    fn default() -> Self {
        SystemContext {
            registry: RegistryContext::process_default(),
            tls_verify: None,
            cert_dir: None,
            extra_ca_pem: Vec::new(),
            credentials: None,
            credential_store: None,
            retry_times: 0,
            signature_storage: None,
            observer: None,
            fail_fast_when_rate_limited: false,
            user_agent: None,
            tag_listing: TagListing::default(),
        }
    }
}

/// Tags read from a registry at most, by default (over all pages of one
/// listing): 500,000 names of up to 128 bytes.
pub const DEFAULT_MAX_TAGS: usize = 500_000;

/// Bounds on a registry's tag listing, which is parsed page by page: at most
/// `max_tags` names are read (past it the listing fails, naming the cap),
/// and only those `keep` accepts are held in memory.
#[derive(Clone)]
pub struct TagListing {
    pub max_tags: usize,
    /// `None`: keep every tag.
    pub keep: Option<KeepTag>,
}

/// Whether a listed tag is kept ([`TagListing::keep`]).
pub type KeepTag = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl Default for TagListing {
    fn default() -> Self {
        TagListing {
            max_tags: DEFAULT_MAX_TAGS,
            keep: None,
        }
    }
}

impl fmt::Debug for SystemContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemContext")
            .field("tls_verify", &self.tls_verify)
            .field("cert_dir", &self.cert_dir)
            .field("credentials", &self.credentials)
            .field("retry_times", &self.retry_times)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

/// A transport-qualified image name (containers-transports(5)), parsed by
/// `transport::parse_image_name`. `Display` prints it back in that syntax.
#[async_trait]
pub trait ImageReference: Send + Sync + fmt::Display + fmt::Debug {
    /// `docker`, `oci`, `dir`, `docker-archive` or `oci-archive`.
    fn transport(&self) -> &'static str;

    /// The docker reference this image is known as, if any.
    fn docker_reference(&self) -> Option<Reference>;

    /// Whether artifacts attached to an image by tag (cosign's
    /// `sha256-<hex>.sig` / `.att` / `.sbom`, the OCI referrers fallback tag)
    /// live beside it here, so that [`ImageReference::with_tag`] reaches
    /// them: true for registries.
    fn stores_attachments(&self) -> bool {
        false
    }

    /// Whether [`ImageReference::list_tags`] names the tags of a registry
    /// repository this image is one version of, so that `inspect` shows them
    /// as `RepoTags` (as skopeo does for registries only): true for registries.
    fn lists_repository_tags(&self) -> bool {
        false
    }

    /// Whether writes to this reference may overlap with other writes to
    /// the same place: `None` when they may (a registry: every tag is a
    /// manifest of its own); else a key naming the store every tag shares
    /// (an OCI layout's `index.json`, an archive file), under which the copy
    /// engine writes one image at a time per registry context. The default
    /// is the cautious one: the reference itself.
    fn write_lock(&self) -> Option<String> {
        Some(self.to_string())
    }

    /// The same repository / layout with `tag` instead of this reference's tag.
    fn with_tag(&self, tag: &str) -> Result<Box<dyn ImageReference>>;

    /// Open for reading.
    async fn new_image_source(&self, ctx: &SystemContext) -> Result<Box<dyn ImageSource>>;

    /// Open for writing.
    async fn new_image_destination(&self, ctx: &SystemContext)
    -> Result<Box<dyn ImageDestination>>;

    /// The tags of this reference's repository (or layout).
    async fn list_tags(&self, ctx: &SystemContext) -> Result<Vec<String>> {
        let _ = ctx;
        Err(Error::Unsupported(format!(
            "listing tags is not supported for {} references",
            self.transport()
        )))
    }

    /// Whether [`ImageReference::delete_manifest`] is implemented (registries).
    fn supports_delete(&self) -> bool {
        false
    }

    /// Delete the manifest `digest` from this reference's repository (the
    /// reference's own tag is ignored). As in a registry, every tag naming
    /// that manifest goes with it: callers check a digest's other tags
    /// first. A store that refuses deletes says so in the error.
    async fn delete_manifest(&self, ctx: &SystemContext, digest: &Digest) -> Result<()> {
        let _ = (ctx, digest);
        Err(Error::Unsupported(format!(
            "deleting images is not supported for {} references (only docker://)",
            self.transport()
        )))
    }
}

/// The read side of a transport (containers/image `ImageSource`).
#[async_trait]
pub trait ImageSource: Send + Sync {
    /// The reference this source reads (its `Display` is the
    /// transport-qualified name, for messages).
    fn reference(&self) -> &dyn ImageReference;

    /// The docker reference the image was intended to be known as.
    fn intended_docker_reference(&self) -> Option<Reference> {
        None
    }

    /// The top-level manifest (`instance` = `None`), or the manifest with that
    /// digest among this image's index entries. Exact bytes and type; a
    /// transport checks fetched bytes against a requested digest.
    async fn get_manifest(&self, instance: Option<&Digest>) -> Result<Manifest>;

    /// The digest of the top-level manifest. The default fetches it; the
    /// registry transport answers with one `HEAD`.
    async fn manifest_digest(&self) -> Result<Digest> {
        Ok(self.get_manifest(None).await?.digest())
    }

    /// A blob's bytes as a stream. Not verified here: whoever stores or
    /// interprets them verifies (see the module rules).
    async fn get_blob(&self, info: &BlobInfo) -> Result<Blob>;

    /// The OCI 1.1 referrers of the manifest `digest` (OCI index JSON, as
    /// the registry's referrers API sends it, filtered by `artifact_type`
    /// when the registry applies the filter); `None` when the transport or
    /// the registry has no referrers API (then the referrers tag is the
    /// fallback).
    async fn referrers(
        &self,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Bytes>> {
        let _ = (digest, artifact_type);
        Ok(None)
    }

    /// Signatures of the top-level image or of one instance.
    async fn get_signatures(&self, instance: Option<&Digest>) -> Result<Vec<Signature>> {
        let _ = instance;
        Ok(Vec::new())
    }

    /// Signatures of the manifest `digest`, which is this image's top level
    /// when `top_level` (else one instance of its index). For callers that
    /// hold the manifest already: a transport that stores signatures by
    /// digest (a registry: lookaside, sigstore attachments) answers for that
    /// digest, never for whatever the tag names by now. The default asks
    /// [`ImageSource::get_signatures`].
    async fn signatures_of(&self, digest: &Digest, top_level: bool) -> Result<Vec<Signature>> {
        self.get_signatures(if top_level { None } else { Some(digest) })
            .await
    }
}

/// A hint for [`ImageDestination::try_reusing_blob`]: where the blob comes
/// from, so a registry can mount it instead of receiving it.
#[derive(Debug, Clone, Default)]
pub struct ReuseHint {
    /// The source image's docker reference, when it is on a registry.
    pub source: Option<Reference>,
}

/// How a blob ended up at the destination without an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reused {
    /// It was already there.
    Present,
    /// It was mounted from another repository on the same registry.
    Mounted,
}

/// The write side of a transport (containers/image `ImageDestination`).
#[async_trait]
pub trait ImageDestination: Send + Sync {
    /// The reference this destination writes, for messages.
    fn reference(&self) -> String;

    /// Manifest types this destination can store, preferred first; empty: any.
    fn supported_manifest_types(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether an index (and so several platforms) can be stored.
    fn supports_index(&self) -> bool {
        true
    }

    /// Whether [`ImageDestination::put_signatures`] stores anything.
    fn supports_signatures(&self) -> bool {
        false
    }

    /// The digest of the manifest the destination already holds under its
    /// tag, if it can tell cheaply (a `HEAD`); `None` when absent or unknown.
    async fn existing_manifest_digest(&self) -> Result<Option<Digest>> {
        Ok(None)
    }

    /// Make the blob available without uploading it, if possible: `Some` when
    /// it is present (or was mounted), `None` when it must be uploaded.
    async fn try_reusing_blob(&self, info: &BlobInfo, hint: &ReuseHint) -> Result<Option<Reused>> {
        let _ = (info, hint);
        Ok(None)
    }

    /// Store a blob. MUST verify the bytes against `info.digest` (and
    /// `info.size`) and store nothing under that digest on a mismatch.
    async fn put_blob(&self, info: &BlobInfo, blob: Blob) -> Result<()>;

    /// Store a manifest: the top-level one (`instance` = `None`, under the
    /// destination's tag) or one instance of an index (by its digest). The
    /// engine writes instances first and the top level last.
    async fn put_manifest(&self, manifest: &Manifest, instance: Option<&Digest>) -> Result<()>;

    /// Store, by its digest, a manifest that names a `subject` (an OCI 1.1
    /// referrer). True when the store indexed the subject itself (a
    /// registry answering `OCI-Subject`), so that no referrers tag needs
    /// updating; the default stores it as an instance and answers false.
    async fn put_referrer(&self, manifest: &Manifest) -> Result<bool> {
        self.put_manifest(manifest, Some(&manifest.digest()))
            .await?;
        Ok(false)
    }

    /// Store signatures for the top-level image or one instance (by digest).
    async fn put_signatures(&self, signatures: &[Signature], instance: &Digest) -> Result<()> {
        if signatures.is_empty() {
            return Ok(());
        }
        let _ = instance;
        Err(Error::Unsupported(format!(
            "{} cannot store signatures; use --remove-signatures",
            self.reference()
        )))
    }

    /// Make what was written visible (write `index.json`, finish an archive).
    async fn commit(&self) -> Result<()>;
}

/// A registry's catalog (containers/image `Registry`).
#[async_trait]
pub trait Registry: Send + Sync {
    /// Every repository name in the catalog.
    async fn repositories(&self) -> Result<Vec<String>>;
    /// One repository by name.
    fn repository(&self, name: &str) -> Result<Box<dyn Repository>>;
    /// Catalog entries containing `term` (the v2 API has no search endpoint).
    async fn lookup(&self, term: &str) -> Result<Vec<String>> {
        Ok(self
            .repositories()
            .await?
            .into_iter()
            .filter(|r| r.contains(term))
            .collect())
    }
}

/// One repository (containers/image `Repository`).
#[async_trait]
pub trait Repository: Send + Sync {
    /// The repository name (`host/path`).
    fn name(&self) -> String;
    /// Every tag.
    async fn tags(&self) -> Result<Vec<String>>;
    /// An image in it by tag or digest.
    fn image(&self, tag_or_digest: &str) -> Result<Box<dyn ImageReference>>;
}
