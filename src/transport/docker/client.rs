//! One [`Session`] per (registry, SystemContext): the `reqwest::Client` (so
//! connections are pooled and kept alive), the endpoint (scheme, and the auth
//! challenge learned from the first refused request — there is no `/v2/` ping
//! unless `tls_verify = false` needs an HTTPS probe), resolved credentials and
//! the token cache.
//! Every request goes through [`Session::send`], which adds authorization
//! (only to the registry's own origin: a `Location` or `Link` naming another
//! host or scheme is followed without credentials),
//! retries transient failures (connection errors, 408, 429, 5xx) with
//! exponential backoff and jitter while honouring `Retry-After`, renews a
//! refused Bearer token once, and reports to the context's observer.
//!
//! Sessions are shared through the context's
//! [`RegistryContext`](crate::image::RegistryContext) (keyed by host and
//! everything in the context that changes what goes on the wire) and dropped
//! after a few idle minutes, so a reconciler that copies tag after tag pings
//! and logs in once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::OnceCell;
use url::Url;

use super::auth::{self, CachedToken, Challenge, Scopes};
use super::tls;
pub use super::wire::{
    MAX_RETRY_WAIT, backoff, describe_connection_error, host_port, read_capped, registry_message,
    retry_after,
};
use super::wire::{display_repo, join_what, same_origin};
use crate::image::{
    Auth, CredentialStore, Error, RegistryContext, RequestObserver, Result, SystemContext,
};

/// Error bodies are read up to this many bytes.
const MAX_ERROR_BODY: usize = 16 << 10;

/// What a request is for, for error messages and token scopes.
#[derive(Debug, Clone)]
pub struct Op {
    /// The repository (`""` for registry-wide calls).
    pub repository: String,
    /// `pull`, `push`, `list tags`, `catalog`.
    pub op: &'static str,
    /// What is being read or written (`manifest v1`, `blob sha256:…`).
    pub what: String,
    pub scopes: Scopes,
}

impl Op {
    pub fn pull(repository: &str, what: impl Into<String>) -> Self {
        Op {
            repository: repository.into(),
            op: "pull",
            what: what.into(),
            scopes: Scopes::repository(repository, "pull"),
        }
    }

    pub fn push(repository: &str, what: impl Into<String>) -> Self {
        Op {
            repository: repository.into(),
            op: "push",
            what: what.into(),
            scopes: Scopes::repository(repository, "pull,push"),
        }
    }
}

/// The ping's outcome.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    base: Url,
    challenge: Challenge,
}

/// A connection to one registry for one source or destination: the shared
/// state plus this context's observer and retry budget.
pub struct Session {
    /// `host[:port]` requests go to (`registry-1.docker.io` for Docker Hub).
    pub host: String,
    /// The registry as references name it (`docker.io`), for credential lookup.
    pub registry: String,
    pub(super) shared: Arc<Shared>,
    /// The cool-off per host is this context's.
    hosts: Arc<RegistryContext>,
    retry_times: u32,
    observer: Option<Arc<dyn RequestObserver>>,
    fail_fast_when_rate_limited: bool,
}

/// What every session of one registry under equivalent contexts (same TLS
/// settings and credentials) shares: the HTTP client and its connection
/// pool, the ping's outcome, resolved credentials and the token cache.
/// Observers and retry budgets are not part of it, so that the copy engine
/// wrapping each copy's observer still reuses connections and tokens.
pub(super) struct Shared {
    pub(super) http: reqwest::Client,
    insecure: bool,
    explicit: Option<Auth>,
    store: Option<Arc<dyn CredentialStore>>,
    endpoint: OnceCell<Endpoint>,
    /// A challenge learned from a refused request when the ping asked for none.
    learned: Mutex<Option<Challenge>>,
    creds: Mutex<HashMap<String, Option<Auth>>>,
    pub(super) tokens: Mutex<HashMap<String, CachedToken>>,
    pub(super) token_fetch: tokio::sync::Mutex<()>,
}

