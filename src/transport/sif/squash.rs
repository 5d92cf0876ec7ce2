//! The squashfs root file system of a SIF image → one uncompressed layer tar
//! (what skopeo makes with `unsquashfs` and GNU `tar -cp` under `fakeroot`),
//! written to a temporary file and hashed as it is written.
//!
//! The squashfs is read by the `backhand` crate, straight out of the SIF file
//! through a window on the partition ([`Section`]): nothing is extracted to
//! disk and file contents stream block by block into the tar, so memory grows
//! with the number of files (backhand holds the inode and directory tables),
//! not with their size. backhand is built without its codecs; [`Codecs`]
//! decompresses with the crates the project already has (flate2, zstd,
//! lzma-rs), each block bounded by squashfs's largest block size.
//!
//! What the tar keeps, as skopeo's does: entry names `./PATH` (directories
//! with a trailing `/`), permission bits including setuid/setgid/sticky,
//! numeric uid/gid, mtimes, symlink targets, character and block devices and
//! FIFOs, hard links (the first name is the file, later names link to it);
//! sockets are left out (GNU tar: "socket ignored"). Not kept: extended
//! attributes and ACLs, user and group names (the numeric ids are what a
//! runtime uses).
//!
//! Hard links: backhand does not expose inode numbers, so files are linked
//! when their inodes say they have several links (squashfs then writes an
//! extended inode with a link count) and they share data location, size and
//! metadata. Two separate hard-link groups with identical contents and
//! metadata would become one group; nothing else is linked.

use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use backhand::compression::{CompressionAction, Compressor};
use backhand::{
    BackhandError, FilesystemCompressor, FilesystemReader, InnerNode, NodeHeader,
    SquashfsFileReader, SuperBlock,
    kind::{Kind, LE_V4_0},
};

use crate::digest::{Digest, HashingWriter};

/// The largest layer written (uncompressed): a small squashfs of sparse
/// files could otherwise claim terabytes.
pub const MAX_LAYER_BYTES: u64 = 64 << 30;

/// Decompressed squashfs blocks are at most this (squashfs's largest block
/// size; metadata blocks are 8 KiB).
const MAX_BLOCK: u64 = backhand::MAX_BLOCK_SIZE as u64;

/// The decompressors for squashfs blocks: gzip (zlib), xz, zstd.
struct Codecs;

static CODECS: Codecs = Codecs;

impl CompressionAction for Codecs {
    type Error = BackhandError;
    type Compressor = Compressor;
    type FilesystemCompressor = FilesystemCompressor;
    type SuperBlock = SuperBlock;

    fn decompress(
        &self,
        bytes: &[u8],
        out: &mut Vec<u8>,
        compressor: Compressor,
    ) -> Result<(), BackhandError> {
        let reader: Box<dyn Read + '_> = match compressor {
            Compressor::Uncompressed => Box::new(bytes),
            Compressor::Gzip => Box::new(flate2::read::ZlibDecoder::new(bytes)),
            Compressor::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(bytes)?),
            Compressor::Xz => {
                let mut input = bytes;
                let mut buf = Vec::new();
                lzma_rs::xz_decompress(&mut input, &mut Bounded(&mut buf))
                    .map_err(|e| BackhandError::StdIo(std::io::Error::other(e.to_string())))?;
                out.extend_from_slice(&buf);
                return Ok(());
            }
            other => {
                return Err(BackhandError::UnsupportedCompression(format!(
                    "{other:?} (kubemirror reads gzip, xz and zstd squashfs)"
                )));
            }
        };
        let n = reader.take(MAX_BLOCK + 1).read_to_end(out)?;
        if n as u64 > MAX_BLOCK {
            return Err(BackhandError::CorruptedOrInvalidSquashfs);
        }
        Ok(())
    }

    fn compress(
        &self,
        _: &[u8],
        _: FilesystemCompressor,
        _: u32,
    ) -> Result<Vec<u8>, BackhandError> {
        Err(BackhandError::UnsupportedCompression(
            "kubemirror only reads squashfs".into(),
        ))
    }
}

/// A writer refusing more than [`MAX_BLOCK`] bytes (for lzma-rs, which
/// writes into a sink rather than being read from).
struct Bounded<'a>(&'a mut Vec<u8>);

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.0.len() + buf.len()) as u64 > MAX_BLOCK {
            return Err(std::io::Error::other("squashfs block larger than 1 MiB"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A read-only window `[start, start + len)` of a file, seen as a file of
/// its own: the squashfs cannot read outside its partition.
pub struct Section<R> {
    inner: R,
    start: u64,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> Section<R> {
    pub fn new(inner: R, start: u64, len: u64) -> Self {
        Section {
            inner,
            start,
            len,
            pos: 0,
        }
    }
}

impl<R: Read + Seek> Read for Section<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Section<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek outside the squashfs partition",
            )),
        }
    }
}

