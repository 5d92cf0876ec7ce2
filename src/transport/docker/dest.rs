//! [`DockerDestination`]: writing blobs and manifests to a registry.
//!
//! A blob upload is `POST /blobs/uploads/` then one streamed `PUT
//! <location>?digest=` with `Content-Length` (two requests a blob), the body
//! passing through [`VerifyingStream`] so that content that does not match
//! its digest aborts the request before the registry can commit it. Without
//! a known size the body is streamed with a chunked `PATCH`, then an empty
//! `PUT` closes the upload. A blob that lives in another repository of the
//! same registry is mounted (`POST ?mount=&from=`); a `202` answer to that is
//! an upload session kept for the `put_blob` that follows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::DockerReference;
use super::client::{Op, Session};
use super::source::{DOCKER_CONTENT_DIGEST, head_manifest, header_str};
use crate::digest::{self, Digest, VerifyingStream};
use crate::image::{
    Blob, BlobInfo, Error, ImageDestination, Result, ReuseHint, Reused, Signature,
    SignatureStorage, SystemContext,
};
use crate::manifest::Manifest;

/// The write side of the `docker` transport.
pub struct DockerDestination {
    reference: DockerReference,
    session: Arc<Session>,
    /// Upload sessions opened by a mount attempt the registry answered with 202.
    pending: Mutex<HashMap<Digest, Url>>,
    signature_storage: Option<SignatureStorage>,
}

impl DockerDestination {
    pub fn new(reference: DockerReference, ctx: &SystemContext) -> Result<Self> {
        let session = Session::get(ctx, reference.reference().registry())?;
        let signature_storage = super::signature_storage(ctx, reference.reference());
        Ok(DockerDestination {
            reference,
            session,
            pending: Mutex::new(HashMap::new()),
            signature_storage,
        })
    }

    /// registries.d settings for this image (for the signature module).
    pub fn signature_storage(&self) -> Option<&SignatureStorage> {
        self.signature_storage.as_ref()
    }

    fn repo(&self) -> &str {
        self.reference.repository()
    }

    /// Store a manifest under any tag or digest of this repository (e.g. a
    /// sigstore attachment `sha256-<hex>.sig`).
    pub async fn put_manifest_by(&self, manifest: &Manifest, tag_or_digest: &str) -> Result<()> {
        self.put_manifest_answered(manifest, tag_or_digest)
            .await
            .map(|_| ())
    }

    /// [`Self::put_manifest_by`], returning whether the registry answered
    /// with an `OCI-Subject` header (it indexed the manifest's `subject` for
    /// its referrers API, OCI distribution-spec 1.1).
    async fn put_manifest_answered(
        &self,
        manifest: &Manifest,
        tag_or_digest: &str,
    ) -> Result<bool> {
        if let Ok(want) = digest::parse(tag_or_digest)
            && manifest.digest() != want
        {
            return Err(Error::Corrupt {
                location: self.reference.to_string(),
                message: format!(
                    "manifest to store as {want} has digest {}",
                    manifest.digest()
                ),
            });
        }
        let repo = self.repo();
        let op = Op::push(repo, format!("manifest {tag_or_digest}"));
        let path = format!("/v2/{repo}/manifests/{tag_or_digest}");
        let body = manifest.bytes.clone();
        let media_type = manifest.media_type.clone();
        let resp = self
            .session
            .send(&op, Method::PUT, &path, &|r| {
                r.header(CONTENT_TYPE, &media_type).body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.session.status_error(&op, resp).await);
        }
        if let Some(got) = header_str(resp.headers(), DOCKER_CONTENT_DIGEST)
            && got != manifest.digest().to_string()
            && digest::parse(&got).is_ok_and(|d| d.algorithm() == manifest.digest().algorithm())
        {
            return Err(self.session.plain_error(
                &op,
                resp.status().as_u16(),
                format!(
                    "registry stored the manifest as {got}, expected {}",
                    manifest.digest()
                ),
            ));
        }
        Ok(resp.headers().contains_key("oci-subject"))
    }

    /// `POST /blobs/uploads/` (optionally a mount): the answer, unread.
    async fn start_upload(&self, op: &Op, query: &str) -> Result<Response> {
        let path = format!("/v2/{}/blobs/uploads/{query}", self.repo());
        let resp = self
            .session
            .send(op, Method::POST, &path, &|r| r.header(CONTENT_LENGTH, "0"))
            .await?;
        Ok(resp)
    }

