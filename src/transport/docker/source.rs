//! [`DockerSource`]: reading manifests and blobs from a registry.
//!
//! Manifests are fetched with every type we read in `Accept`, checked against
//! the digest asked for (or the registry's `Docker-Content-Digest`) and
//! refused above [`MAX_MANIFEST_SIZE`] before the body is read. Blobs stream
//! straight from the response; a connection that breaks mid-blob is reopened
//! (`Range` from where it broke when the registry honours it, else from the
//! start, skipping what was already delivered) up to `retry_times` times.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, RANGE};
use reqwest::{Method, Response, StatusCode};

use super::DockerReference;
use super::client::{Op, Session, backoff};
use crate::digest::{self, Digest};
use crate::image::{
    Blob, BlobInfo, Error, ImageSource, Result, Signature, SignatureStorage, SystemContext,
};
use crate::manifest::{self, MAX_MANIFEST_SIZE, Manifest, ManifestError};
use crate::reference::Reference;

/// `Docker-Content-Digest`.
pub const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// The read side of the `docker` transport.
pub struct DockerSource {
    reference: DockerReference,
    session: Arc<Session>,
    signature_storage: Option<SignatureStorage>,
}

impl DockerSource {
    pub fn new(reference: DockerReference, ctx: &SystemContext) -> Result<Self> {
        let session = Session::get(ctx, reference.reference().registry())?;
        let signature_storage = super::signature_storage(ctx, reference.reference());
        Ok(DockerSource {
            reference,
            session,
            signature_storage,
        })
    }

    /// registries.d settings for this image (for the signature module).
    pub fn signature_storage(&self) -> Option<&SignatureStorage> {
        self.signature_storage.as_ref()
    }

