//! [`OciDestination`]: writes one image (or index) into an OCI layout.
//!
//! Blobs and manifests go to `blobs/<alg>/<hex>` as they arrive (each through
//! a temporary file in the layout root, renamed only when verified); they are
//! invisible to readers until [`ImageDestination::commit`] writes `oci-layout`
//! and replaces `index.json` atomically with the new entry added. A failed
//! copy therefore leaves at most unreferenced blobs, never an index entry.
//! `index.json` is re-read at commit, so entries other writers committed in
//! the meantime are kept (two writers committing at the same instant can
//! still lose one update; containers/image has the same limit).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::StreamExt;
use oci_spec::image::{Descriptor, DescriptorBuilder, MediaType};

use super::layout::{self, DirFiles};
use crate::digest::Digest;
use crate::image::{Blob, BlobInfo, Error, ImageDestination, Manifest, Result, ReuseHint, Reused};
use crate::manifest;
use crate::transport::local;

/// The write side of `oci:`.
pub struct OciDestination {
    root: PathBuf,
    /// The reference, for messages.
    name: String,
    /// The ref name the top-level manifest is written under.
    image: Option<String>,
    /// The top-level manifest's index entry, once written.
    top: Mutex<Option<Descriptor>>,
    /// Blobs and manifests go to `SHARED/<alg>/<hex>` (skopeo's `--dest-shared-blob-dir`).
    shared_blobs: Option<PathBuf>,
}

impl OciDestination {
    /// Create the layout directory if needed and check an existing `index.json`.
    pub async fn open(root: PathBuf, name: String, image: Option<String>) -> Result<Self> {
        match tokio::fs::metadata(&root).await {
            Ok(m) if !m.is_dir() => {
                return Err(Error::Invalid(format!(
                    "{}: exists and is not a directory",
                    local::show(&root)
                )));
            }
            Ok(_) => {
                if tokio::fs::try_exists(root.join("index.json"))
                    .await
                    .unwrap_or(false)
                {
                    layout::read_index(&DirFiles::new(root.clone())).await?;
                }
            }
            Err(_) => tokio::fs::create_dir_all(&root)
                .await
                .map_err(|e| Error::io(local::show(&root), "create layout directory", e))?,
        }
        Ok(OciDestination {
            root,
            name,
            image,
            top: Mutex::new(None),
            shared_blobs: None,
        })
    }

    /// Write blobs and manifests to `shared` (created if needed) instead of
    /// the layout's `blobs/`, as skopeo's `--dest-shared-blob-dir` does.
    pub async fn with_shared_blobs(mut self, shared: PathBuf) -> Result<Self> {
        tokio::fs::create_dir_all(&shared)
            .await
            .map_err(|e| Error::io(local::show(&shared), "create shared blob directory", e))?;
        self.shared_blobs = Some(shared);
        Ok(self)
    }

    fn files(&self) -> DirFiles {
        DirFiles::with_shared_blobs(self.root.clone(), self.shared_blobs.clone())
    }

    fn blob_file(&self, d: &Digest) -> PathBuf {
        self.files().file(&layout::blob_path(d))
    }

    /// Where temporary files are made: beside the blobs (same file system).
    fn temp_dir(&self) -> &std::path::Path {
        self.shared_blobs.as_deref().unwrap_or(&self.root)
    }

    /// The layout directory.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }
}

#[async_trait]
impl ImageDestination for OciDestination {
    fn reference(&self) -> String {
        self.name.clone()
    }

    /// OCI types only, as containers/image: skopeo 1.9 ignores `index.json`
    /// entries of Docker types, so the copy engine converts Docker schema 2
    /// manifests and lists to OCI on the way in (new digests; signatures
    /// cannot follow a conversion).
    fn supported_manifest_types(&self) -> &'static [&'static str] {
        &[manifest::OCI_MANIFEST, manifest::OCI_INDEX]
    }

    /// The digest of the entry named like this destination's ref, when
    /// `index.json` has one and its manifest blob is present (`None` without
    /// a ref name: an unnamed entry is always added).
    async fn existing_manifest_digest(&self) -> Result<Option<Digest>> {
        let Some(name) = &self.image else {
            return Ok(None);
        };
        let files = self.files();
        let index = match layout::read_index(&files).await {
            Ok(i) => i,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Ok(d) = layout::find_descriptor(&index, Some(name), &self.name) else {
            return Ok(None);
        };
        let present = local::file_present(&self.blob_file(d.digest()), Some(d.size())).await;
        Ok(present.then(|| d.digest().clone()))
    }

    async fn try_reusing_blob(&self, info: &BlobInfo, _hint: &ReuseHint) -> Result<Option<Reused>> {
        let present = local::file_present(&self.blob_file(&info.digest), info.size).await;
        Ok(present.then_some(Reused::Present))
    }

    async fn put_blob(&self, info: &BlobInfo, blob: Blob) -> Result<()> {
        local::write_blob_verified(self.temp_dir(), &self.blob_file(&info.digest), info, blob)
            .await?;
        Ok(())
    }

    async fn put_manifest(&self, manifest: &Manifest, instance: Option<&Digest>) -> Result<()> {
        let digest = manifest.digest();
        if let Some(want) = instance.filter(|w| **w != digest) {
            return Err(Error::Invalid(format!(
                "{}: manifest for instance {want} has digest {digest}",
                self.name
            )));
        }
        // Like any blob: through a temporary file in the layout root.
        let size = manifest.bytes.len() as u64;
        let blob = Blob {
            stream: futures::stream::iter([Ok(manifest.bytes.clone())]).boxed(),
            size: Some(size),
        };
        let info = BlobInfo::new(digest.clone(), Some(size));
        local::write_blob_verified(self.temp_dir(), &self.blob_file(&digest), &info, blob).await?;
        if instance.is_none() {
            let mut b = DescriptorBuilder::default()
                .media_type(MediaType::from(manifest.media_type.as_str()))
                .digest(digest)
                .size(manifest.bytes.len() as u64);
            if let Some(name) = &self.image {
                b = b.annotations(HashMap::from([(
                    layout::REF_NAME.to_string(),
                    name.clone(),
                )]));
            }
            let d = b
                .build()
                .map_err(|e| Error::Invalid(format!("{}: {e}", self.name)))?;
            *self.top.lock().expect("not poisoned") = Some(d);
        }
        Ok(())
    }

    async fn commit(&self) -> Result<()> {
        let entry = self
            .top
            .lock()
            .expect("not poisoned")
            .clone()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: commit before the top-level manifest was written",
                    self.name
                ))
            })?;
        // A layout has a `blobs` directory, empty when the blobs are shared
        // (as containers/image leaves it).
        tokio::fs::create_dir_all(self.root.join("blobs"))
            .await
            .map_err(|e| Error::io(local::show(&self.root), "create blobs directory", e))?;
        let layout_file = self.root.join("oci-layout");
        if tokio::fs::read(&layout_file).await.ok().as_deref()
            != Some(layout::OCI_LAYOUT.as_bytes())
        {
            local::write_atomic(&layout_file, layout::OCI_LAYOUT.as_bytes()).await?;
        }
        let index_file = self.root.join("index.json");
        let existing = match tokio::fs::try_exists(&index_file).await {
            Ok(true) => {
                Some(local::read_bounded(&index_file, "index.json", layout::MAX_INDEX_SIZE).await?)
            }
            _ => None,
        };
        let bytes = layout::updated_index(existing.as_deref(), &entry, &local::show(&self.root))?;
        local::write_atomic(&index_file, &bytes).await
    }
}
