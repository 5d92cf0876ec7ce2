//! OCI 1.1 referrers copied with an image (issue 14): the signatures,
//! attestations and SBOMs whose `subject` is the image, written at the
//! destination with their digests unchanged so that each `subject` still
//! names the image there. The engine calls this only when the image keeps
//! its digest (no `--format` conversion, no platform subset) and
//! attachments travel (registry to registry, signatures not dropped).
//!
//! **Discovery** (source): the registry's referrers API
//! ([`ImageSource::referrers`]) when it answers, else the referrers tag
//! `sha256-<hex>` (not even asked for when the caller's tag list lacks it).
//! At most [`MAX_REFERRERS`] per subject — more is an error, not a silent
//! cut — each manifest bounded by the transport, each blob at most
//! [`MAX_REFERRER_BLOB`] bytes, at most [`MAX_COPIED`] manifests per image.
//! A listed manifest whose `subject` is another image is not copied.
//!
//! **Copy** (destination): each referrer the destination does not list yet
//! is written by digest, blobs first (mounted or found present when the
//! destination can). A registry that answers `OCI-Subject` indexed it; else
//! the destination's referrers tag is merged: read (absent is fine), the
//! new entries appended by digest, destination-only entries kept, written
//! only when something was added. With no referrers tag at the destination
//! and every entry of the source's tag copied, the source's tag is written
//! byte for byte.
//!
//! **Scope**, bounded for cost: the image's top level and, when the image
//! itself is written, its copied index entries (cosign `--recursive`,
//! per-platform attestations). Referrers of a referrer (a signature of an
//! SBOM) one level down, for the referrers copied in this run. On a re-sync
//! of an unchanged image the top level only.
//!
//! **Limit**: registries have no conditional manifest PUT, so two writers
//! merging one referrers tag at the same moment can lose the other's
//! entries from the tag (never the manifests); the next sync lists ours
//! again.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::digest::Digest;
use crate::image::{
    BlobInfo, Error, ErrorKind, ImageDestination, ImageReference, ImageSource, ReuseHint,
    SystemContext,
};
use crate::manifest::{self, MAX_MANIFEST_SIZE, Manifest};
pub use crate::signature::referrers::MAX_REFERRERS;
use crate::signature::referrers::referrers_tag;

/// At most this many referrer manifests are copied with one image (its
/// instances' and the second level's included).
pub const MAX_COPIED: usize = 4 * MAX_REFERRERS;

/// A destination referrers tag is not grown past this many entries.
pub const MAX_MERGED: usize = 1024;

/// The largest blob of a referrer (an SBOM of a big image is tens of MiB).
pub const MAX_REFERRER_BLOB: u64 = 256 << 20;

/// Both sides of a copy, for copying referrers.
pub(super) struct Referrers<'a> {
    pub src: &'a dyn ImageSource,
    pub dst: &'a dyn ImageDestination,
    pub src_ref: &'a dyn ImageReference,
    pub src_ctx: &'a SystemContext,
    pub dst_ref: &'a dyn ImageReference,
    pub dst_ctx: &'a SystemContext,
    /// The source's tags when the caller listed them: a referrers tag
    /// missing from the list is not asked for.
    pub source_tags: Option<&'a BTreeSet<String>>,
}

/// One descriptor of a referrers index.
struct Entry {
    digest: Digest,
    /// The descriptor as listed (media type, size, `artifactType`, annotations).
    value: Value,
}

/// The referrers of one subject at the source.
struct Listing {
    entries: Vec<Entry>,
    /// The referrers tag they came from (`None`: the referrers API).
    tag: Option<Manifest>,
}

/// What the destination lists for one subject.
enum Present {
    /// Its referrers API answered: it indexes subjects itself.
    Api(HashSet<Digest>),
    /// Its referrers tag (`None`: absent).
    Tag(Option<(Value, HashSet<Digest>)>),
}

