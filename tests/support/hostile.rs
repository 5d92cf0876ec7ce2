//! A hostile registry on a loopback port: it speaks enough of the registry
//! API to draw a client in, then sends what a malicious or broken registry
//! can — numbers at `u64::MAX`, redirects and pagination links to another
//! host, 12 MB tag pages forever, 150,001 tags, multi-megabyte errors, and
//! (from a seed) random statuses, headers and bodies. A [`Behaviour::Collector`]
//! instance is the "other host": it answers anything and records every
//! request, so a test can assert that no credential ever reached it.
//!
//! Every instance logs its requests (method, path and query, and the
//! `Authorization` header it received).

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;

/// The credentials every Basic-protected behaviour accepts.
pub const USER: &str = "hostile-user";
pub const PASSWORD: &str = "hostile-pass-6c1f";
/// The largest number a registry can send.
pub const U64_MAX: &str = "18446744073709551615";

/// What the registry does.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// A Bearer challenge whose token server (this host, `/token`) grants
    /// tokens with `expires_in: 18446744073709551615`; manifests are unknown.
    HugeTokenLifetime,
    /// `429 Too Many Requests` with `Retry-After: 18446744073709551615`, always.
    HugeRetryAfter,
    /// Basic auth; `tags/list` answers `["v1"]` and a `Link` to `collector`.
    LinkTo { collector: String },
    /// Basic auth; a blob upload starts with a `Location` on `collector`.
    UploadTo { collector: String },
    /// `tags/list` answers pages of about `page_bytes` bytes of tags, each
    /// linking to the next, forever.
    BigPages { page_bytes: usize },
    /// `tags/list` answers `tags` tags (`v1` among them) in one page, and
    /// `:v1` is an image whose config has oversized labels and env.
    ManyTags { tags: usize },
    /// `tags/list` answers `v1` and a tag of `bytes` bytes; manifests are
    /// unknown, with an error message of `bytes` bytes.
    HugeError { bytes: usize },
    /// Random statuses, headers and bodies from `seed`; `collector` is the
    /// other host that Locations and Links point at.
    Random { seed: u64, collector: String },
    /// The other host: answers anything, records everything.
    Collector,
}

/// One request a hostile registry received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub authorization: Option<String>,
}

struct Inner {
    behaviour: Behaviour,
    host: String,
    log: Mutex<Vec<Seen>>,
    rng: Mutex<u64>,
}

/// A running hostile registry (`host` is `127.0.0.1:PORT`, plain HTTP).
#[derive(Clone)]
pub struct Hostile {
    pub host: String,
    inner: Arc<Inner>,
}

impl Hostile {
    /// Start one on the current runtime.
    pub async fn start(behaviour: Behaviour) -> Hostile {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seed = match &behaviour {
            Behaviour::Random { seed, .. } => *seed,
            _ => 1,
        };
        let inner = Arc::new(Inner {
            behaviour,
            host: host.clone(),
            log: Mutex::new(Vec::new()),
            rng: Mutex::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Hostile { host, inner }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Requests that carried an `Authorization` header.
    pub fn authorized_requests(&self) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|r| r.authorization.is_some())
            .collect()
    }
}

/// `Basic base64(USER:PASSWORD)`.
pub fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    )
}

