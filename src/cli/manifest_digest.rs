//! `kubemirror manifest-digest FILE` (skopeo's): the digest of a manifest
//! file's exact bytes, printed as `sha256:<hex>`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{CliResult, GlobalArgs};

#[derive(Debug, clap::Args)]
pub struct ManifestDigestArgs {
    /// The manifest file
    #[arg(value_name = "MANIFEST-FILE")]
    pub file: PathBuf,
}

pub async fn run(args: ManifestDigestArgs, _g: &GlobalArgs) -> CliResult {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| format!("reading manifest {}: {e}", args.file.display()))?;
    // A signed schema 1 manifest's digest leaves out its JWS signatures;
    // schema 1 is not supported here, so say so instead of printing another digest.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1)
        && v.get("signatures").is_some()
    {
        return Err(format!(
            "{}: a signed Docker schema 1 manifest: schema 1 is not supported by kubemirror",
            args.file.display()
        )
        .into());
    }
    println!("{}", crate::digest::sha256(&bytes));
    Ok(ExitCode::SUCCESS)
}