/// Everything in `ctx` that changes what a session sends; secrets only
/// hashed. A credential store is keyed by its
/// [`fingerprint`](CredentialStore::fingerprint) (so that the controller,
/// which builds a store from a Secret on every reconcile, keeps one session
/// per registry: without it every reconcile paid a refused request to learn
/// the challenge again, and left an HTTP client behind for minutes), else by
/// address: the shared state holds a clone of the `Arc`, so the address
/// cannot be reused while the entry lives.
pub(super) fn context_key(ctx: &SystemContext, host: &str) -> String {
    let ca = crate::digest::sha256(&ctx.extra_ca_pem.concat());
    // The certificate directories' listings, so that edited files are reread.
    let mut listing = String::new();
    for dir in tls::cert_dirs(ctx, host) {
        let mut entries: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                let mtime = m.modified().ok()?;
                Some(format!("{:?}:{}:{:?}", e.file_name(), m.len(), mtime))
            })
            .collect();
        entries.sort();
        listing += &format!("{}[{}]", dir.display(), entries.join(","));
    }
    let listing = crate::digest::sha256(listing.as_bytes());
    let store = match &ctx.credential_store {
        None => "none".to_string(),
        Some(s) => s
            .fingerprint()
            .map(|f| format!("fp:{f}"))
            .unwrap_or_else(|| format!("at:{:x}", Arc::as_ptr(s) as *const () as usize)),
    };
    format!(
        "{:?}|{:?}|{}|{}|{}|{store}",
        ctx.tls_verify,
        ctx.user_agent,
        listing.digest(),
        ca.digest(),
        auth::fingerprint(ctx.credentials.as_ref()),
    )
}

impl Shared {
    fn new(ctx: &SystemContext, host: &str) -> Result<Shared> {
        let config = tls::client_config(ctx, host)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(
                ctx.user_agent
                    .as_deref()
                    .unwrap_or(concat!("kubemirror/", env!("CARGO_PKG_VERSION"))),
            )
            .build()
            .map_err(|e| Error::Connection {
                host: host.into(),
                op: "TLS setup".into(),
                message: crate::image::one_line(&e),
                retryable: false,
            })?;
        Ok(Shared {
            http,
            insecure: ctx.tls_verify == Some(false),
            explicit: ctx.credentials.clone(),
            store: ctx.credential_store.clone(),
            endpoint: OnceCell::new(),
            learned: Mutex::new(None),
            creds: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            token_fetch: tokio::sync::Mutex::new(()),
        })
    }
}

impl Session {
    /// The shared session for `registry` (a reference's registry name) under `ctx`.
    pub fn get(ctx: &SystemContext, registry: &str) -> Result<Arc<Session>> {
        let host = match registry {
            crate::reference::DOCKER_HUB | "index.docker.io" => {
                crate::reference::DOCKER_HUB_ENDPOINT
            }
            other => other,
        };
        let shared = ctx
            .registry
            .session(host, context_key(ctx, host), || Shared::new(ctx, host))?;
        Ok(Arc::new(Session {
            host: host.into(),
            registry: registry.into(),
            shared,
            hosts: ctx.registry.clone(),
            retry_times: ctx.retry_times,
            observer: ctx.observer.clone(),
            fail_fast_when_rate_limited: ctx.fail_fast_when_rate_limited,
        }))
    }

