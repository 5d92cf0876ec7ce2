//! Transport `oci:` — an OCI image layout directory (`oci-layout`,
//! `index.json`, `blobs/<alg>/<hex>`), as containers/image's `oci/layout`.
//!
//! Syntax `oci:PATH[:REF]`. The first `:` after the transport splits PATH
//! from REF (containers/image's rule on non-Windows systems), so PATH cannot
//! contain a colon; REF may (`oci:/l:repo:v1` is layout `/l`, ref `repo:v1`).
//! REF matches the `org.opencontainers.image.ref.name` annotation of an
//! `index.json` entry. Without REF, reading uses the only entry (an error if
//! there are several) and writing adds an entry without the annotation.
//!
//! Several images live in one layout; writing a REF replaces the entry with
//! the same name. Files: [`layout`] (index.json, file access shared with
//! `oci-archive:`), [`source`], [`dest`].

pub(crate) mod dest;
pub(crate) mod layout;
pub(crate) mod source;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::image::{Error, ImageDestination, ImageReference, ImageSource, Result, SystemContext};
use crate::reference::Reference;

pub use dest::OciDestination;
pub use source::OciSource;

/// The transport's name.
pub const NAME: &str = "oci";

/// The `oci:` transport.
#[derive(Debug, Clone, Copy, Default)]
pub struct OciTransport;

impl OciTransport {
    pub fn name(&self) -> &'static str {
        NAME
    }
    pub fn parse_reference(&self, within: &str) -> Result<Box<dyn ImageReference>> {
        parse_reference(within)
    }
}

/// Parse `PATH[:REF]`.
pub fn parse_reference(within: &str) -> Result<Box<dyn ImageReference>> {
    Ok(Box::new(OciReference::parse(within)?))
}

/// Split `PATH[:REF]` at the first colon and check both parts (shared with
/// `oci-archive:`). `transport` names the transport in messages.
pub(crate) fn split_path_and_ref(
    transport: &str,
    within: &str,
) -> Result<(String, Option<String>)> {
    let (path, image) = match within.split_once(':') {
        Some((p, i)) => (p, Some(i)),
        None => (within, None),
    };
    let invalid = |reason: String| Error::InvalidName {
        input: format!("{transport}:{within}"),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("the path is empty".into()));
    }
    if let Some(i) = image {
        validate_ref_name(i).map_err(invalid)?;
    }
    Ok((path.to_string(), image.map(str::to_string)))
}

/// containers/image's rule for an OCI ref name: components of
/// `[A-Za-z0-9._-]` joined by one of `:/@+`.
pub(crate) fn validate_ref_name(name: &str) -> Result<(), String> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    if name.split([':', '/', '@', '+']).all(component_ok) {
        Ok(())
    } else {
        Err(format!(
            "invalid reference name {name:?}: want [A-Za-z0-9._-] components separated by ':', '/', '@' or '+'"
        ))
    }
}

/// An image in an OCI layout: the directory and, optionally, the ref name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciReference {
    /// The path as the user wrote it (for messages and `Display`).
    path: String,
    /// The same path, absolute.
    resolved: PathBuf,
    /// The `org.opencontainers.image.ref.name` to read or write.
    image: Option<String>,
    /// Blobs live in this directory as `<alg>/<hex>` instead of the layout's
    /// `blobs/` (skopeo's `--src-shared-blob-dir` / `--dest-shared-blob-dir`).
    shared_blob_dir: Option<PathBuf>,
}

impl OciReference {
    /// Parse `PATH[:REF]`.
    pub fn parse(within: &str) -> Result<Self> {
        let (path, image) = split_path_and_ref(NAME, within)?;
        Self::new(&path, image.as_deref())
    }

    /// A reference to `path` (no colon allowed) and ref name `image`.
    pub fn new(path: &str, image: Option<&str>) -> Result<Self> {
        if path.contains(':') {
            return Err(Error::InvalidName {
                input: format!("{NAME}:{path}"),
                reason: "the layout path cannot contain ':'".into(),
            });
        }
        if let Some(i) = image {
            validate_ref_name(i).map_err(|reason| Error::InvalidName {
                input: format!("{NAME}:{path}:{i}"),
                reason,
            })?;
        }
        Ok(OciReference {
            path: path.to_string(),
            resolved: crate::transport::local::absolute(path)?,
            image: image.map(str::to_string),
            shared_blob_dir: None,
        })
    }

