//! Where a session's requests go: the scheme (settled once, probing only
//! when `tls_verify = false` allows plain HTTP) and the auth challenge.
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{Method, StatusCode};
use url::Url;

use super::super::auth::{self, Challenge, Scopes};
use super::{Op, Session};
use crate::image::{Error, Result};

/// The ping's outcome.
#[derive(Debug, Clone)]
pub(in crate::transport::docker) struct Endpoint {
    pub(super) base: Url,
    pub(super) challenge: Challenge,
}

impl Session {
    /// `scheme://host/`, after the ping.
    pub async fn base(&self) -> Result<Url> {
        Ok(self.endpoint().await?.base.clone())
    }

    /// An absolute URL for `path` (`/v2/…`) or a `Location` value.
    pub async fn url(&self, path_or_url: &str) -> Result<Url> {
        let base = self.base().await?;
        base.join(path_or_url).map_err(|e| Error::Connection {
            host: self.host.clone(),
            op: "resolve URL".into(),
            message: format!("invalid URL {path_or_url:?}: {e}"),
            retryable: false,
        })
    }

    /// Where requests go, settled once per session without spending a
    /// request where none is needed: with TLS verification on it is HTTPS and
    /// nothing is sent; with `tls_verify = false` one `/v2/` probe over HTTPS
    /// tells an HTTPS registry (its answer also gives the challenge) from a
    /// plain-HTTP one (the handshake fails before any HTTP request is made),
    /// as containers/image tries HTTPS first for insecure registries. The
    /// auth challenge is otherwise learned from the first refused request
    /// ([`Session::send`]), so an anonymous no-op check is one `HEAD`.
    pub(super) async fn endpoint(&self) -> Result<&Endpoint> {
        self.shared
            .endpoint
            .get_or_try_init(|| async {
                let https = Url::parse(&format!("https://{}/", self.host)).map_err(|e| {
                    Error::Invalid(format!("invalid registry host {:?}: {e}", self.host))
                })?;
                if !self.shared.insecure {
                    return Ok(Endpoint {
                        base: https,
                        challenge: Challenge::None,
                    });
                }
                let op = Op {
                    repository: String::new(),
                    op: "ping",
                    what: "/v2/".into(),
                    scopes: Scopes::default(),
                };
                match self.ping(&op, https.clone(), false).await {
                    Err(Error::Connection { .. }) => {
                        let mut http = https;
                        let _ = http.set_scheme("http");
                        Ok(Endpoint {
                            base: http,
                            challenge: Challenge::None,
                        })
                    }
                    other => other,
                }
            })
            .await
    }

    pub(super) async fn ping(&self, op: &Op, base: Url, retry: bool) -> Result<Endpoint> {
        let url = base.join("/v2/").expect("static path");
        let resp = self
            .execute(op, &Method::GET, &url, &|r| r, None, retry)
            .await?;
        let challenge = match resp.status() {
            s if s.is_success() => Challenge::None,
            StatusCode::UNAUTHORIZED => resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(auth::parse_challenge)
                .max_by_key(|c| matches!(c, Challenge::Bearer { .. }))
                .unwrap_or(Challenge::Basic),
            _ => return Err(self.status_error(op, resp).await),
        };
        Ok(Endpoint { base, challenge })
    }

    /// The ping's challenge, or the one a refused request taught us.
    pub(super) fn current_challenge(&self, endpoint: &Endpoint) -> Challenge {
        match &endpoint.challenge {
            Challenge::None => self
                .shared
                .learned
                .lock()
                .expect("poisoned")
                .clone()
                .unwrap_or(Challenge::None),
            c => c.clone(),
        }
    }
}
