//! A Docker registry token server (the Bearer flow of Docker Hub, GHCR,
//! Harbor) for a real Distribution registry, as
//! `../shared/bench/tokenserver.py` but in-process: RS256 JWTs signed with a
//! key whose self-signed certificate is the registry's `rootcertbundle` and
//! rides in the JWT header's `x5c`.
//!
//! `GET /token?service=&scope=…` with Basic credentials (or none: pull only),
//! and the OAuth2 form `POST /token` (`grant_type=password` or
//! `refresh_token`). Every request is logged with the scopes asked for.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rustls_pki_types::pem::PemObject;

use super::run;

/// One request the token server answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub method: String,
    pub user: Option<String>,
    pub scopes: Vec<String>,
}

struct Inner {
    service: String,
    issuer: String,
    users: HashMap<String, String>,
    /// refresh token → user
    refresh_tokens: HashMap<String, String>,
    expires_in: u64,
    key: ring::signature::RsaKeyPair,
    x5c: String,
    log: Mutex<Vec<TokenRequest>>,
    get_allowed: bool,
}

/// A running token server.
#[derive(Clone)]
pub struct TokenServer {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub cert: PathBuf,
    inner: Arc<Inner>,
}

/// How to run it.
pub struct TokenOptions {
    pub users: Vec<(String, String)>,
    pub refresh_tokens: Vec<(String, String)>,
    pub expires_in: u64,
    /// False: GET is answered 405 (a token server that wants the OAuth2 POST).
    pub get_allowed: bool,
}

impl Default for TokenOptions {
    fn default() -> Self {
        TokenOptions {
            users: vec![],
            refresh_tokens: vec![],
            expires_in: 300,
            get_allowed: true,
        }
    }
}

impl TokenServer {
    /// Generate a key and certificate in `dir` and serve on a free port.
    pub async fn start(dir: &Path, opts: TokenOptions) -> TokenServer {
        let key_pem = dir.join("token-key.pem");
        let cert = dir.join("token-cert.pem");
        let s = |p: &Path| p.to_string_lossy().into_owned();
        run(Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=kubemirror token issuer",
            "-keyout",
            &s(&key_pem),
            "-out",
            &s(&cert),
        ]));
        let key_der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_file(&key_pem)
            .expect("openssl writes PKCS#8 keys");
        let key = ring::signature::RsaKeyPair::from_pkcs8(key_der.secret_pkcs8_der()).unwrap();
        let cert_der = rustls_pki_types::CertificateDer::from_pem_file(&cert).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert_der.as_ref());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            service: "kubemirror-test-registry".into(),
            issuer: "kubemirror-test-issuer".into(),
            users: opts.users.into_iter().collect(),
            refresh_tokens: opts.refresh_tokens.into_iter().collect(),
            expires_in: opts.expires_in,
            key,
            x5c,
            log: Mutex::new(Vec::new()),
            get_allowed: opts.get_allowed,
        });
        let app = axum::Router::new()
            .route("/token", axum::routing::get(get_token).post(post_token))
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TokenServer {
            realm: format!("http://{addr}/token"),
            service: inner.service.clone(),
            issuer: inner.issuer.clone(),
            cert,
            inner,
        }
    }

    /// The registry configuration section for `auth: token`.
    pub fn registry_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            self.realm,
            self.service,
            self.issuer,
            self.cert.display()
        )
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.inner.log.lock().unwrap().clone()
    }
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("content-type", "application/json")],
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
    )
        .into_response()
}

async fn get_token(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if !inner.get_allowed {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let mut who = None;
    if let Some(a) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(a)
            .unwrap_or_default();
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        let (u, p) = decoded.split_once(':').unwrap_or((&decoded, ""));
        if inner.users.get(u).map(String::as_str) != Some(p) {
            return unauthorized();
        }
        who = Some(u.to_string());
    }
    let scopes: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(String::from))
        .collect();
    issue(&inner, "GET", who, scopes)
}

async fn post_token(State(inner): State<Arc<Inner>>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let who = match form.get("grant_type").map(String::as_str) {
        Some("password") => {
            let u = form.get("username").cloned().unwrap_or_default();
            let p = form.get("password").cloned().unwrap_or_default();
            if inner.users.get(&u) != Some(&p) {
                return unauthorized();
            }
            u
        }
        Some("refresh_token") => {
            let t = form.get("refresh_token").cloned().unwrap_or_default();
            match inner.refresh_tokens.get(&t) {
                Some(u) => u.clone(),
                None => return unauthorized(),
            }
        }
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    let scopes: Vec<String> = form
        .get("scope")
        .map(|s| s.split(' ').map(String::from).collect())
        .unwrap_or_default();
    issue(&inner, "POST", Some(who), scopes)
}

fn issue(inner: &Inner, method: &str, who: Option<String>, scopes: Vec<String>) -> Response {
    let mut access = Vec::new();
    for s in &scopes {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() < 3 || parts[0] != "repository" {
            continue;
        }
        let allowed: &[&str] = if who.is_some() {
            &["pull", "push", "delete", "*"]
        } else {
            &["pull"]
        };
        let actions: Vec<&str> = parts[parts.len() - 1]
            .split(',')
            .filter(|a| allowed.contains(a))
            .collect();
        access.push(serde_json::json!({
            "type": "repository",
            "name": parts[1..parts.len() - 1].join(":"),
            "actions": actions,
        }));
    }
    inner.log.lock().unwrap().push(TokenRequest {
        method: method.into(),
        user: who.clone(),
        scopes: scopes.clone(),
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [inner.x5c]});
    let claims = serde_json::json!({
        "iss": inner.issuer,
        "sub": who.clone().unwrap_or_default(),
        "aud": inner.service,
        "exp": now + inner.expires_in,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{}", rand_id()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let rng = ring::rand::SystemRandom::new();
    let mut sig = vec![0; inner.key.public().modulus_len()];
    inner
        .key
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &rng,
            signing_input.as_bytes(),
            &mut sig,
        )
        .unwrap();
    let token = format!("{signing_input}.{}", b64url(&sig));
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": inner.expires_in,
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
