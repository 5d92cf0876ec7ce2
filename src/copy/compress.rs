//! Layer recompression (skopeo's `--dest-compress`, `--dest-compress-format
//! gzip|zstd`, `--dest-compress-level`, `--dest-decompress`).
//!
//! A layer whose compression must change is streamed from the source
//! through a decoder and an encoder (flate2, zstd) into a temporary file,
//! hashing what goes in (checked against the source's digest) and what comes
//! out (the new digest); memory stays a few buffers whatever the layer's
//! size, and the staged file is then copied like any other blob. The
//! manifests are rewritten to name the new blobs (digest, size, media type);
//! the config, and so its `rootfs.diff_ids` (digests of the uncompressed
//! layers), stays byte for byte the same, since the uncompressed content is.
//!
//! Only image layers of the OCI and Docker schema 2 types are touched
//! (foreign, non-distributable, encrypted and artifact blobs pass as they
//! are). zstd layers need an OCI manifest: a Docker schema 2 manifest is
//! converted to OCI for them (as containers/image does), unless `--format
//! v2s2` asks for Docker, which is refused.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use tokio_util::io::{ReaderStream, StreamReader, SyncIoBridge};

use crate::digest::{Digest, HashingWriter, VerifyingStream};
use crate::image::{Blob, BlobInfo, Error, ImageReference, ImageSource, Signature};
use crate::manifest::{self, Manifest};

/// A compression algorithm of layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Gzip,
    Zstd,
}

impl Algorithm {
    /// `gzip` or `zstd` (skopeo's `--dest-compress-format` names).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(Algorithm::Gzip),
            "zstd" => Ok(Algorithm::Zstd),
            "zstd:chunked" => Err(
                "--dest-compress-format zstd:chunked is not supported by kubemirror: use zstd"
                    .into(),
            ),
            other => Err(format!(
                "unknown compression format {other:?}: want gzip or zstd"
            )),
        }
    }
}

/// What to do with layer compression at the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerCompression {
    /// Compress uncompressed layers with `algorithm`; with `recompress`,
    /// also re-encode layers compressed with another algorithm.
    Compress {
        algorithm: Algorithm,
        level: Option<i32>,
        recompress: bool,
    },
    /// Store every layer uncompressed.
    Decompress,
}

/// The manifest family of a layer media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Oci,
    Docker,
}

/// A layer media type's family and compression; `None` for anything that is
/// not a plain image layer.
fn classify(media_type: &str) -> Option<(Family, Option<Algorithm>)> {
    Some(match media_type {
        manifest::OCI_LAYER => (Family::Oci, None),
        manifest::OCI_LAYER_GZIP => (Family::Oci, Some(Algorithm::Gzip)),
        manifest::OCI_LAYER_ZSTD => (Family::Oci, Some(Algorithm::Zstd)),
        manifest::DOCKER_LAYER => (Family::Docker, None),
        manifest::DOCKER_LAYER_GZIP => (Family::Docker, Some(Algorithm::Gzip)),
        _ => return None,
    })
}

fn media_type(family: Family, algorithm: Option<Algorithm>) -> Option<&'static str> {
    Some(match (family, algorithm) {
        (Family::Oci, None) => manifest::OCI_LAYER,
        (Family::Oci, Some(Algorithm::Gzip)) => manifest::OCI_LAYER_GZIP,
        (Family::Oci, Some(Algorithm::Zstd)) => manifest::OCI_LAYER_ZSTD,
        (Family::Docker, None) => manifest::DOCKER_LAYER,
        (Family::Docker, Some(Algorithm::Gzip)) => manifest::DOCKER_LAYER_GZIP,
        (Family::Docker, Some(Algorithm::Zstd)) => return None,
    })
}

impl LayerCompression {
    /// The compression a layer that has `current` gets; `None`: unchanged.
    fn wanted(&self, current: Option<Algorithm>) -> Option<Option<Algorithm>> {
        let want = match self {
            LayerCompression::Decompress => None,
            LayerCompression::Compress {
                algorithm,
                recompress,
                ..
            } => match current {
                None => Some(*algorithm),
                Some(_) if *recompress => Some(*algorithm),
                Some(c) => Some(c),
            },
        };
        (want != current).then_some(want)
    }

