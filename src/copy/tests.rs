//! Engine tests over an in-memory transport: the faults and counts real
//! registries cannot be made to show on demand (a source that lies about a
//! blob, in-flight transfer counts, requests made). Real-registry copies are
//! in `tests/`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;

use super::*;
use crate::digest::{self, VerifyingStream};
use crate::image::{
    Blob, BlobInfo, ImageDestination, ImageSource, Result, ReuseHint, Reused, Signature,
};
use crate::manifest::{self, Manifest};
use crate::reference::Reference;

/// A store shared by source and destination sides.
#[derive(Default)]
struct Store {
    blobs: Mutex<HashMap<String, Bytes>>,
    manifests: Mutex<HashMap<String, Manifest>>,
    tags: Mutex<HashMap<String, String>>,
    sigs: Mutex<HashMap<String, Vec<Signature>>>,
    /// Blobs served with wrong bytes.
    lie_about: Mutex<Option<String>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    puts: AtomicUsize,
    gets: AtomicUsize,
}

#[derive(Clone)]
struct Mem {
    store: Arc<Store>,
    tag: String,
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

fn add_blob(s: &Store, data: &[u8]) -> (String, usize) {
    let d = digest::sha256(data).to_string();
    s.blobs
        .lock()
        .unwrap()
        .insert(d.clone(), Bytes::copy_from_slice(data));
    (d, data.len())
}

/// An image with `layers` distinct layers plus one shared layer; returns its manifest digest.
fn add_image(s: &Store, seed: &str, layers: usize, arch: &str) -> (String, usize) {
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

fn tag(s: &Store, tag: &str, digest: &str) {
    s.tags.lock().unwrap().insert(tag.into(), digest.into());
}

fn mem(store: &Arc<Store>, tag: &str) -> Mem {
    Mem {
        store: store.clone(),
        tag: tag.into(),
    }
}

async fn copy(src: &Mem, dst: &Mem, opts: &CopyOptions) -> std::result::Result<CopyReport, Error> {
    copy_image(
        src,
        &SystemContext::default(),
        dst,
        &SystemContext::default(),
        opts,
    )
    .await
}

#[tokio::test]
async fn copies_exact_bytes_and_skips_what_is_there() {
    let (src, dst) = (Arc::new(Store::default()), Arc::new(Store::default()));
    let (d, _) = add_image(&src, "a", 5, "amd64");
    tag(&src, "v1", &d);
    let r = copy(&mem(&src, "v1"), &mem(&dst, "v1"), &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(r.source_digest, d);
    assert_eq!(r.destination_digest, d);
    assert_eq!(r.blobs_copied, 7);
    assert_eq!(
        dst.manifests.lock().unwrap()[&d],
        src.manifests.lock().unwrap()[&d]
    );
    // Same again: the destination holds the manifest, nothing moves.
    let r = copy(&mem(&src, "v1"), &mem(&dst, "v1"), &CopyOptions::default())
        .await
        .unwrap();
    assert!(r.up_to_date);
    assert_eq!(src.gets.load(Ordering::SeqCst), 7);
    // Under another tag: every blob is present, none is read.
    let r = copy(&mem(&src, "v1"), &mem(&dst, "v2"), &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!((r.blobs_copied, r.blobs_skipped), (0, 7));
    assert_eq!(src.gets.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn a_lying_source_fails_and_the_tag_is_never_written() {
    let (src, dst) = (Arc::new(Store::default()), Arc::new(Store::default()));
    let (d, _) = add_image(&src, "a", 3, "amd64");
    tag(&src, "v1", &d);
    let m = src.manifests.lock().unwrap()[&d].image().unwrap();
    *src.lie_about.lock().unwrap() = Some(m.layers()[2].digest().to_string());
    let e = copy(&mem(&src, "v1"), &mem(&dst, "v1"), &CopyOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    assert!(dst.tags.lock().unwrap().is_empty());
    assert!(
        !dst.blobs
            .lock()
            .unwrap()
            .contains_key(m.layers()[2].digest().as_ref())
    );
}

#[tokio::test]
async fn jobs_bound_in_flight_transfers() {
    let (src, dst) = (Arc::new(Store::default()), Arc::new(Store::default()));
    let (d, _) = add_image(&src, "a", 40, "amd64");
    tag(&src, "v1", &d);
    let opts = CopyOptions {
        jobs: 3,
        ..Default::default()
    };
    copy(&mem(&src, "v1"), &mem(&dst, "v1"), &opts)
        .await
        .unwrap();
    let max = dst.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=3).contains(&max), "max in flight {max}");
}

#[tokio::test]
async fn index_all_moves_shared_blobs_once_and_writes_the_index_last() {
    let (src, dst) = (Arc::new(Store::default()), Arc::new(Store::default()));
    let (a, an) = add_image(&src, "a", 2, "amd64");
    let (b, bn) = add_image(&src, "b", 2, "arm64");
    let idx = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{m}","digest":"{a}","size":{an},"platform":{{"os":"linux","architecture":"amd64"}}}},{{"mediaType":"{m}","digest":"{b}","size":{bn},"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#,
        manifest::OCI_INDEX,
        m = manifest::OCI_MANIFEST
    );
    let im = Manifest::new(Bytes::from(idx), None).unwrap();
    let id = im.digest().to_string();
    src.manifests.lock().unwrap().insert(id.clone(), im);
    tag(&src, "multi", &id);
    let opts = CopyOptions {
        multi_arch: MultiArch::All,
        ..Default::default()
    };
    let r = copy(&mem(&src, "multi"), &mem(&dst, "multi"), &opts)
        .await
        .unwrap();
    // 2 configs + 1 shared + 2 + 2 layers = 7 distinct blobs, each put once.
    assert_eq!(r.blobs_copied, 7);
    assert_eq!(dst.puts.load(Ordering::SeqCst), 7);
    assert_eq!(r.destination_digest, id);
    assert_eq!(r.manifests_written, 3);

    // One platform: the index is filtered and gets a new digest.
    let dst2 = Arc::new(Store::default());
    let opts = CopyOptions {
        multi_arch: MultiArch::Platforms(vec![Platform::parse("linux/arm64").unwrap()]),
        ..Default::default()
    };
    let r = copy(&mem(&src, "multi"), &mem(&dst2, "multi"), &opts)
        .await
        .unwrap();
    assert_ne!(r.destination_digest, id);
    let top = dst2.manifests.lock().unwrap()[&r.destination_digest]
        .index()
        .unwrap();
    assert_eq!(top.manifests().len(), 1);
    assert_eq!(top.manifests()[0].digest().to_string(), b);
}

#[tokio::test]
async fn signatures_are_copied_or_dropped() {
    let (src, dst) = (Arc::new(Store::default()), Arc::new(Store::default()));
    let (d, _) = add_image(&src, "a", 1, "amd64");
    tag(&src, "v1", &d);
    src.sigs.lock().unwrap().insert(
        d.clone(),
        vec![Signature::SimpleSigning(Bytes::from_static(b"sig"))],
    );
    let r = copy(&mem(&src, "v1"), &mem(&dst, "v1"), &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(r.signatures_copied, 1);
    assert_eq!(dst.sigs.lock().unwrap()[&d].len(), 1);
    let dst2 = Arc::new(Store::default());
    let opts = CopyOptions {
        signatures: SignaturePolicy::Drop,
        ..Default::default()
    };
    let r = copy(&mem(&src, "v1"), &mem(&dst2, "v1"), &opts)
        .await
        .unwrap();
    assert_eq!(r.signatures_copied, 0);
    assert!(dst2.sigs.lock().unwrap().is_empty());
}