/// A file injected into the layer (skopeo's `/podman/runscript`).
pub struct Injected<'a> {
    /// Relative path, e.g. `podman/runscript`.
    pub path: &'a str,
    pub content: &'a [u8],
    /// Seconds since the epoch (skopeo: when it wrote the file).
    pub mtime: u64,
}

/// The layer written: its digest (= diff ID, it is uncompressed) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
}

/// Write the squashfs in `squashfs` (a reader positioned on the partition)
/// as a tar to `out`, plus `inject` unless the file system has that path
/// already (skopeo writes the script first and lets `unsquashfs -f`
/// overwrite it). Errors are one line, without the location (the caller adds it).
pub fn write_layer<R, W>(squashfs: R, out: W, inject: Option<Injected<'_>>) -> Result<Layer, String>
where
    R: Read + Seek + Send,
    W: Write,
{
    super::contain::quietly(
        "reading the squashfs partition: corrupt data (its tables point outside its blocks)",
        || build_layer(squashfs, out, inject),
    )
}

/// [`write_layer`]'s work, outside the panic containment.
fn build_layer<R, W>(squashfs: R, out: W, inject: Option<Injected<'_>>) -> Result<Layer, String>
where
    R: Read + Seek + Send,
    W: Write,
{
    let kind = Kind::new_v4_with_const(&CODECS, LE_V4_0);
    let fs = FilesystemReader::from_reader_with_offset_and_kind(BufReader::new(squashfs), 0, kind)
        .map_err(|e| format!("reading the squashfs partition: {}", one_line(&e)))?;
    let mut tar = tar::Builder::new(HashingWriter::new(out));
    let mut names = std::collections::HashSet::new();
    let mut linked: std::collections::HashMap<LinkKey, String> = Default::default();
    for node in fs.files() {
        let rel = relative(&node.fullpath)?;
        let write = |e: std::io::Error| format!("writing the layer at ./{rel}: {}", one_line(&e));
        let mut h = header(&node.header);
        let name = format!("./{rel}");
        match &node.inner {
            InnerNode::Dir(_) => {
                h.set_entry_type(tar::EntryType::Directory);
                let dir = if rel.is_empty() {
                    name
                } else {
                    format!("{name}/")
                };
                put(&mut tar, &mut h, &dir, None, std::io::empty()).map_err(write)?;
            }
            InnerNode::File(f) => {
                if let Some(key) = link_key(f, &node.header) {
                    if let Some(first) = linked.get(&key) {
                        h.set_entry_type(tar::EntryType::Link);
                        let target = format!("./{first}");
                        put(
                            &mut tar,
                            &mut h,
                            &name,
                            Some(target.as_bytes()),
                            std::io::empty(),
                        )
                        .map_err(write)?;
                        names.insert(rel);
                        continue;
                    }
                    linked.insert(key, rel.clone());
                }
                let size = f.file_len() as u64;
                if tar.get_ref().written().saturating_add(size) > MAX_LAYER_BYTES {
                    return Err(too_large());
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(size);
                let data = Exact {
                    inner: fs.file(f).reader().take(size),
                    left: size,
                };
                put(&mut tar, &mut h, &name, None, data).map_err(write)?;
            }
            InnerNode::Symlink(l) => {
                h.set_entry_type(tar::EntryType::Symlink);
                let target = l.link.as_os_str().as_encoded_bytes();
                put(&mut tar, &mut h, &name, Some(target), std::io::empty()).map_err(write)?;
            }
            InnerNode::CharacterDevice(d) => {
                device(&mut h, tar::EntryType::Char, d.device_number).map_err(write)?;
                put(&mut tar, &mut h, &name, None, std::io::empty()).map_err(write)?;
            }
            InnerNode::BlockDevice(d) => {
                device(&mut h, tar::EntryType::Block, d.device_number).map_err(write)?;
                put(&mut tar, &mut h, &name, None, std::io::empty()).map_err(write)?;
            }
            InnerNode::NamedPipe => {
                h.set_entry_type(tar::EntryType::Fifo);
                put(&mut tar, &mut h, &name, None, std::io::empty()).map_err(write)?;
            }
            InnerNode::Socket => continue,
        }
        if tar.get_ref().written() > MAX_LAYER_BYTES {
            return Err(too_large());
        }
        names.insert(rel);
    }
    if let Some(inj) = inject.filter(|i| !names.contains(i.path)) {
        let io =
            |e: std::io::Error| format!("writing /{} to the layer: {}", inj.path, one_line(&e));
        let parent = Path::new(inj.path)
            .parent()
            .and_then(|p| p.to_str())
            .unwrap_or("");
        if !parent.is_empty() && !names.contains(parent) {
            let mut h = header(&NodeHeader::new(0o755, 0, 0, 0));
            h.set_mtime(inj.mtime);
            h.set_entry_type(tar::EntryType::Directory);
            put(
                &mut tar,
                &mut h,
                &format!("./{parent}/"),
                None,
                std::io::empty(),
            )
            .map_err(io)?;
        }
        let mut h = header(&NodeHeader::new(0o755, 0, 0, 0));
        h.set_mtime(inj.mtime);
        h.set_size(inj.content.len() as u64);
        put(
            &mut tar,
            &mut h,
            &format!("./{}", inj.path),
            None,
            inj.content,
        )
        .map_err(io)?;
    }
    let (digest, size) = tar
        .into_inner()
        .and_then(HashingWriter::finish)
        .map_err(|e| format!("writing the layer: {}", one_line(&e)))?;
    Ok(Layer { digest, size })
}

/// What identifies a hard-linked file's inode: data location, size, metadata.
type LinkKey = (u64, u32, u32, u64, u16, u32, u32, u32);

/// The [`LinkKey`] of a file with more than one link, else `None`.
fn link_key(f: &SquashfsFileReader, h: &NodeHeader) -> Option<LinkKey> {
    match f {
        SquashfsFileReader::Extended(e) if e.link_count > 1 => Some((
            e.blocks_start,
            e.frag_index,
            e.block_offset,
            e.file_size,
            h.permissions,
            h.uid,
            h.gid,
            h.mtime,
        )),
        _ => None,
    }
}

fn too_large() -> String {
    format!("the squashfs unpacks to more than {MAX_LAYER_BYTES} bytes, the most a layer may have")
}

/// The path below the root as text, refusing anything but plain names
/// (backhand builds the paths from directory entries; a hostile image must
/// not produce `..` or absolute names in the tar).
fn relative(p: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => match n.to_str() {
                Some(s) => parts.push(s),
                None => return Err(format!("squashfs path {} is not UTF-8", p.display())),
            },
            _ => return Err(format!("squashfs path {} is not a plain path", p.display())),
        }
    }
    Ok(parts.join("/"))
}

/// Append an entry named `name` exactly (skopeo's `./` prefix and a
/// directory's `/` kept) when name and link target fit the header; longer
/// ones go through the tar crate's GNU long-name records (which drop the `./`).
fn put<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    link: Option<&[u8]>,
    data: impl Read,
) -> std::io::Result<()> {
    let fits = name.len() <= 100 && link.is_none_or(|l| l.len() <= 100);
    if fits && let Some(gnu) = h.as_gnu_mut() {
        gnu.name = [0; 100];
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            h.set_link_name_literal(l)?;
        }
        h.set_cksum();
        return tar.append(h, data);
    }
    match link {
        Some(l) => tar.append_link(h, name, Path::new(std::ffi::OsStr::from_bytes(l))),
        None => tar.append_data(h, name, data),
    }
}

/// A GNU tar header with `h`'s mode, owner and mtime.
fn header(h: &NodeHeader) -> tar::Header {
    let mut t = tar::Header::new_gnu();
    t.set_mode(u32::from(h.permissions) & 0o7777);
    t.set_uid(u64::from(h.uid));
    t.set_gid(u64::from(h.gid));
    t.set_mtime(u64::from(h.mtime));
    t.set_size(0);
    t
}

/// A device entry: squashfs stores the Linux `dev_t` encoding.
fn device(h: &mut tar::Header, kind: tar::EntryType, dev: u32) -> std::io::Result<()> {
    h.set_entry_type(kind);
    let major = (dev >> 8) & 0xfff;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    h.set_device_major(major)?;
    h.set_device_minor(minor)
}

/// Exactly `left` bytes from `inner`, or an error if it ends early (the tar
/// header announced that size).
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("squashfs file data ends {} bytes early", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// An error's text on one line.
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
