//! A small HTTP proxy in front of a real (plain HTTP) registry, for fault
//! injection: a test installs a rule that looks at each request and decides
//! to forward it, answer in its place, cut the body mid-way, corrupt it, or
//! redirect. Every request is logged (method, path, whether it carried an
//! `Authorization` header).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;

/// What to do with one request.
pub enum Action {
    /// Pass it to the registry unchanged.
    Forward,
    /// Answer with this status, headers and body, never reaching the registry.
    Respond(StatusCode, Vec<(&'static str, String)>, Vec<u8>),
    /// Forward, but drop the connection after this many body bytes.
    CutAfter(usize),
    /// Forward, but flip one byte of the body (same length).
    Corrupt,
    /// Answer 307 with this Location.
    Redirect(String),
    /// Forward without the `Range` header (a server that ignores ranges).
    StripRange,
    /// Forward, but once at least this many body bytes have passed, hold the
    /// rest until the gate opens (a transfer the test can catch mid-way).
    Hold(Arc<Gate>, usize),
    /// Answer a `tags/list` in pages of at most this many tags (honouring
    /// `n` and `last`, with `Link: <…>; rel="next"`), as Distribution 3,
    /// Docker Hub and Harbor do; Distribution 2.8 sends all tags at once.
    Paginate(usize),
}

/// A logged request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: bool,
    pub user_agent: Option<String>,
    /// When the request arrived.
    pub at: std::time::Instant,
}

/// A gate for [`Action::Hold`]: closed until [`Gate::open`]; counts the
/// bodies it holds.
pub struct Gate {
    open: tokio::sync::watch::Sender<bool>,
    held: std::sync::atomic::AtomicUsize,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate {
            open: tokio::sync::watch::channel(false).0,
            held: Default::default(),
        })
    }

    /// Let every held body (and any later one) go on.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// How many bodies have been stopped at the gate so far.
    pub fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn pass(&self) {
        let mut rx = self.open.subscribe();
        if !*rx.borrow_and_update() {
            self.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = rx.wait_for(|open| *open).await;
        }
    }
}

type Rule = dyn Fn(&str, &str, usize) -> Action + Send + Sync;

struct Inner {
    upstream: String,
    client: reqwest::Client,
    rule: Mutex<Arc<Rule>>,
    log: Mutex<Log>,
    /// Added before each request is handled (a registry across a WAN).
    latency_micros: std::sync::atomic::AtomicU64,
}

/// Every request seen, and how many per (method, path) (so that `nth` stays
/// cheap when a benchmark sends tens of thousands of requests).
#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    per_path: HashMap<(String, String), usize>,
}

/// A running proxy; `host` is `127.0.0.1:PORT`.
#[derive(Clone)]
pub struct Proxy {
    pub host: String,
    inner: Arc<Inner>,
}

impl Proxy {
    /// Start a proxy to `upstream` (`http://127.0.0.1:PORT`) on the current runtime.
    pub async fn start(upstream: &str) -> Proxy {
        // reqwest is built without a default crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            rule: Mutex::new(Arc::new(|_: &str, _: &str, _: usize| Action::Forward)),
            log: Mutex::new(Log::default()),
            latency_micros: Default::default(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Proxy {
            host: addr.to_string(),
            inner,
        }
    }

    /// Decide per request: `rule(method, path_and_query, nth)` where `nth`
    /// counts earlier requests with the same method and path (0 for the first).
    pub fn set_rule(&self, rule: impl Fn(&str, &str, usize) -> Action + Send + Sync + 'static) {
        *self.inner.rule.lock().unwrap() = Arc::new(rule);
    }

    /// Delay every request by `latency` before handling it (the scale
    /// benchmark's stand-in for a far-away registry).
    pub fn set_latency(&self, latency: std::time::Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.inner
            .latency_micros
            .store(micros, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn log(&self) -> Vec<Seen> {
        self.inner.log.lock().unwrap().seen.clone()
    }

    /// The log so far, leaving it empty.
    pub fn take_log(&self) -> Vec<Seen> {
        let mut log = self.inner.log.lock().unwrap();
        log.per_path.clear();
        std::mem::take(&mut log.seen)
    }

    pub fn clear_log(&self) {
        self.take_log();
    }
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let path = req.uri().path().to_string();
    let nth = {
        let mut log = inner.log.lock().unwrap();
        let count = log
            .per_path
            .entry((method.clone(), path.clone()))
            .or_default();
        let nth = *count;
        *count += 1;
        log.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            authorization: req.headers().contains_key("authorization"),
            user_agent: req
                .headers()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            at: std::time::Instant::now(),
        });
        nth
    };
    let latency = inner
        .latency_micros
        .load(std::sync::atomic::Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_micros(latency)).await;
    }
    let rule = inner.rule.lock().unwrap().clone();
    let action = rule(&method, &pq, nth);
    match action {
        Action::Respond(status, headers, body) => {
            let mut r = Response::builder().status(status);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(Body::from(body)).unwrap()
        }
        Action::Redirect(to) => Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header("location", to)
            .body(Body::empty())
            .unwrap(),
        Action::Paginate(page) => paginate(&inner, req, page).await,
        other => forward(&inner, req, other).await,
    }
}

