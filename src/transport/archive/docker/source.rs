//! [`DockerArchiveSource`]: reads one image of a `docker save` archive
//! (plain, or compressed with gzip, xz or zstd: see `archive::decompress`).
//!
//! The archive stores no registry manifest, so one is synthesised when the
//! source is opened: a Docker schema 2 manifest (compact JSON) whose config
//! is the config file and whose layers are the layer files as stored. A
//! layer's media type comes from its first bytes: gzip →
//! `…rootfs.diff.tar.gzip` with the digest of the stored bytes (hashed once,
//! at open); uncompressed → `…rootfs.diff.tar`, whose digest is the layer's
//! diffID from the config (not re-hashed: whoever consumes the blob verifies
//! it). Sizes are the tar entries' sizes. Layer bytes stream straight out of
//! the tar.
//!
//! Deliberate difference from skopeo 1.9: skopeo decompresses compressed
//! layers and labels every layer `…tar.gzip` even when it is not compressed;
//! we pass layers through as stored and label them by what they are.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, stream};
use serde::Serialize;
use serde_json::Value;

use super::{ManifestItem, Selector};
use crate::digest::{self, Digest, Digester};
use crate::image::{Blob, BlobInfo, Error, ImageSource, Manifest, Result};
use crate::manifest::{DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_V2S2};
use crate::reference::{self, Reference};
use crate::transport::archive::tar_index::TarIndex;
use crate::transport::local;

/// `manifest.json` of an archive: at most this many bytes.
const MAX_ITEMS_SIZE: u64 = 16 << 20;
/// Config files: at most this many bytes.
const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// The read side of `docker-archive:`.
pub struct DockerArchiveSource {
    index: Arc<TarIndex>,
    name: String,
    reference: Box<dyn crate::image::ImageReference>,
    intended: Option<Reference>,
    manifest: Manifest,
    config: Bytes,
    config_digest: Digest,
    /// Layer digest → its file in the tar.
    layers: HashMap<Digest, String>,
}

#[derive(Serialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    size: u64,
    digest: String,
}

#[derive(Serialize)]
struct Schema2 {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// Read and parse the archive's `manifest.json`.
pub(crate) async fn read_items(index: &TarIndex) -> Result<Vec<ManifestItem>> {
    let bytes = index
        .read(
            "manifest.json",
            "manifest.json (not a docker archive?)",
            MAX_ITEMS_SIZE,
        )
        .await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        location: local::show(index.path()),
        message: format!("invalid manifest.json: {e}"),
    })
}

/// The item the selector picks.
fn choose(items: Vec<ManifestItem>, selector: &Selector, location: &str) -> Result<ManifestItem> {
    match selector {
        Selector::None => {
            let n = items.len();
            match <[ManifestItem; 1]>::try_from(items) {
                Ok([one]) => Ok(one),
                Err(_) if n == 0 => Err(Error::not_found(location, "an image in manifest.json")),
                Err(_) => Err(Error::Invalid(format!(
                    "{location}: the archive holds {n} images; choose one with :NAME:TAG or :@N"
                ))),
            }
        }
        Selector::Index(i) => {
            let n = items.len();
            items.into_iter().nth(*i).ok_or_else(|| {
                Error::not_found(location, format!("image @{i} (the archive holds {n})"))
            })
        }
        Selector::Tag(want) => items
            .into_iter()
            .find(|it| {
                it.repo_tags
                    .iter()
                    .any(|t| reference::parse(t).is_ok_and(|r| r == *want))
            })
            .ok_or_else(|| Error::not_found(location, format!("an image tagged {want}"))),
    }
}

/// The diffIDs from a config.
fn diff_ids(config: &[u8], location: &str) -> Result<Vec<String>> {
    let corrupt = |message: String| Error::Corrupt {
        location: location.into(),
        message,
    };
    let v: Value =
        serde_json::from_slice(config).map_err(|e| corrupt(format!("invalid config: {e}")))?;
    v.pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| corrupt("config has no rootfs.diff_ids".into()))?
        .iter()
        .map(|d| {
            d.as_str()
                .map(str::to_string)
                .ok_or_else(|| corrupt("config has a non-string diff_id".into()))
        })
        .collect()
}

