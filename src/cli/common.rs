//! Flags shared by several commands (skopeo's names) and how they become a
//! [`SystemContext`].

use std::path::PathBuf;

use clap::ArgAction;

use std::sync::Arc;

use crate::credentials::AuthFiles;
use crate::image::{Auth, SystemContext};
use crate::signature::{Policy, RegistriesD};

/// Flags that apply to every command (skopeo's global flags).
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Enable debug output
    #[arg(long, global = true)]
    pub debug: bool,
    /// Path to a trust policy file (containers-policy.json(5)); `copy` verifies the source against it
    #[arg(long, global = true, value_name = "PATH")]
    pub policy: Option<PathBuf>,
    /// Directory with signature storage configuration (containers-registries.d(5))
    #[arg(long = "registries.d", global = true, value_name = "DIR")]
    pub registries_d: Option<PathBuf>,
    /// Accept any image, ignoring the trust policy
    #[arg(long, global = true)]
    pub insecure_policy: bool,
    /// Log format: text or json
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    pub log_format: String,
    /// Use ARCH instead of the architecture of the machine for choosing images
    #[arg(long, global = true, value_name = "ARCH")]
    pub override_arch: Option<String>,
    /// Use OS instead of the running OS for choosing images
    #[arg(long, global = true, value_name = "OS")]
    pub override_os: Option<String>,
    /// Use VARIANT instead of the running architecture variant for choosing images
    #[arg(long, global = true, value_name = "VARIANT")]
    pub override_variant: Option<String>,
    /// Timeout for the command execution (Go duration, e.g. 30s, 5m)
    #[arg(long, global = true, value_name = "DURATION", value_parser = crate::api::v1alpha1::parse_go_duration)]
    pub command_timeout: Option<std::time::Duration>,
    /// Directory for temporary files (recompressed layers, decompressed archives, sif: layers); default TMPDIR
    #[arg(long, global = true, value_name = "DIR")]
    pub tmpdir: Option<PathBuf>,
    /// This run's registry context (sessions, 429 cool-off, blob windows),
    /// shared by every side the command opens. Not a flag.
    #[arg(skip = crate::image::RegistryContext::new())]
    pub registry: Arc<crate::image::RegistryContext>,
}

impl GlobalArgs {
    /// registries.d: `--registries.d`, else the user's or the system's directory.
    pub fn signature_storage(&self) -> Result<Arc<RegistriesD>, crate::signature::SignatureError> {
        let dir = self
            .registries_d
            .clone()
            .unwrap_or_else(RegistriesD::default_dir);
        Ok(Arc::new(RegistriesD::load(&dir)?))
    }

    /// The trust policy `copy` enforces: `--insecure-policy` accepts anything,
    /// else `--policy FILE`, else the default policy.json if there is one.
    pub fn trust_policy(&self) -> Result<Option<Arc<Policy>>, crate::signature::SignatureError> {
        if self.insecure_policy {
            return Ok(None);
        }
        let policy = match &self.policy {
            Some(p) => Some(Policy::load(p)?),
            None => Policy::load_default()?,
        };
        Ok(policy.map(Arc::new))
    }
}

/// What `sync` and `controller` take from the global flags for the
/// resources they reconcile: `--registries.d` (lookasides for simple
/// signatures where a spec names none) and `--policy` (every `ImageMirror`
/// copy must satisfy it). Only when given: the resources do not read the
/// user's or system's defaults. `--insecure-policy` drops `--policy`.
pub type ResourceSignatures = (Option<Arc<RegistriesD>>, Option<Arc<Policy>>);

impl GlobalArgs {
    pub fn resource_signatures(
        &self,
    ) -> Result<ResourceSignatures, crate::signature::SignatureError> {
        let storage = match &self.registries_d {
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(crate::signature::SignatureError::config(
                        dir.display(),
                        "--registries.d: not a directory",
                    ));
                }
                Some(Arc::new(RegistriesD::load(dir)?))
            }
            None => None,
        };
        let policy = match &self.policy {
            Some(p) if !self.insecure_policy => Some(Arc::new(Policy::load(p)?)),
            _ => None,
        };
        Ok((storage, policy))
    }
}

/// The source side's registry flags (`--src-…`) as skopeo spells them, shared
/// by `copy` and skopeo-style `sync` (flattened into both).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SrcFlags {
    /// Require HTTPS and verify certificates at the source (false also allows plain HTTP)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub src_tls_verify: Option<bool>,
    /// Use certificates at PATH (*.crt, *.cert, *.key) for the source registry
    #[arg(long, value_name = "PATH")]
    pub src_cert_dir: Option<PathBuf>,
    /// Use USERNAME[:PASSWORD] at the source
    #[arg(long, alias = "screds", value_name = "USERNAME[:PASSWORD]")]
    pub src_creds: Option<String>,
    /// Username at the source (with --src-password)
    #[arg(long, value_name = "USERNAME")]
    pub src_username: Option<String>,
    /// Password at the source (with --src-username)
    #[arg(long, value_name = "PASSWORD")]
    pub src_password: Option<String>,
    /// Access the source registry anonymously
    #[arg(long)]
    pub src_no_creds: bool,
    /// Authentication file for the source (overrides --authfile)
    #[arg(long, value_name = "PATH")]
    pub src_authfile: Option<PathBuf>,
}

