//! [`OciSource`]: reads one image (or index) of an OCI layout. The entry is
//! chosen when the source is opened; manifests are read from `blobs/` and
//! checked against their digests, blobs are streamed from their files.
//! `oci-archive:` reuses it over the files of a tar archive.

use std::sync::Arc;

use async_trait::async_trait;
use oci_spec::image::Descriptor;

use super::layout::{self, LayoutFiles};
use crate::digest::Digest;
use crate::image::{Blob, BlobInfo, Error, ImageSource, Manifest, Result};
use crate::manifest::MAX_MANIFEST_SIZE;
use crate::transport::local;

/// The read side of `oci:` (and, over a tar, of `oci-archive:`).
pub struct OciSource {
    files: Arc<dyn LayoutFiles>,
    /// The reference, for messages.
    name: String,
    reference: Box<dyn crate::image::ImageReference>,
    /// The `index.json` entry of the image.
    descriptor: Descriptor,
}

impl OciSource {
    /// Read `index.json` from `files` and pick the entry named `image` (the
    /// only entry when `None`).
    pub async fn open(
        files: Arc<dyn LayoutFiles>,
        reference: Box<dyn crate::image::ImageReference>,
        image: Option<String>,
    ) -> Result<Self> {
        let name = reference.to_string();
        let index = layout::read_index(files.as_ref()).await?;
        let descriptor = layout::find_descriptor(&index, image.as_deref(), &files.location())?;
        Ok(OciSource {
            files,
            name,
            reference,
            descriptor,
        })
    }

    /// The `index.json` entry this source reads.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn read_manifest_blob(&self, d: &Digest, media_type: Option<&str>) -> Result<Manifest> {
        let rel = layout::blob_path(d);
        let loc = format!("{}/{rel}", self.files.location());
        let what = format!("manifest {d} (referenced by {})", self.name);
        let bytes = self
            .files
            .read_bounded(&rel, &what, MAX_MANIFEST_SIZE as u64)
            .await?;
        local::verify(&loc, &format!("manifest {d}"), d, &bytes)?;
        Manifest::new(bytes, media_type).map_err(|e| Error::manifest(loc, e))
    }
}

#[async_trait]
impl ImageSource for OciSource {
    fn reference(&self) -> &dyn crate::image::ImageReference {
        self.reference.as_ref()
    }

    /// The top level is the `index.json` entry (typed by the entry's media
    /// type); an instance is any manifest blob in the layout.
    async fn get_manifest(&self, instance: Option<&Digest>) -> Result<Manifest> {
        match instance {
            None => {
                let t = self.descriptor.media_type().to_string();
                self.read_manifest_blob(self.descriptor.digest(), Some(&t))
                    .await
            }
            Some(d) => self.read_manifest_blob(d, None).await,
        }
    }

    async fn manifest_digest(&self) -> Result<Digest> {
        Ok(self.descriptor.digest().clone())
    }

    async fn get_blob(&self, info: &BlobInfo) -> Result<Blob> {
        self.files
            .open(
                &layout::blob_path(&info.digest),
                &format!("blob {}", info.digest),
            )
            .await
    }
}
