//! Transport `dir:` — skopeo's directory layout (containers/image
//! `directory`), byte for byte in naming as skopeo 1.9 writes it:
//!
//! | file | holds |
//! |---|---|
//! | `version` | `Directory Transport Version: 1.1\n` |
//! | `manifest.json` | the top-level manifest bytes (an image or an index) |
//! | `<hex>` | a blob, named by the hex of its digest (no algorithm) |
//! | `<hex>.manifest.json` | an instance manifest of an index (`--all`) |
//! | `signature-N` (N from 1) | signatures of the top-level manifest |
//! | `<hex>.signature-N` | signatures of an instance |
//!
//! Signature files use containers/image's storage format: a simple signature
//! is stored as its raw bytes; a sigstore signature as `\0sigstore-json\n`
//! followed by `{"mimeType","payload"(base64),"annotations"}`.
//!
//! Syntax `dir:PATH`; the whole rest is the path (colons included). Files:
//! [`source`], [`dest`], [`sigfile`] (the signature format).

pub(crate) mod dest;
pub(crate) mod sigfile;
pub(crate) mod source;

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::digest::Digest;
use crate::image::{Error, ImageDestination, ImageReference, ImageSource, Result, SystemContext};
use crate::reference::Reference;
use crate::transport::local;

pub use dest::DirDestination;
pub use source::DirSource;

/// The transport's name.
pub const NAME: &str = "dir";
/// The `version` file's exact contents.
pub const VERSION: &str = "Directory Transport Version: 1.1\n";

/// The `dir:` transport.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirTransport;

impl DirTransport {
    pub fn name(&self) -> &'static str {
        NAME
    }
    pub fn parse_reference(&self, within: &str) -> Result<Box<dyn ImageReference>> {
        parse_reference(within)
    }
}

/// Parse `PATH`.
pub fn parse_reference(within: &str) -> Result<Box<dyn ImageReference>> {
    Ok(Box::new(DirReference::new(within)?))
}

/// A `dir:` image: one directory holds one image (or one index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirReference {
    /// The path as written.
    path: String,
    /// The same path, absolute.
    resolved: PathBuf,
}

impl DirReference {
    pub fn new(path: &str) -> Result<Self> {
        if path.is_empty() {
            return Err(Error::InvalidName {
                input: format!("{NAME}:"),
                reason: "the path is empty".into(),
            });
        }
        Ok(DirReference {
            path: path.to_string(),
            resolved: local::absolute(path)?,
        })
    }

    /// The directory (absolute).
    pub fn path(&self) -> &Path {
        &self.resolved
    }
}

/// Where the files live, relative to the directory.
pub(crate) mod files {
    use super::*;

    pub const MANIFEST: &str = "manifest.json";
    pub const VERSION_FILE: &str = "version";

    /// `<hex>`: a blob.
    pub fn blob(d: &Digest) -> String {
        d.digest().to_string()
    }

    /// `manifest.json`, or `<hex>.manifest.json` for an instance.
    pub fn manifest(instance: Option<&Digest>) -> String {
        match instance {
            None => MANIFEST.into(),
            Some(d) => format!("{}.manifest.json", d.digest()),
        }
    }

    /// `signature-N`, or `<hex>.signature-N` for an instance (`n` from 1).
    pub fn signature(instance: Option<&Digest>, n: usize) -> String {
        match instance {
            None => format!("signature-{n}"),
            Some(d) => format!("{}.signature-{n}", d.digest()),
        }
    }
}

impl fmt::Display for DirReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{NAME}:{}", self.path)
    }
}

#[async_trait]
impl ImageReference for DirReference {
    fn transport(&self) -> &'static str {
        NAME
    }

    /// Every write to a directory rewrites its one index: one at a time, by path.
    fn write_lock(&self) -> Option<String> {
        Some(self.resolved.display().to_string())
    }

    fn docker_reference(&self) -> Option<Reference> {
        None
    }

    /// A directory holds one image: there is no tag to change.
    fn with_tag(&self, tag: &str) -> Result<Box<dyn ImageReference>> {
        Err(Error::Unsupported(format!(
            "{self} holds a single image: it has no tags (cannot select {tag:?})"
        )))
    }

    async fn new_image_source(&self, _ctx: &SystemContext) -> Result<Box<dyn ImageSource>> {
        Ok(Box::new(
            DirSource::open(self.resolved.clone(), Box::new(self.clone())).await?,
        ))
    }

    async fn new_image_destination(
        &self,
        _ctx: &SystemContext,
    ) -> Result<Box<dyn ImageDestination>> {
        Ok(Box::new(
            DirDestination::open(self.resolved.clone(), self.to_string()).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_path() {
        let r = DirReference::new("/tmp/a:b").unwrap();
        assert_eq!(r.path(), Path::new("/tmp/a:b"));
        assert_eq!(r.to_string(), "dir:/tmp/a:b");
        assert!(DirReference::new("").is_err());
        assert!(r.with_tag("v1").is_err());
    }

    #[test]
    fn file_names_match_skopeo() {
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!(files::blob(&d), "a".repeat(64));
        assert_eq!(
            files::manifest(Some(&d)),
            format!("{}.manifest.json", "a".repeat(64))
        );
        assert_eq!(files::signature(None, 1), "signature-1");
        assert_eq!(
            files::signature(Some(&d), 2),
            format!("{}.signature-2", "a".repeat(64))
        );
    }
}