/// The destination side's registry flags (`--dest-…`), as [`SrcFlags`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DestFlags {
    /// Require HTTPS and verify certificates at the destination (false also allows plain HTTP)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub dest_tls_verify: Option<bool>,
    /// Use certificates at PATH (*.crt, *.cert, *.key) for the destination registry
    #[arg(long, value_name = "PATH")]
    pub dest_cert_dir: Option<PathBuf>,
    /// Use USERNAME[:PASSWORD] at the destination
    #[arg(long, alias = "dcreds", value_name = "USERNAME[:PASSWORD]")]
    pub dest_creds: Option<String>,
    /// Username at the destination (with --dest-password)
    #[arg(long, value_name = "USERNAME")]
    pub dest_username: Option<String>,
    /// Password at the destination (with --dest-username)
    #[arg(long, value_name = "PASSWORD")]
    pub dest_password: Option<String>,
    /// Access the destination registry anonymously
    #[arg(long)]
    pub dest_no_creds: bool,
    /// Authentication file for the destination (overrides --authfile)
    #[arg(long, value_name = "PATH")]
    pub dest_authfile: Option<PathBuf>,
}

/// One side's registry flags with the `--src-`/`--dest-` prefix undone.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub tls_verify: Option<bool>,
    pub cert_dir: Option<PathBuf>,
    pub creds: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub no_creds: bool,
    pub authfile: Option<PathBuf>,
}

impl SrcFlags {
    pub fn side(&self) -> Side {
        Side {
            tls_verify: self.src_tls_verify,
            cert_dir: self.src_cert_dir.clone(),
            creds: self.src_creds.clone(),
            username: self.src_username.clone(),
            password: self.src_password.clone(),
            no_creds: self.src_no_creds,
            authfile: self.src_authfile.clone(),
        }
    }
}

impl DestFlags {
    pub fn side(&self) -> Side {
        Side {
            tls_verify: self.dest_tls_verify,
            cert_dir: self.dest_cert_dir.clone(),
            creds: self.dest_creds.clone(),
            username: self.dest_username.clone(),
            password: self.dest_password.clone(),
            no_creds: self.dest_no_creds,
            authfile: self.dest_authfile.clone(),
        }
    }
}

/// TLS, credentials and retry flags of one side, after prefixing was undone.
#[derive(Debug, Clone, Default)]
pub struct SideArgs {
    pub tls_verify: Option<bool>,
    pub cert_dir: Option<PathBuf>,
    pub creds: Option<String>,
    pub authfile: Option<PathBuf>,
    pub retry_times: u32,
    /// Anonymous: neither `creds` nor any auth file.
    pub no_creds: bool,
}

impl SideArgs {
    /// The transport options for this side. Credentials resolve in skopeo's
    /// order: explicit `--creds`, then `--authfile` (or `$REGISTRY_AUTH_FILE`,
    /// `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json`).
    pub fn system_context(
        &self,
        g: &GlobalArgs,
    ) -> Result<SystemContext, Box<dyn std::error::Error + Send + Sync>> {
        let credentials = self.creds.as_deref().map(Auth::from_creds).transpose()?;
        let store = if self.no_creds {
            None
        } else {
            Some(Arc::new(AuthFiles::load(self.authfile.as_deref())?) as Arc<_>)
        };
        Ok(SystemContext {
            registry: g.registry.clone(),
            tls_verify: self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            credentials,
            credential_store: store,
            retry_times: self.retry_times,
            signature_storage: Some(g.signature_storage()?),
            ..Default::default()
        })
    }
}