    fn level(&self) -> Option<i32> {
        match self {
            LayerCompression::Compress { level, .. } => *level,
            LayerCompression::Decompress => None,
        }
    }

    /// Whether rewriting `m` needs an OCI manifest (zstd in a Docker one).
    pub fn needs_oci(&self, m: &Manifest) -> Result<bool, Error> {
        if m.media_type != manifest::DOCKER_V2S2 {
            return Ok(false);
        }
        let img = m.image().map_err(|e| Error::manifest("manifest", e))?;
        Ok(img.layers().iter().any(|l| {
            classify(l.media_type().as_ref())
                .is_some_and(|(f, c)| self.wanted(c).is_some_and(|w| media_type(f, w).is_none()))
        }))
    }
}

/// Layers staged on disk after recompression, served in place of the
/// source's blobs (see [`StagedSource`]).
#[derive(Default)]
pub struct Staged {
    files: HashMap<Digest, (tempfile::TempPath, u64)>,
    /// Source layer digest → its recompressed descriptor (digest, size, media type).
    done: HashMap<(Digest, &'static str), (Digest, u64)>,
}

/// Rewrite the layers of image manifest `m` for `c`: every layer to change
/// is transcoded (once per source digest and target type) into a staged
/// file; returns the manifest naming the new blobs (unchanged bytes when no
/// layer changes).
pub async fn rewrite_manifest(
    src: &dyn ImageSource,
    m: &Manifest,
    c: &LayerCompression,
    staged: &mut Staged,
    jobs: usize,
) -> Result<Manifest, Error> {
    let loc = src.reference().to_string();
    let img = m.image().map_err(|e| Error::manifest(&loc, e))?;
    // (index in layers, source info, from, to, new media type)
    let mut work = Vec::new();
    for (i, l) in img.layers().iter().enumerate() {
        let mt = l.media_type().to_string();
        let Some((family, current)) = classify(&mt) else {
            continue;
        };
        let Some(want) = c.wanted(current) else {
            continue;
        };
        let new_type = media_type(family, want).ok_or_else(|| {
            Error::Unsupported(format!(
                "{loc}: zstd layers need an OCI manifest, not Docker schema 2: copy with --format oci"
            ))
        })?;
        work.push((i, BlobInfo::from(l), current, want, new_type));
    }
    if work.is_empty() {
        return Ok(m.clone());
    }
    let level = c.level();
    let todo: Vec<_> = work
        .iter()
        .filter(|(_, info, _, _, t)| !staged.done.contains_key(&(info.digest.clone(), *t)))
        .map(|(_, info, from, to, t)| {
            let info = info.clone();
            let (from, to, t) = (*from, *to, *t);
            async move {
                let (digest, size, path) = transcode(src, &info, from, to, level).await?;
                Ok::<_, Error>((info.digest, t, digest, size, path))
            }
        })
        .collect();
    let results: Vec<_> = futures::stream::iter(todo)
        .buffer_unordered(jobs.max(1))
        .try_collect()
        .await?;
    for (old, t, digest, size, path) in results {
        staged.done.insert((old, t), (digest.clone(), size));
        staged.files.insert(digest, (path, size));
    }
    let mut v: Value =
        serde_json::from_slice(&m.bytes).map_err(|e| Error::Invalid(format!("{loc}: {e}")))?;
    let layers = v
        .get_mut("layers")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::Invalid(format!("{loc}: manifest without layers")))?;
    for (i, info, _, _, t) in &work {
        let (digest, size) = &staged.done[&(info.digest.clone(), *t)];
        if let Some(d) = layers.get_mut(*i).and_then(Value::as_object_mut) {
            d.insert("mediaType".into(), (*t).into());
            d.insert("digest".into(), digest.to_string().into());
            d.insert("size".into(), (*size).into());
        }
    }
    let bytes = serde_json::to_vec(&v).map_err(|e| Error::Invalid(format!("{loc}: {e}")))?;
    Manifest::new(bytes.into(), Some(&m.media_type)).map_err(|e| Error::manifest(&loc, e))
}

