//! `kubemirror crds`: print the CustomResourceDefinitions (to be implemented
//! with `api::v1alpha1`).

use super::{CliResult, GlobalArgs};

#[derive(Debug, clap::Args)]
pub struct CrdsArgs {}

pub async fn run(_args: CrdsArgs, _g: &GlobalArgs) -> CliResult {
    Err("crds: not implemented yet".into())
}
