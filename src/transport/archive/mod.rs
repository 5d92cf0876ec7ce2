//! Tar archives of images: `docker-archive:` (`docker save` format) and
//! `oci-archive:` (a tar of an OCI layout). Both read through [`tar_index`]
//! (random access into the tar, no extraction) and write through
//! [`tar_write`] (staged, then one atomic rename onto the target). A
//! `docker-archive:` compressed with gzip, xz or zstd is read through
//! [`decompress`].

pub(crate) mod decompress;
pub mod docker;
pub mod oci;
pub(crate) mod tar_index;
pub(crate) mod tar_write;
