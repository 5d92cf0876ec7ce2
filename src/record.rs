//! The record of what one `ImageMirror` wrote, as stored at its destination
//! (pure data: the format and its parser; `reconcile::record` reads and
//! writes it, and says why it lives there).
//!
//! JSON `{"mirror": "namespace/name", "tags": {"1.27": "sha256:…"}}`, the one
//! layer of an OCI artifact of type [`RECORD_MEDIA_TYPE`] tagged
//! [`record_tag`]. What a registry sends back is untrusted: [`Record::parse`]
//! bounds the size and the number of tags and checks every tag, digest and
//! the owner. Hand-written (no crate knows this format); fuzzed by
//! `fuzz/fuzz_targets/record.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest;
use crate::reference::is_valid_tag;

/// The artifact type and the record layer's media type.
pub const RECORD_MEDIA_TYPE: &str = "application/vnd.kubemirror.record.v1+json";
/// The largest record read back.
pub const MAX_RECORD_BYTES: u64 = 2 * 1024 * 1024;
/// The most tags a record holds; tags written past it are not recorded (and
/// so never deleted).
pub const MAX_RECORD_TAGS: usize = 10_000;
/// The prefix of record tags.
pub const RECORD_TAG_PREFIX: &str = "kubemirror-record.";

/// What one mirror wrote: tag → the digest it wrote there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `namespace/name` of the mirror.
    pub mirror: String,
    pub tags: BTreeMap<String, String>,
}

/// The tag holding the record of mirror `id` (`namespace/name`).
pub fn record_tag(id: &str) -> String {
    let d = digest::sha256(id.as_bytes());
    format!("{RECORD_TAG_PREFIX}{}", &digest::hex_of(&d)[..16])
}

/// Whether `tag` is a record tag (of any mirror): never copied, pruned or
/// counted as another tag of a digest.
pub fn is_record_tag(tag: &str) -> bool {
    tag.starts_with(RECORD_TAG_PREFIX)
}

impl Record {
    pub fn new(id: &str) -> Self {
        Record {
            mirror: id.to_string(),
            tags: BTreeMap::new(),
        }
    }

    /// Parse a record's JSON. Refuses more than [`MAX_RECORD_TAGS`] tags, an
    /// invalid tag or digest, and a record of another mirror.
    pub fn parse(bytes: &[u8], id: &str) -> Result<Record, String> {
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            return Err(format!("larger than {MAX_RECORD_BYTES} bytes"));
        }
        let r: Record = serde_json::from_slice(bytes).map_err(|e| format!("not a record: {e}"))?;
        if r.mirror != id {
            return Err(format!(
                "it belongs to mirror {}, not {id:?}",
                short(&r.mirror)
            ));
        }
        if r.tags.len() > MAX_RECORD_TAGS {
            return Err(format!("more than {MAX_RECORD_TAGS} tags"));
        }
        for (t, d) in &r.tags {
            if !is_valid_tag(t) {
                return Err(format!("invalid tag {}", short(t)));
            }
            digest::parse(d).map_err(|e| format!("tag {t}: {e}"))?;
        }
        Ok(r)
    }

    /// Record that this mirror wrote `digest` under `tag` (ignored past
    /// [`MAX_RECORD_TAGS`]).
    pub fn insert(&mut self, tag: &str, digest: &str) {
        if self.tags.len() < MAX_RECORD_TAGS || self.tags.contains_key(tag) {
            self.tags.insert(tag.to_string(), digest.to_string());
        }
    }

    /// The record's JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record serialises")
    }
}

/// `s` for an error message: at most 64 characters, escaped.
fn short(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn record_tags_are_per_mirror_and_valid() {
        let a = record_tag("default/app");
        assert!(is_valid_tag(&a) && is_record_tag(&a), "{a}");
        assert_ne!(a, record_tag("default/other"));
        assert_eq!(a, record_tag("default/app"));
    }

    #[test]
    fn parse_checks_owner_tags_digests_and_size() {
        let mut r = Record::new("ns/m");
        r.insert("1.0", D);
        let bytes = r.to_bytes();
        assert_eq!(Record::parse(&bytes, "ns/m").unwrap(), r);
        let e = Record::parse(&bytes, "ns/other").unwrap_err();
        assert!(e.contains("belongs to mirror"), "{e}");
        let bad_tag = br#"{"mirror":"ns/m","tags":{"bad tag":"sha256:00"}}"#;
        assert!(
            Record::parse(bad_tag, "ns/m")
                .unwrap_err()
                .contains("invalid tag")
        );
        let bad_digest = br#"{"mirror":"ns/m","tags":{"t":"md5:00"}}"#;
        assert!(Record::parse(bad_digest, "ns/m").is_err());
        assert!(Record::parse(b"[1,2", "ns/m").is_err());
        let big = vec![b' '; MAX_RECORD_BYTES as usize + 1];
        assert!(Record::parse(&big, "ns/m").unwrap_err().contains("larger"));
    }

    #[test]
    fn insert_stops_at_the_cap_but_updates_known_tags() {
        let mut r = Record::new("ns/m");
        for i in 0..MAX_RECORD_TAGS + 5 {
            r.insert(&format!("t{i}"), D);
        }
        assert_eq!(r.tags.len(), MAX_RECORD_TAGS);
        r.insert("t0", "sha256:ff");
        assert_eq!(r.tags["t0"], "sha256:ff");
    }
}
