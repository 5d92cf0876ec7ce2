//! [`DirDestination`]: writes a `dir:` directory.
//!
//! Opening refuses a non-empty directory that the `dir:` transport did not
//! write (no `version` file with the expected contents), as containers/image
//! does. Unlike containers/image, which empties the directory when it is
//! opened, the previous image stays intact until [`ImageDestination::commit`]:
//! new blobs are added beside the old ones (verified, each renamed into place
//! when complete), and the old blob files are available to
//! [`ImageDestination::try_reusing_blob`]. Manifests and signatures are kept
//! in memory (each at most 4 MiB) until commit, which removes the old
//! `manifest.json` first (the directory stops looking complete), then the
//! old instance manifests and signatures, writes the new ones, writes
//! `manifest.json` last (atomically), and finally deletes the blob files
//! the new manifests do not reference. An interrupted copy thus leaves
//! either the old image or a directory without `manifest.json`, never a mix
//! that looks complete.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{VERSION, files, sigfile};
use crate::digest::Digest;
use crate::image::{
    Blob, BlobInfo, Error, ImageDestination, Manifest, Result, ReuseHint, Reused, Signature,
};
use crate::manifest;
use crate::transport::local;

/// The write side of `dir:`.
pub struct DirDestination {
    root: PathBuf,
    name: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Files (blobs) written or reused by this destination.
    keep: HashSet<String>,
    top: Option<Manifest>,
    instances: BTreeMap<String, Manifest>,
    signatures: BTreeMap<String, (Digest, Vec<Signature>)>,
}

/// Whether a file name is a manifest or signature file (removed when a new
/// image is written into the directory).
fn is_metadata_file(name: &str) -> bool {
    name == files::MANIFEST
        || name.ends_with(".manifest.json")
        || name.starts_with("signature-")
        || name.contains(".signature-")
}

impl DirDestination {
    /// Open (creating if needed) the directory for writing.
    pub async fn open(root: PathBuf, name: String) -> Result<Self> {
        let show = local::show(&root);
        match tokio::fs::metadata(&root).await {
            Ok(m) if !m.is_dir() => {
                return Err(Error::Invalid(format!(
                    "{show}: exists and is not a directory"
                )));
            }
            Ok(_) => {}
            Err(_) => tokio::fs::create_dir_all(&root)
                .await
                .map_err(|e| Error::io(&show, "create directory", e))?,
        }
        let empty = tokio::fs::read_dir(&root)
            .await
            .map_err(|e| Error::io(&show, "list directory", e))?
            .next_entry()
            .await
            .map_err(|e| Error::io(&show, "list directory", e))?
            .is_none();
        if !empty {
            let version = tokio::fs::read(root.join(files::VERSION_FILE)).await.ok();
            if version.as_deref() != Some(VERSION.as_bytes()) {
                return Err(Error::Invalid(format!(
                    "{show}: directory is not empty and was not written by the dir: transport (no matching `version` file); refusing to overwrite it"
                )));
            }
            return Ok(Self::new(root, name));
        }
        local::write_atomic(&root.join(files::VERSION_FILE), VERSION.as_bytes()).await?;
        Ok(Self::new(root, name))
    }

    fn new(root: PathBuf, name: String) -> Self {
        DirDestination {
            root,
            name,
            state: Mutex::new(State::default()),
        }
    }

