//! An in-memory transport for unit tests of the copy engine and the
//! reconcilers: faults and counts real registries cannot be made to show on
//! demand (a source that lies about a blob, transfers in flight, requests
//! made). Test-only; real-registry tests are in `tests/`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;

use crate::digest::{self, Digest, VerifyingStream};
use crate::image::{
    Blob, BlobInfo, Error, ImageDestination, ImageReference, ImageSource, Result, ReuseHint,
    Reused, Signature, SystemContext,
};
use crate::manifest::{self, Manifest};
use crate::reference::Reference;

/// A store shared by source and destination sides.
#[derive(Default)]
pub struct Store {
    pub blobs: Mutex<HashMap<String, Bytes>>,
    pub manifests: Mutex<HashMap<String, Manifest>>,
    pub tags: Mutex<HashMap<String, String>>,
    pub sigs: Mutex<HashMap<String, Vec<Signature>>>,
    /// Blobs served with wrong bytes.
    pub lie_about: Mutex<Option<String>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub puts: AtomicUsize,
    pub gets: AtomicUsize,
    /// What [`ImageReference::write_lock`] answers: `None` (the default)
    /// as a registry, `Some(key)` as a local layout whose tags share a file.
    pub write_lock: Option<String>,
    /// What [`ImageReference::lists_repository_tags`] answers.
    pub lists_repository_tags: bool,
    /// Blob reads still to fail with a retryable connection error.
    pub fail_gets: AtomicUsize,
}

/// `mem:TAG` in a [`Store`].
#[derive(Clone)]
pub struct Mem {
    pub store: Arc<Store>,
    pub tag: String,
}

impl fmt::Debug for Mem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mem:{}", self.tag)
    }
}
impl fmt::Display for Mem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mem:{}", self.tag)
    }
}

#[async_trait]
impl ImageReference for Mem {
    fn transport(&self) -> &'static str {
        "mem"
    }
    fn lists_repository_tags(&self) -> bool {
        self.store.lists_repository_tags
    }
    fn write_lock(&self) -> Option<String> {
        self.store.write_lock.clone()
    }
    fn docker_reference(&self) -> Option<Reference> {
        None
    }
    fn with_tag(&self, tag: &str) -> Result<Box<dyn ImageReference>> {
        Ok(Box::new(Mem {
            store: self.store.clone(),
            tag: tag.into(),
        }))
    }
    async fn new_image_source(&self, _: &SystemContext) -> Result<Box<dyn ImageSource>> {
        Ok(Box::new(self.clone()))
    }
    async fn new_image_destination(&self, _: &SystemContext) -> Result<Box<dyn ImageDestination>> {
        Ok(Box::new(self.clone()))
    }
    async fn list_tags(&self, _: &SystemContext) -> Result<Vec<String>> {
        let mut tags: Vec<String> = self.store.tags.lock().unwrap().keys().cloned().collect();
        tags.sort();
        Ok(tags)
    }
}

#[async_trait]
impl ImageSource for Mem {
    fn reference(&self) -> &dyn ImageReference {
        self
    }
    async fn get_manifest(&self, instance: Option<&Digest>) -> Result<Manifest> {
        let key = match instance {
            Some(d) => d.to_string(),
            None => self
                .store
                .tags
                .lock()
                .unwrap()
                .get(&self.tag)
                .cloned()
                .ok_or_else(|| Error::not_found("mem", "tag"))?,
        };
        self.store
            .manifests
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .ok_or_else(|| Error::not_found("mem", key))
    }
    async fn get_blob(&self, info: &BlobInfo) -> Result<Blob> {
        self.store.gets.fetch_add(1, Ordering::SeqCst);
        let fail = self
            .store
            .fail_gets
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if fail.is_ok() {
            return Err(Error::Connection {
                host: "mem".into(),
                op: format!("pull blob {}", info.digest),
                message: "connection reset".into(),
                retryable: true,
            });
        }
        let mut data = self
            .store
            .blobs
            .lock()
            .unwrap()
            .get(info.digest.as_ref())
            .cloned()
            .ok_or_else(|| Error::not_found("mem", "blob"))?;
        if self.store.lie_about.lock().unwrap().as_deref() == Some(info.digest.as_ref()) {
            data = Bytes::from(vec![b'x'; data.len()]);
        }
        let size = Some(data.len() as u64);
        let chunks: Vec<Result<Bytes>> = data
            .chunks(3)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Ok(Blob {
            stream: Box::pin(futures::stream::iter(chunks)),
            size,
        })
    }
    async fn get_signatures(&self, instance: Option<&Digest>) -> Result<Vec<Signature>> {
        let d = match instance {
            Some(d) => d.clone(),
            None => self.get_manifest(None).await?.digest(),
        };
        Ok(self
            .store
            .sigs
            .lock()
            .unwrap()
            .get(d.as_ref())
            .cloned()
            .unwrap_or_default())
    }
}

