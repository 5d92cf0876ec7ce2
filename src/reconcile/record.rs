//! The record of what one `ImageMirror` wrote, kept at the destination.
//!
//! Prune and `deletionPolicy: Delete` may only delete tags the mirror wrote
//! and that still hold what it wrote. `status` cannot say so: it is not
//! backed up and may be rebuilt from nothing. So the record lives beside the
//! tags it describes, in the destination repository, as a small OCI artifact
//! under the tag [`record_tag`] (`kubemirror-record.<16 hex>`, one per mirror:
//! a hash of `namespace/name`):
//!
//! - an OCI image manifest, `artifactType`
//!   `application/vnd.kubemirror.record.v1+json`, the empty config, and one
//!   layer holding JSON `{"mirror": "ns/name", "tags": {"1.27": "sha256:…"}}`;
//! - written after the copies of a sync, only when it changed; a tag enters
//!   it when this mirror writes it (or finds it as its own status last left
//!   it), and leaves it when it is deleted or changed by someone else;
//! - read back bounded ([`MAX_RECORD_BYTES`], [`MAX_RECORD_TAGS`]), its
//!   digest checked, every tag and digest validated: what a registry sends is
//!   untrusted. A record that cannot be read fails the sync (nothing is
//!   deleted); an absent one is empty (nothing is deleted).
//!
//! Someone who can push to the destination can forge a record; they can
//! delete those tags themselves anyway. A crash between a copy and the record
//! write leaves a tag unrecorded: it is then never deleted (safe side).
//!
//! The format (pure data) is [`crate::record`]; this module reads and
//! writes it through the image traits.

use super::Error;
use super::resolve::Endpoint;
use crate::digest::{self, Digest};
use crate::image::{self, Blob, BlobInfo, ImageReference, Manifest};
use bytes::Bytes;
use futures::StreamExt;

pub use crate::record::{
    MAX_RECORD_BYTES, MAX_RECORD_TAGS, RECORD_MEDIA_TYPE, RECORD_TAG_PREFIX, Record, is_record_tag,
    record_tag,
};

/// The OCI empty descriptor's media type and content (the artifact's config).
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY: &[u8] = b"{}";

/// The record of mirror `id` at the destination: `None` when there is none.
/// Returns it with the digest of its manifest.
pub async fn load(dest: &Endpoint, id: &str) -> Result<Option<(Record, Digest)>, Error> {
    let tag = record_tag(id);
    let what = format!("reading the record of what this mirror wrote ({tag})");
    let reference = dest
        .reference
        .with_tag(&tag)
        .map_err(|e| Error::image(&what, e))?;
    let source = reference
        .new_image_source(&dest.ctx)
        .await
        .map_err(|e| Error::image(&what, e))?;
    let manifest = match source.get_manifest(None).await {
        Ok(m) => m,
        Err(e) if e.kind() == image::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::image(&what, e)),
    };
    let bad = |m: String| {
        Error::Spec(format!(
            "{what}: {m}; delete the tag {tag} at {}",
            dest.reference
        ))
    };
    let image = manifest.image().map_err(|e| bad(e.to_string()))?;
    let layer = match image.layers().as_slice() {
        [l] if l.media_type().to_string() == RECORD_MEDIA_TYPE => l.clone(),
        _ => return Err(bad("not a kubemirror record (want one layer of type application/vnd.kubemirror.record.v1+json)".into())),
    };
    if layer.size() > MAX_RECORD_BYTES {
        return Err(bad(format!("larger than {MAX_RECORD_BYTES} bytes")));
    }
    let info = BlobInfo::from(&layer);
    let blob = source
        .get_blob(&info)
        .await
        .map_err(|e| Error::image(&what, e))?;
    let bytes = read_bounded(blob, MAX_RECORD_BYTES)
        .await
        .map_err(|e| Error::image(&what, e))?;
    digest::verify_bytes(layer.digest(), &bytes).map_err(|e| bad(e.to_string()))?;
    let record = Record::parse(&bytes, id).map_err(bad)?;
    Ok(Some((record, manifest.digest())))
}

/// Read a whole (small) blob, failing past `max` bytes.
async fn read_bounded(mut blob: Blob, max: u64) -> image::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = blob.stream.next().await {
        let chunk = chunk?;
        if (out.len() + chunk.len()) as u64 > max {
            return Err(image::Error::Invalid(format!(
                "the record is larger than {max} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Write `record` under its tag at the destination.
pub async fn store(dest: &Endpoint, record: &Record) -> Result<(), Error> {
    let tag = record_tag(&record.mirror);
    let what = format!("writing the record of what this mirror wrote ({tag})");
    let e = |e| Error::image(&what, e);
    let reference = dest.reference.with_tag(&tag).map_err(e)?;
    let out = reference
        .new_image_destination(&dest.ctx)
        .await
        .map_err(e)?;
    let body = Bytes::from(record.to_bytes());
    let empty = Bytes::from_static(EMPTY);
    for b in [&empty, &body] {
        let info = BlobInfo::new(digest::sha256(b), Some(b.len() as u64));
        let bytes = b.clone();
        let blob = Blob {
            stream: futures::stream::once(async move { Ok(bytes) }).boxed(),
            size: Some(b.len() as u64),
        };
        out.put_blob(&info, blob).await.map_err(e)?;
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": RECORD_MEDIA_TYPE,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": digest::sha256(EMPTY).to_string(),
            "size": EMPTY.len(),
        },
        "layers": [{
            "mediaType": RECORD_MEDIA_TYPE,
            "digest": digest::sha256(&body).to_string(),
            "size": body.len(),
        }],
        "annotations": {"dev.kubemirror.mirror": record.mirror},
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest).expect("JSON"));
    let m = Manifest::new(bytes, Some("application/vnd.oci.image.manifest.v1+json"))
        .map_err(|err| Error::Spec(format!("{what}: {err}")))?;
    out.put_manifest(&m, None).await.map_err(e)?;
    out.commit().await.map_err(e)
}

/// Delete the record (its manifest, by digest) once nothing it lists remains.
pub async fn remove(dest: &Endpoint, digest: &Digest) -> Result<(), Error> {
    dest.reference
        .delete_manifest(&dest.ctx, digest)
        .await
        .map_err(|e| Error::image("deleting the record of what this mirror wrote", e))
}

/// The digest `reference` names at its store now; `None` when absent.
pub async fn current_digest(
    reference: &dyn ImageReference,
    ctx: &crate::image::SystemContext,
) -> image::Result<Option<Digest>> {
    reference
        .new_image_destination(ctx)
        .await?
        .existing_manifest_digest()
        .await
}
