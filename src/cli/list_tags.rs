//! `kubemirror list-tags REPO`: `{"Repository": ..., "Tags": [...]}` as skopeo prints it.

use std::process::ExitCode;

use serde::Serialize;

use super::common::ImageFlags;
use super::{CliResult, GlobalArgs};
use crate::image::inspect::to_pretty_json;

#[derive(Debug, clap::Args)]
pub struct ListTagsArgs {
    #[command(flatten)]
    pub flags: ImageFlags,
    /// Repository, e.g. docker://registry.example/app
    #[arg(value_name = "REPOSITORY")]
    pub repository: String,
}

#[derive(Serialize)]
struct Output {
    /// Absent for `docker-archive:`, as skopeo prints it (the archive's tags, no repository).
    #[serde(rename = "Repository", skip_serializing_if = "Option::is_none")]
    repository: Option<String>,
    #[serde(rename = "Tags")]
    tags: Vec<String>,
}

pub async fn run(args: ListTagsArgs, g: &GlobalArgs) -> CliResult {
    let r = args.flags.image(&args.repository)?;
    if let Some(d) = r.docker_reference()
        && (d.digest().is_some()
            || args
                .repository
                .rsplit('/')
                .next()
                .is_some_and(|l| l.contains(':')))
    {
        return Err(format!(
            "invalid repository {:?}: list-tags takes a repository without tag or digest",
            args.repository
        )
        .into());
    }
    let ctx = args.flags.side()?.system_context(g)?;
    let tags = r.list_tags(&ctx).await?;
    let repository = match r.transport() {
        "docker-archive" => None,
        _ => Some(
            r.docker_reference()
                .map(|d| crate::reference::name(&d))
                .unwrap_or_else(|| args.repository.clone()),
        ),
    };
    print!("{}", to_pretty_json(&Output { repository, tags }));
    Ok(ExitCode::SUCCESS)
}
