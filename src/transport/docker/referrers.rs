//! The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>`
//! (optionally `?artifactType=`), answered with an OCI index of the
//! manifests whose `subject` is `<digest>`. A registry without the API
//! (Distribution 2.8 answers 404 for the unknown route) gives `None`, and
//! callers fall back to the referrers tag schema (`sha256-<hex>`). The
//! answer is read bounded as a manifest is, and must be an OCI index.

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::client::{Op, Session};
use super::source::header_str;
use crate::digest::Digest;
use crate::image::{Error, Result};
use crate::manifest::{MAX_MANIFEST_SIZE, ManifestError};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The referrers index of `digest` in `repository`, as the registry sends
/// it; `None` when the registry has no referrers API.
pub(crate) async fn list(
    session: &Session,
    location: &str,
    repository: &str,
    digest: &Digest,
    artifact_type: Option<&str>,
) -> Result<Option<bytes::Bytes>> {
    let op = Op::pull(repository, format!("referrers of {digest}"));
    let mut path = format!("/v2/{repository}/referrers/{digest}");
    if let Some(t) = artifact_type {
        path.push_str("?artifactType=");
        path.push_str(
            &percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
    }
    let mut resp = session
        .send(&op, Method::GET, &path, &|r| r.header(ACCEPT, OCI_INDEX))
        .await?;
    match resp.status().as_u16() {
        200 => {}
        // No such route (no API), or the API's "not supported" answers.
        404 | 405 | 501 => return Ok(None),
        _ => return Err(session.status_error(&op, resp).await),
    }
    let content_type = header_str(resp.headers(), CONTENT_TYPE.as_str()).unwrap_or_default();
    if !content_type.starts_with(OCI_INDEX) {
        // Some registries answer an HTML or JSON error page with 200.
        return Ok(None);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| session.connection_error(&op, &session.host, &e))?
    {
        if out.len() + chunk.len() > MAX_MANIFEST_SIZE {
            return Err(Error::manifest(
                location,
                ManifestError::TooLarge(out.len() + chunk.len()),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out.into()))
}