    /// The file names in the directory.
    async fn list(&self) -> Result<Vec<String>> {
        let show = local::show(&self.root);
        let mut names = Vec::new();
        let mut rd = tokio::fs::read_dir(&self.root)
            .await
            .map_err(|e| Error::io(&show, "list directory", e))?;
        while let Some(e) = rd
            .next_entry()
            .await
            .map_err(|e| Error::io(&show, "list directory", e))?
        {
            if e.file_type().await.is_ok_and(|t| t.is_file()) {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    async fn remove(&self, file: &str) -> Result<()> {
        let p = self.root.join(file);
        match tokio::fs::remove_file(&p).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(local::show(&p), "remove", e)),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }

    /// Delete blob files of a previous image that this one does not use.
    async fn remove_stale(&self, written: &HashSet<String>) -> Result<()> {
        let keep = self.state().keep.clone();
        for n in self.list().await? {
            if n != files::VERSION_FILE
                && !n.starts_with('.')
                && !keep.contains(&n)
                && !written.contains(&n)
            {
                self.remove(&n).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ImageDestination for DirDestination {
    fn reference(&self) -> String {
        self.name.clone()
    }

    fn supports_signatures(&self) -> bool {
        true
    }

    /// The digest of the `manifest.json` already there, if any.
    async fn existing_manifest_digest(&self) -> Result<Option<Digest>> {
        let path = self.root.join(files::MANIFEST);
        match local::read_manifest_file(&path, "manifest.json").await {
            Ok(b) => Ok(Some(crate::digest::sha256(&b))),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn try_reusing_blob(&self, info: &BlobInfo, _hint: &ReuseHint) -> Result<Option<Reused>> {
        let file = files::blob(&info.digest);
        if local::file_present(&self.root.join(&file), info.size).await {
            self.state().keep.insert(file);
            Ok(Some(Reused::Present))
        } else {
            Ok(None)
        }
    }

    async fn put_blob(&self, info: &BlobInfo, blob: Blob) -> Result<()> {
        let file = files::blob(&info.digest);
        local::write_blob_verified(&self.root, &self.root.join(&file), info, blob).await?;
        self.state().keep.insert(file);
        Ok(())
    }

    async fn put_manifest(&self, manifest: &Manifest, instance: Option<&Digest>) -> Result<()> {
        let mut st = self.state();
        match instance {
            None => st.top = Some(manifest.clone()),
            Some(d) => {
                if manifest.digest() != *d {
                    return Err(Error::Invalid(format!(
                        "{}: manifest for instance {d} has digest {}",
                        self.name,
                        manifest.digest()
                    )));
                }
                st.instances
                    .insert(files::manifest(Some(d)), manifest.clone());
            }
        }
        Ok(())
    }

    async fn put_signatures(&self, signatures: &[Signature], instance: &Digest) -> Result<()> {
        self.state().signatures.insert(
            instance.to_string(),
            (instance.clone(), signatures.to_vec()),
        );
        Ok(())
    }

    async fn commit(&self) -> Result<()> {
        let (top, instances, signatures) = {
            let st = self.state();
            let top = st.top.clone().ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: commit before the top-level manifest was written",
                    self.name
                ))
            })?;
            (top, st.instances.clone(), st.signatures.clone())
        };
        let top_digest = top.digest();
        // The old image stops looking complete before anything of it changes.
        self.remove(files::MANIFEST).await?;
        for n in self.list().await?.iter().filter(|n| is_metadata_file(n)) {
            self.remove(n).await?;
        }
        let mut written = HashSet::new();
        for (file, m) in &instances {
            local::write_atomic(&self.root.join(file), &m.bytes).await?;
            written.insert(file.clone());
        }
        for (digest, sigs) in signatures.values() {
            let instance = (*digest != top_digest).then_some(digest);
            for (i, sig) in sigs.iter().enumerate() {
                let file = files::signature(instance, i + 1);
                local::write_atomic(&self.root.join(&file), &sigfile::encode(sig)).await?;
                written.insert(file);
            }
        }
        local::write_atomic(&self.root.join(files::MANIFEST), &top.bytes).await?;
        written.insert(files::MANIFEST.to_string());
        // Blobs the manifests reference stay, whether or not this session
        // announced them.
        for m in instances.values().chain([&top]) {
            if let Ok(img) = m.image() {
                written.extend(
                    manifest::blobs(&img)
                        .iter()
                        .map(|d| files::blob(d.digest())),
                );
            }
        }
        self.remove_stale(&written).await
    }
}
