//! Registry authentication: `WWW-Authenticate` challenges, the Bearer token
//! flow (GET with Basic credentials, or the OAuth2 POST form for identity
//! tokens and token servers that refuse GET) and the token cache.
//!
//! Tokens are cached per (scope set, credentials) for `expires_in` seconds
//! (60 when the server does not say), minus a small margin so that a token is
//! never sent in its last seconds of life.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::image::{Auth, Secret};

/// Lifetime assumed when the token server does not send `expires_in`
/// (the Docker token specification's default).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// The longest a token is kept, whatever `expires_in` says (a token server
/// may send any number, up to `u64::MAX`; it is capped, never added as is).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What `/v2/` (or a refused request) asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// No authentication needed.
    None,
    /// HTTP Basic with the registry credentials.
    Basic,
    /// A Bearer token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry named, if any (on a refused request).
        scope: Option<String>,
    },
}

/// Parse one `WWW-Authenticate` value (`Bearer realm="…",service="…"`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `k="v", k2=v2` → map (keys lowercased; quoted values may hold commas).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

/// A set of scopes (`repository:NAME:pull,push`), ordered so that equal sets
/// make equal cache keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scopes(pub BTreeSet<String>);

impl Scopes {
    pub fn repository(name: &str, actions: &str) -> Self {
        Scopes(BTreeSet::from([format!("repository:{name}:{actions}")]))
    }

    pub fn with(mut self, scope: String) -> Self {
        self.0.insert(scope);
        self
    }

    /// Whether a scope the registry asked for is already granted by one of
    /// ours (same resource, a superset of its actions).
    pub fn covers(&self, wanted: &str) -> bool {
        let Some((resource, actions)) = wanted.rsplit_once(':') else {
            return false;
        };
        self.0.iter().any(|have| {
            have.rsplit_once(':').is_some_and(|(r, a)| {
                let a: Vec<&str> = a.split(',').collect();
                r == resource
                    && actions
                        .split(',')
                        .all(|x| a.contains(&x) || a.contains(&"*"))
            })
        })
    }

    pub fn key(&self) -> String {
        self.0.iter().cloned().collect::<Vec<_>>().join(" ")
    }
}

/// The token server's answer.
#[derive(Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long to use it.
    pub fn into_token(self) -> Option<(Secret, Duration)> {
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        let life = self
            .expires_in
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s).min(MAX_TOKEN_LIFETIME))
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Some((Secret::new(token), life))
    }
}

/// A cached token.
#[derive(Clone)]
pub struct CachedToken {
    pub token: Secret,
    pub valid_until: Instant,
}

impl CachedToken {
    /// Keep a token for its lifetime (at most [`MAX_TOKEN_LIFETIME`]) minus
    /// a margin (10% of it, at most 10 s). Never panics, whatever `life` is.
    pub fn new(token: Secret, life: Duration) -> Self {
        let life = life.min(MAX_TOKEN_LIFETIME);
        let margin = (life / 10).min(Duration::from_secs(10));
        let now = Instant::now();
        CachedToken {
            token,
            valid_until: now.checked_add(life - margin).unwrap_or(now),
        }
    }

    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

/// `Authorization: Basic …` for `auth` (identity tokens have no Basic form).
pub fn basic_header(auth: &Auth) -> Option<String> {
    match auth {
        Auth::Basic { username, password } => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose()))
        )),
        Auth::IdentityToken { .. } => None,
    }
}

/// A short, non-reversible fingerprint of credentials, for cache keys.
pub fn fingerprint(auth: Option<&Auth>) -> String {
    match auth {
        None => "anonymous".into(),
        Some(Auth::Basic { username, password }) => {
            let d =
                crate::digest::sha256(format!("b\0{username}\0{}", password.expose()).as_bytes());
            d.digest()[..16].to_string()
        }
        Some(Auth::IdentityToken { username, token }) => {
            let d = crate::digest::sha256(format!("i\0{username}\0{}", token.expose()).as_bytes());
            d.digest()[..16].to_string()
        }
    }
}

/// The OAuth2 form for the token endpoint (`grant_type=password` or
/// `refresh_token`), as Docker's `docker login` sends it.
pub fn oauth_form(auth: &Auth, service: Option<&str>, scopes: &Scopes) -> Vec<(String, String)> {
    let mut form = vec![("client_id".to_string(), "kubemirror".to_string())];
    match auth {
        Auth::Basic { username, password } => {
            form.push(("grant_type".into(), "password".into()));
            form.push(("username".into(), username.clone()));
            form.push(("password".into(), password.expose().to_string()));
        }
        Auth::IdentityToken { token, .. } => {
            form.push(("grant_type".into(), "refresh_token".into()));
            form.push(("refresh_token".into(), token.expose().to_string()));
        }
    }
    if let Some(s) = service {
        form.push(("service".into(), s.to_string()));
    }
    if !scopes.0.is_empty() {
        form.push(("scope".into(), scopes.key()));
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="kubemirror-test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn token_lifetimes() {
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        let (tok, life) = t.into_token().unwrap();
        assert_eq!(tok.expose(), "a");
        assert_eq!(life, DEFAULT_TOKEN_LIFETIME);
        let t: TokenResponse = serde_json::from_str(r#"{"token":"b","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token().unwrap().1, Duration::from_secs(300));
        let t: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(t.into_token().is_none());
        // A hostile token server's largest number is capped, not added.
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"c","expires_in":18446744073709551615}"#).unwrap();
        let (tok, life) = t.into_token().unwrap();
        assert_eq!(life, MAX_TOKEN_LIFETIME);
        assert!(CachedToken::new(tok.clone(), life).is_fresh());
        assert!(CachedToken::new(tok, Duration::MAX).is_fresh());
    }

    #[test]
    fn covered_scopes() {
        let s = Scopes::repository("a/b", "pull,push");
        assert!(s.covers("repository:a/b:pull"));
        assert!(s.covers("repository:a/b:push,pull"));
        assert!(!s.covers("repository:a/b:delete"));
        assert!(!s.covers("repository:a/c:pull"));
        assert!(!s.covers("nonsense"));
    }

    #[test]
    fn scope_keys_are_order_independent() {
        let a = Scopes::repository("a", "pull,push").with("repository:b:pull".into());
        let b = Scopes::repository("b", "pull").with("repository:a:pull,push".into());
        assert_eq!(a.key(), b.key());
    }

    #[test]
    fn fingerprints_hide_secrets() {
        let auth = Auth::Basic {
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        let f = fingerprint(Some(&auth));
        assert!(!f.contains("hunter2") && f.len() == 16);
    }
}
