//! Engine tests over the in-memory transport (`transport::mem`): the
//! faults and counts real registries cannot be made to show on demand (a
//! source that lies about a blob, in-flight transfer counts, requests made).
//! Real-registry copies are in `tests/`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::*;
use crate::image::Signature;
use crate::manifest::{self, Manifest};
use crate::transport::mem::{Mem, Store, add_image, mem, tag};

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

#[tokio::test]
async fn writes_to_a_store_sharing_one_file_take_turns() {
    // Two copies into one store at once, one blob at a time each: they
    // overlap unless the store asks for one writer at a time.
    for (lock, overlap) in [(None, 2), (Some("/layout".to_string()), 1)] {
        let src = Arc::new(Store::default());
        let (a, _) = add_image(&src, "a", 3, "amd64");
        let (b, _) = add_image(&src, "b", 3, "amd64");
        tag(&src, "a", &a);
        tag(&src, "b", &b);
        let dst = Arc::new(Store {
            write_lock: lock.clone(),
            ..Default::default()
        });
        let opts = CopyOptions {
            jobs: 1,
            ..Default::default()
        };
        let ctx = SystemContext {
            registry: crate::image::RegistryContext::new(),
            ..Default::default()
        };
        let (one, two) = (mem(&src, "a"), mem(&src, "b"));
        let (to_one, to_two) = (mem(&dst, "a"), mem(&dst, "b"));
        let (x, y) = tokio::join!(
            copy_image(&one, &ctx, &to_one, &ctx, &opts),
            copy_image(&two, &ctx, &to_two, &ctx, &opts)
        );
        x.unwrap();
        y.unwrap();
        assert_eq!(dst.tags.lock().unwrap().len(), 2);
        assert_eq!(
            dst.max_in_flight.load(Ordering::SeqCst),
            overlap,
            "write lock {lock:?}"
        );
    }
}