async fn paginate(inner: &Inner, req: Request, page: usize) -> Response {
    let path = req.uri().path().to_string();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.clone());
    let n = get("n")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(page)
        .min(page);
    let last = get("last");
    let full: serde_json::Value = inner
        .client
        .get(format!("{}{path}", inner.upstream))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    let tags: Vec<String> = serde_json::from_value(full["tags"].clone()).unwrap_or_default();
    let start = match &last {
        Some(l) => tags.iter().position(|t| t == l).map_or(0, |i| i + 1),
        None => 0,
    };
    let chunk: Vec<String> = tags.iter().skip(start).take(n).cloned().collect();
    let mut r = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json");
    if start + chunk.len() < tags.len() {
        r = r.header(
            "link",
            format!(
                "<{path}?n={n}&last={}>; rel=\"next\"",
                chunk.last().cloned().unwrap_or_default()
            ),
        );
    }
    let body = serde_json::json!({"name": full["name"], "tags": chunk});
    r.body(Body::from(body.to_string())).unwrap()
}

async fn forward(inner: &Inner, req: Request, action: Action) -> Response {
    let (parts, body) = req.into_parts();
    let url = format!(
        "{}{}",
        inner.upstream,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut headers = parts.headers.clone();
    headers.remove("content-length");
    if matches!(action, Action::StripRange) {
        headers.remove("range");
    }
    let len = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut rb = inner
        .client
        .request(parts.method.clone(), url)
        .headers(headers);
    let stream = body.into_data_stream();
    let b = reqwest::Body::wrap_stream(stream);
    if let Some(n) = len {
        rb = rb.header("content-length", n);
    }
    rb = rb.body(b);
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(format!("proxy: {e}")))
                .unwrap();
        }
    };
    let status = resp.status();
    let mut out = Response::builder().status(status.as_u16());
    let resp_headers: HeaderMap = resp.headers().clone();
    for (k, v) in resp_headers.iter() {
        out = out.header(k, v);
    }
    let stream = resp.bytes_stream();
    let body = match action {
        Action::CutAfter(n) => {
            let mut sent = 0usize;
            let s = stream.map(move |c| {
                let c = c.map_err(std::io::Error::other)?;
                if sent + c.len() >= n {
                    let keep = n - sent;
                    sent = n;
                    if keep == 0 {
                        return Err(std::io::Error::other("cut"));
                    }
                    return Ok(c.slice(..keep));
                }
                sent += c.len();
                Ok(c)
            });
            // After the partial chunk, fail the stream: hyper drops the connection.
            let s = s.chain(futures::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("cut"))
            }));
            Body::from_stream(s)
        }
        Action::Corrupt => {
            let mut first = true;
            Body::from_stream(stream.map(move |c| {
                let c = c.map_err(std::io::Error::other)?;
                if first && !c.is_empty() {
                    first = false;
                    let mut v = c.to_vec();
                    v[0] ^= 0xff;
                    return Ok::<_, std::io::Error>(Bytes::from(v));
                }
                Ok(c)
            }))
        }
        Action::Hold(gate, after) => {
            let stream = Box::pin(stream);
            let s = futures::stream::unfold((stream, 0usize), move |(mut s, sent)| {
                let gate = gate.clone();
                async move {
                    if sent >= after {
                        gate.pass().await;
                    }
                    let c = s.next().await?.map_err(std::io::Error::other);
                    let n = c.as_ref().map_or(0, Bytes::len);
                    Some((c, (s, sent + n)))
                }
            });
            Body::from_stream(s)
        }
        _ => Body::from_stream(stream),
    };
    let mut r = out.body(body).unwrap();
    if let Some(v) = resp_headers.get("content-length") {
        r.headers_mut().insert("content-length", v.clone());
    }
    r
}
