//! Tar archives of images: `docker-archive:` (`docker save` format) and
//! `oci-archive:` (a tar of an OCI layout).

pub mod docker;
pub mod oci;
