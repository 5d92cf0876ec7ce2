//! One [`Session`] per (registry, SystemContext): the `reqwest::Client` (so
//! connections are pooled and kept alive), the result of the `/v2/` ping
//! (scheme and auth challenge), resolved credentials and the token cache.
//! Every request goes through [`Session::send`], which adds authorization,
//! retries transient failures (connection errors, 408, 429, 5xx) with
//! exponential backoff and jitter while honouring `Retry-After`, renews a
//! refused Bearer token once, and reports to the context's observer.
//!
//! Sessions are shared process-wide (keyed by host and everything in the
//! context that changes what goes on the wire) and dropped after a few idle
//! minutes, so a reconciler that copies tag after tag pings and logs in once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderMap, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::OnceCell;
use url::Url;

use super::auth::{self, CachedToken, Challenge, Scopes};
use super::tls;
use crate::image::{Auth, CredentialStore, Error, RequestObserver, Result, SystemContext};

/// Longest wait between two attempts, whatever `Retry-After` says.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);
/// First backoff step (doubled per attempt, jittered).
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Idle sessions are dropped after this long.
const SESSION_IDLE: Duration = Duration::from_secs(300);
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
struct Endpoint {
    base: Url,
    challenge: Challenge,
}

/// A connection to one registry under one SystemContext.
pub struct Session {
    /// `host[:port]` requests go to (`registry-1.docker.io` for Docker Hub).
    pub host: String,
    /// The registry as references name it (`docker.io`), for credential lookup.
    pub registry: String,
    http: reqwest::Client,
    insecure: bool,
    retry_times: u32,
    observer: Option<Arc<dyn RequestObserver>>,
    explicit: Option<Auth>,
    store: Option<Arc<dyn CredentialStore>>,
    endpoint: OnceCell<Endpoint>,
    creds: Mutex<HashMap<String, Option<Auth>>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
    token_fetch: tokio::sync::Mutex<()>,
}

type SessionKey = (String, String);

struct CacheEntry {
    session: Arc<Session>,
    last_used: Instant,
}

fn sessions() -> &'static Mutex<HashMap<SessionKey, CacheEntry>> {
    static S: OnceLock<Mutex<HashMap<SessionKey, CacheEntry>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

