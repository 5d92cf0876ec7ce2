//! [`DockerArchiveDestination`]: writes one image as a `docker save`-format
//! archive.
//!
//! A tar is written sequentially, so blobs are staged (verified) in a
//! directory beside PATH as they arrive, and [`ImageDestination::commit`]
//! writes the archive to a temporary file that is renamed onto PATH. A failed
//! or abandoned copy leaves no file at PATH; the staging directory is removed
//! when the destination is dropped.
//!
//! Layout written: `<hex>.json` (the config), `<hex>.tar` per layer (named by
//! the digest of its bytes, stored as received — compressed layers stay
//! compressed), then `manifest.json` with `RepoTags` = the NAME:TAG of the
//! reference, normalised (`docker.io/library/app:v1`), then the additional
//! tags (`--additional-tag`), or `[]`.
//!
//! As skopeo does, an existing non-empty file at PATH is refused ("docker-
//! archive doesn't support modifying existing images"). Deliberate
//! differences from skopeo 1.9, which decompresses layers and also writes the
//! legacy `<id>/{layer.tar,json,VERSION}` entries and `repositories`: we keep
//! layers as they are (no CPU spent decompressing; `docker load` and skopeo
//! accept compressed layers) and write only what `docker load` reads.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;

use super::ManifestItem;
use crate::digest::Digest;
use crate::image::{Blob, BlobInfo, Error, ImageDestination, Manifest, Result, ReuseHint, Reused};
use crate::manifest::{self, DOCKER_V2S2};
use crate::reference::Reference;
use crate::transport::archive::tar_write::{self, Content};
use crate::transport::local::{self, StagingDir};

/// The write side of `docker-archive:`.
pub struct DockerArchiveDestination {
    target: PathBuf,
    name: String,
    /// `RepoTags`, in order.
    tags: Vec<Reference>,
    staging: StagingDir,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Staged blobs: digest → size.
    blobs: HashMap<Digest, u64>,
    manifest: Option<Manifest>,
}

impl DockerArchiveDestination {
    /// Check PATH and create the staging directory beside it.
    pub fn open(target: PathBuf, name: String, tags: Vec<Reference>) -> Result<Self> {
        if let Ok(m) = std::fs::metadata(&target) {
            if m.is_dir() {
                return Err(Error::Invalid(format!(
                    "{}: is a directory, not an archive",
                    local::show(&target)
                )));
            }
            if m.is_file() && m.len() > 0 {
                return Err(Error::Invalid(format!(
                    "{}: docker-archive doesn't support modifying existing images (the file exists)",
                    local::show(&target)
                )));
            }
        }
        let staging = StagingDir::beside(&target)?;
        Ok(DockerArchiveDestination {
            target,
            name,
            tags,
            staging,
            state: Mutex::new(State::default()),
        })
    }

    fn staged(&self, d: &Digest) -> PathBuf {
        self.staging.path().join(d.digest())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }
}

#[async_trait]
impl ImageDestination for DockerArchiveDestination {
    fn reference(&self) -> String {
        self.name.clone()
    }

    fn supported_manifest_types(&self) -> &'static [&'static str] {
        &[DOCKER_V2S2]
    }

    fn supports_index(&self) -> bool {
        false
    }

    /// Present only when this destination already staged it.
    async fn try_reusing_blob(&self, info: &BlobInfo, _hint: &ReuseHint) -> Result<Option<Reused>> {
        let st = self.state();
        let present = st
            .blobs
            .get(&info.digest)
            .is_some_and(|s| info.size.is_none_or(|w| w == *s));
        Ok(present.then_some(Reused::Present))
    }

    async fn put_blob(&self, info: &BlobInfo, blob: Blob) -> Result<()> {
        let dest = self.staged(&info.digest);
        let n = local::write_blob_verified(self.staging.path(), &dest, info, blob).await?;
        self.state().blobs.insert(info.digest.clone(), n);
        Ok(())
    }

    /// Accepts a Docker schema 2 manifest (an OCI image manifest is taken
    /// too: only its config and layer digests are used). Refuses indexes.
    async fn put_manifest(&self, m: &Manifest, instance: Option<&Digest>) -> Result<()> {
        if instance.is_some() || m.is_index() {
            return Err(Error::Unsupported(format!(
                "{}: a docker archive holds a single image, not an index; copy one platform",
                self.name
            )));
        }
        if !manifest::is_image_type(&m.media_type) {
            return Err(Error::manifest(
                &self.name,
                crate::manifest::ManifestError::UnsupportedType(m.media_type.clone()),
            ));
        }
        self.state().manifest = Some(m.clone());
        Ok(())
    }

    async fn commit(&self) -> Result<()> {
        let (m, staged) = {
            let st = self.state();
            let m = st.manifest.clone().ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: commit before the manifest was written",
                    self.name
                ))
            })?;
            (m, st.blobs.clone())
        };
        let img = m.image().map_err(|e| Error::manifest(&self.name, e))?;
        let missing = |d: &Digest| {
            Error::Invalid(format!(
                "{}: commit without blob {d} (it was never written)",
                self.name
            ))
        };
        let config = img.config().digest();
        if !staged.contains_key(config) {
            return Err(missing(config));
        }
        let config_name = format!("{}.json", config.digest());
        let mut entries = vec![(config_name.clone(), Content::File(self.staged(config)))];
        let mut written = BTreeSet::new();
        let mut layer_names = Vec::new();
        for l in img.layers() {
            let d = l.digest();
            if !staged.contains_key(d) {
                return Err(missing(d));
            }
            let file = format!("{}.tar", d.digest());
            if written.insert(file.clone()) {
                entries.push((file.clone(), Content::File(self.staged(d))));
            }
            layer_names.push(file);
        }
        let items = vec![ManifestItem {
            config: config_name,
            repo_tags: self.tags.iter().map(|t| t.to_string()).collect(),
            layers: layer_names,
        }];
        let json = serde_json::to_vec(&items).expect("manifest.json serialises");
        entries.push(("manifest.json".into(), Content::Bytes(json)));
        tar_write::write_atomic(&self.target, entries).await
    }
}