#[async_trait]
impl ImageDestination for Mem {
    fn reference(&self) -> String {
        self.to_string()
    }
    fn supports_signatures(&self) -> bool {
        true
    }
    async fn existing_manifest_digest(&self) -> Result<Option<Digest>> {
        Ok(self
            .store
            .tags
            .lock()
            .unwrap()
            .get(&self.tag)
            .map(|d| d.parse().unwrap()))
    }
    async fn try_reusing_blob(&self, info: &BlobInfo, _: &ReuseHint) -> Result<Option<Reused>> {
        Ok(self
            .store
            .blobs
            .lock()
            .unwrap()
            .contains_key(info.digest.as_ref())
            .then_some(Reused::Present))
    }
    async fn put_blob(&self, info: &BlobInfo, blob: Blob) -> Result<()> {
        let now = self.store.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.store.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::task::yield_now().await;
        let chunks: std::result::Result<Vec<Bytes>, Error> =
            VerifyingStream::new(blob.stream, info.digest.clone(), info.size)
                .try_collect()
                .await;
        self.store.in_flight.fetch_sub(1, Ordering::SeqCst);
        let data = chunks?.concat();
        self.store.puts.fetch_add(1, Ordering::SeqCst);
        self.store
            .blobs
            .lock()
            .unwrap()
            .insert(info.digest.to_string(), data.into());
        Ok(())
    }
    async fn put_manifest(&self, m: &Manifest, instance: Option<&Digest>) -> Result<()> {
        let d = m.digest().to_string();
        self.store
            .manifests
            .lock()
            .unwrap()
            .insert(d.clone(), m.clone());
        if instance.is_none() {
            self.store.tags.lock().unwrap().insert(self.tag.clone(), d);
        }
        Ok(())
    }
    async fn put_signatures(&self, sigs: &[Signature], instance: &Digest) -> Result<()> {
        self.store
            .sigs
            .lock()
            .unwrap()
            .insert(instance.to_string(), sigs.to_vec());
        Ok(())
    }
    async fn commit(&self) -> Result<()> {
        Ok(())
    }
}

/// Store `data` as a blob: (digest, size).
pub fn add_blob(s: &Store, data: &[u8]) -> (String, usize) {
    let d = digest::sha256(data).to_string();
    s.blobs
        .lock()
        .unwrap()
        .insert(d.clone(), Bytes::copy_from_slice(data));
    (d, data.len())
}

/// An image with `layers` distinct layers plus one shared layer; returns its manifest digest.
pub fn add_image(s: &Store, seed: &str, layers: usize, arch: &str) -> (String, usize) {
    let (cd, cs) = add_blob(
        s,
        format!(r#"{{"architecture":"{arch}","os":"linux"}}"#).as_bytes(),
    );
    let mut ls = vec![add_blob(s, b"shared layer bytes")];
    for i in 0..layers {
        ls.push(add_blob(s, format!("{seed}-layer-{i}").as_bytes()));
    }
    let layers_json: Vec<String> = ls
        .iter()
        .map(|(d, n)| {
            format!(
                r#"{{"mediaType":"{}","digest":"{d}","size":{n}}}"#,
                manifest::OCI_LAYER_GZIP
            )
        })
        .collect();
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{cd}","size":{cs}}},"layers":[{}]}}"#,
        manifest::OCI_MANIFEST,
        manifest::OCI_CONFIG,
        layers_json.join(",")
    );
    let m = Manifest::new(Bytes::from(body), None).unwrap();
    let d = m.digest().to_string();
    let n = m.bytes.len();
    s.manifests.lock().unwrap().insert(d.clone(), m);
    (d, n)
}

/// Point `tag` at the manifest `digest`.
pub fn tag(s: &Store, tag: &str, digest: &str) {
    s.tags.lock().unwrap().insert(tag.into(), digest.into());
}

/// `mem:TAG` in `store`.
pub fn mem(store: &Arc<Store>, tag: &str) -> Mem {
    Mem {
        store: store.clone(),
        tag: tag.into(),
    }
}
