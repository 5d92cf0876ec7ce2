//! `kubemirror login` / `logout` (skopeo's, from containers/common): check
//! credentials against a registry and keep them in an auth file, written
//! exactly as skopeo and podman write it — `{"auths": {KEY: {"auth":
//! base64(user:pass)}}}` (and `credHelpers` when the file had them; other
//! top-level keys are dropped, as containers/image drops them), keys in
//! order, indented with tabs, no final newline, mode 0600.
//!
//! The file: `--authfile`, else `$REGISTRY_AUTH_FILE`, else
//! `$XDG_RUNTIME_DIR/containers/auth.json`, else
//! `/run/containers/UID/auth.json`. A key is a registry (`host[:port]`) or a
//! repository within one (`host/ns/repo`); `https://` and a trailing `/` are
//! dropped, and Docker Hub's other names become `docker.io`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use clap::ArgAction;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{CliResult, GlobalArgs, SideArgs};
use crate::transport::docker::auth::Scopes;
use crate::transport::docker::client::{Op, Session};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Path of the authentication file (default: $REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json)
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Use certificates at PATH (*.crt, *.cert, *.key) to access the registry
    #[arg(long, value_name = "PATH")]
    pub cert_dir: Option<PathBuf>,
    /// Print the user logged in to the registry, and nothing else
    #[arg(long)]
    pub get_login: bool,
    /// Password for the registry
    #[arg(short = 'p', long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Require HTTPS and verify certificates when accessing the registry (false also allows plain HTTP)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub tls_verify: Option<bool>,
    /// Username for the registry
    #[arg(short = 'u', long, value_name = "USERNAME")]
    pub username: Option<String>,
    /// Write more detailed information to stdout
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Registry (host[:port]) or repository within one (host/ns/repo)
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Remove the credentials of every registry in the auth file
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Path of the authentication file (default: $REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json)
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Accepted for skopeo compatibility (logout does not contact the registry)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub tls_verify: Option<bool>,
    /// Registry (host[:port]) or repository within one (host/ns/repo)
    #[arg(value_name = "REGISTRY", required_unless_present = "all")]
    pub registry: Option<String>,
}

/// The auth file as containers/image reads and writes it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
    #[serde(
        rename = "credHelpers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Entry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    auth: String,
    #[serde(
        rename = "identitytoken",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    identity_token: String,
}

impl AuthFile {
    fn read(path: &Path) -> Result<AuthFile, String> {
        match std::fs::read(path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(AuthFile::default()),
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| format!("reading auth file {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
            Err(e) => Err(format!("reading auth file {}: {e}", path.display())),
        }
    }

    /// Write as Go's `json.MarshalIndent(v, "", "\t")`, atomically, mode 0600.
    fn write(&self, path: &Path) -> Result<(), String> {
        let fail = |e: &dyn std::fmt::Display| format!("writing auth file {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let mut bytes = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut bytes, fmt);
        self.serialize(&mut ser).map_err(|e| fail(&e))?;
        let tmp = path.with_extension("json.tmp");
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| fail(&e))?;
            f.write_all(&bytes).map_err(|e| fail(&e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| fail(&e))
    }
}

/// The file login writes and logout edits (see the module docs).
fn auth_path(flag: &Option<PathBuf>) -> PathBuf {
    if let Some(p) = flag {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(x).join("containers/auth.json");
    }
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    PathBuf::from(format!("/run/containers/{uid}/auth.json"))
}

/// The auth file key for what the user typed, and the registry host in it.
fn key(input: &str) -> Result<(String, String), String> {
    let k = input
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if k.is_empty() || k.contains("://") || k.contains('@') {
        return Err(format!(
            "invalid registry {input:?}: want host[:port] or host[:port]/repository"
        ));
    }
    let (host, path) = k.split_once('/').unwrap_or((k, ""));
    let host = match host {
        "registry-1.docker.io" | "index.docker.io" | "docker.io" => "docker.io",
        h => h,
    };
    if path.contains(':') {
        return Err(format!(
            "invalid registry {input:?}: a repository, without a tag or digest"
        ));
    }
    let key = if path.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{path}")
    };
    Ok((key, host.to_string()))
}

pub async fn login(args: LoginArgs, g: &GlobalArgs) -> CliResult {
    let path = auth_path(&args.authfile);
    let (key, host) = key(&args.registry)?;
    if args.get_login {
        let file = AuthFile::read(&path)?;
        let user = file
            .auths
            .get(&key)
            .and_then(|e| {
                base64::engine::general_purpose::STANDARD
                    .decode(&e.auth)
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(u, _)| u.to_string()));
        return match user {
            Some(u) => {
                println!("{u}");
                Ok(ExitCode::SUCCESS)
            }
            None => Err(format!("not logged into {key}").into()),
        };
    }
    if args.password_stdin && args.password.is_some() {
        return Err("--password and --password-stdin are mutually exclusive".into());
    }
    let username = match args.username.clone() {
        Some(u) => u,
        None => return Err("--username is required (kubemirror does not prompt)".into()),
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("reading the password from stdin: {e}"))?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(
                "--password or --password-stdin is required (kubemirror does not prompt)".into(),
            );
        }
    };
    if username.contains(':') {
        return Err("the username must not contain a colon".into());
    }
    let side = SideArgs {
        tls_verify: args.tls_verify,
        cert_dir: args.cert_dir.clone(),
        creds: Some(format!("{username}:{password}")),
        retry_times: 0,
        no_creds: true,
        authfile: None,
    };
    let ctx = side.system_context(g)?;
    let session = Session::get(&ctx, &host)?;
    let op = Op {
        repository: String::new(),
        op: "login",
        what: String::new(),
        scopes: Scopes::default(),
    };
    let resp = session.send(&op, Method::GET, "/v2/", &|b| b).await?;
    match resp.status().as_u16() {
        200..=299 => {}
        401 | 403 => {
            return Err(format!("logging into {key:?}: invalid username/password").into());
        }
        _ => return Err(session.status_error(&op, resp).await.into()),
    }
    let mut file = AuthFile::read(&path)?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    file.auths.insert(
        key,
        Entry {
            auth,
            identity_token: String::new(),
        },
    );
    file.write(&path)?;
    println!("Login Succeeded!");
    Ok(ExitCode::SUCCESS)
}

pub async fn logout(args: LogoutArgs, _g: &GlobalArgs) -> CliResult {
    let path = auth_path(&args.authfile);
    let mut file = AuthFile::read(&path)?;
    if args.all {
        file.auths.clear();
        file.cred_helpers.clear();
        file.write(&path)?;
        println!("Removed login credentials for all registries");
        return Ok(ExitCode::SUCCESS);
    }
    let registry = args.registry.as_deref().unwrap_or_default();
    let (key, _) = key(registry)?;
    if file.auths.remove(&key).is_none() {
        return Err(format!("not logged into {key}").into());
    }
    file.write(&path)?;
    println!("Removed login credentials for {key}");
    Ok(ExitCode::SUCCESS)
}
