//! Transport `docker`: images in registries, over the Registry HTTP API v2
//! (the OCI distribution specification) with `reqwest`.
//!
//! `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`; Docker Hub names are
//! normalised (`docker://alpine` → `docker.io/library/alpine:latest`).
//!
//! | file | what |
//! |---|---|
//! | [`client`] | the per-registry [`client::Session`]: one file per concern (key, endpoint, credentials, send, throttle, errors) |
//! | [`auth`] | challenges, scopes, token responses and cache entries |
//! | `token` | the Bearer flow of a session: cache, token server GET/POST |
//! | `wire` | error bodies, bounded reads, `Retry-After`, backoff |
//! | [`tls`] | rustls configuration per containers-certs.d(5) |
//! | `source` / `dest` | [`DockerSource`], [`DockerDestination`] |
//! | `catalog` | `_catalog` and tag listing with `Link` pagination |
//!
//! Wire cost, with tokens cached per session: reading a manifest by tag is one
//! GET; [`ImageSource::manifest_digest`] one HEAD; a blob one GET (plus the
//! redirect a storage backend may answer with). Writing a blob the registry
//! lacks is POST + PUT (the POST is a mount, from a sibling repository or from
//! the destination itself, that opens an upload when the blob is missing; the
//! PUT streams it with the digest); a blob already there costs that one POST.
//!
//! What registries do that the distribution spec does not say (all seen with
//! Distribution 2.8 and kept in mind here):
//! - `tags/list` ignores `n` and answers every tag at once (Distribution 3,
//!   Docker Hub and Harbor page with `Link`); `_catalog` pages with `Link`.
//! - A mount from a repository that lacks the blob (or that the token does
//!   not cover) is answered 202 with an ordinary upload session, not an
//!   error; the session is kept for the upload that follows.
//! - An upload whose full `Content-Length` arrived may be committed before
//!   the client sees its own digest check fail, so the last chunk is held
//!   back until the verifying stream has accepted the whole blob.
//! - `Location` headers are absolute URLs built from the request's `Host`.
//! - A HEAD's `Content-Length` is the blob's size, but an HTTP client reports
//!   the (empty) body's length for it: read the header.
//! - Blob GETs honour `Range` (206), so a broken download resumes.
//! - `/v2/` may answer 200 while a repository wants a token: the challenge
//!   of the refused request is answered and remembered.
//! - A token server may omit `expires_in` (60 s), answer `token` or
//!   `access_token`, and refuse GET (405), wanting the OAuth2 POST form.

pub mod attachment;
pub mod auth;
pub mod catalog;
pub mod client;
pub mod delete;
mod dest;
mod lookaside;
mod page;
mod referrers;
mod signatures;
mod source;
/// The cool-off now lives in the registry context; the old path stays.
pub use crate::image::registry_context::throttle;
pub mod tls;
mod token;
mod wire;

use std::fmt;

use async_trait::async_trait;

pub use catalog::{DockerRegistry, DockerRepository, list_tags, registry};
pub use dest::DockerDestination;
pub use source::DockerSource;

use crate::digest::Digest;
use crate::image::{
    Error, ImageDestination, ImageReference, ImageSource, Result, SignatureStorage, SystemContext,
};
use crate::reference::{self, Reference};

/// The transport's name.
pub const TRANSPORT: &str = "docker";

/// Parse the part after `docker:` (`//host/repo:tag`).
pub fn parse_reference(within: &str) -> Result<Box<dyn ImageReference>> {
    Ok(Box::new(DockerReference::parse(within)?))
}

/// An image in a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct DockerReference {
    reference: Reference,
}

impl DockerReference {
    /// Parse `//host/repo[:tag][@digest]` (what follows `docker:`).
    pub fn parse(within: &str) -> Result<Self> {
        let Some(rest) = within.strip_prefix("//") else {
            return Err(Error::InvalidName {
                input: format!("docker:{within}"),
                reason: "docker references start with docker://".into(),
            });
        };
        Ok(DockerReference {
            reference: reference::parse(rest)?,
        })
    }

    /// Wrap a parsed docker reference.
    pub fn new(reference: Reference) -> Self {
        DockerReference { reference }
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The repository path (`library/alpine`).
    pub fn repository(&self) -> &str {
        self.reference.repository()
    }

    /// The tag or digest to address the top-level manifest with.
    pub(crate) fn manifest_ref(&self) -> String {
        match (self.reference.digest(), self.reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".into(),
        }
    }
}

impl fmt::Display for DockerReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "docker://{}", self.reference)
    }
}