/// Everything in `ctx` that changes what a session sends; secrets only hashed.
fn context_key(ctx: &SystemContext) -> String {
    let ca = crate::digest::sha256(&ctx.extra_ca_pem.concat());
    let ptr = |p: Option<*const ()>| p.map_or(0, |p| p as usize);
    format!(
        "{:?}|{:?}|{}|{}|{:x}|{:x}|{}",
        ctx.tls_verify,
        ctx.cert_dir,
        ca.digest(),
        auth::fingerprint(ctx.credentials.as_ref()),
        ptr(ctx
            .credential_store
            .as_ref()
            .map(|a| Arc::as_ptr(a) as *const ())),
        ptr(ctx.observer.as_ref().map(|a| Arc::as_ptr(a) as *const ())),
        ctx.retry_times,
    )
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
        let key = (host.to_string(), context_key(ctx));
        let mut map = sessions().lock().expect("session cache poisoned");
        let now = Instant::now();
        map.retain(|_, e| now.duration_since(e.last_used) < SESSION_IDLE);
        if let Some(e) = map.get_mut(&key) {
            e.last_used = now;
            return Ok(e.session.clone());
        }
        let session = Arc::new(Session::new(ctx, registry, host)?);
        map.insert(
            key,
            CacheEntry {
                session: session.clone(),
                last_used: now,
            },
        );
        Ok(session)
    }

    fn new(ctx: &SystemContext, registry: &str, host: &str) -> Result<Session> {
        let config = tls::client_config(ctx, host)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("kubemirror/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Connection {
                host: host.into(),
                op: "TLS setup".into(),
                message: error_chain(&e),
                retryable: false,
            })?;
        Ok(Session {
            host: host.into(),
            registry: registry.into(),
            http,
            insecure: ctx.tls_verify == Some(false),
            retry_times: ctx.retry_times,
            observer: ctx.observer.clone(),
            explicit: ctx.credentials.clone(),
            store: ctx.credential_store.clone(),
            endpoint: OnceCell::new(),
            creds: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            token_fetch: tokio::sync::Mutex::new(()),
        })
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

    /// Ping `/v2/` once: which scheme works, and what auth it wants. With
    /// `tls_verify = false`, HTTPS is tried first and plain HTTP after it, as
    /// containers/image does for insecure registries.
    async fn endpoint(&self) -> Result<&Endpoint> {
        self.endpoint
            .get_or_try_init(|| async {
                let https = Url::parse(&format!("https://{}/", self.host)).map_err(|e| {
                    Error::Invalid(format!("invalid registry host {:?}: {e}", self.host))
                })?;
                let op = Op {
                    repository: String::new(),
                    op: "ping",
                    what: "/v2/".into(),
                    scopes: Scopes::default(),
                };
                let first = self.ping(&op, https.clone()).await;
                match first {
                    Err(e @ Error::Connection { .. }) if self.insecure => {
                        let mut http = https;
                        let _ = http.set_scheme("http");
                        self.ping(&op, http).await.map_err(|_| e)
                    }
                    other => other,
                }
            })
            .await
    }

    async fn ping(&self, op: &Op, base: Url) -> Result<Endpoint> {
        let url = base.join("/v2/").expect("static path");
        let resp = self
            .execute(op, &Method::GET, &url, &|r| r, None, true)
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
    pub fn credentials(&self, repository: &str) -> Result<Option<Auth>> {
        if let Some(a) = &self.explicit {
            return Ok(Some(a.clone()));
        }
        let Some(store) = &self.store else {
            return Ok(None);
        };
        if let Some(a) = self.creds.lock().expect("poisoned").get(repository) {
            return Ok(a.clone());
        }
        let found = store.lookup_for_repository(&self.registry, repository)?;
        self.creds
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
        let mut challenge = endpoint.challenge.clone();
        let mut renewed = false;
        loop {
            let authz = self.authorization(op, &challenge, renewed).await?;
            let resp = self
                .execute(op, &method, &url, build, authz.as_deref(), true)
                .await?;
            if resp.status() == StatusCode::UNAUTHORIZED
                && !renewed
                && matches!(challenge, Challenge::Bearer { .. })
            {
                // An expired token, or one without the scope the registry wants.
                if let Some(c) = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(auth::parse_challenge)
                {
                    challenge = c;
                }
                renewed = true;
                continue;
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

    /// The `Authorization` value for `op` under `challenge`.
    async fn authorization(
        &self,
        op: &Op,
        challenge: &Challenge,
        renew: bool,
    ) -> Result<Option<String>> {
        let creds = self.credentials(&op.repository)?;
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(creds.as_ref().and_then(auth::basic_header)),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut scopes = op.scopes.clone();
                if let Some(s) = scope.as_ref().filter(|_| renew) {
                    for one in s.split(' ').filter(|s| !s.is_empty()) {
                        scopes = scopes.with(one.to_string());
                    }
                }
                let key = format!("{}|{}", auth::fingerprint(creds.as_ref()), scopes.key());
                if !renew && let Some(t) = self.cached_token(&key) {
                    return Ok(Some(format!("Bearer {}", t.expose())));
                }
                let _guard = self.token_fetch.lock().await;
                // Another task may have fetched it while we waited.
                if !renew && let Some(t) = self.cached_token(&key) {
                    return Ok(Some(format!("Bearer {}", t.expose())));
                }
                let (token, life) = self
                    .fetch_token(op, realm, service.as_deref(), &scopes, creds.as_ref())
                    .await?;
                self.tokens
                    .lock()
                    .expect("poisoned")
                    .insert(key, CachedToken::new(token.clone(), life));
                Ok(Some(format!("Bearer {}", token.expose())))
            }
        }
    }

    fn cached_token(&self, key: &str) -> Option<crate::image::Secret> {
        let mut tokens = self.tokens.lock().expect("poisoned");
        match tokens.get(key) {
            Some(t) if t.is_fresh() => Some(t.token.clone()),
            Some(_) => {
                tokens.remove(key);
                None
            }
            None => None,
        }
    }

    /// Ask the token server: GET with Basic credentials (or none); the
    /// OAuth2 POST form for identity tokens, or when GET is refused with 404/405.
    async fn fetch_token(
        &self,
        op: &Op,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
        creds: Option<&Auth>,
    ) -> Result<(crate::image::Secret, Duration)> {
        let realm_url = Url::parse(realm)
            .map_err(|e| self.plain_error(op, 0, format!("invalid token realm {realm:?}: {e}")))?;
        let auth_op = Op {
            what: format!("token from {}", host_port(&realm_url)),
            ..op.clone()
        };
        let use_post = matches!(creds, Some(Auth::IdentityToken { .. }));
        let mut resp = None;
        if !use_post {
            let mut url = realm_url.clone();
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for s in &scopes.0 {
                    q.append_pair("scope", s);
                }
            }
            let basic = creds.and_then(auth::basic_header);
            let r = self
                .execute(&auth_op, &Method::GET, &url, &|r| r, basic.as_deref(), true)
                .await?;
            let refused = matches!(r.status().as_u16(), 404 | 405);
            if !(refused && creds.is_some()) {
                resp = Some(r);
            }
        }
        let resp = match resp {
            Some(r) => r,
            None => {
                let form = auth::oauth_form(creds.expect("checked above"), service, scopes);
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&form)
                    .finish();
                self.execute(
                    &auth_op,
                    &Method::POST,
                    &realm_url,
                    &|r| {
                        r.header(
                            reqwest::header::CONTENT_TYPE,
                            "application/x-www-form-urlencoded",
                        )
                        .body(body.clone())
                    },
                    None,
                    true,
                )
                .await?
            }
        };
        if !resp.status().is_success() {
            return Err(self.status_error(&auth_op, resp).await);
        }
        let body = read_capped(resp, 1 << 20)
            .await
            .map_err(|m| self.plain_error(&auth_op, 0, m))?;
        serde_json::from_slice::<auth::TokenResponse>(&body)
            .ok()
            .and_then(auth::TokenResponse::into_token)
            .ok_or_else(|| {
                self.plain_error(&auth_op, 0, "token server answered without a token".into())
            })
    }

    /// One request with retries; reports every attempt to the observer.
    async fn execute(
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
            let mut req = build(self.http.request(method.clone(), url.clone()));
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
        let authz = self.authorization(op, &endpoint.challenge, false).await?;
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers);
        if let Some(a) = authz {
            req = req.header(AUTHORIZATION, a);
        }
        let host = host_port(url);
        let r = req.body(body).send().await;
        self.observe(
            &host,
            &method,
            r.as_ref().map_or(0, |r| r.status().as_u16()),
        );
        Ok(r)
    }

    fn observe(&self, host: &str, method: &Method, status: u16) {
        if let Some(o) = &self.observer {
            o.request(host, method.as_str(), status);
        }
    }

    /// A `Error::Connection` for a failed request.
    pub fn connection_error(&self, op: &Op, host: &str, e: &reqwest::Error) -> Error {
        let message = error_chain(e);
        let lower = message.to_ascii_lowercase();
        let tls_refusal = lower.contains("certificate")
            || lower.contains("unknownissuer")
            || lower.contains("invalid peer");
        Error::Connection {
            host: host.to_string(),
            op: format!("{} {}", op.op, op.what).trim().to_string(),
            message,
            retryable: !tls_refusal && !e.is_builder(),
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
        let retry_after = retry_after(resp.headers());
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

fn display_repo(r: &str) -> String {
    if r.is_empty() { "*".into() } else { r.into() }
}

fn join_what(what: &str, message: &str) -> String {
    match (what.is_empty(), message.is_empty()) {
        (true, _) => message.into(),
        (false, true) => what.into(),
        (false, false) => format!("{what}: {message}"),
    }
}

/// The messages of a Distribution error body (`{"errors":[{code,message}]}`),
/// else the first line of the body, bounded.
pub fn registry_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
        let msgs: Vec<String> = env
            .errors
            .iter()
            .map(|e| {
                if e.message.is_empty() {
                    e.code.clone()
                } else {
                    e.message.clone()
                }
            })
            .filter(|m| !m.is_empty())
            .collect();
        if !msgs.is_empty() {
            return truncate(&msgs.join("; "), 300);
        }
    }
    let text = String::from_utf8_lossy(body);
    truncate(text.lines().next().unwrap_or("").trim(), 200)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// Read at most `cap` bytes of a body; longer bodies are an error.
pub async fn read_capped(mut resp: Response, cap: usize) -> std::result::Result<Vec<u8>, String> {
    if let Some(len) = resp.content_length()
        && len > cap as u64
    {
        return Err(format!(
            "response of {len} bytes is over the {cap}-byte limit"
        ));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        if out.len() + chunk.len() > cap {
            return Err(format!("response is over the {cap}-byte limit"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `host[:port]` of a URL.
pub fn host_port(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// An error and its causes on one line (reqwest's own message is terse).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// `Retry-After`: delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let d = now.duration_until(when);
    Some(Duration::try_from(d).unwrap_or(Duration::ZERO))
}

/// How long to wait before attempt `attempt + 1`: the server's `Retry-After`
/// if given, else exponential backoff with jitter; never above the cap.
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(w) = retry_after {
        return w.min(MAX_RETRY_WAIT);
    }
    let exp = BACKOFF_BASE.saturating_mul(1 << attempt.min(16));
    let jitter = rand::random::<f64>() * 0.5 + 0.75;
    exp.mul_f64(jitter).min(MAX_RETRY_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let date = jiff::fmt::rfc2822::to_string(&later.to_zoned(jiff::tz::TimeZone::UTC))
            .unwrap()
            .replace("+0000", "GMT");
        h.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0, None) <= Duration::from_millis(250));
        assert!(backoff(3, None) >= Duration::from_millis(1200));
        assert_eq!(backoff(30, None), MAX_RETRY_WAIT);
        assert_eq!(backoff(0, Some(Duration::from_secs(3600))), MAX_RETRY_WAIT);
    }

    #[test]
    fn registry_messages() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(registry_message(body), "manifest unknown");
        assert_eq!(registry_message(b"oops\nmore"), "oops");
    }
}
