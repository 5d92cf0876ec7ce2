//! Where registry credentials come from when none were given with `--creds`
//! (containers-auth.json(5), Docker's `config.json`, Kubernetes
//! `kubernetes.io/dockerconfigjson` Secrets). Both stores implement
//! [`CredentialStore`]; the docker transport asks them with the repository,
//! so `host/namespace` entries apply (longest match wins).
//!
//! | store | built from |
//! |---|---|
//! | [`AuthFiles::load`] | `--authfile`, else `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`, `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`, `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` (first file with an entry wins) |
//! | [`AuthFile::from_dockerconfigjson`] | the bytes of a Secret's `.dockerconfigjson` (or legacy `.dockercfg`); credential helpers are never run for these |
//!
//! Per file, as containers/image: `credHelpers[host]`, else the `auths`
//! entry (keys `host`, `host/namespace/…`, or `https://host/v1/`), else
//! `credsStore`. Helpers run as `docker-credential-NAME get` with the server
//! on stdin. No message built here contains a secret: JSON errors are
//! reported by position only.

mod helper;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use crate::image::{Auth, CredentialStore, Error, Result, Secret};
use crate::reference::DOCKER_HUB;

/// One parsed auth file (or Secret payload).
#[derive(Debug, Clone, Default)]
pub struct AuthFile {
    /// Where it came from, for messages.
    origin: String,
    /// `(normalised key, credentials)`; keys are `host` or `host/path`.
    auths: Vec<(String, Auth)>,
    cred_helpers: Vec<(String, String)>,
    creds_store: Option<String>,
    /// False for Secret payloads: a Secret must not make us run programs.
    helpers_allowed: bool,
}

#[derive(Deserialize, Default)]
struct RawEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthFile {
    /// Parse an auth file (`{"auths": {...}, "credHelpers": {...}, "credsStore": "..."}`).
    /// `origin` names it in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<AuthFile> {
        let mut f = parse_value(bytes, origin)?;
        f.helpers_allowed = true;
        Ok(f)
    }

    /// Read an auth file; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<AuthFile>> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(AuthFile::parse(&b, &path.display().to_string())?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path.display().to_string(), "read auth file", e)),
        }
    }

    /// The payload of a `kubernetes.io/dockerconfigjson` Secret
    /// (`.dockerconfigjson`), or of a legacy `kubernetes.io/dockercfg` one.
    /// Credential helpers named in it are ignored.
    pub fn from_dockerconfigjson(bytes: &[u8]) -> Result<AuthFile> {
        let mut f = parse_value(bytes, "dockerconfigjson Secret")?;
        f.helpers_allowed = false;
        f.cred_helpers.clear();
        f.creds_store = None;
        Ok(f)
    }

    /// Whether this file has nothing to say about any registry.
    pub fn is_empty(&self) -> bool {
        self.auths.is_empty() && self.cred_helpers.is_empty() && self.creds_store.is_none()
    }

    /// Credentials for `repository` on `registry` from this file alone;
    /// `None` when it has no entry.
    pub fn find(&self, registry: &str, repository: &str) -> Result<Option<Auth>> {
        let host = normalise_host(registry);
        if self.helpers_allowed
            && let Some((_, name)) = self.cred_helpers.iter().find(|(k, _)| *k == host)
        {
            return helper::get(name, &host, false);
        }
        for candidate in candidates(&host, repository) {
            if let Some((_, auth)) = self.auths.iter().find(|(k, _)| *k == candidate) {
                return Ok(Some(auth.clone()));
            }
        }
        if self.helpers_allowed
            && let Some(name) = &self.creds_store
        {
            return helper::get(name, &host, true);
        }
        Ok(None)
    }
}

impl CredentialStore for AuthFile {
    fn lookup(&self, registry: &str) -> Result<Option<Auth>> {
        self.find(registry, "")
    }

    fn lookup_for_repository(&self, registry: &str, repository: &str) -> Result<Option<Auth>> {
        self.find(registry, repository)
    }

    /// The entries' digest; `None` when a credential helper may answer
    /// (its answers can change without the file changing).
    fn fingerprint(&self) -> Option<String> {
        if self.helpers_allowed && (!self.cred_helpers.is_empty() || self.creds_store.is_some()) {
            return None;
        }
        let mut text = String::new();
        for (key, auth) in &self.auths {
            let (kind, user, secret) = match auth {
                Auth::Basic { username, password } => ("b", username, password.expose()),
                Auth::IdentityToken { username, token } => ("i", username, token.expose()),
            };
            text += &format!("{key}\0{kind}\0{user}\0{secret}\n");
        }
        Some(crate::digest::sha256(text.as_bytes()).digest()[..32].to_string())
    }
}

/// A position-only JSON error (serde's messages can quote the input).
fn json_error(origin: &str, e: &serde_json::Error) -> Error {
    Error::Invalid(format!(
        "{origin}: invalid JSON at line {} column {}",
        e.line(),
        e.column()
    ))
}

