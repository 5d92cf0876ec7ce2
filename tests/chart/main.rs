//! The packaging: the Helm chart (`charts/kubemirror`), the Dockerfile and
//! the examples: static checks of the files (no helm or Docker engine), the
//! examples applied to the API emulator, the chart's RBAC proved sufficient
//! and minimal against the running controller, and README's Helm commands
//! run with the real Helm CLI against the emulator.

mod cluster;
mod examples;
mod helm;
mod rbac;
mod render;
mod static_checks;
#[path = "../support/mod.rs"]
mod support;
mod template;