/// Hash a file of the archive.
async fn hash_entry(index: &TarIndex, name: &str) -> Result<Digest> {
    let mut blob = index.stream(name, "layer").await?;
    let mut d = Digester::sha256();
    while let Some(chunk) = blob.stream.next().await {
        d.update(&chunk?);
    }
    Ok(d.finish())
}

impl DockerArchiveSource {
    /// Index the archive, pick the image and synthesise its manifest.
    pub async fn open(
        path: &std::path::Path,
        reference: Box<dyn crate::image::ImageReference>,
        selector: &Selector,
    ) -> Result<Self> {
        let name = reference.to_string();
        let index = Arc::new(TarIndex::open_decompressing(path).await?);
        let location = local::show(path);
        let item = choose(read_items(&index).await?, selector, &location)?;
        let config = index.read(&item.config, "config", MAX_CONFIG_SIZE).await?;
        let config_digest = digest::sha256(&config);
        let diff_ids = diff_ids(&config, &format!("{location} ({})", item.config))?;
        if diff_ids.len() != item.layers.len() {
            return Err(Error::Corrupt {
                location,
                message: format!(
                    "inconsistent layer count: {} in manifest.json, {} in the config",
                    item.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let mut layers = HashMap::new();
        let mut descriptors = Vec::new();
        for (file, diff_id) in item.layers.iter().zip(&diff_ids) {
            let (_, size) = index.locate(file, "layer")?;
            let head = index.head(file, 6).await?;
            let (media_type, digest) = match head.as_slice() {
                [0x1f, 0x8b, ..] => (DOCKER_LAYER_GZIP, hash_entry(&index, file).await?),
                [0x28, 0xb5, 0x2f, 0xfd, ..]
                | [b'B', b'Z', b'h', ..]
                | [0xfd, b'7', b'z', b'X', b'Z', 0] => {
                    return Err(Error::Unsupported(format!(
                        "{location}: layer {file} uses a compression Docker schema 2 cannot name (only gzip or none)"
                    )));
                }
                _ => {
                    let d = digest::parse(diff_id).map_err(|e| Error::Corrupt {
                        location: location.clone(),
                        message: format!("config: {e}"),
                    })?;
                    (DOCKER_LAYER, d)
                }
            };
            descriptors.push(Descriptor {
                media_type,
                size,
                digest: digest.to_string(),
            });
            layers.insert(digest, file.clone());
        }
        let m = Schema2 {
            schema_version: 2,
            media_type: DOCKER_V2S2,
            config: Descriptor {
                media_type: DOCKER_CONFIG,
                size: config.len() as u64,
                digest: config_digest.to_string(),
            },
            layers: descriptors,
        };
        let bytes = serde_json::to_vec(&m).expect("manifest serialises");
        let manifest = Manifest::new(bytes.into(), Some(DOCKER_V2S2))
            .map_err(|e| Error::manifest(&location, e))?;
        let intended = match selector {
            Selector::Tag(r) => Some(r.clone()),
            _ => item
                .repo_tags
                .first()
                .and_then(|t| reference::parse(t).ok()),
        };
        Ok(DockerArchiveSource {
            index,
            name,
            reference,
            intended,
            manifest,
            config,
            config_digest,
            layers,
        })
    }
}

#[async_trait]
impl ImageSource for DockerArchiveSource {
    fn reference(&self) -> &dyn crate::image::ImageReference {
        self.reference.as_ref()
    }

    fn intended_docker_reference(&self) -> Option<Reference> {
        self.intended.clone()
    }

    /// The synthesised manifest (the archive holds a single image, so an
    /// instance digest must be that manifest's).
    async fn get_manifest(&self, instance: Option<&Digest>) -> Result<Manifest> {
        match instance {
            Some(d) if *d != self.manifest.digest() => Err(Error::not_found(
                &self.name,
                format!("manifest {d} (a docker archive holds single images)"),
            )),
            _ => Ok(self.manifest.clone()),
        }
    }

    async fn get_blob(&self, info: &BlobInfo) -> Result<Blob> {
        if info.digest == self.config_digest {
            let b = self.config.clone();
            return Ok(Blob {
                size: Some(b.len() as u64),
                stream: stream::iter([Ok(b)]).boxed(),
            });
        }
        match self.layers.get(&info.digest) {
            Some(file) => self.index.stream(file, "layer").await,
            None => Err(Error::not_found(
                &self.name,
                format!("blob {}", info.digest),
            )),
        }
    }
}
