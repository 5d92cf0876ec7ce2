//! Transport `sif:` — read a Singularity/Apptainer image file (SIF) as a
//! one-layer OCI image, as skopeo 1.9 (containers/image `sif/`) does.
//! Syntax `sif:PATH`. Read-only: as a destination it is refused.
//!
//! What an image source made from a SIF holds (containers/image's
//! `newImageSource`, field for field):
//! - one layer: the primary system partition's squashfs as an uncompressed
//!   tar ([`squash`]), media type `application/vnd.oci.image.layer.v1.tar`,
//!   so its digest is also the config's diff ID; when the definition file has
//!   `%environment` or `%runscript`, the script made of them is added as
//!   `/podman/runscript` ([`deffile`]);
//! - an OCI config: `created` = the SIF's modification time, `architecture`
//!   = the primary partition's, `os` `linux`, `config.Cmd` = `["bash"]` or
//!   `["/podman/runscript"]`, the diff ID, and skopeo's two history entries;
//! - an OCI manifest naming both (compact JSON, skopeo's field order).
//!
//! The layer is built once, when the source is opened, in a temporary file
//! removed with the source (the digest must be in the manifest before any
//! blob is read). The SIF header and descriptors are parsed by [`header`].

mod contain;
pub mod deffile;
pub mod header;
pub mod squash;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

use crate::digest::{self, Digest};
use crate::image::{
    Blob, BlobInfo, Error, ImageDestination, ImageReference, ImageSource, Manifest, Result,
    SystemContext,
};
use crate::manifest::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use crate::reference::Reference;
use crate::transport::local;

/// The transport's name.
pub const NAME: &str = "sif";

/// Parse `PATH`.
pub fn parse_reference(within: &str) -> Result<Box<dyn ImageReference>> {
    Ok(Box::new(SifReference::parse(within)?))
}

/// A SIF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SifReference {
    path: String,
    resolved: PathBuf,
}

impl SifReference {
    pub fn parse(within: &str) -> Result<Self> {
        if within.is_empty() {
            return Err(Error::InvalidName {
                input: format!("{NAME}:"),
                reason: "expected sif:PATH (a SIF file)".into(),
            });
        }
        Ok(SifReference {
            path: within.to_string(),
            resolved: local::absolute(within)?,
        })
    }

    /// The file (absolute).
    pub fn path(&self) -> &Path {
        &self.resolved
    }
}

impl fmt::Display for SifReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{NAME}:{}", self.path)
    }
}

#[async_trait]
impl ImageReference for SifReference {
    fn transport(&self) -> &'static str {
        NAME
    }

    fn docker_reference(&self) -> Option<Reference> {
        None
    }

    fn with_tag(&self, tag: &str) -> Result<Box<dyn ImageReference>> {
        Err(Error::Unsupported(format!(
            "{self}: a SIF file holds one image and no tags (asked for {tag:?})"
        )))
    }

    async fn new_image_source(&self, _ctx: &SystemContext) -> Result<Box<dyn ImageSource>> {
        Ok(Box::new(SifSource::open(self.clone()).await?))
    }

    async fn new_image_destination(
        &self,
        _ctx: &SystemContext,
    ) -> Result<Box<dyn ImageDestination>> {
        Err(Error::Unsupported(format!(
            "{self}: sif: is read-only, as in skopeo (\"sif:\" locations can only be read from, not written to)"
        )))
    }
}

/// The read side of `sif:`: the converted image, its layer in a temporary file.
pub struct SifSource {
    reference: SifReference,
    manifest: Manifest,
    config: Bytes,
    config_digest: Digest,
    layer: squash::Layer,
    /// Removed when the source is dropped.
    layer_file: tempfile::TempPath,
}

/// What [`convert`] makes of a SIF file.
struct Converted {
    header: header::Header,
    arch: &'static str,
    command: deffile::Command,
    layer: squash::Layer,
    layer_file: tempfile::TempPath,
}

