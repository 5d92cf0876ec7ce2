//! kubemirror: mirror and inspect container images, as a Kubernetes controller
//! and as a skopeo-style command line tool.
//!
//! Layering (each module uses only the ones above it; see DESIGN.md):
//!
//! ```text
//! reference / digest / manifest   pure data
//! image                           the seed traits, ImageInspectInfo, cached Image
//! transport::{docker, oci, dir, archive}
//! credentials, signature
//! copy                            plans, moves blobs in parallel, reports
//! api::v1alpha1                   CRD types (no I/O)
//! reconcile                       ImageMirror / ImageInspection, cluster-agnostic
//! controller                      kube::runtime wiring
//! cli                             clap commands
//! ```

#[cfg(feature = "kube")]
pub mod api;
#[cfg(feature = "kube")]
pub mod cli;
#[cfg(feature = "kube")]
pub mod controller;
pub mod copy;
pub mod credentials;
pub mod digest;
pub mod image;
pub mod manifest;
#[cfg(feature = "kube")]
pub mod reconcile;
pub mod record;
pub mod reference;
pub mod signature;
pub mod transport;
