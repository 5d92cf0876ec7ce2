//! A small copy loop through the image traits (what the copy engine does, minus
//! parallelism and reporting), for transport tests that must not depend on
//! the engine; and a [`Counter`] observer that tallies requests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kubemirror::image::{
    BlobInfo, ImageDestination, ImageSource, RequestObserver, ReuseHint, Reused,
};
use kubemirror::manifest::{self, Manifest, Parsed};

/// What a copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Done {
    pub up_to_date: bool,
    pub uploaded: usize,
    pub present: usize,
    pub mounted: usize,
}

/// Copy `src`'s top-level image (every instance of an index) to `dst`.
pub async fn copy(
    src: &dyn ImageSource,
    dst: &dyn ImageDestination,
    hint: &ReuseHint,
) -> kubemirror::image::Result<Done> {
    let mut done = Done::default();
    let src_digest = src.manifest_digest().await?;
    if dst.existing_manifest_digest().await? == Some(src_digest.clone()) {
        done.up_to_date = true;
        return Ok(done);
    }
    let top = src.get_manifest(None).await?;
    let mut images: Vec<(Manifest, Option<kubemirror::digest::Digest>)> = Vec::new();
    match top.parse().unwrap() {
        Parsed::Image(_) => images.push((top.clone(), None)),
        Parsed::Index(index) => {
            for d in index.manifests() {
                let m = src.get_manifest(Some(d.digest())).await?;
                images.push((m, Some(d.digest().clone())));
            }
        }
    }
    for (m, _) in &images {
        let img = m.image().unwrap();
        for desc in manifest::blobs(&img) {
            let info = BlobInfo::from(&desc);
            match dst.try_reusing_blob(&info, hint).await? {
                Some(Reused::Present) => done.present += 1,
                Some(Reused::Mounted) => done.mounted += 1,
                None => {
                    let blob = src.get_blob(&info).await?;
                    dst.put_blob(&info, blob).await?;
                    done.uploaded += 1;
                }
            }
        }
    }
    for (m, instance) in &images {
        if let Some(d) = instance {
            dst.put_manifest(m, Some(d)).await?;
        }
    }
    dst.put_manifest(&top, None).await?;
    dst.commit().await?;
    Ok(done)
}

/// Counts requests by `METHOD status` (and in total).
#[derive(Default)]
pub struct Counter {
    pub seen: Mutex<Vec<(String, String, u16)>>,
}

impl Counter {
    pub fn new() -> Arc<Self> {
        Arc::new(Counter::default())
    }
    pub fn total(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    pub fn reset(&self) {
        self.seen.lock().unwrap().clear();
    }
    /// `{"GET 200": 3, ...}`.
    pub fn summary(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, method, status) in self.seen.lock().unwrap().iter() {
            *m.entry(format!("{method} {status}")).or_insert(0) += 1;
        }
        m
    }
}

impl RequestObserver for Counter {
    fn request(&self, host: &str, method: &str, status: u16) {
        self.seen
            .lock()
            .unwrap()
            .push((host.to_string(), method.to_string(), status));
    }
}