impl Referrers<'_> {
    /// Copy the referrers of `subjects` (and theirs, one level down);
    /// returns how many manifests were written.
    pub async fn copy(&self, subjects: &[Digest]) -> Result<u64, Error> {
        let mut budget = MAX_COPIED;
        let mut written = Vec::new();
        for s in subjects {
            written.extend(self.copy_of(s, &mut budget).await?);
        }
        let mut count = written.len();
        for r in &written {
            count += self.copy_of(r, &mut budget).await?.len();
        }
        Ok(count as u64)
    }

    /// Copy the referrers of `subject` the destination does not list;
    /// returns the digests written.
    async fn copy_of(&self, subject: &Digest, budget: &mut usize) -> Result<Vec<Digest>, Error> {
        let listing = self.source_listing(subject).await?;
        if listing.entries.is_empty() {
            return Ok(Vec::new());
        }
        let present = self.destination_listing(subject).await?;
        let listed = match &present {
            Present::Api(d) | Present::Tag(Some((_, d))) => Some(d),
            Present::Tag(None) => None,
        };
        let hint = ReuseHint {
            source: self.src_ref.docker_reference(),
        };
        let mut written = Vec::new();
        let mut new_entries = Vec::new();
        let mut indexed = false;
        for e in &listing.entries {
            if listed.is_some_and(|l| l.contains(&e.digest)) {
                continue;
            }
            // The transport checks the bytes against the digest asked for.
            let m = match self.src.get_manifest(Some(&e.digest)).await {
                Ok(m) => m,
                // A referrers tag still listing a deleted artifact.
                Err(err) if err.kind() == ErrorKind::NotFound => {
                    tracing::warn!(referrer = %e.digest, %subject, "listed as a referrer but absent: not copied");
                    continue;
                }
                Err(err) => return Err(err),
            };
            if subject_of(&m).as_ref() != Some(subject) {
                tracing::warn!(referrer = %e.digest, %subject, "listed as a referrer of another image (or not an image manifest): not copied");
                continue;
            }
            if *budget == 0 {
                return Err(Error::Unsupported(format!(
                    "{}: more than {MAX_COPIED} referrers to copy with one image",
                    self.src.reference()
                )));
            }
            *budget -= 1;
            self.copy_blobs(&m, &hint).await?;
            indexed |= self.dst.put_referrer(&m).await?;
            written.push(e.digest.clone());
            new_entries.push(e.value.clone());
        }
        if let Present::Tag(existing) = present
            && !indexed
            && !new_entries.is_empty()
        {
            self.merge_tag(subject, existing, new_entries, &listing)
                .await?;
        }
        Ok(written)
    }

    /// The source's referrers of `subject`: its API, else its referrers tag.
    async fn source_listing(&self, subject: &Digest) -> Result<Listing, Error> {
        let what = format!("referrers of {subject} at {}", self.src.reference());
        if let Some(index) = self.src.referrers(subject, None).await? {
            let v = parse_index(&index, &what)?;
            return Ok(Listing {
                entries: entries(&v, MAX_REFERRERS, &what)?,
                tag: None,
            });
        }
        let tag = referrers_tag(subject);
        if self.source_tags.is_some_and(|t| !t.contains(&tag)) {
            return Ok(Listing {
                entries: Vec::new(),
                tag: None,
            });
        }
        let Some(m) = read_tag(self.src_ref, self.src_ctx, &tag).await? else {
            return Ok(Listing {
                entries: Vec::new(),
                tag: None,
            });
        };
        let v = parse_tag(&m, &what)?;
        Ok(Listing {
            entries: entries(&v, MAX_REFERRERS, &what)?,
            tag: Some(m),
        })
    }

    /// What the destination lists for `subject`.
    async fn destination_listing(&self, subject: &Digest) -> Result<Present, Error> {
        let what = format!("referrers of {subject} at {}", self.dst.reference());
        let dst_src = self.dst_ref.new_image_source(self.dst_ctx).await?;
        if let Some(index) = dst_src.referrers(subject, None).await? {
            let v = parse_index(&index, &what)?;
            let digests = entries(&v, MAX_MERGED, &what)?
                .into_iter()
                .map(|e| e.digest)
                .collect();
            return Ok(Present::Api(digests));
        }
        let Some(m) = read_tag(self.dst_ref, self.dst_ctx, &referrers_tag(subject)).await? else {
            return Ok(Present::Tag(None));
        };
        let v = parse_tag(&m, &what)?;
        let digests = entries(&v, MAX_MERGED, &what)?
            .into_iter()
            .map(|e| e.digest)
            .collect();
        Ok(Present::Tag(Some((v, digests))))
    }

    /// Write the destination's referrers tag of `subject` with `added`
    /// listed after what `existing` lists.
    async fn merge_tag(
        &self,
        subject: &Digest,
        existing: Option<(Value, HashSet<Digest>)>,
        added: Vec<Value>,
        listing: &Listing,
    ) -> Result<(), Error> {
        let tag = referrers_tag(subject);
        let bytes = match (existing, &listing.tag) {
            // Nothing there, everything of the source's tag copied: its bytes.
            (None, Some(m)) if added.len() == listing.entries.len() => m.bytes.clone(),
            (None, _) => serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": manifest::OCI_INDEX,
                "manifests": added,
            }))
            .map_err(|e| Error::Invalid(format!("referrers index: {e}")))?
            .into(),
            (Some((mut v, listed)), _) => {
                if listed.len() + added.len() > MAX_MERGED {
                    return Err(Error::Unsupported(format!(
                        "{}: the referrers tag {tag} would list more than {MAX_MERGED} referrers",
                        self.dst.reference()
                    )));
                }
                match v["manifests"].as_array_mut() {
                    Some(list) => list.extend(added),
                    None => v["manifests"] = Value::Array(added),
                }
                serde_json::to_vec(&v)
                    .map_err(|e| Error::Invalid(format!("referrers index: {e}")))?
                    .into()
            }
        };
        let m = Manifest::new(bytes, Some(manifest::OCI_INDEX))
            .map_err(|e| Error::manifest(self.dst.reference(), e))?;
        let to = self.dst_ref.with_tag(&tag)?;
        let dst = to.new_image_destination(self.dst_ctx).await?;
        dst.put_manifest(&m, None).await?;
        dst.commit().await
    }

    /// The config and layers of referrer `m`, each found, mounted or streamed.
    async fn copy_blobs(&self, m: &Manifest, hint: &ReuseHint) -> Result<(), Error> {
        let loc = self.src.reference().to_string();
        let img = m.image().map_err(|e| Error::manifest(&loc, e))?;
        for d in manifest::blobs(&img) {
            if d.size() > MAX_REFERRER_BLOB {
                return Err(Error::Unsupported(format!(
                    "{loc}: referrer {} has a blob of {} bytes, over the {MAX_REFERRER_BLOB}-byte limit",
                    m.digest(),
                    d.size()
                )));
            }
            let info = BlobInfo::from(&d);
            if self.dst.try_reusing_blob(&info, hint).await?.is_some() {
                continue;
            }
            let blob = self.src.get_blob(&info).await?;
            self.dst.put_blob(&info, blob).await?;
        }
        Ok(())
    }
}

