//! The packaging: the Helm chart (`charts/kubemirror`), the Dockerfile and
//! the examples, checked without helm or a Docker engine: static checks of
//! the files, the examples applied to the API emulator, and the chart's RBAC
//! proved sufficient and minimal against the running controller.

mod cluster;
mod examples;
mod rbac;
mod static_checks;
mod template;
