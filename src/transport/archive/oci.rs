//! Transport `oci-archive:` — a tar of an OCI image layout, as
//! containers/image's `oci/archive`. Syntax `oci-archive:PATH[:REF]`, split
//! like `oci:` (first colon; REF is the `org.opencontainers.image.ref.name`).
//!
//! Reading indexes the tar once and reads `index.json`, manifests and blobs
//! straight out of it ([`OciSource`] over a [`TarIndex`]); nothing is
//! extracted. Writing stages an OCI layout in a directory beside PATH
//! ([`OciDestination`] on it) and, at commit, tars it to a temporary file
//! that is renamed onto PATH: a failed copy leaves no archive at PATH (or the
//! previous one). As in containers/image, writing replaces the whole archive:
//! other images of an existing archive at PATH are not kept.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use super::tar_index::TarIndex;
use super::tar_write::{self, Content};
use crate::digest::Digest;
use crate::image::{
    Blob, BlobInfo, Error, ImageDestination, ImageReference, ImageSource, Manifest, Result,
    ReuseHint, Reused, SystemContext,
};
use crate::reference::Reference;
use crate::transport::local::{self, StagingDir};
use crate::transport::oci::layout::LayoutFiles;
use crate::transport::oci::{self, OciDestination, OciSource, layout};

/// The transport's name.
pub const NAME: &str = "oci-archive";

/// The `oci-archive:` transport.
#[derive(Debug, Clone, Copy, Default)]
pub struct OciArchiveTransport;

impl OciArchiveTransport {
    pub fn name(&self) -> &'static str {
        NAME
    }
    pub fn parse_reference(&self, within: &str) -> Result<Box<dyn ImageReference>> {
        parse_reference(within)
    }
}

/// Parse `PATH[:REF]`.
pub fn parse_reference(within: &str) -> Result<Box<dyn ImageReference>> {
    Ok(Box::new(OciArchiveReference::parse(within)?))
}

/// An image in an OCI archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciArchiveReference {
    path: String,
    resolved: PathBuf,
    image: Option<String>,
}

impl OciArchiveReference {
    pub fn parse(within: &str) -> Result<Self> {
        let (path, image) = oci::split_path_and_ref(NAME, within)?;
        Ok(OciArchiveReference {
            resolved: local::absolute(&path)?,
            path,
            image,
        })
    }

    /// The archive (absolute).
    pub fn path(&self) -> &std::path::Path {
        &self.resolved
    }
}

impl fmt::Display for OciArchiveReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        oci::fmt_path_and_ref(f, NAME, &self.path, self.image.as_deref())
    }
}

#[async_trait]
impl ImageReference for OciArchiveReference {
    fn transport(&self) -> &'static str {
        NAME
    }

    /// Every write to an OCI archive rewrites its one index: one at a time, by path.
    fn write_lock(&self) -> Option<String> {
        Some(self.resolved.display().to_string())
    }

    fn docker_reference(&self) -> Option<Reference> {
        None
    }

    fn with_tag(&self, tag: &str) -> Result<Box<dyn ImageReference>> {
        oci::validate_ref_name(tag).map_err(|reason| Error::InvalidName {
            input: format!("{NAME}:{}:{tag}", self.path),
            reason,
        })?;
        Ok(Box::new(OciArchiveReference {
            image: Some(tag.to_string()),
            ..self.clone()
        }))
    }

    async fn new_image_source(&self, _ctx: &SystemContext) -> Result<Box<dyn ImageSource>> {
        let files = Arc::new(TarIndex::open(&self.resolved).await?);
        Ok(Box::new(
            OciSource::open(files, Box::new(self.clone()), self.image.clone()).await?,
        ))
    }

    async fn new_image_destination(
        &self,
        _ctx: &SystemContext,
    ) -> Result<Box<dyn ImageDestination>> {
        if self.resolved.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: is a directory, not an archive (use oci:{} for a layout directory)",
                self.path, self.path
            )));
        }
        let staging = StagingDir::beside(&self.resolved)?;
        let inner = OciDestination::open(
            staging.path().to_path_buf(),
            self.to_string(),
            self.image.clone(),
        )
        .await?;
        Ok(Box::new(OciArchiveDestination {
            target: self.resolved.clone(),
            image: self.image.clone(),
            inner,
            staging,
        }))
    }

    /// The ref names in the archive's `index.json`.
    async fn list_tags(&self, _ctx: &SystemContext) -> Result<Vec<String>> {
        let files = TarIndex::open(&self.resolved).await?;
        Ok(layout::ref_names(&layout::read_index(&files).await?))
    }
}

