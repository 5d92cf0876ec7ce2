//! [`TarIndex`]: random access to the files of a tar archive on disk. The
//! archive is scanned once (headers only: data is skipped by seeking) to
//! record where each regular file's bytes start and how long they are;
//! afterwards a file is read by seeking to its offset, so layers stream out
//! of the archive without being extracted or loaded into memory. Symbolic
//! and hard links are followed (`docker save` and skopeo link legacy
//! `<id>/layer.tar` names to the real layer files).
//!
//! A header that cannot be read, or an entry whose data runs past the end
//! of the file, is reported as a truncated or corrupt archive naming the path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::image::{Blob, Error, Result};
use crate::transport::local;
use crate::transport::oci::layout::LayoutFiles;

/// How many links are followed before giving up (a loop).
const MAX_LINK_HOPS: usize = 16;

#[derive(Debug, Clone)]
enum Entry {
    File {
        offset: u64,
        size: u64,
    },
    /// A link, its target already made relative to the archive root.
    Link(String),
    Dir,
}

/// The files of one tar archive, by normalised name.
#[derive(Debug)]
pub struct TarIndex {
    /// The archive as named (messages, [`TarIndex::path`]).
    path: PathBuf,
    /// The tar read: `path`, or its decompressed copy.
    data: PathBuf,
    /// The decompressed copy, removed with the index.
    _decompressed: Option<tempfile::TempPath>,
    entries: HashMap<String, Entry>,
}