    /// The manifest stored under any tag or digest of this repository (e.g. a
    /// sigstore attachment `sha256-<hex>.sig`); `None` when it does not exist.
    pub async fn get_manifest_by(&self, tag_or_digest: &str) -> Result<Option<Manifest>> {
        let expected = digest::parse(tag_or_digest).ok();
        match get_manifest(
            &self.session,
            &self.reference.to_string(),
            self.reference.repository(),
            tag_or_digest,
            expected.as_ref(),
        )
        .await
        {
            Ok(m) => Ok(Some(m)),
            Err(Error::Registry { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn accept_header() -> String {
    manifest::ACCEPTED.join(", ")
}

/// GET a manifest, bounded and verified.
pub(crate) async fn get_manifest(
    session: &Session,
    location: &str,
    repository: &str,
    reference: &str,
    expected: Option<&Digest>,
) -> Result<Manifest> {
    let op = Op::pull(repository, format!("manifest {reference}"));
    let path = format!("/v2/{repository}/manifests/{reference}");
    let accept = accept_header();
    let mut attempt = 0;
    let (bytes, content_type, announced) = loop {
        let resp = session
            .send(&op, Method::GET, &path, &|r| r.header(ACCEPT, &accept))
            .await?;
        if !resp.status().is_success() {
            return Err(session.status_error(&op, resp).await);
        }
        let content_type = header_str(resp.headers(), CONTENT_TYPE.as_str());
        let announced =
            header_str(resp.headers(), DOCKER_CONTENT_DIGEST).and_then(|d| digest::parse(&d).ok());
        match read_manifest_body(session, &op, location, resp).await {
            Ok(b) => break (b, content_type, announced),
            // The body broke off: ask again, within the retry budget.
            Err(e) if e.is_retryable() && attempt < session.retry_times() => {
                tokio::time::sleep(backoff(attempt, None)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let check = expected.or(announced.as_ref());
    if let Some(want) = check {
        digest::verify_bytes(want, &bytes).map_err(|source| Error::Digest {
            location: location.to_string(),
            what: format!("manifest {reference}"),
            source,
        })?;
    }
    Manifest::new(bytes, content_type.as_deref()).map_err(|e| Error::manifest(location, e))
}

async fn read_manifest_body(
    session: &Session,
    op: &Op,
    location: &str,
    mut resp: Response,
) -> Result<Bytes> {
    if let Some(len) = resp.content_length()
        && len > MAX_MANIFEST_SIZE as u64
    {
        return Err(Error::manifest(
            location,
            ManifestError::TooLarge(len as usize),
        ));
    }
    let mut out = Vec::new();
    loop {
        let chunk = resp
            .chunk()
            .await
            .map_err(|e| session.connection_error(op, &session.host, &e))?;
        let Some(chunk) = chunk else { break };
        if out.len() + chunk.len() > MAX_MANIFEST_SIZE {
            return Err(Error::manifest(
                location,
                ManifestError::TooLarge(out.len() + chunk.len()),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.into())
}

/// HEAD a manifest: its digest (`None` when the registry does not say), or
/// `Ok(None)` from the outer option when it does not exist.
pub(crate) async fn head_manifest(
    session: &Session,
    repository: &str,
    reference: &str,
    op: Op,
) -> Result<Option<Option<Digest>>> {
    let path = format!("/v2/{repository}/manifests/{reference}");
    let accept = accept_header();
    let resp = session
        .send(&op, Method::HEAD, &path, &|r| r.header(ACCEPT, &accept))
        .await?;
    match resp.status() {
        StatusCode::NOT_FOUND => Ok(None),
        s if s.is_success() => Ok(Some(
            header_str(resp.headers(), DOCKER_CONTENT_DIGEST).and_then(|d| digest::parse(&d).ok()),
        )),
        _ => Err(session.status_error(&op, resp).await),
    }
}

pub(crate) fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[async_trait]
impl ImageSource for DockerSource {
    fn reference(&self) -> &dyn crate::image::ImageReference {
        &self.reference
    }

    fn intended_docker_reference(&self) -> Option<Reference> {
        Some(self.reference.reference().clone())
    }

    async fn get_manifest(&self, instance: Option<&Digest>) -> Result<Manifest> {
        let (reference, expected) = match instance {
            Some(d) => (d.to_string(), Some(d.clone())),
            None => {
                let r = self.reference.manifest_ref();
                let d = digest::parse(&r).ok();
                (r, d)
            }
        };
        get_manifest(
            &self.session,
            &self.reference.to_string(),
            self.reference.repository(),
            &reference,
            expected.as_ref(),
        )
        .await
    }

    async fn manifest_digest(&self) -> Result<Digest> {
        let reference = self.reference.manifest_ref();
        if let Ok(d) = digest::parse(&reference) {
            return Ok(d);
        }
        let repo = self.reference.repository();
        let op = Op::pull(repo, format!("manifest {reference}"));
        match head_manifest(&self.session, repo, &reference, op.clone()).await? {
            Some(Some(d)) => Ok(d),
            // The registry did not say: fetch and hash.
            Some(None) => Ok(self.get_manifest(None).await?.digest()),
            None => {
                Err(self
                    .session
                    .plain_error(&op, 404, "manifest unknown: manifest unknown".into()))
            }
        }
    }

    async fn get_blob(&self, info: &BlobInfo) -> Result<Blob> {
        let repo = self.reference.repository();
        let op = Op::pull(repo, format!("blob {}", info.digest));
        let path = format!("/v2/{repo}/blobs/{}", info.digest);
        let resp = self.session.send_following(&op, &path, &|r| r).await?;
        if !resp.status().is_success() {
            return Err(self.session.status_error(&op, resp).await);
        }
        let size = info.size.or(resp.content_length());
        let state = Resume {
            session: self.session.clone(),
            op,
            path,
            body: resp.bytes_stream().boxed(),
            offset: 0,
            skip: 0,
            attempt: 0,
            done: false,
        };
        Ok(Blob {
            stream: futures::stream::unfold(state, Resume::next).boxed(),
            size,
        })
    }

    /// Lookaside and sigstore attachment signatures, as registries.d (the
    /// context's `signature_storage`) enables them; for the top level, of
    /// the manifest the tag names now (see [`ImageSource::signatures_of`]).
    async fn get_signatures(&self, instance: Option<&Digest>) -> Result<Vec<Signature>> {
        let digest = match instance {
            Some(d) => d.clone(),
            None => self.manifest_digest().await?,
        };
        self.signatures_of(&digest, instance.is_none()).await
    }

    async fn referrers(
        &self,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Bytes>> {
        super::referrers::list(
            &self.session,
            &self.reference.to_string(),
            self.reference.repository(),
            digest,
            artifact_type,
        )
        .await
    }

    async fn signatures_of(&self, digest: &Digest, _top_level: bool) -> Result<Vec<Signature>> {
        super::signatures::read(
            &self.session,
            &self.reference,
            self.signature_storage.as_ref(),
            digest,
        )
        .await
    }
}

/// A blob download that reopens itself when the connection breaks.
struct Resume {
    session: Arc<Session>,
    op: Op,
    path: String,
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    /// Bytes delivered so far.
    offset: u64,
    /// Bytes to drop from the current response (a re-GET from the start).
    skip: u64,
    attempt: u32,
    done: bool,
}

impl Resume {
    async fn next(mut self) -> Option<(Result<Bytes>, Self)> {
        if self.done {
            return None;
        }
        loop {
            match self.body.next().await {
                None => return None,
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let n = self.skip.min(chunk.len() as u64);
                        chunk = chunk.slice(n as usize..);
                        self.skip -= n;
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    self.offset += chunk.len() as u64;
                    return Some((Ok(chunk), self));
                }
                Some(Err(e)) => {
                    let err = self
                        .session
                        .connection_error(&self.op, &self.session.host, &e);
                    if self.attempt >= self.session.retry_times() || !err.is_retryable() {
                        self.done = true;
                        return Some((Err(err), self));
                    }
                    tokio::time::sleep(backoff(self.attempt, None)).await;
                    self.attempt += 1;
                    if let Err(e) = self.reopen().await {
                        self.done = true;
                        return Some((Err(e), self));
                    }
                }
            }
        }
    }

    /// GET again, from `offset` when the registry honours `Range`.
    async fn reopen(&mut self) -> Result<()> {
        let offset = self.offset;
        let range = format!("bytes={offset}-");
        let resp = self
            .session
            .send_following(&self.op, &self.path, &|r| {
                if offset > 0 {
                    r.header(RANGE, &range)
                } else {
                    r
                }
            })
            .await?;
        let status = resp.status();
        let resumed = status == StatusCode::PARTIAL_CONTENT
            && header_str(resp.headers(), CONTENT_RANGE.as_str())
                .is_some_and(|v| v.starts_with(&format!("bytes {offset}-")));
        if resumed {
            self.skip = 0;
        } else if status == StatusCode::OK {
            self.skip = offset;
        } else if status.is_success() {
            return Err(self.session.plain_error(
                &self.op,
                status.as_u16(),
                format!("unexpected answer to a range request: {}", status),
            ));
        } else {
            return Err(self.session.status_error(&self.op, resp).await);
        }
        self.body = resp.bytes_stream().boxed();
        Ok(())
    }
}
