//! Compressed archives (`docker save | gzip`, `| xz`, `| zstd`): recognised
//! by their first bytes and decompressed, streaming, into a temporary file
//! that the archive is then read from, as containers/image does (a tar needs
//! random access; a compressed stream has none). Decoders are kept crates:
//! flate2 (gzip), lzma-rs (xz), zstd.
//!
//! The decompressed size is capped ([`MAX_DECOMPRESSED`]): a small file that
//! expands without end (a decompression bomb) fails with a message instead
//! of filling the disk.

use std::io::{Read, Write};
use std::path::Path;

use crate::image::{Error, Result};
use crate::transport::local;

/// Most bytes a compressed archive may decompress to (64 GiB).
#[cfg(not(fuzzing))]
pub const MAX_DECOMPRESSED: u64 = 64 << 30;
/// Under the fuzzer (`--cfg fuzzing`, see `scripts/fuzz`): 16 MiB, so that a
/// small input that expands hugely costs time, not the disk.
#[cfg(fuzzing)]
pub const MAX_DECOMPRESSED: u64 = 16 << 20;

/// The compression of a file, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
}

/// Which compression `head` (a file's first bytes) starts with, if any.
pub fn detect(head: &[u8]) -> Option<Compression> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Compression::Xz)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else {
        None
    }
}

/// When the file at `path` is compressed: its decompressed copy in a
/// temporary file (removed when the returned path is dropped). `None`: the
/// file is not compressed (or cannot be opened: the caller reports that).
pub async fn decompressed_copy(path: &Path) -> Result<Option<tempfile::TempPath>> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || decompress_blocking(&p))
        .await
        .map_err(|e| Error::Invalid(format!("{}: decompression failed: {e}", path.display())))?
}

fn decompress_blocking(path: &Path) -> Result<Option<tempfile::TempPath>> {
    let show = local::show(path);
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(None);
    };
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Error::io(&show, "read", e)),
        }
    }
    let Some(kind) = detect(&head[..n]) else {
        return Ok(None);
    };
    let input = std::io::BufReader::with_capacity(1 << 16, head[..n].chain(file));
    let tmp = tempfile::NamedTempFile::new()
        .map_err(|e| Error::io(&show, crate::image::temp_file_op(), e))?;
    let (out, tmp_path) = tmp.into_parts();
    let mut out = Capped {
        inner: std::io::BufWriter::with_capacity(1 << 16, out),
        left: MAX_DECOMPRESSED,
    };
    let corrupt = |what: &str, e: String| Error::Corrupt {
        location: show.clone(),
        message: format!("decompressing {what}: {e}"),
    };
    match kind {
        Compression::Gzip => {
            let mut d = flate2::read::MultiGzDecoder::new(input);
            std::io::copy(&mut d, &mut out).map_err(|e| corrupt("gzip", e.to_string()))?;
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(input)
                .map_err(|e| corrupt("zstd", e.to_string()))?;
            std::io::copy(&mut d, &mut out).map_err(|e| corrupt("zstd", e.to_string()))?;
        }
        Compression::Xz => {
            let mut input = input;
            lzma_rs::xz_decompress(&mut input, &mut out)
                .map_err(|e| corrupt("xz", e.to_string()))?;
        }
    }
    out.inner
        .flush()
        .map_err(|e| Error::io(&show, "write decompressed copy", e))?;
    Ok(Some(tmp_path))
}

/// A writer that fails past a byte budget.
struct Capped<W> {
    inner: W,
    left: u64,
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "decompresses to more than {} MiB",
                MAX_DECOMPRESSED >> 20
            )));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Some(Compression::Gzip));
        assert_eq!(detect(b"\xfd7zXZ\x00"), Some(Compression::Xz));
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Some(Compression::Zstd));
        assert_eq!(detect(b"manifest.json\0"), None);
        assert_eq!(detect(&[]), None);
    }

    #[tokio::test]
    async fn each_format_decompresses_and_garbage_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"plain tar bytes".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &data[..], &mut xz).unwrap();
        for (name, bytes) in [
            ("a.gz", gz.finish().unwrap()),
            ("a.xz", xz),
            ("a.zst", zstd::encode_all(&data[..], 3).unwrap()),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            let out = decompressed_copy(&p).await.unwrap().unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), data, "{name}");
        }
        let p = dir.path().join("plain.tar");
        std::fs::write(&p, &data).unwrap();
        assert!(decompressed_copy(&p).await.unwrap().is_none());
        let p = dir.path().join("bad.gz");
        std::fs::write(&p, [0x1f, 0x8b, 0, 1, 2, 3, 4]).unwrap();
        let e = decompressed_copy(&p).await.unwrap_err();
        assert!(e.to_string().contains("decompressing gzip"), "{e}");
    }
}
