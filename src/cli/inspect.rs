//! `kubemirror inspect [--raw] [--config] IMAGE`, with skopeo's output.

use std::io::Write;
use std::process::ExitCode;

use super::common::ImageFlags;
use super::{CliResult, GlobalArgs};
use crate::image::Image;
use crate::image::inspect::to_pretty_json;
use crate::transport;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub flags: ImageFlags,
    /// Print the manifest (or with --config, the config blob) exactly as stored
    #[arg(long)]
    pub raw: bool,
    /// Print the image's configuration instead of the summary
    #[arg(long)]
    pub config: bool,
    /// Do not list the repository's tags (RepoTags stays empty)
    #[arg(long)]
    pub no_tags: bool,
    /// Image, e.g. docker://registry.example/app:1.0 or oci:/path:tag
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

pub async fn run(args: InspectArgs, g: &GlobalArgs) -> CliResult {
    let r = transport::parse_image_name(&args.image)?;
    let ctx = args.flags.side().system_context(g)?;
    let image = Image::new(r.new_image_source(&ctx).await?);
    let mut out = std::io::stdout().lock();
    if args.config {
        let (m, _) = image.instance(None).await?;
        let config = image.config_bytes(&m).await?;
        if args.raw {
            out.write_all(&config)?;
        } else {
            let v: serde_json::Value = serde_json::from_slice(&config)?;
            out.write_all(to_pretty_json(&v).as_bytes())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.raw {
        out.write_all(&image.manifest().await?.bytes)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut info = image.inspect(None).await?;
    if let Some(d) = r.docker_reference() {
        info.name = crate::reference::name(&d);
        if !args.no_tags && r.transport() == "docker" {
            info.repo_tags = r.list_tags(&ctx).await?;
        }
    }
    out.write_all(to_pretty_json(&info).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
