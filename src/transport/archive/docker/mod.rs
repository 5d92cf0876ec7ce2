//! Transport `docker-archive:` — the `docker save` / `docker load` format, as
//! containers/image's `docker/archive`: a tar holding `manifest.json`
//! (`[{"Config","RepoTags","Layers"}]`), the config as a file and one file
//! per layer (older archives add `<id>/layer.tar` links, `repositories`).
//!
//! Syntax `docker-archive:PATH[:NAME[:TAG]|:@N]`: the first colon ends PATH.
//! NAME:TAG (normalised, `latest` when no tag) selects the image whose
//! `RepoTags` has it when reading and is written as its `RepoTags` entry;
//! `@N` selects the N-th image (from 0) of a multi-image archive for reading.
//! Without either, reading needs an archive of exactly one image.
//!
//! Files: [`source`] (synthesises a Docker schema 2 manifest from the tar),
//! [`dest`] (stages blobs, writes the archive at commit), [`docker_tar`]
//! (the seed's `Image.DockerTar`).

pub(crate) mod dest;
mod save;
pub(crate) mod source;

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::image::{Error, ImageDestination, ImageReference, ImageSource, Result, SystemContext};
use crate::reference::{self, Reference};
use crate::transport::local;

pub use dest::DockerArchiveDestination;
pub use save::docker_tar;
pub use source::DockerArchiveSource;

/// The transport's name.
pub const NAME: &str = "docker-archive";

/// One entry of the archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestItem {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default, deserialize_with = "null_as_empty")]
    pub repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// The `docker-archive:` transport.
#[derive(Debug, Clone, Copy, Default)]
pub struct DockerArchiveTransport;

impl DockerArchiveTransport {
    pub fn name(&self) -> &'static str {
        NAME
    }
    pub fn parse_reference(&self, within: &str) -> Result<Box<dyn ImageReference>> {
        parse_reference(within)
    }
}

/// Parse `PATH[:NAME[:TAG]|:@N]`.
pub fn parse_reference(within: &str) -> Result<Box<dyn ImageReference>> {
    Ok(Box::new(DockerArchiveReference::parse(within)?))
}

/// Which image of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The only one (reading); none in `RepoTags` (writing).
    None,
    /// The image tagged so.
    Tag(Reference),
    /// The N-th image (reading only).
    Index(usize),
}

/// An image in a docker archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerArchiveReference {
    path: String,
    resolved: PathBuf,
    selector: Selector,
    /// More `RepoTags` to write (skopeo's `--additional-tag`).
    additional_tags: Vec<Reference>,
}

impl DockerArchiveReference {
    pub fn parse(within: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidName {
            input: format!("{NAME}:{within}"),
            reason,
        };
        let (path, rest) = match within.split_once(':') {
            Some((p, r)) => (p, Some(r)),
            None => (within, None),
        };
        if path.is_empty() {
            return Err(invalid("the path is empty".into()));
        }
        let selector = match rest {
            None => Selector::None,
            Some(r) if r.starts_with('@') => {
                let n = r[1..].parse::<usize>().map_err(|_| {
                    invalid(format!("{r:?} is not @N with N a non-negative integer"))
                })?;
                Selector::Index(n)
            }
            Some(r) => {
                let parsed = reference::parse(r).map_err(|e| invalid(e.reason))?;
                if parsed.digest().is_some() {
                    return Err(invalid(
                        "a docker-archive reference takes NAME:TAG, not a digest".into(),
                    ));
                }
                Selector::Tag(parsed)
            }
        };
        Ok(DockerArchiveReference {
            path: path.to_string(),
            resolved: local::absolute(path)?,
            selector,
            additional_tags: Vec::new(),
        })
    }

    /// The same reference, writing `tags` into `RepoTags` too (after its
    /// own NAME:TAG, duplicates dropped), as skopeo's `--additional-tag`.
    pub fn with_additional_tags(mut self, tags: Vec<Reference>) -> Self {
        self.additional_tags = tags;
        self
    }

    /// The archive (absolute).
    pub fn path(&self) -> &std::path::Path {
        &self.resolved
    }

    pub fn selector(&self) -> &Selector {
        &self.selector
    }
}

