//! `kubemirror inspect [--raw] [--config] IMAGE`, with skopeo's output.

use std::io::Write;
use std::process::ExitCode;

use super::common::ImageFlags;
use super::template::{self, Template, Value};
use super::{CliResult, GlobalArgs};
use crate::image::Image;
use crate::image::inspect::ImageInspectInfo;
use crate::image::inspect::to_pretty_json;

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
    #[arg(short = 'n', long)]
    pub no_tags: bool,
    /// Format the output with a Go template, e.g. '{{.Digest}}' or '{{index .Labels "k"}}'
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Image, e.g. docker://registry.example/app:1.0 or oci:/path:tag
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

pub async fn run(args: InspectArgs, g: &GlobalArgs) -> CliResult {
    // A bad template fails before any request, as skopeo's does.
    let template = match args.format.as_deref() {
        Some(f) if !template::is_json(f) => {
            if args.raw || args.config {
                return Err("--format cannot be used with --raw or --config".into());
            }
            Some(Template::parse("inspect", f)?)
        }
        _ => None,
    };
    let r = args.flags.image(&args.image)?;
    let ctx = args.flags.side()?.system_context(g)?;
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
        if !args.no_tags && r.lists_repository_tags() {
            info.repo_tags = r.list_tags(&ctx).await?;
        }
    }
    match template {
        Some(t) => out.write_all(t.execute(&template_data(&info))?.as_bytes())?,
        None => out.write_all(to_pretty_json(&info).as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// What `.` is in a `--format` template: skopeo's output struct, fields in its order.
fn template_data(info: &ImageInspectInfo) -> Value {
    let layers_data = info
        .layers_data
        .iter()
        .map(|l| {
            Value::Struct(vec![
                ("MIMEType", Value::Str(l.mime_type.clone())),
                ("Digest", Value::Str(l.digest.clone())),
                ("Size", Value::Int(l.size)),
                ("Annotations", Value::string_map(&l.annotations)),
            ])
        })
        .collect();
    Value::Struct(vec![
        ("Name", Value::Str(info.name.clone())),
        ("Digest", Value::Str(info.digest.clone())),
        ("RepoTags", Value::strings(&info.repo_tags)),
        (
            "Created",
            info.created.clone().map(Value::Time).unwrap_or(Value::Nil),
        ),
        ("DockerVersion", Value::Str(info.docker_version.clone())),
        ("Labels", Value::string_map(&info.labels)),
        ("Architecture", Value::Str(info.architecture.clone())),
        ("Variant", Value::Str(info.variant.clone())),
        ("Os", Value::Str(info.os.clone())),
        ("Layers", Value::strings(&info.layers)),
        ("LayersData", Value::list(layers_data)),
        ("Env", Value::opt_strings(&info.env)),
    ])
}