    async fn location(&self, op: &Op, resp: &Response) -> Result<Url> {
        let loc = header_str(resp.headers(), LOCATION.as_str()).ok_or_else(|| {
            self.session.plain_error(
                op,
                resp.status().as_u16(),
                "upload answer without a Location".into(),
            )
        })?;
        resp.url().join(&loc).map_err(|e| {
            self.session
                .plain_error(op, 0, format!("invalid Location {loc:?}: {e}"))
        })
    }

    /// Best effort: tell the registry to drop an upload session.
    async fn cancel(&self, op: &Op, url: &Url) {
        let _ = self
            .session
            .send(op, Method::DELETE, url.as_str(), &|r| r)
            .await;
    }

    /// Stream `blob` to the upload at `location`; returns the error to report.
    async fn upload(&self, op: &Op, info: &BlobInfo, blob: Blob, location: Url) -> Result<()> {
        let size = info.size.or(blob.size);
        // The verifying stream's own error, kept so that the caller sees
        // "digest mismatch", not the transport error reqwest wraps it in.
        let failure: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let slot = failure.clone();
        let location_str = self.reference.to_string();
        let verified = VerifyingStream::new(blob.stream, info.digest.clone(), size).map(
            move |item: Result<Bytes>| {
                item.map_err(|e| {
                    let e = relocate(e, &location_str);
                    let msg = e.to_string();
                    *slot.lock().expect("poisoned") = Some(e);
                    std::io::Error::other(msg)
                })
            },
        );
        let body = reqwest::Body::wrap_stream(hold_last_chunk(verified));
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let digest_param = info.digest.to_string();
        let result = match size {
            Some(n) => {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
                let mut url = location.clone();
                url.query_pairs_mut().append_pair("digest", &digest_param);
                self.session
                    .send_once(op, Method::PUT, &url, headers, body)
                    .await?
            }
            None => {
                let patched = self
                    .session
                    .send_once(op, Method::PATCH, &location, headers, body)
                    .await?;
                match patched {
                    Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                        let mut url = self.location(op, &resp).await?;
                        url.query_pairs_mut().append_pair("digest", &digest_param);
                        let resp = self
                            .session
                            .send(op, Method::PUT, url.as_str(), &|r| {
                                r.header(CONTENT_LENGTH, "0")
                            })
                            .await?;
                        Ok(resp)
                    }
                    other => other,
                }
            }
        };
        let stream_failure = failure.lock().expect("poisoned").take();
        if let Some(e) = stream_failure {
            self.cancel(op, &location).await;
            return Err(e);
        }
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                self.cancel(op, &location).await;
                return Err(self.session.connection_error(op, &self.session.host, &e));
            }
        };
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            let err = self.session.status_error(op, resp).await;
            self.cancel(op, &location).await;
            return Err(err);
        }
        Ok(())
    }
}

/// Delay each chunk until the next one (or the clean end) arrives, so that
/// the last bytes are sent only after the verifying stream has accepted the
/// whole blob. With a declared `Content-Length` (or a chunked body's final
/// chunk) the registry otherwise holds a complete upload before our check
/// fails, and may commit it.
fn hold_last_chunk<S, E>(inner: S) -> impl futures::Stream<Item = std::result::Result<Bytes, E>>
where
    S: futures::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
{
    futures::stream::unfold(
        (inner, None::<Bytes>, false),
        |(mut inner, held, done)| async move {
            if done {
                return None;
            }
            let mut held = held;
            loop {
                match inner.next().await {
                    Some(Ok(chunk)) => {
                        if chunk.is_empty() {
                            continue;
                        }
                        if let Some(prev) = held.replace(chunk) {
                            return Some((Ok(prev), (inner, held, false)));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (inner, None, true))),
                    None => return held.map(|last| (Ok(last), (inner, None, true))),
                }
            }
        },
    )
}

/// Put our location on a digest error raised inside the verifying stream.
fn relocate(e: Error, location: &str) -> Error {
    match e {
        Error::Digest { what, source, .. } => Error::Digest {
            location: location.to_string(),
            what,
            source,
        },
        other => other,
    }
}

#[async_trait]
impl ImageDestination for DockerDestination {
    fn reference(&self) -> String {
        self.reference.to_string()
    }

    async fn existing_manifest_digest(&self) -> Result<Option<Digest>> {
        let reference = self.reference.manifest_ref();
        let repo = self.repo();
        let op = Op::push(repo, format!("manifest {reference}"));
        Ok(head_manifest(&self.session, repo, &reference, op)
            .await?
            .flatten())
    }

