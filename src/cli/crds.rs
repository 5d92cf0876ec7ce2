//! `kubemirror crds`: print the CustomResourceDefinitions as one YAML stream
//! (what `crds/kubemirror.dev_crds.yaml` holds).

use std::process::ExitCode;

use super::{CliResult, GlobalArgs};

#[derive(Debug, clap::Args)]
pub struct CrdsArgs {}

pub async fn run(_args: CrdsArgs, _g: &GlobalArgs) -> CliResult {
    print!("{}", crate::api::v1alpha1::crds_yaml());
    Ok(ExitCode::SUCCESS)
}
