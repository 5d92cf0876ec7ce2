//! The `kubemirror` command line: skopeo's syntax for `copy`, `inspect` and
//! `list-tags`, plus `sync -f FILE` (reconcile resource documents without a
//! cluster), `controller` and `crds`. `main` is a few lines: [`main`].
//!
//! Errors print as one line on stderr (`Error: <what was wrong>`) and exit 1.

mod common;
mod controller;
mod copy;
mod crds;
mod delete;
mod inspect;
mod list_tags;
mod login;
mod manifest_digest;
mod progress;
mod sigstore_key;
mod skopeo_sync;
mod standalone;
mod sync;
mod template;
mod verify_blob;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::image::one_line;
pub use common::{GlobalArgs, SideArgs};

/// Mirror and inspect container images: a Kubernetes controller and a
/// skopeo-compatible command line tool.
#[derive(Debug, Parser)]
#[command(name = "kubemirror", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy an image (or a whole index) from one location to another
    Copy(Box<copy::CopyArgs>),
    /// Inspect an image: print its metadata as JSON, or the raw manifest
    Inspect(inspect::InspectArgs),
    /// List the tags of a repository
    #[command(name = "list-tags")]
    ListTags(list_tags::ListTagsArgs),
    /// Delete an image from a registry
    Delete(delete::DeleteArgs),
    /// Log in to a registry (check the credentials, keep them in the auth file)
    Login(login::LoginArgs),
    /// Log out of a registry (remove its credentials from the auth file)
    Logout(login::LogoutArgs),
    /// Compute the digest of a manifest file
    #[command(name = "manifest-digest")]
    ManifestDigest(manifest_digest::ManifestDigestArgs),
    /// Sign a manifest file with a GnuPG key (a simple signature)
    #[command(name = "standalone-sign")]
    StandaloneSign(standalone::SignArgs),
    /// Verify a simple signature of a manifest file
    #[command(name = "standalone-verify")]
    StandaloneVerify(standalone::VerifyArgs),
    /// Generate a sigstore (cosign-format) key pair: PREFIX.pub and PREFIX.private
    #[command(name = "generate-sigstore-key")]
    GenerateSigstoreKey(sigstore_key::GenerateArgs),
    /// Verify a Sigstore bundle for a file or digest, offline (cosign's verify-blob)
    #[command(name = "verify-blob")]
    VerifyBlob(verify_blob::VerifyBlobArgs),
    /// Reconcile the ImageMirror / ImageInspection documents in a file once, without a cluster
    /// (`sync --src … --dest …` is skopeo's sync)
    Sync(sync::SyncArgs),
    /// skopeo's `sync --src docker|dir|yaml --dest docker|dir SOURCE DESTINATION`:
    /// `kubemirror sync` with `--src`/`--dest` runs this
    #[command(name = "skopeo-sync", hide = true)]
    SkopeoSync(Box<skopeo_sync::SkopeoSyncArgs>),
    /// Run the Kubernetes controller
    Controller(controller::ControllerArgs),
    /// Print the CustomResourceDefinitions as YAML
    Crds(crds::CrdsArgs),
}

/// A command's failure: printed as one line.
pub type CliResult<T = ExitCode> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Parse arguments, run the command, print a one-line error on failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(skopeo_style_sync(std::env::args().collect()));
    // A controller reports what it does; the one-shot commands stay quiet.
    let level = match cli.command {
        Command::Controller(_) => "info",
        _ => "warn",
    };
    common::init_logging(&cli.global, level);
    let g = &cli.global;
    if g.override_arch.is_some() || g.override_os.is_some() || g.override_variant.is_some() {
        crate::manifest::Platform::override_host(
            g.override_os.clone(),
            g.override_arch.clone(),
            g.override_variant.clone(),
        );
    }
    if let Some(dir) = &g.tmpdir {
        // Before any temporary file exists: the first override is the one kept.
        let _ = tempfile::env::override_temp_dir(dir);
    }
    let timeout = g.command_timeout;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match timeout {
            Some(t) => tokio::time::timeout(t, run(cli)).await.unwrap_or_else(|_| {
                Err(format!("command timed out after {t:?} (--command-timeout)").into())
            }),
            None => run(cli).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {}", one_line(&*e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> CliResult {
    let g = &cli.global;
    match cli.command {
        Command::Copy(a) => copy::run(*a, g).await,
        Command::Inspect(a) => inspect::run(a, g).await,
        Command::ListTags(a) => list_tags::run(a, g).await,
        Command::Delete(a) => delete::run(a, g).await,
        Command::ManifestDigest(a) => manifest_digest::run(a, g).await,
        Command::StandaloneSign(a) => standalone::sign(a, g).await,
        Command::StandaloneVerify(a) => standalone::verify(a, g).await,
        Command::GenerateSigstoreKey(a) => sigstore_key::run(a, g).await,
        Command::Login(a) => login::login(a, g).await,
        Command::Logout(a) => login::logout(a, g).await,
        Command::VerifyBlob(a) => verify_blob::run(a, g).await,
        Command::Sync(a) => sync::run(a, g).await,
        Command::SkopeoSync(a) => skopeo_sync::run(*a, g).await,
        Command::Controller(a) => controller::run(a, g).await,
        Command::Crds(a) => crds::run(a, g).await,
    }
}

/// skopeo's own `sync --src TRANSPORT --dest TRANSPORT SOURCE DESTINATION`
/// is told apart from `sync -f FILE` by its `--src`/`--dest` (`-s`/`-d`)
/// flags: the arguments are rewritten to the hidden `skopeo-sync` command.
/// Flags common to both (`--dry-run`) mean the same in each.
fn skopeo_style_sync(mut args: Vec<String>) -> Vec<String> {
    let Some(at) = args.iter().skip(1).position(|a| a == "sync").map(|i| i + 1) else {
        return args;
    };
    let skopeo_style = args[at + 1..].iter().any(|a| {
        matches!(a.as_str(), "--src" | "--dest" | "-s" | "-d")
            || a.starts_with("--src=")
            || a.starts_with("--dest=")
    });
    if skopeo_style {
        args[at] = "skopeo-sync".into();
    }
    args
}

/// Default location of things a user may name on the command line.
pub fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        None => PathBuf::from(p),
    }
}
