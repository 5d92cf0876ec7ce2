//! Field sets in the `FieldsV1` vocabulary: a path is a list of keys such as
//! `f:spec`, `f:size`, `v:"finalizer"`; a set holds leaf paths.
//!
//! Maps are tracked per key, lists as a whole except `metadata.finalizers`
//! (a set, one `v:` entry per element).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One path, as `FieldsV1` keys.
pub type Path = Vec<String>;
/// A set of leaf paths.
pub type FieldSet = BTreeSet<Path>;

fn is_set_list(prefix: &[String]) -> bool {
    prefix == ["f:metadata", "f:finalizers"]
}

fn collect(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                prefix.push(format!("f:{k}"));
                collect(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) if is_set_list(prefix) => {
            for e in a {
                prefix.push(format!("v:{e}"));
                out.insert(prefix.clone());
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

/// The leaf paths of a value.
pub fn leaf_paths(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    collect(v, &mut Vec::new(), &mut out);
    out
}

/// The value at `path`, if present.
pub fn value_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = if let Some(k) = p.strip_prefix("f:") {
            cur.get(k)?
        } else if let Some(j) = p.strip_prefix("v:") {
            let want: Value = serde_json::from_str(j).ok()?;
            cur.as_array()?.iter().find(|e| **e == want)?
        } else {
            return None;
        };
    }
    Some(cur)
}

/// Removes the value at `path` (a `v:` entry removes that list element).
pub fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, init)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for p in init {
        let Some(k) = p.strip_prefix("f:") else {
            return;
        };
        let Some(next) = cur.get_mut(k) else { return };
        cur = next;
    }
    if let Some(k) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(k);
        }
    } else if let Some(j) = last.strip_prefix("v:")
        && let (Ok(want), Some(a)) = (serde_json::from_str::<Value>(j), cur.as_array_mut())
    {
        a.retain(|e| *e != want);
    }
}

/// Whether `a` is a prefix of `b` (or equal).
pub fn is_prefix(a: &[String], b: &[String]) -> bool {
    a.len() <= b.len() && b[..a.len()] == *a
}

/// `.spec.size`, `.metadata.finalizers[="f"]`: the API server's path notation.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if let Some(k) = p.strip_prefix("f:") {
            s.push('.');
            s.push_str(k);
        } else if let Some(v) = p.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(k) = p.strip_prefix("k:") {
            let pairs: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", pairs.join(",")));
        } else {
            s.push_str(&format!("[{p}]"));
        }
    }
    s
}

/// Serializes a set as a `fieldsV1` object.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for (i, p) in path.iter().enumerate() {
            let is_last = i + 1 == path.len();
            let node = cur
                .entry(p.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let m = node.as_object_mut().expect("fieldsV1 node");
            if is_last {
                if !m.is_empty() {
                    m.insert(".".into(), Value::Object(Map::new()));
                }
            } else if m.is_empty() && set.contains(&path[..=i].to_vec()) {
                m.insert(".".into(), Value::Object(Map::new()));
            }
            cur = m;
        }
    }
    Value::Object(root)
}

fn parse_node(node: &Map<String, Value>, prefix: &mut Path, out: &mut FieldSet) {
    if node.is_empty() {
        if !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        return;
    }
    for (k, v) in node {
        if k == "." {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            continue;
        }
        prefix.push(k.clone());
        match v.as_object() {
            Some(m) => parse_node(m, prefix, out),
            None => {
                out.insert(prefix.clone());
            }
        }
        prefix.pop();
    }
}

/// Parses a `fieldsV1` object.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    if let Some(m) = v.as_object() {
        parse_node(m, &mut Vec::new(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roundtrip() {
        let v = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["x", "y"]}, "spec": {"size": 1, "list": [1, 2], "empty": {}}});
        let set = leaf_paths(&v);
        assert_eq!(set.len(), 6);
        let f = to_fields_v1(&set);
        assert_eq!(f["f:metadata"]["f:finalizers"]["v:\"x\""], json!({}));
        assert_eq!(from_fields_v1(&f), set);
        assert_eq!(
            value_at(
                &v,
                &["f:metadata".into(), "f:finalizers".into(), "v:\"y\"".into()]
            ),
            Some(&json!("y"))
        );
        assert_eq!(
            path_string(&["f:spec".into(), "f:size".into()]),
            ".spec.size"
        );
        let mut w = v.clone();
        remove_path(
            &mut w,
            &["f:metadata".into(), "f:finalizers".into(), "v:\"x\"".into()],
        );
        assert_eq!(w["metadata"]["finalizers"], json!(["y"]));
    }
}
