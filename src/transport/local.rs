//! File-system plumbing shared by the local transports (`oci:`, `dir:`,
//! `docker-archive:`, `oci-archive:`): reading bounded manifest files and
//! streaming blob files, writing a blob through a [`VerifyingStream`] into a
//! temporary file that is renamed into place only when digest and size match,
//! atomic small-file writes (temp + rename), and a self-removing staging
//! directory.
//!
//! Every error names the path it concerns.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::digest::{self, Digest, VerifyingStream};
use crate::image::{Blob, BlobInfo, Error, Result};
use crate::manifest::{MAX_MANIFEST_SIZE, ManifestError};

/// Chunk size for streaming files.
pub(crate) const CHUNK: usize = 64 * 1024;

/// A path as messages show it.
pub(crate) fn show(path: &Path) -> String {
    path.display().to_string()
}

/// `path` made absolute against the current directory (not canonicalised:
/// the path may not exist yet, and symlinks are followed when used).
pub(crate) fn absolute(path: &str) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, "resolve path", e))
}

/// Map an I/O error on `path`, turning "not found" into [`Error::NotFound`]
/// that says what was looked for.
pub(crate) fn io_err(path: &Path, op: &str, what: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::not_found(show(path), what)
    } else {
        Error::io(show(path), op, e)
    }
}

/// Read a whole file of at most `limit` bytes (manifests, configs, index.json).
pub(crate) async fn read_bounded(path: &Path, what: &str, limit: u64) -> Result<Bytes> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| io_err(path, "stat", what, e))?;
    if meta.len() > limit {
        return Err(too_large(path, what, meta.len(), limit));
    }
    let data = tokio::fs::read(path)
        .await
        .map_err(|e| io_err(path, "read", what, e))?;
    Ok(Bytes::from(data))
}

/// The error for a file over its size limit: manifests get the manifest
/// error, anything else a corruption message.
pub(crate) fn too_large(path: &Path, what: &str, len: u64, limit: u64) -> Error {
    if limit == MAX_MANIFEST_SIZE as u64 {
        Error::manifest(
            format!("{} ({what})", show(path)),
            ManifestError::TooLarge(len as usize),
        )
    } else {
        Error::Corrupt {
            location: show(path),
            message: format!("{what} is {len} bytes, over the {limit}-byte limit"),
        }
    }
}

/// Read a manifest file (at most [`MAX_MANIFEST_SIZE`] bytes).
pub(crate) async fn read_manifest_file(path: &Path, what: &str) -> Result<Bytes> {
    read_bounded(path, what, MAX_MANIFEST_SIZE as u64).await
}

/// Check bytes read from `location` against the digest they are stored under.
pub(crate) fn verify(location: &str, what: &str, expected: &Digest, data: &[u8]) -> Result<()> {
    digest::verify_bytes(expected, data).map_err(|source| Error::Digest {
        location: location.into(),
        what: what.into(),
        source,
    })
}

/// Stream a whole file as a blob (size from its metadata).
pub(crate) async fn open_blob(path: &Path, what: &str) -> Result<Blob> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_err(path, "open", what, e))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| io_err(path, "stat", what, e))?
        .len();
    let loc = show(path);
    let stream = ReaderStream::with_capacity(file, CHUNK)
        .map_err(move |e| Error::io(loc.clone(), "read", e))
        .boxed();
    Ok(Blob {
        stream,
        size: Some(size),
    })
}

/// A name for a temporary file or directory that no other writer picks.
pub(crate) fn temp_name(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Write `blob` to `dest`, verified against `info` (digest, and size when
/// known): the bytes go to a temporary file in `temp_dir` (same file system)
/// which is renamed to `dest` only after the stream ended cleanly with a
/// matching digest; on any failure the temporary file is removed and `dest`
/// is untouched. Returns the number of bytes written.
pub(crate) async fn write_blob_verified(
    temp_dir: &Path,
    dest: &Path,
    info: &BlobInfo,
    blob: Blob,
) -> Result<u64> {
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Error::io(show(parent), "create directory", e))?;
    }
    let tmp = temp_dir.join(temp_name(".put-blob"));
    let result = write_stream(&tmp, info, blob).await;
    match result {
        Ok(n) => match tokio::fs::rename(&tmp, dest).await {
            Ok(()) => Ok(n),
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(Error::io(show(dest), "rename blob into place", e))
            }
        },
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(match e {
                Error::Digest { what, source, .. } => Error::Digest {
                    location: show(dest),
                    what,
                    source,
                },
                other => other,
            })
        }
    }
}