/// The digests a referrers index (the API's answer or a referrers tag)
/// lists: at most [`MAX_MERGED`], each descriptor checked as a copy checks
/// it. The parser's entry point for fuzzing.
pub fn listed_digests(index: &[u8]) -> Result<Vec<Digest>, Error> {
    let v = parse_index(index, "referrers index")?;
    Ok(entries(&v, MAX_MERGED, "referrers index")?
        .into_iter()
        .map(|e| e.digest)
        .collect())
}

/// The manifest tagged `tag` beside `image`; `None` when absent.
async fn read_tag(
    image: &dyn ImageReference,
    ctx: &SystemContext,
    tag: &str,
) -> Result<Option<Manifest>, Error> {
    let tagged = image.with_tag(tag)?;
    match tagged.new_image_source(ctx).await?.get_manifest(None).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `subject` digest of an image manifest (`None`: no subject, or an index).
fn subject_of(m: &Manifest) -> Option<Digest> {
    if m.is_index() {
        return None;
    }
    let v: Value = serde_json::from_slice(&m.bytes).ok()?;
    crate::digest::parse(v["subject"]["digest"].as_str()?).ok()
}

fn parse_index(bytes: &[u8], what: &str) -> Result<Value, Error> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Invalid(format!("{what}: not an OCI index: {e}")))?;
    if !v.is_object() {
        return Err(Error::Invalid(format!("{what}: not an OCI index")));
    }
    Ok(v)
}