impl fmt::Display for DockerArchiveReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{NAME}:{}", self.path)?;
        match &self.selector {
            Selector::None => Ok(()),
            Selector::Tag(r) => write!(f, ":{r}"),
            Selector::Index(n) => write!(f, ":@{n}"),
        }
    }
}

#[async_trait]
impl ImageReference for DockerArchiveReference {
    fn transport(&self) -> &'static str {
        NAME
    }

    /// Every write to a docker archive rewrites its one index: one at a time, by path.
    fn write_lock(&self) -> Option<String> {
        Some(self.resolved.display().to_string())
    }

    fn docker_reference(&self) -> Option<Reference> {
        match &self.selector {
            Selector::Tag(r) => Some(r.clone()),
            _ => None,
        }
    }

    fn with_tag(&self, tag: &str) -> Result<Box<dyn ImageReference>> {
        match &self.selector {
            Selector::Tag(r) => Ok(Box::new(DockerArchiveReference {
                selector: Selector::Tag(reference::with_tag(r, tag)),
                ..self.clone()
            })),
            _ => Err(Error::Invalid(format!(
                "{self} names no repository: use {NAME}:{}:NAME:{tag}",
                self.path
            ))),
        }
    }

    async fn new_image_source(&self, _ctx: &SystemContext) -> Result<Box<dyn ImageSource>> {
        Ok(Box::new(
            DockerArchiveSource::open(&self.resolved, Box::new(self.clone()), &self.selector)
                .await?,
        ))
    }

    async fn new_image_destination(
        &self,
        _ctx: &SystemContext,
    ) -> Result<Box<dyn ImageDestination>> {
        let tag = match &self.selector {
            Selector::None => Vec::new(),
            Selector::Tag(r) => vec![r.clone()],
            Selector::Index(_) => {
                return Err(Error::Invalid(format!(
                    "{self}: @N selects an image to read; write with {NAME}:PATH[:NAME:TAG]"
                )));
            }
        };
        let mut tags = tag;
        for t in &self.additional_tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        Ok(Box::new(DockerArchiveDestination::open(
            self.resolved.clone(),
            self.to_string(),
            tags,
        )?))
    }

    /// The `RepoTags` of every image in the archive.
    async fn list_tags(&self, _ctx: &SystemContext) -> Result<Vec<String>> {
        let index = super::tar_index::TarIndex::open_decompressing(&self.resolved).await?;
        let items = source::read_items(&index).await?;
        Ok(items.into_iter().flat_map(|i| i.repo_tags).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selectors() {
        let r = DockerArchiveReference::parse("/tmp/a.tar:foo/bar:v1").unwrap();
        assert_eq!(
            r.to_string(),
            "docker-archive:/tmp/a.tar:docker.io/foo/bar:v1"
        );
        assert_eq!(r.docker_reference().unwrap().tag(), Some("v1"));
        let r = DockerArchiveReference::parse("/tmp/a.tar:foo").unwrap();
        assert_eq!(
            r.to_string(),
            "docker-archive:/tmp/a.tar:docker.io/library/foo:latest"
        );
        assert_eq!(
            r.with_tag("v2").unwrap().to_string(),
            "docker-archive:/tmp/a.tar:docker.io/library/foo:v2"
        );
        let r = DockerArchiveReference::parse("/tmp/a.tar:@1").unwrap();
        assert_eq!(r.selector(), &Selector::Index(1));
        assert!(r.with_tag("x").is_err());
        let r = DockerArchiveReference::parse("a.tar").unwrap();
        assert_eq!(r.selector(), &Selector::None);
        assert!(DockerArchiveReference::parse("/tmp/a.tar:@x").is_err());
        let d = format!("/tmp/a.tar:foo@sha256:{}", "a".repeat(64));
        assert!(DockerArchiveReference::parse(&d).is_err());
        assert!(DockerArchiveReference::parse(":foo").is_err());
    }

    #[test]
    fn manifest_items_tolerate_null_tags() {
        let items: Vec<ManifestItem> =
            serde_json::from_str(r#"[{"Config":"c.json","RepoTags":null,"Layers":["l.tar"]}]"#)
                .unwrap();
        assert!(items[0].repo_tags.is_empty());
        assert_eq!(
            serde_json::to_string(&items).unwrap(),
            r#"[{"Config":"c.json","RepoTags":[],"Layers":["l.tar"]}]"#
        );
    }
}
