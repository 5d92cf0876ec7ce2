//! Writing a tar archive atomically: the archive is written to a temporary
//! file beside the target and renamed onto it only when complete, so a
//! reader never sees a half-written archive at the target path and a failed
//! write leaves the previous file (or nothing) there. Entries are written
//! with owner root, mtime 0 and mode 0644 (0755 for directories), so the
//! same content gives the same archive.

use std::path::{Path, PathBuf};

use crate::image::{Error, Result};
use crate::transport::local;

/// What one entry of an archive holds.
#[derive(Debug, Clone)]
pub enum Content {
    /// The bytes of a file on disk.
    File(PathBuf),
    /// Bytes in memory (small metadata files).
    Bytes(Vec<u8>),
    /// A directory.
    Dir,
}

/// Write `entries` (archive name, content), in order, as the tar archive at
/// `target`.
pub async fn write_atomic(target: &Path, entries: Vec<(String, Content)>) -> Result<()> {
    let target = target.to_path_buf();
    let t = target.clone();
    tokio::task::spawn_blocking(move || write_blocking(&t, entries))
        .await
        .map_err(|e| Error::Invalid(format!("{}: archive writer failed: {e}", target.display())))?
}

fn write_blocking(target: &Path, entries: Vec<(String, Content)>) -> Result<()> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(local::temp_name(&format!(".{name}.tmp")));
    let result = write_to(&tmp, entries).and_then(|()| {
        std::fs::rename(&tmp, target)
            .map_err(|e| Error::io(local::show(target), "rename archive into place", e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_to(tmp: &Path, entries: Vec<(String, Content)>) -> Result<()> {
    let show = local::show(tmp);
    let io = |op: &str, e: std::io::Error| Error::io(&show, op, e);
    let file = std::fs::File::create(tmp).map_err(|e| io("create", e))?;
    let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
    for (name, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match content {
            Content::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, format!("{name}/"), std::io::empty())
                    .map_err(|e| io("write", e))?;
            }
            Content::Bytes(data) => {
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, &name, data.as_slice())
                    .map_err(|e| io("write", e))?;
            }
            Content::File(path) => {
                let f = std::fs::File::open(&path)
                    .map_err(|e| Error::io(local::show(&path), "open", e))?;
                let len = f
                    .metadata()
                    .map_err(|e| Error::io(local::show(&path), "stat", e))?
                    .len();
                h.set_mode(0o644);
                h.set_size(len);
                b.append_data(&mut h, &name, f)
                    .map_err(|e| io("write", e))?;
            }
        }
    }
    let w = b.into_inner().map_err(|e| io("write", e))?;
    let f = w.into_inner().map_err(|e| io("write", e.into_error()))?;
    f.sync_all().map_err(|e| io("sync", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::archive::tar_index::TarIndex;

    #[tokio::test]
    async fn writes_a_readable_archive_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("blob");
        std::fs::write(&src, b"layer").unwrap();
        let target = dir.path().join("out.tar");
        write_atomic(
            &target,
            vec![
                ("blobs".into(), Content::Dir),
                ("blobs/x".into(), Content::File(src)),
                ("index.json".into(), Content::Bytes(b"{}".to_vec())),
            ],
        )
        .await
        .unwrap();
        let idx = TarIndex::open(&target).await.unwrap();
        assert_eq!(
            idx.read("blobs/x", "x", 10).await.unwrap().as_ref(),
            b"layer"
        );
        assert_eq!(
            idx.read("index.json", "x", 10).await.unwrap().as_ref(),
            b"{}"
        );

        // A failing write leaves the old archive and no temporary file.
        let e = write_atomic(
            &target,
            vec![("y".into(), Content::File(dir.path().join("nope")))],
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(TarIndex::open(&target).await.unwrap().contains("blobs/x"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