impl SifSource {
    /// Read the SIF at `reference` and build its layer, config and manifest.
    pub async fn open(reference: SifReference) -> Result<Self> {
        let path = reference.resolved.clone();
        let shown = reference.to_string();
        let c = tokio::task::spawn_blocking(move || convert(&path))
            .await
            .map_err(|e| Error::Invalid(format!("{shown}: conversion task failed: {e}")))??;
        let config = config_json(&c).map_err(|message| Error::Corrupt {
            location: reference.to_string(),
            message,
        })?;
        let config_digest = digest::sha256(&config);
        let manifest = serde_json::to_vec(&OciManifest {
            schema_version: 2,
            media_type: OCI_MANIFEST,
            config: Desc {
                media_type: OCI_CONFIG,
                digest: config_digest.to_string(),
                size: config.len() as u64,
            },
            layers: [Desc {
                media_type: OCI_LAYER,
                digest: c.layer.digest.to_string(),
                size: c.layer.size,
            }],
        })
        .map_err(|e| Error::Invalid(format!("{reference}: manifest: {e}")))?;
        let manifest = Manifest::new(manifest.into(), Some(OCI_MANIFEST))
            .map_err(|e| Error::manifest(reference.to_string(), e))?;
        Ok(SifSource {
            reference,
            manifest,
            config: config.into(),
            config_digest,
            layer: c.layer,
            layer_file: c.layer_file,
        })
    }
}

/// Open `path`, parse it, write the layer. Errors say what is wrong with
/// the file, on one line.
fn convert(path: &Path) -> Result<Converted> {
    let loc = local::show(path);
    let corrupt = |message: String| Error::Corrupt {
        location: format!("{NAME}:{loc}"),
        message,
    };
    let mut file =
        std::fs::File::open(path).map_err(|e| local::io_err(path, "open", "SIF file", e))?;
    let len = file
        .metadata()
        .map_err(|e| local::io_err(path, "stat", "SIF file", e))?
        .len();
    let mut head = Vec::with_capacity(header::HEADER_LEN);
    (&mut file)
        .take(header::HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(&loc, "read", e))?;
    let h = header::parse_header(&head, len).map_err(corrupt)?;
    let table = read_at(
        &mut file,
        h.descriptors_offset,
        h.descriptors_total * header::DESCRIPTOR_LEN as u64,
    )
    .map_err(|e| Error::io(&loc, "read", e))?;
    let descriptors =
        header::parse_descriptors(&table, h.descriptors_total, len).map_err(corrupt)?;

    // As skopeo: the definition file first, then the root file system.
    let def = header::find_one(&descriptors, |d| d.data_type == header::DATA_DEFFILE)
        .map_err(|e| corrupt(format!("looking up the definition file: {e}")))?;
    let command = match def {
        None => deffile::default_command(),
        Some(d) if d.size > deffile::MAX_DEFFILE => {
            return Err(corrupt(format!(
                "definition file is {} bytes, more than the {} allowed",
                d.size,
                deffile::MAX_DEFFILE
            )));
        }
        Some(d) => deffile::parse(
            &read_at(&mut file, d.offset, d.size).map_err(|e| Error::io(&loc, "read", e))?,
        ),
    };
    let root = header::primary_partition(&descriptors)
        .map_err(|e| corrupt(format!("looking up rootfs from SIF file: {e}")))?
        .ok_or_else(|| {
            corrupt(
                "looking up rootfs from SIF file: object not found (no primary system partition)"
                    .into(),
            )
        })?;
    let part = root.partition.clone().unwrap_or(header::Partition {
        fs_type: 0,
        part_type: 0,
        arch: [0; 3],
    });
    if part.fs_type != header::FS_SQUASH {
        return Err(corrupt(format!(
            "the primary system partition is not squashfs (file system type {})",
            part.fs_type
        )));
    }

    let temp = tempfile::NamedTempFile::new()
        .map_err(|e| Error::io(&loc, crate::image::temp_file_op(), e))?;
    let (out, layer_file) = temp.into_parts();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let inject = command
        .runscript
        .as_deref()
        .map(|content| squash::Injected {
            path: deffile::RUNSCRIPT_PATH,
            content,
            mtime: now,
        });
    let section = squash::Section::new(file, root.offset, root.size);
    // backhand also logs what it finds wrong (tracing, ERROR level); the
    // error it returns is what the user gets, on one line, so its events
    // are not shown (this runs on a blocking thread of its own).
    let layer =
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            squash::write_layer(
                section,
                std::io::BufWriter::with_capacity(1 << 16, out),
                inject,
            )
        })
        .map_err(corrupt)?;
    Ok(Converted {
        header: h,
        arch: header::go_arch(&part.arch),
        command,
        layer,
        layer_file,
    })
}

