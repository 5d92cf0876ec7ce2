//! [`DirSource`]: reads a `dir:` directory. Instance manifests and blob files
//! are checked against the digest they are named by when read as manifests;
//! blobs are streamed (their consumer verifies).

use std::path::PathBuf;

use async_trait::async_trait;

use super::{files, sigfile};
use crate::digest::{self, Digest};
use crate::image::{Blob, BlobInfo, Error, ImageSource, Manifest, Result, Signature};
use crate::transport::local;

/// Signature files larger than this are refused.
const MAX_SIGNATURE_SIZE: u64 = 4 << 20;

/// The read side of `dir:`.
pub struct DirSource {
    root: PathBuf,
    reference: Box<dyn crate::image::ImageReference>,
}

impl DirSource {
    /// Open an existing directory.
    pub async fn open(
        root: PathBuf,
        reference: Box<dyn crate::image::ImageReference>,
    ) -> Result<Self> {
        match tokio::fs::metadata(&root).await {
            Ok(m) if m.is_dir() => Ok(DirSource { root, reference }),
            Ok(_) => Err(Error::Invalid(format!(
                "{}: not a directory",
                local::show(&root)
            ))),
            Err(e) => Err(local::io_err(&root, "open", "directory", e)),
        }
    }

    /// Whether `instance` names the top-level manifest (whose signatures are
    /// `signature-N`, not `<hex>.signature-N`).
    async fn is_top_level(&self, instance: &Digest) -> Result<bool> {
        let path = self.root.join(files::MANIFEST);
        let bytes = local::read_manifest_file(&path, "manifest.json").await?;
        Ok(&digest::sha256(&bytes) == instance)
    }
}

#[async_trait]
impl ImageSource for DirSource {
    fn reference(&self) -> &dyn crate::image::ImageReference {
        self.reference.as_ref()
    }

    async fn get_manifest(&self, instance: Option<&Digest>) -> Result<Manifest> {
        let rel = files::manifest(instance);
        let path = self.root.join(&rel);
        let what = match instance {
            None => "manifest.json (not a dir: image?)".to_string(),
            Some(d) => format!("manifest {d}"),
        };
        let bytes = local::read_manifest_file(&path, &what).await?;
        if let Some(d) = instance {
            local::verify(&local::show(&path), &format!("manifest {d}"), d, &bytes)?;
        }
        Manifest::new(bytes, None).map_err(|e| Error::manifest(local::show(&path), e))
    }

    async fn get_blob(&self, info: &BlobInfo) -> Result<Blob> {
        let path = self.root.join(files::blob(&info.digest));
        local::open_blob(&path, &format!("blob {}", info.digest)).await
    }

    async fn get_signatures(&self, instance: Option<&Digest>) -> Result<Vec<Signature>> {
        let instance = match instance {
            Some(d) if !self.is_top_level(d).await? => Some(d),
            _ => None,
        };
        let mut out = Vec::new();
        for n in 1.. {
            let path = self.root.join(files::signature(instance, n));
            let data = match local::read_bounded(&path, "signature", MAX_SIGNATURE_SIZE).await {
                Ok(d) => d,
                Err(Error::NotFound { .. }) => break,
                Err(e) => return Err(e),
            };
            let sig = sigfile::decode(data).map_err(|message| Error::Corrupt {
                location: local::show(&path),
                message,
            })?;
            out.push(sig);
        }
        Ok(out)
    }
}
