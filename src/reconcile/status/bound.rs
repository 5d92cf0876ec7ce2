//! Bounds on a whole status, whatever a registry returns: the API server
//! refuses objects over ~1.5 MiB, and a status is rewritten often. Every
//! string is cut (control characters made spaces), every list and map is
//! cut to a per-field number of entries, and if the whole is still over
//! [`MAX_STATUS_BYTES`] serialised, the largest list is halved until it is
//! not. What was left out is counted in `status.omitted` (`repoTags: 149001`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::sanitise;

/// The most one object's status takes, serialised.
pub const MAX_STATUS_BYTES: usize = 256 << 10;
/// Longest string in a status (an error message, a label value).
pub const MAX_STRING: usize = 2048;
/// Longest signature payload kept (base64 of a bounded excerpt already).
const MAX_PAYLOAD_STRING: usize = 8192;

/// Entries kept per list or map, by field name; others: [`DEFAULT_ENTRIES`].
const ENTRIES: &[(&str, usize)] = &[
    ("repoTags", 1000),
    ("env", 256),
    ("labels", 128),
    ("annotations", 32),
    ("layers", 256),
    ("layersData", 256),
    ("platforms", 128),
    ("signatures", 32),
    ("tags", super::MAX_STATUS_TAGS),
    ("pruned", super::MAX_STATUS_TAGS),
];
const DEFAULT_ENTRIES: usize = 64;
/// Fields never cut (already bounded by their producer).
const KEEP: &[&str] = &["conditions", "omitted", "summary"];

/// `status` bounded as this module says, with `omitted` filled in.
pub fn bound<S: Serialize + DeserializeOwned>(status: S) -> S {
    let Ok(mut v) = serde_json::to_value(&status) else {
        return status;
    };
    let Some(top) = v.as_object_mut() else {
        return status;
    };
    let mut omitted: BTreeMap<String, i64> = top
        .get("omitted")
        .and_then(|o| serde_json::from_value(o.clone()).ok())
        .unwrap_or_default();
    for (key, value) in top.iter_mut() {
        if !KEEP.contains(&key.as_str()) {
            cut(key, value, &mut omitted, true);
        }
    }
    // Still too big: halve the largest cuttable field until it fits.
    while serde_json::to_vec(&*top).map_or(0, |b| b.len()) > MAX_STATUS_BYTES {
        let Some((key, len)) = top
            .iter()
            .filter(|(k, _)| !KEEP.contains(&k.as_str()))
            .filter_map(|(k, v)| Some((k.clone(), entries(v)?)))
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(k, _)| serde_json::to_vec(&top[k]).map_or(0, |b| b.len()))
        else {
            break;
        };
        let keep = len / 2;
        truncate_entries(top.get_mut(&key).expect("listed"), keep);
        *omitted.entry(key).or_default() += (len - keep) as i64;
    }
    if !omitted.is_empty() {
        top.insert(
            "omitted".into(),
            serde_json::to_value(&omitted).unwrap_or_default(),
        );
    }
    serde_json::from_value(v).unwrap_or(status)
}

fn entries(v: &Value) -> Option<usize> {
    match v {
        Value::Array(a) => Some(a.len()),
        Value::Object(m) => Some(m.len()),
        _ => None,
    }
}

fn truncate_entries(v: &mut Value, keep: usize) {
    match v {
        Value::Array(a) => a.truncate(keep),
        Value::Object(m) => {
            let drop: Vec<String> = m.keys().skip(keep).cloned().collect();
            for k in drop {
                m.remove(&k);
            }
        }
        _ => {}
    }
}

/// Cut strings, lists and maps under `key`; `count` says whether entries
/// left out are counted (top-level fields only, so the counts stay few).
fn cut(key: &str, v: &mut Value, omitted: &mut BTreeMap<String, i64>, count: bool) {
    let limit = ENTRIES
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(DEFAULT_ENTRIES, |(_, n)| *n);
    if let Some(n) = entries(v)
        && n > limit
    {
        truncate_entries(v, limit);
        if count {
            *omitted.entry(key.to_string()).or_default() += (n - limit) as i64;
        }
    }
    match v {
        Value::String(s) => {
            let max = if key == "payload" {
                MAX_PAYLOAD_STRING
            } else {
                MAX_STRING
            };
            if s.chars().count() > max || s.chars().any(char::is_control) {
                *s = sanitise(s, max);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| cut(key, x, omitted, false)),
        Value::Object(m) => {
            // Map keys (label names) are strings a registry chose, too.
            let long: Vec<String> = m.keys().filter(|k| k.len() > MAX_STRING).cloned().collect();
            for k in long {
                if let Some(val) = m.remove(&k) {
                    m.insert(sanitise(&k, MAX_STRING), val);
                }
            }
            for (k, x) in m.iter_mut() {
                cut(k, x, omitted, false);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha1::{ImageInspectionStatus, ImageMirrorStatus, TagStatus};

    fn size<S: Serialize>(s: &S) -> usize {
        serde_json::to_vec(s).unwrap().len()
    }

    #[test]
    fn a_hostile_inspection_stays_small_and_counts_what_was_left_out() {
        let st = ImageInspectionStatus {
            repo_tags: (0..150_001).map(|i| format!("tag-{i}")).collect(),
            labels: (0..500)
                .map(|i| (format!("l{i}"), "v".repeat(10_000)))
                .collect(),
            env: (0..1000)
                .map(|i| format!("E{i}={}", "x".repeat(5000)))
                .collect(),
            layers: (0..10_000).map(|i| format!("sha256:{i:064}")).collect(),
            digest: "d\u{1b}[31m".repeat(1_000_000),
            ..Default::default()
        };
        let b = bound(st);
        assert!(size(&b) <= MAX_STATUS_BYTES, "{}", size(&b));
        assert_eq!(b.omitted["repoTags"], 150_001 - b.repo_tags.len() as i64);
        assert!(b.repo_tags.len() <= 1000);
        assert_eq!(b.omitted["labels"], 500 - b.labels.len() as i64);
        assert!(b.omitted["env"] >= 1000 - 256);
        assert!(b.digest.len() < 3 * MAX_STRING && !b.digest.contains('\u{1b}'));
        assert!(b.digest.contains("more characters"));
    }

    #[test]
    fn a_three_megabyte_tag_error_is_cut() {
        let st = ImageMirrorStatus {
            tags: vec![TagStatus {
                name: "v1".into(),
                error: "E".repeat(3 << 20),
                ..Default::default()
            }],
            ..Default::default()
        };
        let b = bound(st);
        assert!(b.tags[0].error.len() < MAX_STRING + 100);
        assert!(b.omitted.is_empty(), "strings are cut, not counted");
    }

    #[test]
    fn a_small_status_is_unchanged() {
        let st = ImageInspectionStatus {
            repo_tags: vec!["v1".into(), "v2".into()],
            env: vec!["PATH=/bin".into()],
            ..Default::default()
        };
        assert_eq!(bound(st.clone()), st);
    }
}