/// `len` bytes at `offset` (callers bound `len`: the descriptor table, a
/// definition file).
fn read_at(file: &mut std::fs::File, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    file.take(len).read_to_end(&mut out)?;
    if (out.len() as u64) < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the SIF file is truncated",
        ));
    }
    Ok(out)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciManifest {
    schema_version: u32,
    media_type: &'static str,
    config: Desc,
    layers: [Desc; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Desc {
    media_type: &'static str,
    digest: String,
    size: u64,
}

#[derive(Serialize)]
struct OciConfig<'a> {
    created: &'a str,
    architecture: &'a str,
    os: &'a str,
    config: ExecConfig<'a>,
    rootfs: RootFs,
    history: [History<'a>; 2],
}

#[derive(Serialize)]
struct ExecConfig<'a> {
    #[serde(rename = "Cmd")]
    cmd: &'a [String],
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: [String; 1],
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty_layer: bool,
}

/// The config skopeo writes (Go's `json.Marshal` of an image-spec `Image`:
/// compact, fields in the struct's order).
fn config_json(c: &Converted) -> std::result::Result<Vec<u8>, String> {
    let created = jiff::Timestamp::from_second(c.header.modified_at)
        .map_err(|_| format!("modification time {} is out of range", c.header.modified_at))?
        .to_string();
    let diff_id = c.layer.digest.to_string();
    let config = OciConfig {
        created: &created,
        architecture: c.arch,
        os: "linux",
        config: ExecConfig {
            cmd: &c.command.cmd,
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: [diff_id],
        },
        history: [
            History {
                created: &created,
                created_by: format!(
                    "/bin/sh -c #(nop) ADD file:{} in /",
                    digest::hex_of(&c.layer.digest)
                ),
                comment: Some(format!(
                    "imported from SIF, uuid: {}",
                    header::uuid_string(&c.header.id)
                )),
                empty_layer: false,
            },
            History {
                created: &created,
                created_by: "/bin/sh -c #(nop) CMD [\"bash\"]".into(),
                comment: None,
                empty_layer: true,
            },
        ],
    };
    serde_json::to_vec(&config).map_err(|e| e.to_string())
}

#[async_trait]
impl ImageSource for SifSource {
    fn reference(&self) -> &dyn ImageReference {
        &self.reference
    }

    async fn get_manifest(&self, instance: Option<&Digest>) -> Result<Manifest> {
        if instance.is_some() {
            return Err(Error::Unsupported(
                "manifest lists are not supported by the sif transport".into(),
            ));
        }
        Ok(self.manifest.clone())
    }

    async fn get_blob(&self, info: &BlobInfo) -> Result<Blob> {
        if info.digest == self.config_digest {
            let data = self.config.clone();
            return Ok(Blob {
                size: Some(data.len() as u64),
                stream: Box::pin(futures::stream::once(async move { Ok(data) })),
            });
        }
        if info.digest == self.layer.digest {
            return local::open_blob(&self.layer_file, &format!("blob {}", info.digest)).await;
        }
        Err(Error::not_found(
            self.reference.to_string(),
            format!("blob {}", info.digest),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_writes_and_tags() {
        let r = SifReference::parse("/tmp/x.sif").unwrap();
        assert_eq!(r.to_string(), "sif:/tmp/x.sif");
        assert!(SifReference::parse("").is_err());
        assert!(r.with_tag("v1").is_err());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt
            .block_on(r.new_image_destination(&SystemContext::default()))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("sif: is read-only, as in skopeo"),
            "{e}"
        );
    }
}