    /// The same image with its blobs in `dir` (see the field's docs).
    pub fn with_shared_blob_dir(mut self, dir: &str) -> Result<Self> {
        self.shared_blob_dir = Some(crate::transport::local::absolute(dir)?);
        Ok(self)
    }

    fn files(&self) -> layout::DirFiles {
        layout::DirFiles::with_shared_blobs(self.resolved.clone(), self.shared_blob_dir.clone())
    }

    /// The layout directory (absolute).
    pub fn path(&self) -> &std::path::Path {
        &self.resolved
    }

    /// The ref name, if any.
    pub fn image(&self) -> Option<&str> {
        self.image.as_deref()
    }
}

/// Print `TRANSPORT:PATH[:REF]` (shared with `oci-archive:`).
pub(crate) fn fmt_path_and_ref(
    f: &mut fmt::Formatter<'_>,
    transport: &str,
    path: &str,
    image: Option<&str>,
) -> fmt::Result {
    write!(f, "{transport}:{path}")?;
    match image {
        Some(i) => write!(f, ":{i}"),
        None => Ok(()),
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_path_and_ref(f, NAME, &self.path, self.image.as_deref())
    }
}

#[async_trait]
impl ImageReference for OciReference {
    fn transport(&self) -> &'static str {
        NAME
    }

    /// Every write to an OCI layout rewrites its one index: one at a time, by path.
    fn write_lock(&self) -> Option<String> {
        Some(self.resolved.display().to_string())
    }

    /// OCI layouts do not name a docker reference (as containers/image).
    fn docker_reference(&self) -> Option<Reference> {
        None
    }

    fn with_tag(&self, tag: &str) -> Result<Box<dyn ImageReference>> {
        let mut r = OciReference::new(&self.path, Some(tag))?;
        r.shared_blob_dir = self.shared_blob_dir.clone();
        Ok(Box::new(r))
    }

    async fn new_image_source(&self, _ctx: &SystemContext) -> Result<Box<dyn ImageSource>> {
        let files = Arc::new(self.files());
        Ok(Box::new(
            OciSource::open(files, Box::new(self.clone()), self.image.clone()).await?,
        ))
    }

    async fn new_image_destination(
        &self,
        _ctx: &SystemContext,
    ) -> Result<Box<dyn ImageDestination>> {
        let d = OciDestination::open(self.resolved.clone(), self.to_string(), self.image.clone())
            .await?;
        Ok(Box::new(match &self.shared_blob_dir {
            Some(shared) => d.with_shared_blobs(shared.clone()).await?,
            None => d,
        }))
    }

    /// The ref names in `index.json`, in index order.
    async fn list_tags(&self, _ctx: &SystemContext) -> Result<Vec<String>> {
        let index = layout::read_index(&self.files()).await?;
        Ok(layout::ref_names(&index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_and_ref() {
        let r = OciReference::parse("/tmp/l:v1").unwrap();
        assert_eq!(r.image(), Some("v1"));
        assert_eq!(r.to_string(), "oci:/tmp/l:v1");
        let r = OciReference::parse("/tmp/l:repo/app:v1").unwrap();
        assert_eq!(r.image(), Some("repo/app:v1"));
        assert_eq!(r.path(), std::path::Path::new("/tmp/l"));
        let r = OciReference::parse("rel/dir").unwrap();
        assert_eq!(r.image(), None);
        assert!(r.path().is_absolute());
        assert_eq!(r.to_string(), "oci:rel/dir");
    }

    #[test]
    fn rejects_bad_names() {
        let e = OciReference::parse(":v1").unwrap_err();
        assert!(e.to_string().contains("path is empty"), "{e}");
        let e = OciReference::parse("/tmp/l:bad name").unwrap_err();
        assert!(e.to_string().contains("invalid reference name"), "{e}");
        assert!(OciReference::parse("/tmp/l:v1:").is_err());
    }

    #[test]
    fn with_tag_keeps_the_layout() {
        let r = OciReference::parse("/tmp/l:v1").unwrap();
        assert_eq!(r.with_tag("v2").unwrap().to_string(), "oci:/tmp/l:v2");
    }
}