/// Flags of `inspect` and `list-tags` (skopeo's names, no prefix).
#[derive(Debug, Clone, clap::Args)]
pub struct ImageFlags {
    /// Require HTTPS and verify certificates when talking to the registry (false also allows plain HTTP)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub tls_verify: Option<bool>,
    /// Use certificates at PATH (*.crt, *.cert, *.key) to connect to the registry
    #[arg(long, value_name = "PATH")]
    pub cert_dir: Option<PathBuf>,
    /// Use USERNAME[:PASSWORD] for accessing the registry
    #[arg(long, value_name = "USERNAME[:PASSWORD]")]
    pub creds: Option<String>,
    /// Path of the authentication file
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Number of times to retry a failed operation
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry_times: u32,
    /// Username for accessing the registry (with --password)
    #[arg(long, value_name = "USERNAME")]
    pub username: Option<String>,
    /// Password for accessing the registry (with --username)
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Access the registry anonymously
    #[arg(long)]
    pub no_creds: bool,
    /// Not supported by kubemirror (a raw Bearer token): use --creds or an auth file
    #[arg(long, value_name = "TOKEN", hide = true)]
    pub registry_token: Option<String>,
    /// Directory to use to share blobs across OCI repositories (oci: images)
    #[arg(long, value_name = "DIRECTORY")]
    pub shared_blob_dir: Option<PathBuf>,
    /// Not supported by kubemirror (no docker-daemon: transport)
    #[arg(long, value_name = "HOST", hide = true)]
    pub daemon_host: Option<String>,
}

impl ImageFlags {
    /// The image `name`, with `--shared-blob-dir` applied.
    pub fn image(&self, name: &str) -> Result<Box<dyn crate::image::ImageReference>, String> {
        image_with_shared_blobs(name, self.shared_blob_dir.as_deref(), "--shared-blob-dir")
    }

    pub fn side(&self) -> Result<SideArgs, String> {
        not_supported(
            "--registry-token",
            self.registry_token.is_some(),
            REGISTRY_TOKEN,
        )?;
        not_supported("--daemon-host", self.daemon_host.is_some(), DAEMON)?;
        Ok(SideArgs {
            tls_verify: self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            creds: creds(&self.creds, &self.username, &self.password, self.no_creds)?,
            authfile: self.authfile.clone(),
            retry_times: self.retry_times,
            no_creds: self.no_creds,
        })
    }
}

/// Parse image `name`; with `shared_blob_dir` (skopeo's
/// `--shared-blob-dir`, `--src-`/`--dest-shared-blob-dir`), an `oci:`
/// layout keeps its blobs there (`DIR/sha256/<hex>`, as skopeo lays them
/// out). Other transports ignore it, as skopeo does (with a warning here).
pub fn image_with_shared_blobs(
    name: &str,
    shared_blob_dir: Option<&std::path::Path>,
    flag: &str,
) -> Result<Box<dyn crate::image::ImageReference>, String> {
    let Some(dir) = shared_blob_dir else {
        return crate::transport::parse_image_name(name).map_err(|e| e.to_string());
    };
    let dir = dir
        .to_str()
        .ok_or_else(|| format!("{flag} {}: not a UTF-8 path", dir.display()))?;
    match name.strip_prefix("oci:") {
        Some(rest) => Ok(Box::new(
            crate::transport::oci::OciReference::parse(rest)
                .and_then(|r| r.with_shared_blob_dir(dir))
                .map_err(|e| e.to_string())?,
        )),
        None => {
            eprintln!("Warning: {flag} applies to oci: images only; ignored");
            crate::transport::parse_image_name(name).map_err(|e| e.to_string())
        }
    }
}

/// Why a skopeo flag is refused (each names what to use instead).
pub const REGISTRY_TOKEN: &str =
    "kubemirror does not send a raw Bearer token; use --creds or an auth file";
pub const DAEMON: &str = "kubemirror has no docker-daemon: transport";

/// `Err("FLAG is not supported by kubemirror: WHY")` when `given`.
pub fn not_supported(flag: &str, given: bool, why: &str) -> Result<(), String> {
    if given {
        Err(format!("{flag} is not supported by kubemirror: {why}"))
    } else {
        Ok(())
    }
}

/// skopeo's rules for `--creds`, `--username`/`--password` and `--no-creds`
/// (same checks, same messages); the result is a `--creds` value.
pub fn creds(
    creds: &Option<String>,
    username: &Option<String>,
    password: &Option<String>,
    no_creds: bool,
) -> Result<Option<String>, String> {
    if creds.is_some() && no_creds {
        return Err("creds and no-creds cannot be specified at the same time".into());
    }
    if username.is_some() && no_creds {
        return Err("username and no-creds cannot be specified at the same time".into());
    }
    if creds.is_some() && username.is_some() {
        return Err("creds and username cannot be specified at the same time".into());
    }
    match (username, password) {
        (Some(u), Some(p)) => Ok(Some(format!("{u}:{p}"))),
        (Some(_), None) => Err("password must be specified when username is specified".into()),
        (None, Some(_)) => Err("username must be specified when password is specified".into()),
        (None, None) => Ok(creds.clone()),
    }
}

/// Set up `tracing`: warnings by default, debug with `--debug`, `RUST_LOG` wins.
/// `level` is the default (`warn`; `info` for the controller).
pub fn init_logging(g: &GlobalArgs, level: &str) {
    use tracing_subscriber::EnvFilter;
    let default = if g.debug { "debug" } else { level };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if g.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
