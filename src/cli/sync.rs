//! `kubemirror sync -f FILE`: reconcile resource documents once without a
//! cluster (to be implemented with `reconcile`).

use std::path::PathBuf;

use super::{CliResult, GlobalArgs};

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// File with ImageMirror / ImageInspection documents (YAML, `-` for stdin)
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Path of the authentication file (containers-auth.json(5) / docker config.json)
    #[arg(long)]
    pub authfile: Option<PathBuf>,
}

pub async fn run(_args: SyncArgs, _g: &GlobalArgs) -> CliResult {
    Err("sync: not implemented yet".into())
}