/// A `kubernetes.io/dockerconfigjson` payload with the credentials for `hosts`.
pub fn dockerconfigjson(hosts: &[&str]) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let entries: Vec<String> = hosts
        .iter()
        .map(|h| format!("\"{h}\":{{\"auth\":\"{auth}\"}}"))
        .collect();
    format!("{{\"auths\":{{{}}}}}", entries.join(","))
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let uri = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let authorization = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    inner.log.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: uri.clone(),
        authorization: authorization.clone(),
    });
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let head = parts.method == Method::HEAD;
    let resp = match inner.behaviour.clone() {
        Behaviour::Collector => collector(&parts.method, &path),
        Behaviour::HugeTokenLifetime => huge_token(&inner.host, &path, authorization.as_deref()),
        Behaviour::HugeRetryAfter => reply(429, &[("retry-after", U64_MAX)], Vec::new()),
        Behaviour::LinkTo { collector } => {
            basic_only(authorization.as_deref()).unwrap_or_else(|| link_to(&path, &collector))
        }
        Behaviour::UploadTo { collector } => basic_only(authorization.as_deref())
            .unwrap_or_else(|| upload_to(&parts.method, &path, &collector)),
        Behaviour::BigPages { page_bytes } => big_pages(&path, &query, page_bytes),
        Behaviour::ManyTags { tags } => many_tags(&path, tags),
        Behaviour::HugeError { bytes } => huge_error(&path, bytes),
        Behaviour::Random { collector, .. } => random(&inner, &path, &collector),
    };
    if head {
        let (p, _) = resp.into_parts();
        return Response::from_parts(p, Body::empty());
    }
    resp
}