/// The write side of `oci-archive:`: an [`OciDestination`] on a staging
/// directory, tarred onto the target at commit.
pub struct OciArchiveDestination {
    target: PathBuf,
    image: Option<String>,
    inner: OciDestination,
    /// Removed (with everything staged) when the destination is dropped.
    staging: StagingDir,
}

#[async_trait]
impl ImageDestination for OciArchiveDestination {
    fn reference(&self) -> String {
        self.inner.reference()
    }

    fn supported_manifest_types(&self) -> &'static [&'static str] {
        self.inner.supported_manifest_types()
    }

    /// The digest under this ref name in the archive already at PATH, if any.
    async fn existing_manifest_digest(&self) -> Result<Option<Digest>> {
        let Some(name) = &self.image else {
            return Ok(None);
        };
        if !self.target.is_file() {
            return Ok(None);
        }
        let Ok(files) = TarIndex::open(&self.target).await else {
            return Ok(None);
        };
        let Ok(index) = layout::read_index(&files).await else {
            return Ok(None);
        };
        let found = layout::find_descriptor(&index, Some(name), &files.location()).ok();
        Ok(found
            .filter(|d| files.contains(&layout::blob_path(d.digest())))
            .map(|d| d.digest().clone()))
    }

    async fn try_reusing_blob(&self, info: &BlobInfo, hint: &ReuseHint) -> Result<Option<Reused>> {
        self.inner.try_reusing_blob(info, hint).await
    }

    async fn put_blob(&self, info: &BlobInfo, blob: Blob) -> Result<()> {
        self.inner.put_blob(info, blob).await
    }

    async fn put_manifest(&self, manifest: &Manifest, instance: Option<&Digest>) -> Result<()> {
        self.inner.put_manifest(manifest, instance).await
    }

    async fn commit(&self) -> Result<()> {
        self.inner.commit().await?;
        let root = self.staging.path();
        let mut entries = vec![
            (
                "oci-layout".to_string(),
                Content::File(root.join("oci-layout")),
            ),
            (
                "index.json".to_string(),
                Content::File(root.join("index.json")),
            ),
            ("blobs".to_string(), Content::Dir),
        ];
        let blobs = root.join("blobs");
        let mut algs = read_names(&blobs).await?;
        algs.sort();
        for alg in algs {
            entries.push((format!("blobs/{alg}"), Content::Dir));
            let mut files = read_names(&blobs.join(&alg)).await?;
            files.sort();
            for f in files {
                let p = blobs.join(&alg).join(&f);
                entries.push((format!("blobs/{alg}/{f}"), Content::File(p)));
            }
        }
        tar_write::write_atomic(&self.target, entries).await
    }
}

/// The names in a directory (not starting with `.`: temporary files).
async fn read_names(dir: &std::path::Path) -> Result<Vec<String>> {
    let show = local::show(dir);
    let mut out = Vec::new();
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(show, "list directory", e)),
    };
    while let Some(e) = rd
        .next_entry()
        .await
        .map_err(|e| Error::io(&show, "list directory", e))?
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if !n.starts_with('.') {
            out.push(n);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_oci() {
        let r = OciArchiveReference::parse("/tmp/a.tar:repo:v1").unwrap();
        assert_eq!(r.path(), std::path::Path::new("/tmp/a.tar"));
        assert_eq!(r.to_string(), "oci-archive:/tmp/a.tar:repo:v1");
        assert_eq!(
            r.with_tag("v2").unwrap().to_string(),
            "oci-archive:/tmp/a.tar:v2"
        );
        assert!(OciArchiveReference::parse(":x").is_err());
    }
}