/// `path.Clean` for archive names: no `.`, no empty components, `..`
/// resolved, no leading or trailing `/`.
pub fn clean(name: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

impl TarIndex {
    /// Scan the archive at `path`, which may be compressed with gzip, xz or
    /// zstd: then it is first decompressed, streaming, into a temporary file
    /// (see [`super::decompress`]) that lives as long as the index.
    pub async fn open_decompressing(path: &Path) -> Result<Self> {
        let Some(temp) = super::decompress::decompressed_copy(path).await? else {
            return Self::open(path).await;
        };
        let mut index = Self::open(&temp).await.map_err(|e| match e {
            Error::Corrupt { message, .. } => Error::Corrupt {
                location: local::show(path),
                message: format!("{message} (after decompressing)"),
            },
            other => other,
        })?;
        index.data = temp.to_path_buf();
        index.path = path.to_path_buf();
        index._decompressed = Some(temp);
        Ok(index)
    }

    /// Scan the archive at `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        let p = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::scan(p))
            .await
            .map_err(|e| Error::Invalid(format!("{}: archive scan failed: {e}", path.display())))?
    }

    fn scan(path: PathBuf) -> Result<Self> {
        let show = local::show(&path);
        let file =
            std::fs::File::open(&path).map_err(|e| local::io_err(&path, "open", "archive", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(&show, "stat", e))?
            .len();
        let corrupt = |message: String| Error::Corrupt {
            location: show.clone(),
            message,
        };
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        // The tar crate's messages quote header bytes (a file that is not an
        // archive, `/proc/self/environ` say, would have its first bytes in a
        // status): say where it broke instead, never what the bytes were.
        let iter = archive
            .entries_with_seek()
            .map_err(|e| corrupt(format!("not a readable tar archive ({:?})", e.kind())))?;
        for (n, entry) in iter.enumerate() {
            let entry = entry.map_err(|_| {
                corrupt(format!(
                    "truncated or corrupt tar archive: header of entry {} is invalid (not a tar file?)",
                    n + 1
                ))
            })?;
            let name = clean(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            let e = if kind.is_file() || kind == tar::EntryType::Continuous {
                let (offset, size) = (entry.raw_file_position(), entry.size());
                if offset + size > len {
                    let shown: String = name
                        .chars()
                        .take(100)
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .collect();
                    return Err(corrupt(format!(
                        "truncated archive: entry {shown} needs bytes up to {}, the file has {len}",
                        offset + size
                    )));
                }
                Entry::File { offset, size }
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let target = if kind.is_symlink() && !target.starts_with('/') {
                    let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    clean(&format!("{dir}/{target}"))
                } else {
                    clean(&target)
                };
                Entry::Link(target)
            } else if kind.is_dir() {
                Entry::Dir
            } else {
                continue;
            };
            entries.insert(name, e);
        }
        Ok(TarIndex {
            data: path.clone(),
            path,
            _decompressed: None,
            entries,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset and size of the regular file `name` (links followed).
    pub fn locate(&self, name: &str, what: &str) -> Result<(u64, u64)> {
        let mut n = clean(name);
        for _ in 0..MAX_LINK_HOPS {
            match self.entries.get(&n) {
                Some(Entry::File { offset, size }) => return Ok((*offset, *size)),
                Some(Entry::Link(t)) => n = t.clone(),
                Some(Entry::Dir) | None => break,
            }
        }
        Err(Error::not_found(
            local::show(&self.path),
            format!("{what} ({name} in the archive)"),
        ))
    }

    /// Whether the archive holds a regular file (or a link to one) called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.locate(name, "").is_ok()
    }

    async fn open_at(&self, offset: u64) -> Result<tokio::fs::File> {
        let show = local::show(&self.path);
        let mut f = tokio::fs::File::open(&self.data)
            .await
            .map_err(|e| local::io_err(&self.data, "open", "archive", e))?;
        f.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| Error::io(show, "seek", e))?;
        Ok(f)
    }

    /// The whole file `name`, if at most `limit` bytes.
    pub async fn read(&self, name: &str, what: &str, limit: u64) -> Result<Bytes> {
        let (offset, size) = self.locate(name, what)?;
        if size > limit {
            return Err(local::too_large(
                &self.path.join(clean(name)),
                what,
                size,
                limit,
            ));
        }
        let f = self.open_at(offset).await?;
        let mut buf = Vec::with_capacity(size as usize);
        f.take(size)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| Error::io(local::show(&self.path), "read", e))?;
        if (buf.len() as u64) < size {
            return Err(Error::Corrupt {
                location: local::show(&self.path),
                message: format!("truncated archive: {name} is shorter than its header says"),
            });
        }
        Ok(buf.into())
    }

    /// The first bytes (at most `n`) of `name`, to sniff compression.
    pub async fn head(&self, name: &str, n: usize) -> Result<Vec<u8>> {
        let (offset, size) = self.locate(name, "file")?;
        let f = self.open_at(offset).await?;
        let mut buf = Vec::with_capacity(n);
        f.take(size.min(n as u64))
            .read_to_end(&mut buf)
            .await
            .map_err(|e| Error::io(local::show(&self.path), "read", e))?;
        Ok(buf)
    }

    /// The file `name` as a stream, with its size.
    pub async fn stream(&self, name: &str, what: &str) -> Result<Blob> {
        let (offset, size) = self.locate(name, what)?;
        let f = self.open_at(offset).await?;
        let show = local::show(&self.path);
        let stream = ReaderStream::with_capacity(f.take(size), local::CHUNK)
            .map_err(move |e| Error::io(show.clone(), "read", e))
            .boxed();
        Ok(Blob {
            stream,
            size: Some(size),
        })
    }
}

/// An OCI layout inside an archive (`oci-archive:`).
#[async_trait]
impl LayoutFiles for TarIndex {
    fn location(&self) -> String {
        local::show(&self.path)
    }
    async fn read_bounded(&self, rel: &str, what: &str, limit: u64) -> Result<Bytes> {
        self.read(rel, what, limit).await
    }
    async fn open(&self, rel: &str, what: &str) -> Result<Blob> {
        self.stream(rel, what).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(path: &Path) {
        let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "./dir/a.tar", &b"hello"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "x/layer.tar", "../dir/a.tar")
            .unwrap();
        b.finish().unwrap();
    }

    #[tokio::test]
    async fn reads_files_and_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.tar");
        build(&p);
        let idx = TarIndex::open(&p).await.unwrap();
        assert_eq!(
            idx.read("dir/a.tar", "f", 100).await.unwrap().as_ref(),
            b"hello"
        );
        assert_eq!(
            idx.read("x/layer.tar", "f", 100).await.unwrap().as_ref(),
            b"hello"
        );
        assert_eq!(idx.head("dir/a.tar", 2).await.unwrap(), b"he");
        let blob = idx.stream("./x/layer.tar", "f").await.unwrap();
        assert_eq!(blob.size, Some(5));
        let e = idx.read("missing", "manifest.json", 100).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("manifest.json (missing in the archive) not found"),
            "{e}"
        );
        assert!(idx.read("dir/a.tar", "f", 2).await.is_err());
    }

    #[tokio::test]
    async fn truncated_archive_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.tar");
        build(&p);
        let data = std::fs::read(&p).unwrap();
        std::fs::write(&p, &data[..515]).unwrap();
        let e = TarIndex::open(&p).await.unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(e.to_string().starts_with(&p.display().to_string()), "{e}");
    }

    #[test]
    fn cleans_names() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("/abs"), "abs");
    }
}
