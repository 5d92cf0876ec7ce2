//! Sending: authorization (only to the registry's own origin), one renewal
//! of a refused token, redirects (a storage backend gets no credentials),
//! retries of transient failures with backoff that honours `Retry-After`.
use reqwest::header::{AUTHORIZATION, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::super::auth::{self, Challenge};
use super::super::wire::same_origin;
use super::{Op, Session, backoff, host_port, retry_after};
use crate::image::Result;

impl Session {
    /// Send an authorized request to the registry, retrying what may pass.
    /// `build` is called once per attempt (bodies must be cheap to clone).
    /// Redirects are returned, not followed (see [`Session::send_following`]).
    pub async fn send(
        &self,
        op: &Op,
        method: Method,
        path_or_url: &str,
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let endpoint = self.endpoint().await?;
        let url = self.url(path_or_url).await?;
        if !same_origin(&url, &endpoint.base) {
            // A `Location` or `Link` the registry sent that points at another
            // host: followed, but never with the registry's credentials.
            return self.execute(op, &method, &url, build, None, true).await;
        }
        let mut challenge = self.current_challenge(endpoint);
        let mut renewed = false;
        loop {
            let authz = self.authorization(op, &challenge, renewed).await?;
            let resp = self
                .execute(op, &method, &url, build, authz.as_deref(), true)
                .await?;
            if resp.status() == StatusCode::UNAUTHORIZED && !renewed {
                // An expired token, one without the scope the registry wants,
                // or a registry whose `/v2/` was open but this repository is
                // not: answer the challenge of this response, once.
                let fresh = resp
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter_map(auth::parse_challenge)
                    .max_by_key(|c| matches!(c, Challenge::Bearer { .. }));
                let worth_it = match (&challenge, &fresh) {
                    (_, Some(Challenge::Bearer { .. })) => true,
                    (Challenge::None, Some(Challenge::Basic)) => {
                        self.credentials(&op.repository).await?.is_some()
                    }
                    _ => false,
                };
                if worth_it {
                    challenge = fresh.expect("matched Some above");
                    if endpoint.challenge == Challenge::None {
                        let mut general = challenge.clone();
                        if let Challenge::Bearer { scope, .. } = &mut general {
                            *scope = None;
                        }
                        *self.shared.learned.lock().expect("poisoned") = Some(general);
                    }
                    renewed = true;
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// GET following redirects; a redirect to another origin (a storage
    /// backend) gets no `Authorization` header.
    pub async fn send_following(
        &self,
        op: &Op,
        path_or_url: &str,
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let origin = self.base().await?;
        let mut resp = self.send(op, Method::GET, path_or_url, build).await?;
        for _ in 0..10 {
            if !resp.status().is_redirection() {
                return Ok(resp);
            }
            let Some(next) = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| resp.url().join(l).ok())
            else {
                return Ok(resp);
            };
            resp = if same_origin(&next, &origin) {
                self.send(op, Method::GET, next.as_str(), build).await?
            } else {
                self.execute(op, &Method::GET, &next, build, None, true)
                    .await?
            };
        }
        Err(self.plain_error(op, 0, "too many redirects".into()))
    }

    /// One request with retries; reports every attempt to the observer.
    pub(in crate::transport::docker) async fn execute(
        &self,
        op: &Op,
        method: &Method,
        url: &Url,
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
        authorization: Option<&str>,
        retry: bool,
    ) -> Result<Response> {
        let host = host_port(url);
        let mut attempt = 0u32;
        loop {
            self.wait_for_host(op, &host).await?;
            let mut req = build(self.shared.http.request(method.clone(), url.clone()));
            if let Some(a) = authorization {
                req = req.header(AUTHORIZATION, a);
            }
            let last = !retry || attempt >= self.retry_times;
            match req.send().await {
                Err(e) => {
                    self.observe(&host, method, 0);
                    let err = self.connection_error(op, &host, &e);
                    if last || !err.is_retryable() {
                        return Err(err);
                    }
                    tokio::time::sleep(backoff(attempt, None)).await;
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    self.observe(&host, method, status);
                    self.throttle_note(&host, &resp);
                    let transient = matches!(status, 408 | 429 | 500..=599);
                    if !transient || last {
                        return Ok(resp);
                    }
                    let wait = retry_after(resp.headers());
                    drop(resp);
                    tokio::time::sleep(backoff(attempt, wait)).await;
                }
            }
            attempt += 1;
        }
    }

    /// Send one request whose body cannot be replayed (a streamed upload):
    /// authorized like [`Session::send`], never retried.
    pub async fn send_once(
        &self,
        op: &Op,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: reqwest::Body,
    ) -> Result<std::result::Result<Response, reqwest::Error>> {
        let endpoint = self.endpoint().await?;
        let authz = if same_origin(url, &endpoint.base) {
            let challenge = self.current_challenge(endpoint);
            self.authorization(op, &challenge, false).await?
        } else {
            // An upload `Location` on another host gets no credentials.
            None
        };
        let mut req = self
            .shared
            .http
            .request(method.clone(), url.clone())
            .headers(headers);
        if let Some(a) = authz {
            req = req.header(AUTHORIZATION, a);
        }
        let host = host_port(url);
        self.wait_for_host(op, &host).await?;
        let r = req.body(body).send().await;
        self.observe(
            &host,
            &method,
            r.as_ref().map_or(0, |r| r.status().as_u16()),
        );
        if let Ok(resp) = &r {
            self.throttle_note(&host, resp);
        }
        Ok(r)
    }
}
