//! [`Image`]: the convenient, cached view of an [`ImageSource`] (containers/image
//! `Image`): the manifest and signatures are fetched once, the config is read
//! (bounded) for [`Image::inspect`].

use futures::TryStreamExt;
use tokio::sync::OnceCell;

use super::{BlobInfo, Error, ImageInspectInfo, ImageSource, Result, Signature, inspect};
use crate::digest::{self, Digest};
use crate::manifest::{self, Manifest, Parsed, Platform};

/// Config blobs larger than this are refused (real ones are a few KiB).
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// A cached view of one image source.
pub struct Image {
    source: Box<dyn ImageSource>,
    manifest: OnceCell<Manifest>,
    signatures: OnceCell<Vec<Signature>>,
}

impl Image {
    pub fn new(source: Box<dyn ImageSource>) -> Self {
        Image {
            source,
            manifest: OnceCell::new(),
            signatures: OnceCell::new(),
        }
    }

    /// The underlying source.
    pub fn source(&self) -> &dyn ImageSource {
        self.source.as_ref()
    }

    /// The top-level manifest, fetched once.
    pub async fn manifest(&self) -> Result<&Manifest> {
        self.manifest
            .get_or_try_init(|| self.source.get_manifest(None))
            .await
    }

    /// The top-level image's signatures, fetched once.
    pub async fn signatures(&self) -> Result<&[Signature]> {
        Ok(self
            .signatures
            .get_or_try_init(|| self.source.get_signatures(None))
            .await?
            .as_slice())
    }

    /// The single-image manifest for `platform` (the host's when `None`): the
    /// top level if it is an image, else the matching index entry.
    pub async fn instance(&self, platform: Option<&Platform>) -> Result<(Manifest, Digest)> {
        let top = self.manifest().await?;
        let loc = self.source.reference().to_string();
        match top.parse().map_err(|e| Error::manifest(&loc, e))? {
            Parsed::Image(_) => Ok((top.clone(), top.digest())),
            Parsed::Index(index) => {
                let d = manifest::choose_instance(&index, platform).ok_or_else(|| {
                    let want = platform.cloned().unwrap_or_else(Platform::host);
                    Error::NoInstance {
                        location: loc.clone(),
                        message: want.not_in_index(&top.media_type),
                    }
                })?;
                let m = self.source.get_manifest(Some(d.digest())).await?;
                Ok((m, d.digest().clone()))
            }
        }
    }

    /// The layers of the image for `platform`.
    pub async fn layers(&self, platform: Option<&Platform>) -> Result<Vec<BlobInfo>> {
        let (m, _) = self.instance(platform).await?;
        let loc = self.source.reference().to_string();
        let img = m.image().map_err(|e| Error::manifest(&loc, e))?;
        Ok(img.layers().iter().map(BlobInfo::from).collect())
    }

    /// Read the config blob of a single-image manifest, verified and bounded.
    pub async fn config_bytes(&self, m: &Manifest) -> Result<Vec<u8>> {
        let loc = self.source.reference().to_string();
        let img = m.image().map_err(|e| Error::manifest(&loc, e))?;
        let info = BlobInfo::from(img.config());
        if info.size.unwrap_or(0) > MAX_CONFIG_SIZE {
            return Err(Error::Corrupt {
                location: loc,
                message: format!(
                    "config blob {} is larger than {MAX_CONFIG_SIZE} bytes",
                    info.digest
                ),
            });
        }
        let blob = self.source.get_blob(&info).await?;
        let stream = digest::VerifyingStream::new(blob.stream, info.digest.clone(), info.size);
        let chunks: Vec<bytes::Bytes> = stream
            .map_err(|e| match e {
                Error::Digest { what, source, .. } => Error::Digest {
                    location: loc.clone(),
                    what,
                    source,
                },
                other => other,
            })
            .try_collect()
            .await?;
        Ok(chunks.concat())
    }

    /// `inspect` for `platform` (the host's when `None`). `Name`, `Tag` and
    /// `RepoTags` are left for the caller. For an index, `Digest` is the
    /// index's (as skopeo prints it) and the rest describes the chosen image.
    pub async fn inspect(&self, platform: Option<&Platform>) -> Result<ImageInspectInfo> {
        let top_digest = self.manifest().await?.digest();
        let (m, _) = self.instance(platform).await?;
        let config = self.config_bytes(&m).await?;
        let loc = self.source.reference().to_string();
        let img = m.image().map_err(|e| Error::manifest(&loc, e))?;
        inspect::build(&img, top_digest.as_ref(), &config).map_err(|e| Error::manifest(&loc, e))
    }
}