/// Stream blob `info` from `src` through decoder `from` and encoder `to`
/// into a temporary file; returns the output's digest, size and path.
async fn transcode(
    src: &dyn ImageSource,
    info: &BlobInfo,
    from: Option<Algorithm>,
    to: Option<Algorithm>,
    level: Option<i32>,
) -> Result<(Digest, u64, tempfile::TempPath), Error> {
    let loc = format!("{} blob {}", src.reference(), info.digest);
    let blob = src.get_blob(info).await?;
    // The source's bytes are checked against its digest as they are read.
    let verified = VerifyingStream::new(blob.stream, info.digest.clone(), info.size.or(blob.size));
    let reader = StreamReader::new(verified.map_err(std::io::Error::other));
    let mut bridge = SyncIoBridge::new(reader);
    let file = tempfile::NamedTempFile::new()
        .map_err(|e| Error::io(&loc, crate::image::temp_file_op(), e))?;
    let loc2 = loc.clone();
    let out = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        let (file, path) = file.into_parts();
        let mut sink = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 16, file));
        let mut decoded: Box<dyn Read + '_> = match from {
            None => Box::new(&mut bridge),
            Some(Algorithm::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(&mut bridge)),
            Some(Algorithm::Zstd) => Box::new(
                zstd::stream::read::Decoder::new(&mut bridge)
                    .map_err(|e| Error::io(&loc2, "zstd decoder", e))?,
            ),
        };
        let io = |e| Error::io(&loc2, "recompressing", e);
        match to {
            None => {
                std::io::copy(&mut decoded, &mut sink).map_err(io)?;
            }
            Some(Algorithm::Gzip) => {
                let level = flate2::Compression::new(level.unwrap_or(6).clamp(0, 9) as u32);
                let mut enc = flate2::write::GzEncoder::new(&mut sink, level);
                std::io::copy(&mut decoded, &mut enc).map_err(io)?;
                enc.finish().map_err(io)?;
            }
            Some(Algorithm::Zstd) => {
                let level = level.unwrap_or(3).clamp(1, 19);
                let mut enc = zstd::stream::write::Encoder::new(&mut sink, level).map_err(io)?;
                std::io::copy(&mut decoded, &mut enc).map_err(io)?;
                enc.finish().map_err(io)?;
            }
        }
        // The decoder may stop at the end of its frame: the rest of the
        // source must still be read for its digest to be checked.
        drop(decoded);
        std::io::copy(&mut bridge, &mut std::io::sink()).map_err(io)?;
        let (digest, n) = sink.finish().map_err(io)?;
        Ok((digest, n, path))
    })
    .await
    .map_err(|e| Error::Invalid(format!("{loc}: recompression task failed: {e}")))??;
    Ok(out)
}

/// The source of a copy with some layers recompressed: staged blobs are
/// read from their files, everything else from the source.
pub struct StagedSource<'a> {
    pub inner: &'a dyn ImageSource,
    pub staged: Arc<Staged>,
}