/// A referrers tag must hold an OCI index.
fn parse_tag(m: &Manifest, what: &str) -> Result<Value, Error> {
    if m.media_type != manifest::OCI_INDEX {
        return Err(Error::Invalid(format!(
            "{what}: the referrers tag holds {}, not an OCI index",
            m.media_type
        )));
    }
    parse_index(&m.bytes, what)
}

/// The descriptors of index `v`, at most `max` of them, each with a valid
/// digest, a media type and a size within the manifest limit.
fn entries(v: &Value, max: usize, what: &str) -> Result<Vec<Entry>, Error> {
    let list = match &v["manifests"] {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(Error::Invalid(format!("{what}: `manifests` is not a list"))),
    };
    if list.len() > max {
        return Err(Error::Unsupported(format!(
            "{what}: {} referrers listed, over the limit of {max}",
            list.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for d in list {
        let bad = |m: &str| Error::Invalid(format!("{what}: a descriptor {m}"));
        let digest = d["digest"]
            .as_str()
            .and_then(|s| crate::digest::parse(s).ok())
            .ok_or_else(|| bad("has no valid digest"))?;
        if !d["mediaType"].is_string() {
            return Err(bad("has no media type"));
        }
        match d["size"].as_u64() {
            Some(s) if s <= MAX_MANIFEST_SIZE as u64 => {}
            _ => return Err(bad("has no size, or one over the manifest limit")),
        }
        if seen.insert(digest.clone()) {
            out.push(Entry {
                digest,
                value: d.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(n: usize) -> Value {
        let d = |i: usize| {
            serde_json::json!({
                "mediaType": manifest::OCI_MANIFEST,
                "digest": crate::digest::sha256(&i.to_be_bytes()).to_string(),
                "size": 10,
            })
        };
        serde_json::json!({"schemaVersion": 2, "manifests": (0..n).map(d).collect::<Vec<_>>()})
    }

    #[test]
    fn entries_are_bounded_and_deduplicated() {
        assert_eq!(entries(&index(3), 3, "x").unwrap().len(), 3);
        let e = entries(&index(4), 3, "x").err().unwrap().to_string();
        assert!(e.contains("4 referrers listed, over the limit of 3"), "{e}");
        let mut v = index(1);
        let first = v["manifests"][0].clone();
        v["manifests"].as_array_mut().unwrap().push(first);
        assert_eq!(entries(&v, 3, "x").unwrap().len(), 1);
        assert!(entries(&serde_json::json!({}), 3, "x").unwrap().is_empty());
    }

    #[test]
    fn bad_descriptors_are_refused() {
        for bad in [
            serde_json::json!({"mediaType": "a", "digest": "sha256:zz", "size": 1}),
            serde_json::json!({"digest": crate::digest::sha256(b"a").to_string(), "size": 1}),
            serde_json::json!({"mediaType": "a", "digest": crate::digest::sha256(b"a").to_string(), "size": u64::MAX}),
        ] {
            let v = serde_json::json!({"manifests": [bad]});
            assert!(entries(&v, 3, "x").is_err(), "{v}");
        }
        let v = serde_json::json!({"manifests": {"a": 1}});
        assert!(entries(&v, 3, "x").is_err());
    }
}
