//! The OCI image layout on disk: file access behind [`LayoutFiles`] (a
//! directory here, a tar archive for `oci-archive:`), `index.json` parsing
//! and the lookup of an image by its ref name, and the `index.json` update a
//! destination makes when it commits.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex};
use serde_json::{Value, json};

use crate::digest::Digest;
use crate::image::{Blob, Error, Result};
use crate::manifest;
use crate::transport::local;

/// The annotation naming an image in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The contents of `oci-layout`, byte for byte as containers/image writes it.
pub const OCI_LAYOUT: &str = r#"{"imageLayoutVersion": "1.0.0"}"#;
/// `index.json` files larger than this are refused.
pub const MAX_INDEX_SIZE: u64 = 64 << 20;

/// The path of a blob inside a layout, relative to its root.
pub fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.digest())
}

/// Read access to the files of a layout, wherever they are stored.
#[async_trait]
pub trait LayoutFiles: Send + Sync {
    /// Where the layout is (a directory or an archive), for messages.
    fn location(&self) -> String;
    /// A whole file of at most `limit` bytes; `what` names it in errors.
    async fn read_bounded(&self, rel: &str, what: &str, limit: u64) -> Result<Bytes>;
    /// A file as a stream.
    async fn open(&self, rel: &str, what: &str) -> Result<Blob>;
}

/// A layout in a directory; with a shared blob directory (skopeo's
/// `--shared-blob-dir`), `blobs/<alg>/<hex>` is `SHARED/<alg>/<hex>` instead.
#[derive(Debug, Clone)]
pub struct DirFiles {
    root: PathBuf,
    shared_blobs: Option<PathBuf>,
}

impl DirFiles {
    pub fn new(root: PathBuf) -> Self {
        DirFiles {
            root,
            shared_blobs: None,
        }
    }

    pub fn with_shared_blobs(root: PathBuf, shared_blobs: Option<PathBuf>) -> Self {
        DirFiles { root, shared_blobs }
    }

    /// Where the layout file `rel` is.
    pub fn file(&self, rel: &str) -> PathBuf {
        match (&self.shared_blobs, rel.strip_prefix("blobs/")) {
            (Some(shared), Some(blob)) => shared.join(blob),
            _ => self.root.join(rel),
        }
    }
}

#[async_trait]
impl LayoutFiles for DirFiles {
    fn location(&self) -> String {
        local::show(&self.root)
    }
    async fn read_bounded(&self, rel: &str, what: &str, limit: u64) -> Result<Bytes> {
        local::read_bounded(&self.file(rel), what, limit).await
    }
    async fn open(&self, rel: &str, what: &str) -> Result<Blob> {
        local::open_blob(&self.file(rel), what).await
    }
}

/// Read and parse `index.json`.
pub async fn read_index(files: &dyn LayoutFiles) -> Result<ImageIndex> {
    let bytes = files
        .read_bounded(
            "index.json",
            "index.json (not an OCI layout?)",
            MAX_INDEX_SIZE,
        )
        .await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        location: format!("{}/index.json", files.location()),
        message: format!("invalid index.json: {e}"),
    })
}

/// The ref names of the index entries, in order.
pub fn ref_names(index: &ImageIndex) -> Vec<String> {
    index
        .manifests()
        .iter()
        .filter_map(|d| d.annotations().as_ref()?.get(REF_NAME).cloned())
        .collect()
}

/// The entry to read for ref name `image` (containers/image's rules): with a
/// name, the entry with that annotation (manifest or index types only);
/// without, the only entry.
pub fn find_descriptor(
    index: &ImageIndex,
    image: Option<&str>,
    location: &str,
) -> Result<Descriptor> {
    let entries = index.manifests();
    match image {
        None => match entries.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::not_found(
                location,
                "an image in index.json (it is empty)",
            )),
            many => Err(Error::Invalid(format!(
                "{location}: more than one image in the layout ({} entries), choose one with {location}:REF",
                many.len()
            ))),
        },
        Some(name) => entries
            .iter()
            .find(|d| {
                let t = d.media_type().to_string();
                (manifest::is_image_type(&t) || manifest::is_index_type(&t))
                    && d.annotations()
                        .as_ref()
                        .and_then(|a| a.get(REF_NAME))
                        .is_some_and(|n| n == name)
            })
            .cloned()
            .ok_or_else(|| {
                Error::not_found(location, format!("an image named {name:?} in index.json"))
            }),
    }
}