#[async_trait]
impl ImageSource for StagedSource<'_> {
    fn reference(&self) -> &dyn ImageReference {
        self.inner.reference()
    }
    async fn get_manifest(&self, instance: Option<&Digest>) -> Result<Manifest, Error> {
        self.inner.get_manifest(instance).await
    }
    async fn get_blob(&self, info: &BlobInfo) -> Result<Blob, Error> {
        let Some((path, size)) = self.staged.files.get(&info.digest) else {
            return self.inner.get_blob(info).await;
        };
        let loc = path.display().to_string();
        let file = tokio::fs::File::open(PathBuf::from(&**path))
            .await
            .map_err(|e| Error::io(&loc, "open staged layer", e))?;
        let stream = ReaderStream::with_capacity(file, 1 << 16)
            .map_err(move |e| Error::io(loc.clone(), "read staged layer", e))
            .boxed();
        Ok(Blob {
            stream,
            size: Some(*size),
        })
    }
    async fn get_signatures(&self, instance: Option<&Digest>) -> Result<Vec<Signature>, Error> {
        self.inner.get_signatures(instance).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn what_each_mode_does_to_each_layer() {
        let gz = LayerCompression::Compress {
            algorithm: Algorithm::Gzip,
            level: None,
            recompress: false,
        };
        assert_eq!(gz.wanted(None), Some(Some(Algorithm::Gzip)));
        assert_eq!(gz.wanted(Some(Algorithm::Zstd)), None);
        assert_eq!(gz.wanted(Some(Algorithm::Gzip)), None);
        let zs = LayerCompression::Compress {
            algorithm: Algorithm::Zstd,
            level: None,
            recompress: true,
        };
        assert_eq!(
            zs.wanted(Some(Algorithm::Gzip)),
            Some(Some(Algorithm::Zstd))
        );
        assert_eq!(zs.wanted(Some(Algorithm::Zstd)), None);
        let de = LayerCompression::Decompress;
        assert_eq!(de.wanted(Some(Algorithm::Gzip)), Some(None));
        assert_eq!(de.wanted(None), None);
        for passes in [
            manifest::DOCKER_FOREIGN_LAYER_GZIP,
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
        ] {
            assert_eq!(classify(passes), None, "{passes}");
        }
        assert_eq!(media_type(Family::Docker, Some(Algorithm::Zstd)), None);
        assert!(Algorithm::parse("zstd:chunked").is_err());
    }

    /// A layer streamed in 1 MiB chunks, produced lazily, is transcoded
    /// gzip → zstd → plain; the result decodes to the same bytes and the
    /// source's digest is checked.
    #[tokio::test]
    async fn transcoding_round_trip_and_digest_check() {
        let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let src = test_source::One::new(gz.clone());
        let info = BlobInfo::new(crate::digest::sha256(&gz), Some(gz.len() as u64));
        let (d, n, p) = transcode(
            &src,
            &info,
            Some(Algorithm::Gzip),
            Some(Algorithm::Zstd),
            None,
        )
        .await
        .unwrap();
        let zst = std::fs::read(&p).unwrap();
        assert_eq!(zst.len() as u64, n);
        assert_eq!(crate::digest::sha256(&zst), d);
        assert_eq!(zstd::decode_all(&zst[..]).unwrap(), data);
        // A source whose bytes do not match the digest fails.
        let bad = BlobInfo::new(crate::digest::sha256(b"other"), None);
        let e = transcode(&src, &bad, Some(Algorithm::Gzip), None, None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
    }

    mod test_source {
        use super::*;
        use bytes::Bytes;

        #[derive(Debug)]
        pub struct Ref;
        impl std::fmt::Display for Ref {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("test:")
            }
        }
        #[async_trait]
        impl ImageReference for Ref {
            fn transport(&self) -> &'static str {
                "test"
            }
            fn docker_reference(&self) -> Option<crate::reference::Reference> {
                None
            }
            fn with_tag(&self, _: &str) -> crate::image::Result<Box<dyn ImageReference>> {
                unimplemented!()
            }
            async fn new_image_source(
                &self,
                _: &crate::image::SystemContext,
            ) -> crate::image::Result<Box<dyn ImageSource>> {
                unimplemented!()
            }
            async fn new_image_destination(
                &self,
                _: &crate::image::SystemContext,
            ) -> crate::image::Result<Box<dyn crate::image::ImageDestination>> {
                unimplemented!()
            }
        }

        /// Serves one blob, in 1 MiB chunks.
        pub struct One(Bytes, Ref);
        impl One {
            pub fn new(b: Vec<u8>) -> Self {
                One(b.into(), Ref)
            }
        }
        #[async_trait]
        impl ImageSource for One {
            fn reference(&self) -> &dyn ImageReference {
                &self.1
            }
            async fn get_manifest(&self, _: Option<&Digest>) -> Result<Manifest, Error> {
                unimplemented!()
            }
            async fn get_blob(&self, _: &BlobInfo) -> Result<Blob, Error> {
                let b = self.0.clone();
                let chunks: Vec<_> = (0..b.len())
                    .step_by(1 << 20)
                    .map(|i| Ok(b.slice(i..(i + (1 << 20)).min(b.len()))))
                    .collect();
                Ok(Blob {
                    stream: futures::stream::iter(chunks).boxed(),
                    size: Some(b.len() as u64),
                })
            }
        }
    }
}