    /// Retries after a first failed attempt.
    pub fn retry_times(&self) -> u32 {
        self.retry_times
    }

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
    async fn endpoint(&self) -> Result<&Endpoint> {
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

    async fn ping(&self, op: &Op, base: Url, retry: bool) -> Result<Endpoint> {
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

    /// Credentials for `repository`: `--creds`, else the store.
    pub async fn credentials(&self, repository: &str) -> Result<Option<Auth>> {
        if let Some(a) = &self.shared.explicit {
            return Ok(Some(a.clone()));
        }
        let Some(store) = self.shared.store.clone() else {
            return Ok(None);
        };
        if let Some(a) = self.shared.creds.lock().expect("poisoned").get(repository) {
            return Ok(a.clone());
        }
        // A store may run a credential helper: keep it off the async workers.
        let (registry, repo) = (self.registry.clone(), repository.to_string());
        let found =
            tokio::task::spawn_blocking(move || store.lookup_for_repository(&registry, &repo))
                .await
                .map_err(|e| {
                    Error::Invalid(format!("credential lookup for {}: {e}", self.registry))
                })??;
        self.shared
            .creds
            .lock()
            .expect("poisoned")
            .insert(repository.to_string(), found.clone());
        Ok(found)
    }

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
    pub(super) async fn execute(
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

    /// The ping's challenge, or the one a refused request taught us.
    fn current_challenge(&self, endpoint: &Endpoint) -> Challenge {
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

    /// Tell the context's throttle about a 429 (other answers go through `observe`).
    fn throttle_note(&self, host: &str, resp: &Response) {
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            self.hosts
                .throttle()
                .rate_limited(host, retry_after(resp.headers()));
        }
    }

    /// While `host` cools off after a 429 (the context's throttle): wait, or (with
    /// `fail_fast_when_rate_limited`) fail at once without sending anything.
    async fn wait_for_host(&self, op: &Op, host: &str) -> Result<()> {
        let Some(wait) = self.hosts.throttle().closed_for(host) else {
            return Ok(());
        };
        if !self.fail_fast_when_rate_limited {
            // However long the host's cool-off, one wait is at most the cap.
            tokio::time::sleep(wait.min(MAX_RETRY_WAIT)).await;
            return Ok(());
        }
        Err(Error::Registry {
            host: self.host.clone(),
            repository: display_repo(&op.repository),
            op: op.op.into(),
            status: 429,
            message: join_what(
                &op.what,
                // No figure in the text: the status it ends up in stays the
                // same from one requeue to the next.
                &format!(
                    "{host} is rate limiting us (429 Too Many Requests): waiting before asking again"
                ),
            ),
            retry_after: Some(wait),
        })
    }

    pub(super) fn observe(&self, host: &str, method: &Method, status: u16) {
        if status != 0 && status != 429 {
            self.hosts.throttle().answered(host);
        }
        if let Some(o) = &self.observer {
            o.request(host, method.as_str(), status);
        }
    }

    /// A `Error::Connection` for a failed request.
    pub fn connection_error(&self, op: &Op, host: &str, e: &reqwest::Error) -> Error {
        let (message, retryable) = describe_connection_error(e);
        Error::Connection {
            host: host.to_string(),
            op: format!("{} {}", op.op, op.what).trim().to_string(),
            message,
            retryable,
        }
    }

    /// A `Error::Registry` with a message of our own.
    pub fn plain_error(&self, op: &Op, status: u16, message: String) -> Error {
        Error::Registry {
            host: self.host.clone(),
            repository: display_repo(&op.repository),
            op: op.op.into(),
            status,
            message: join_what(&op.what, &message),
            retry_after: None,
        }
    }

    /// A `Error::Registry` from an error response (reads its body, bounded).
    pub async fn status_error(&self, op: &Op, resp: Response) -> Error {
        let status = resp.status().as_u16();
        // Without a Retry-After, a 429 says how long the host's cool-off is.
        let retry_after = retry_after(resp.headers()).or_else(|| {
            (status == 429)
                .then(|| self.hosts.throttle().closed_for(&host_port(resp.url())))
                .flatten()
        });
        // Always the registry's name, also for its token server or storage
        // backend: that is what the user configured (the `what` says more).
        let host = self.host.clone();
        let body = read_capped(resp, MAX_ERROR_BODY).await.unwrap_or_default();
        Error::Registry {
            host,
            repository: display_repo(&op.repository),
            op: op.op.into(),
            status,
            message: join_what(&op.what, &registry_message(&body)),
            retry_after,
        }
    }
}