fn parse_value(bytes: &[u8], origin: &str) -> Result<AuthFile> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| json_error(origin, &e))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::Invalid(format!("{origin}: not a JSON object")))?;
    let mut out = AuthFile {
        origin: origin.to_string(),
        ..Default::default()
    };
    // `.dockercfg` (and some old files) hold the entries at the top level.
    let entries = match obj.get("auths") {
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(Error::Invalid(format!(
                "{origin}: \"auths\" is not an object"
            )));
        }
        None => obj
            .iter()
            .filter(|(_, v)| {
                ["auth", "username", "identitytoken"]
                    .iter()
                    .any(|k| v.get(k).is_some())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    for (key, value) in entries {
        let raw: RawEntry = serde_json::from_value(value).map_err(|_| {
            Error::Invalid(format!(
                "{origin}: entry {key:?} is not an object of strings"
            ))
        })?;
        if let Some(auth) = entry_auth(&raw, origin, &key)? {
            out.auths.push((normalise_key(&key), auth));
        }
    }
    if let Some(h) = obj.get("credHelpers").and_then(Value::as_object) {
        for (k, v) in h {
            if let Some(name) = v.as_str().filter(|s| !s.is_empty()) {
                out.cred_helpers.push((normalise_key(k), name.to_string()));
            }
        }
    }
    out.creds_store = obj
        .get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from);
    Ok(out)
}

/// An entry's credentials; `None` for an empty entry (a `credsStore` placeholder).
fn entry_auth(raw: &RawEntry, origin: &str, key: &str) -> Result<Option<Auth>> {
    let (mut user, mut pass) = (raw.username.clone(), raw.password.clone());
    if let Some(a) = raw.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || {
            Error::Invalid(format!(
                "{origin}: \"auth\" of {key:?} is not base64 of USER:PASSWORD"
            ))
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (u, p) = decoded.split_once(':').ok_or_else(bad)?;
        user = Some(u.to_string());
        pass = Some(p.to_string());
    }
    if let Some(t) = raw.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Auth::IdentityToken {
            username: user.unwrap_or_default(),
            token: Secret::new(t),
        }));
    }
    match (user, pass) {
        (Some(u), p) if !u.is_empty() => Ok(Some(Auth::Basic {
            username: u,
            password: Secret::new(p.unwrap_or_default()),
        })),
        _ => Ok(None),
    }
}

/// `docker.io` for Docker Hub's other names; others unchanged.
fn normalise_host(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        h => h.to_string(),
    }
}

/// An `auths` key as `host` or `host/path`: a URL form
/// (`https://index.docker.io/v1/`) keeps only its host.
fn normalise_key(key: &str) -> String {
    let (url_form, rest) = match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(r) => (true, r),
        None => (false, key),
    };
    let rest = rest.trim_end_matches('/');
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = normalise_host(host);
    if url_form || path.is_empty() {
        host
    } else {
        format!("{host}/{path}")
    }
}

/// `host/a/b/c`, `host/a/b`, `host/a`, `host`: most specific first.
fn candidates(host: &str, repository: &str) -> Vec<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = repository.split('/').filter(|p| !p.is_empty()).collect();
    for n in (1..=parts.len()).rev() {
        out.push(format!("{host}/{}", parts[..n].join("/")));
    }
    out.push(host.to_string());
    out
}

/// The auth files of a user, in lookup order (see the module table).
#[derive(Debug, Clone, Default)]
pub struct AuthFiles {
    files: Vec<AuthFile>,
}

impl AuthFiles {
    /// Load `authfile` alone if given (or `$REGISTRY_AUTH_FILE`), else the
    /// default locations that exist.
    pub fn load(authfile: Option<&Path>) -> Result<AuthFiles> {
        let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
        Self::load_paths(&default_paths(authfile, &env))
    }

    /// Load exactly these files (missing ones are skipped).
    pub fn load_paths(paths: &[PathBuf]) -> Result<AuthFiles> {
        let mut files = Vec::new();
        for p in paths {
            if let Some(f) = AuthFile::load(p)? {
                files.push(f);
            }
        }
        Ok(AuthFiles { files })
    }

    /// The files that were found, in order (their origins).
    pub fn origins(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.origin.as_str()).collect()
    }
}

impl CredentialStore for AuthFiles {
    fn lookup(&self, registry: &str) -> Result<Option<Auth>> {
        self.lookup_for_repository(registry, "")
    }

    fn lookup_for_repository(&self, registry: &str, repository: &str) -> Result<Option<Auth>> {
        for f in &self.files {
            if let Some(a) = f.find(registry, repository)? {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }
}

/// The files to read, as containers/image orders them. `env` reads variables.
pub fn default_paths(
    authfile: Option<&Path>,
    env: &dyn Fn(&str) -> Option<PathBuf>,
) -> Vec<PathBuf> {
    if let Some(p) = authfile {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = env("REGISTRY_AUTH_FILE").filter(|p| !p.as_os_str().is_empty()) {
        return vec![p];
    }
    let home = env("HOME");
    let mut out = Vec::new();
    if let Some(x) = env("XDG_RUNTIME_DIR") {
        out.push(x.join("containers/auth.json"));
    }
    if let Some(c) = env("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config"))) {
        out.push(c.join("containers/auth.json"));
    }
    match (env("DOCKER_CONFIG"), &home) {
        (Some(d), _) => out.push(d.join("config.json")),
        (None, Some(h)) => out.push(h.join(".docker/config.json")),
        (None, None) => {}
    }
    out
}

#[cfg(test)]
mod tests;
