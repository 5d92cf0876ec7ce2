//! The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>`
//! (optionally `?artifactType=`), answered with an OCI index of the
//! manifests whose `subject` is `<digest>`. A registry without the API
//! (Distribution 2.8 answers 404 for the unknown route) gives `None`, and
//! callers fall back to the referrers tag schema (`sha256-<hex>`). The
//! answer is read bounded as a manifest is, and must be an OCI index.
//!
//! A registry found without the API is remembered in its session (shared by
//! every copy under one registry context, per host and credentials): later
//! requests are not sent, so that a mirror re-syncing many unchanged tags
//! pays the probe once, not once per tag. A 404 naming an unknown
//! repository (`NAME_UNKNOWN`) says nothing about the API and is not
//! remembered.

use std::sync::atomic::{AtomicU8, Ordering};

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::client::{Op, Session};
use super::source::header_str;
use crate::digest::Digest;
use crate::image::{Error, Result};
use crate::manifest::{MAX_MANIFEST_SIZE, ManifestError};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

const HAS_API: u8 = 1;
const NO_API: u8 = 2;

/// Whether a registry has the referrers API, once an answer said so.
#[derive(Default)]
pub(crate) struct ApiState {
    /// 0: not known yet; [`HAS_API`]; [`NO_API`].
    state: AtomicU8,
    /// Held by the one request sent while the state is unknown.
    probing: tokio::sync::Mutex<()>,
}

impl ApiState {
    fn known(&self) -> Option<bool> {
        match self.state.load(Ordering::Relaxed) {
            HAS_API => Some(true),
            NO_API => Some(false),
            _ => None,
        }
    }
}

/// The referrers index of `digest` in `repository`, as the registry sends
/// it; `None` when the registry has no referrers API.
pub(crate) async fn list(
    session: &Session,
    location: &str,
    repository: &str,
    digest: &Digest,
    artifact_type: Option<&str>,
) -> Result<Option<bytes::Bytes>> {
    let api = &session.shared.referrers_api;
    // Until one answer says whether the API exists, requests go one at a time.
    let _first = match api.known() {
        Some(false) => return Ok(None),
        Some(true) => None,
        None => {
            let guard = api.probing.lock().await;
            match api.known() {
                Some(false) => return Ok(None),
                Some(true) => None,
                None => Some(guard),
            }
        }
    };
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
    let no_api = || {
        api.state.store(NO_API, Ordering::Relaxed);
        Ok(None)
    };
    match resp.status().as_u16() {
        200 => {}
        // An unknown repository, at a registry that may have the API.
        404 if names_unknown_repository(&mut resp).await => return Ok(None),
        // No such route (no API), or the API's "not supported" answers.
        404 | 405 | 501 => return no_api(),
        _ => return Err(session.status_error(&op, resp).await),
    }
    let content_type = header_str(resp.headers(), CONTENT_TYPE.as_str()).unwrap_or_default();
    if !content_type.starts_with(OCI_INDEX) {
        // Some registries answer an HTML or JSON error page with 200.
        return no_api();
    }
    api.state.store(HAS_API, Ordering::Relaxed);
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

/// Whether a 404's body (its first KiB) is the registry error
/// `NAME_UNKNOWN`; Distribution 2.8 answers an unknown route with
/// `404 page not found`.
async fn names_unknown_repository(resp: &mut reqwest::Response) -> bool {
    let mut head = Vec::new();
    while head.len() < 1024 {
        match resp.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            _ => break,
        }
    }
    head.windows(12).any(|w| w == b"NAME_UNKNOWN")
}