    async fn try_reusing_blob(&self, info: &BlobInfo, hint: &ReuseHint) -> Result<Option<Reused>> {
        let repo = self.repo();
        // One POST both asks and prepares: a cross-repository mount answers
        // 201 when the blob is (now) here, else 202 with the upload session
        // the PUT then uses. With no sibling repository to mount from, the
        // mount names this repository itself (201: already here), so a cold
        // copy costs POST + PUT per blob and a present blob one POST.
        let sibling = hint.source.as_ref().filter(|s| {
            s.registry() == self.reference.reference().registry() && s.repository() != repo
        });
        let from = sibling.map(|s| s.repository()).unwrap_or(repo);
        let mut op = Op::push(repo, format!("blob {} (mount from {from})", info.digest));
        if sibling.is_some() {
            op.scopes = op.scopes.with(format!("repository:{from}:pull"));
        }
        let query = format!(
            "?mount={}&from={}",
            info.digest,
            percent_encoding::utf8_percent_encode(from, percent_encoding::NON_ALPHANUMERIC)
        );
        let resp = self.start_upload(&op, &query).await?;
        match resp.status() {
            StatusCode::CREATED if sibling.is_some() => return Ok(Some(Reused::Mounted)),
            StatusCode::CREATED => return Ok(Some(Reused::Present)),
            StatusCode::ACCEPTED => {
                let url = self.location(&op, &resp).await?;
                self.pending
                    .lock()
                    .expect("poisoned")
                    .insert(info.digest.clone(), url);
                return Ok(None);
            }
            // Not allowed to read the source, or a registry without mounts: plain check.
            _ => {}
        }
        let op = Op::push(repo, format!("blob {}", info.digest));
        let path = format!("/v2/{repo}/blobs/{}", info.digest);
        let resp = self.session.send(&op, Method::HEAD, &path, &|r| r).await?;
        match resp.status() {
            s if s.is_success() => {
                // Not `resp.content_length()`: that is the (empty) body's size for HEAD.
                let announced = header_str(resp.headers(), CONTENT_LENGTH.as_str())
                    .and_then(|v| v.parse::<u64>().ok());
                let size_ok = match (info.size, announced) {
                    (Some(want), Some(got)) => want == got,
                    _ => true,
                };
                Ok(size_ok.then_some(Reused::Present))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.session.status_error(&op, resp).await),
        }
    }

    /// Signatures go to the lookaside and the sigstore attachment of the
    /// image's repository, as registries.d says (else an error that says
    /// what to configure).
    fn supports_signatures(&self) -> bool {
        true
    }

    async fn put_signatures(&self, signatures: &[Signature], instance: &Digest) -> Result<()> {
        if signatures.is_empty() {
            return Ok(());
        }
        super::signatures::write(
            self,
            &self.session,
            &self.reference,
            self.signature_storage.as_ref(),
            instance,
            signatures,
        )
        .await
    }

    async fn put_blob(&self, info: &BlobInfo, blob: Blob) -> Result<()> {
        let op = Op::push(self.repo(), format!("blob {}", info.digest));
        let pending = self.pending.lock().expect("poisoned").remove(&info.digest);
        let location = match pending {
            Some(url) => url,
            None => {
                let resp = self.start_upload(&op, "").await?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(self.session.status_error(&op, resp).await);
                }
                self.location(&op, &resp).await?
            }
        };
        self.upload(&op, info, blob, location).await
    }

    async fn put_manifest(&self, manifest: &Manifest, instance: Option<&Digest>) -> Result<()> {
        let reference = match instance {
            Some(d) => d.to_string(),
            None => self.reference.manifest_ref(),
        };
        self.put_manifest_by(manifest, &reference).await
    }

    async fn put_referrer(&self, manifest: &Manifest) -> Result<bool> {
        self.put_manifest_answered(manifest, manifest.digest().as_ref())
            .await
    }

    async fn commit(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    #[tokio::test]
    async fn the_last_chunk_waits_for_the_verdict() {
        let data = [Bytes::from_static(b"ab"), Bytes::from_static(b"cd")];
        let good = digest::sha256(b"abcd");
        let s = VerifyingStream::new(stream::iter(data.clone().map(Ok::<_, Error>)), good, None);
        let out: Vec<_> = hold_last_chunk(s).collect().await;
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|r| r.is_ok()));
        // A mismatch: the last chunk is never yielded, the error takes its place.
        let bad = digest::sha256(b"other");
        let s = VerifyingStream::new(stream::iter(data.map(Ok::<_, Error>)), bad, None);
        let out: Vec<_> = hold_last_chunk(s).collect().await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().unwrap().as_ref(), b"ab");
        assert!(matches!(out[1], Err(Error::Digest { .. })));
    }
}