impl fmt::Debug for DockerReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DockerReference({})", self.reference)
    }
}

/// The signature storage configured for `r`, if any (for the signature module).
pub(crate) fn signature_storage(ctx: &SystemContext, r: &Reference) -> Option<SignatureStorage> {
    ctx.signature_storage.as_ref().map(|c| c.storage_for(r))
}

#[async_trait]
impl ImageReference for DockerReference {
    fn transport(&self) -> &'static str {
        TRANSPORT
    }

    fn docker_reference(&self) -> Option<Reference> {
        Some(self.reference.clone())
    }

    fn stores_attachments(&self) -> bool {
        true
    }

    fn lists_repository_tags(&self) -> bool {
        true
    }

    /// Every tag is a manifest of its own: copies may write at once.
    fn write_lock(&self) -> Option<String> {
        None
    }

    fn with_tag(&self, tag: &str) -> Result<Box<dyn ImageReference>> {
        if !reference::is_valid_tag(tag) {
            return Err(Error::Invalid(format!("invalid tag {tag:?}")));
        }
        Ok(Box::new(DockerReference::new(reference::with_tag(
            &self.reference,
            tag,
        ))))
    }

    async fn new_image_source(&self, ctx: &SystemContext) -> Result<Box<dyn ImageSource>> {
        Ok(Box::new(DockerSource::new(self.clone(), ctx)?))
    }

    async fn new_image_destination(
        &self,
        ctx: &SystemContext,
    ) -> Result<Box<dyn ImageDestination>> {
        Ok(Box::new(DockerDestination::new(self.clone(), ctx)?))
    }

    async fn list_tags(&self, ctx: &SystemContext) -> Result<Vec<String>> {
        list_tags(&self.reference, ctx).await
    }

    fn supports_delete(&self) -> bool {
        true
    }

    async fn delete_manifest(&self, ctx: &SystemContext, digest: &Digest) -> Result<()> {
        delete::delete_manifest(self, ctx, digest).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_follow_credential_content_not_store_identity() {
        use crate::credentials::AuthFile;
        use std::sync::Arc;
        let secret = |pw: &str| {
            let auth = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("mirror:{pw}"),
            );
            let json = format!(r#"{{"auths":{{"reg.example:5000":{{"auth":"{auth}"}}}}}}"#);
            let store = AuthFile::from_dockerconfigjson(json.as_bytes()).unwrap();
            SystemContext {
                credential_store: Some(Arc::new(store)),
                ..Default::default()
            }
        };
        let key = |ctx: &SystemContext| client::context_key(ctx, "reg.example:5000");
        // The controller reads the Secret again on every reconcile: one session.
        assert_eq!(key(&secret("pw-1")), key(&secret("pw-1")));
        assert_ne!(key(&secret("pw-1")), key(&secret("pw-2")));
        assert_ne!(key(&secret("pw-1")), key(&SystemContext::default()));
        // A store that may run credential helpers is keyed by identity.
        let helpers = |_: ()| {
            let f = AuthFile::parse(br#"{"credsStore":"pass"}"#, "test").unwrap();
            SystemContext {
                credential_store: Some(Arc::new(f)),
                ..Default::default()
            }
        };
        let (a, b) = (helpers(()), helpers(()));
        assert_ne!(key(&a), key(&b));
        assert_eq!(key(&a), key(&a.clone()));
    }

    #[test]
    fn parses_and_prints() {
        let r = DockerReference::parse("//alpine").unwrap();
        assert_eq!(r.to_string(), "docker://docker.io/library/alpine:latest");
        assert_eq!(r.repository(), "library/alpine");
        assert_eq!(r.manifest_ref(), "latest");
        let r = DockerReference::parse("//127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(r.manifest_ref(), "v1");
        assert!(DockerReference::parse("alpine").is_err());
        assert!(DockerReference::parse("//x::y").is_err());
        let t = r.with_tag("v2").unwrap();
        assert_eq!(t.to_string(), "docker://127.0.0.1:5000/a/b:v2");
        assert!(r.with_tag("-bad").is_err());
    }
}