/// The new `index.json` after adding the entry for a committed image: with a
/// ref name, it replaces the entry with that name; without, it replaces an
/// unnamed entry with the same digest; else it is appended. Other entries and
/// fields of the existing index are kept.
pub fn updated_index(
    existing: Option<&[u8]>,
    entry: &Descriptor,
    location: &str,
) -> Result<Vec<u8>> {
    let corrupt = |message: String| Error::Corrupt {
        location: format!("{location}/index.json"),
        message,
    };
    let mut index: Value = match existing {
        Some(b) => {
            serde_json::from_slice(b).map_err(|e| corrupt(format!("invalid index.json: {e}")))?
        }
        None => json!({"schemaVersion": 2, "manifests": []}),
    };
    let new = serde_json::to_value(entry).map_err(|e| corrupt(e.to_string()))?;
    let obj = index
        .as_object_mut()
        .ok_or_else(|| corrupt("index.json is not a JSON object".into()))?;
    let manifests = obj
        .entry("manifests")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| corrupt("\"manifests\" is not an array".into()))?;
    let name_of = |v: &Value| {
        v.get("annotations")
            .and_then(|a| a.get(REF_NAME))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let new_name = name_of(&new);
    let same = |v: &Value| match &new_name {
        Some(n) => name_of(v).as_ref() == Some(n),
        None => name_of(v).is_none() && v.get("digest") == new.get("digest"),
    };
    match manifests.iter_mut().find(|v| same(v)) {
        Some(slot) => *slot = new,
        None => manifests.push(new),
    }
    serde_json::to_vec(&index).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{DescriptorBuilder, MediaType};
    use std::collections::HashMap;

    fn desc(hex_char: char, name: Option<&str>) -> Descriptor {
        let digest: Digest = format!("sha256:{}", hex_char.to_string().repeat(64))
            .parse()
            .unwrap();
        let mut b = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(digest)
            .size(3u64);
        if let Some(n) = name {
            b = b.annotations(HashMap::from([(REF_NAME.to_string(), n.to_string())]));
        }
        b.build().unwrap()
    }

    fn index(entries: &[Descriptor]) -> ImageIndex {
        let v = json!({"schemaVersion": 2, "manifests": entries});
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn finds_by_name_or_the_only_entry() {
        let one = index(&[desc('a', Some("v1"))]);
        assert_eq!(
            find_descriptor(&one, None, "/l").unwrap(),
            desc('a', Some("v1"))
        );
        let two = index(&[desc('a', Some("v1")), desc('b', Some("v2"))]);
        let e = find_descriptor(&two, None, "/l").unwrap_err();
        assert!(e.to_string().contains("more than one image"), "{e}");
        assert_eq!(
            find_descriptor(&two, Some("v2"), "/l").unwrap(),
            desc('b', Some("v2"))
        );
        let e = find_descriptor(&two, Some("v3"), "/l").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/l: an image named \"v3\" in index.json not found"
        );
        assert_eq!(ref_names(&two), ["v1", "v2"]);
    }

    #[test]
    fn update_replaces_same_name_and_keeps_others() {
        let start =
            serde_json::to_vec(&index(&[desc('a', Some("v1")), desc('b', Some("v2"))])).unwrap();
        let out = updated_index(Some(&start), &desc('c', Some("v1")), "/l").unwrap();
        let idx: ImageIndex = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            idx.manifests(),
            &vec![desc('c', Some("v1")), desc('b', Some("v2"))]
        );
        let out = updated_index(Some(&out), &desc('d', None), "/l").unwrap();
        let out = updated_index(Some(&out), &desc('d', None), "/l").unwrap();
        let idx: ImageIndex = serde_json::from_slice(&out).unwrap();
        assert_eq!(idx.manifests().len(), 3);
        let fresh = updated_index(None, &desc('a', Some("x")), "/l").unwrap();
        let idx: ImageIndex = serde_json::from_slice(&fresh).unwrap();
        assert_eq!(ref_names(&idx), ["x"]);
        assert!(updated_index(Some(b"[]"), &desc('a', None), "/l").is_err());
    }
}