async fn write_stream(tmp: &Path, info: &BlobInfo, blob: Blob) -> Result<u64> {
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(|e| Error::io(show(tmp), "create", e))?;
    let mut stream = VerifyingStream::new(blob.stream, info.digest.clone(), info.size);
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        n += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io(show(tmp), "write", e))?;
    }
    file.flush()
        .await
        .map_err(|e| Error::io(show(tmp), "write", e))?;
    file.sync_all()
        .await
        .map_err(|e| Error::io(show(tmp), "sync", e))?;
    Ok(n)
}

/// Replace `path` with `data` atomically (temporary file beside it, then rename).
pub(crate) async fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(temp_name(&format!(".{name}.tmp")));
    let write = async {
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(data).await?;
        f.sync_all().await?;
        tokio::fs::rename(&tmp, path).await
    };
    if let Err(e) = write.await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(Error::io(show(path), "write", e));
    }
    Ok(())
}

/// Whether a regular file exists at `path` (with `size` bytes, when given).
pub(crate) async fn file_present(path: &Path, size: Option<u64>) -> bool {
    match tokio::fs::metadata(path).await {
        Ok(m) => m.is_file() && size.is_none_or(|s| s == m.len()),
        Err(_) => false,
    }
}

/// A staging directory next to a target path (same file system, so the
/// finished artifact can be renamed into place), removed with everything in
/// it when dropped.
#[derive(Debug)]
pub(crate) struct StagingDir {
    path: PathBuf,
}

impl StagingDir {
    /// Create `.<target name>.tmp-<random>` in the target's directory.
    pub(crate) fn beside(target: &Path) -> Result<Self> {
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(Error::not_found(show(target), "parent directory"));
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "archive".into());
        let path = parent.join(temp_name(&format!(".{name}.tmp")));
        std::fs::create_dir(&path).map_err(|e| Error::io(show(&path), "create directory", e))?;
        Ok(StagingDir { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn blob_of(data: &'static [u8]) -> Blob {
        Blob {
            stream: stream::iter([Ok(Bytes::from_static(data))]).boxed(),
            size: Some(data.len() as u64),
        }
    }

    #[tokio::test]
    async fn verified_write_renames_only_good_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("blobs/x");
        let info = BlobInfo::new(digest::sha256(b"hello"), Some(5));
        let n = write_blob_verified(dir.path(), &dest, &info, blob_of(b"hello"))
            .await
            .unwrap();
        assert_eq!(n, 5);
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");

        let bad = dir.path().join("blobs/y");
        let e = write_blob_verified(dir.path(), &bad, &info, blob_of(b"hellO"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        assert!(e.to_string().contains("blobs/y"), "{e}");
        assert!(!bad.exists());
        // No temporary file left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[tokio::test]
    async fn bounded_read_refuses_large_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        std::fs::write(&p, vec![b' '; MAX_MANIFEST_SIZE + 1]).unwrap();
        let e = read_manifest_file(&p, "manifest").await.unwrap_err();
        assert!(e.to_string().contains("over the"), "{e}");
        assert!(e.to_string().contains("m.json"), "{e}");
        let e = read_manifest_file(&dir.path().join("nope"), "manifest")
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: manifest not found", dir.path().join("nope").display())
        );
    }

    #[test]
    fn staging_dir_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.tar");
        let s = StagingDir::beside(&target).unwrap();
        std::fs::write(s.path().join("f"), b"x").unwrap();
        let p = s.path().to_path_buf();
        drop(s);
        assert!(!p.exists());
    }
}