fn reply(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

fn json(status: u16, body: String) -> Response {
    reply(
        status,
        &[("content-type", "application/json")],
        body.into_bytes(),
    )
}

fn unknown() -> Response {
    json(
        404,
        r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.into(),
    )
}

/// `None` when the request carries our Basic credentials, else the challenge.
fn basic_only(authorization: Option<&str>) -> Option<Response> {
    if authorization == Some(basic().as_str()) {
        return None;
    }
    Some(reply(
        401,
        &[("www-authenticate", r#"Basic realm="hostile""#)],
        Vec::new(),
    ))
}

fn collector(method: &Method, path: &str) -> Response {
    if path.contains("/tags/list") {
        return json(200, r#"{"name":"r","tags":["v2"]}"#.into());
    }
    match *method {
        Method::PUT => reply(201, &[], Vec::new()),
        Method::PATCH => reply(202, &[("range", "0-0")], Vec::new()),
        _ => json(200, "{}".into()),
    }
}

fn huge_token(host: &str, path: &str, authorization: Option<&str>) -> Response {
    if path == "/token" {
        return json(
            200,
            format!(r#"{{"token":"hostile-token","expires_in":{U64_MAX}}}"#),
        );
    }
    if authorization != Some("Bearer hostile-token") {
        let challenge = format!(r#"Bearer realm="http://{host}/token",service="hostile""#);
        return reply(401, &[("www-authenticate", &challenge)], Vec::new());
    }
    unknown()
}

fn link_to(path: &str, collector: &str) -> Response {
    if path.ends_with("/tags/list") {
        let link = format!(r#"<http://{collector}{path}?last=v1>; rel="next""#);
        return reply(
            200,
            &[("content-type", "application/json"), ("link", &link)],
            br#"{"name":"r","tags":["v1"]}"#.to_vec(),
        );
    }
    unknown()
}

fn upload_to(method: &Method, path: &str, collector: &str) -> Response {
    if *method == Method::POST && path.contains("/blobs/uploads") {
        let location = format!("http://{collector}/upload/1");
        return reply(
            202,
            &[("location", &location), ("range", "0-0")],
            Vec::new(),
        );
    }
    if *method == Method::PUT && path.contains("/manifests/") {
        return reply(201, &[], Vec::new());
    }
    if path.contains("/blobs/") {
        return reply(404, &[], Vec::new());
    }
    unknown()
}

fn big_pages(path: &str, query: &str, page_bytes: usize) -> Response {
    if !path.ends_with("/tags/list") {
        return unknown();
    }
    let page: u64 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("page="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut body = String::with_capacity(page_bytes + 64);
    body.push_str(r#"{"name":"r","tags":["#);
    let mut i = 0u64;
    while body.len() < page_bytes {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("\"p{page}t{i}\""));
        i += 1;
    }
    body.push_str("]}");
    let link = format!(r#"<{path}?page={}>; rel="next""#, page + 1);
    reply(
        200,
        &[("content-type", "application/json"), ("link", &link)],
        body.into_bytes(),
    )
}

/// The image `ManyTags` serves: (manifest, config).
fn oversized_image() -> (Vec<u8>, Vec<u8>) {
    let labels: Vec<String> = (0..300)
        .map(|i| format!("\"label-{i}\":\"{}\"", "L".repeat(1000)))
        .collect();
    let env: Vec<String> = (0..400)
        .map(|i| format!("\"VAR{i}={}\"", "E".repeat(500)))
        .collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{{}}},"Env":[{}]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        labels.join(","),
        env.join(","),
        "0".repeat(64)
    )
    .into_bytes();
    let config_digest = kubemirror::digest::sha256(&config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}","size":32}}]}}"#,
        config.len(),
        "1".repeat(64)
    )
    .into_bytes();
    (manifest, config)
}

fn many_tags(path: &str, tags: usize) -> Response {
    let (manifest, config) = oversized_image();
    if path.ends_with("/tags/list") {
        let mut body = String::from(r#"{"name":"r","tags":["v1""#);
        for i in 1..tags {
            body.push_str(&format!(",\"t{i:06}\""));
        }
        body.push_str("]}");
        return json(200, body);
    }
    let manifest_digest = kubemirror::digest::sha256(&manifest).to_string();
    if path.ends_with("/manifests/v1") || path.ends_with(&format!("/manifests/{manifest_digest}")) {
        return reply(
            200,
            &[
                ("content-type", "application/vnd.oci.image.manifest.v1+json"),
                ("docker-content-digest", &manifest_digest),
            ],
            manifest,
        );
    }
    let config_digest = kubemirror::digest::sha256(&config).to_string();
    if path.ends_with(&format!("/blobs/{config_digest}")) {
        return reply(
            200,
            &[
                ("content-type", "application/octet-stream"),
                ("docker-content-digest", &config_digest),
            ],
            config,
        );
    }
    unknown()
}

fn huge_error(path: &str, bytes: usize) -> Response {
    if path.ends_with("/tags/list") {
        return json(
            200,
            format!(r#"{{"name":"r","tags":["v1","{}"]}}"#, "T".repeat(bytes)),
        );
    }
    json(
        404,
        format!(
            r#"{{"errors":[{{"code":"MANIFEST_UNKNOWN","message":"{}"}}]}}"#,
            "M".repeat(bytes)
        ),
    )
}

/// xorshift64*: a reproducible stream from the seed.
fn next(inner: &Inner) -> u64 {
    let mut s = inner.rng.lock().unwrap();
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    s.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn pick<'a>(inner: &Inner, from: &[&'a str]) -> &'a str {
    from[(next(inner) % from.len() as u64) as usize]
}

fn random(inner: &Inner, path: &str, collector: &str) -> Response {
    let statuses = [
        200, 200, 200, 201, 202, 204, 301, 302, 307, 308, 400, 401, 401, 403, 404, 405, 416, 429,
        500, 502, 503,
    ];
    let status = statuses[(next(inner) % statuses.len() as u64) as usize];
    let own = &inner.host;
    let far_date = "Fri, 31 Dec 9999 23:59:59 GMT";
    let long = "x".repeat(8000);
    let realm_self =
        format!(r#"Bearer realm="http://{own}/token",service="s",scope="repository:r:pull""#);
    let realm_other = format!(r#"Bearer realm="http://{collector}/token",service="s""#);
    let location_other = format!("http://{collector}/upload/{}", next(inner));
    let link_self = format!(r#"<{path}?n={}>; rel="next""#, next(inner));
    let link_other = format!(r#"<http://{collector}/v2/r/tags/list?last=z>; rel="next""#);
    let candidates: Vec<(&str, Vec<String>)> = vec![
        (
            "retry-after",
            vec![
                U64_MAX.into(),
                "99999999999999999999999999".into(),
                "-1".into(),
                "soon".into(),
                far_date.into(),
                "0".into(),
            ],
        ),
        (
            "www-authenticate",
            vec![
                realm_self,
                realm_other,
                "Basic realm=\"r\"".into(),
                "Bearer service=\"no-realm\"".into(),
                format!("Bearer realm=\"{long}\""),
                "Bearer realm=\"ftp://x/\"".into(),
                "Negotiate".into(),
            ],
        ),
        (
            "location",
            vec![
                location_other,
                "http://[::1".into(),
                "/v2/r/blobs/uploads/next".into(),
                long.clone(),
                "".into(),
            ],
        ),
        (
            "link",
            vec![
                link_self,
                link_other,
                "garbage".into(),
                format!("<{long}>; rel=next"),
            ],
        ),
        (
            "docker-content-digest",
            vec![
                "sha256:zzzz".into(),
                format!("sha256:{}", "a".repeat(64)),
                long.clone(),
            ],
        ),
        (
            "content-type",
            vec![
                "application/vnd.oci.image.manifest.v1+json".into(),
                "application/vnd.oci.image.index.v1+json".into(),
                "application/vnd.docker.distribution.manifest.v2+json".into(),
                "text/html".into(),
            ],
        ),
        ("range", vec!["0-18446744073709551615".into(), "x-y".into()]),
    ];
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, values) in &candidates {
        if next(inner).is_multiple_of(3) {
            let v = &values[(next(inner) % values.len() as u64) as usize];
            headers.push((name.to_string(), v.clone()));
        }
    }
    let body_kind = pick(
        inner,
        &[
            "empty",
            "garbage",
            "token",
            "nested",
            "truncated",
            "manifest",
            "index",
            "tags",
            "errors",
            "config",
        ],
    );
    let body: Vec<u8> = match body_kind {
        "empty" => Vec::new(),
        "garbage" => (0..(next(inner) % 65536))
            .map(|_| (next(inner) & 0xff) as u8)
            .collect(),
        "token" => format!(
            r#"{{"token":"t{}","access_token":"a","expires_in":{}}}"#,
            next(inner),
            pick(inner, &[U64_MAX, "1e400", "-5", "0", "\"3600\""])
        )
        .into_bytes(),
        "nested" => {
            let depth = 100_000;
            let mut v = "[".repeat(depth).into_bytes();
            v.extend("]".repeat(depth).into_bytes());
            v
        }
        "truncated" => br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"#.to_vec(),
        "manifest" => format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}","size":{}}}]}}"#,
            "b".repeat(64),
            pick(inner, &["9223372036854775807", "-1", U64_MAX, "2"]),
            "c".repeat(64),
            pick(inner, &["9223372036854775807", "-1", U64_MAX, "2"]),
        )
        .into_bytes(),
        "index" => {
            let one = format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}"#,
                "d".repeat(64),
                U64_MAX
            );
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
                vec![one; 5000].join(",")
            )
            .into_bytes()
        }
        "tags" => format!(
            r#"{{"name":"r","tags":["v1",1,null,{{"a":[]}},"{}"]}}"#,
            "T".repeat((next(inner) % 200_000) as usize)
        )
        .into_bytes(),
        "errors" => format!(
            r#"{{"errors":[{{"code":"X","message":"{}\u001b[31m","detail":{{}}}}]}}"#,
            "M".repeat((next(inner) % 200_000) as usize)
        )
        .into_bytes(),
        _ => format!(
            r#"{{"architecture":"amd64","os":"linux","created":"{}","config":{{"Labels":{{"a":"{}"}}}}}}"#,
            pick(inner, &["not a date", "9999-99-99T99:99:99Z", "2020-01-01T00:00:00Z"]),
            "L".repeat((next(inner) % 100_000) as usize)
        )
        .into_bytes(),
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    let h: &mut HeaderMap = r.headers_mut();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.append(k, v);
        }
    }
    r
}
