//! `kubemirror delete [flags] docker://…` (skopeo's `delete`): deletes the
//! manifest a tag or digest names from a registry; prints nothing on success.

use std::process::ExitCode;

use super::common::ImageFlags;
use super::{CliResult, GlobalArgs};
use crate::transport::{self, docker::delete};

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub flags: ImageFlags,
    /// Image to delete, e.g. docker://registry.example/app:1.0
    #[arg(value_name = "IMAGE-NAME")]
    pub image: String,
}

pub async fn run(args: DeleteArgs, g: &GlobalArgs) -> CliResult {
    let r = transport::parse_image_name(&args.image)?;
    let d = delete::docker_reference(r.as_ref())?;
    let ctx = args.flags.side()?.system_context(g)?;
    delete::delete_image(&d, &ctx).await?;
    Ok(ExitCode::SUCCESS)
}
