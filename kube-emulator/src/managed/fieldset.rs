//! Field sets in the `FieldsV1` vocabulary: a path is a list of keys such as
//! `f:spec`, `f:size`, `v:"finalizer"`, `k:{"type":"Ready"}`; a set holds
//! leaf paths (and the element paths of map lists).
//!
//! Maps are tracked per key. Lists are atomic unless the schema says
//! `x-kubernetes-list-type: set` (one `v:` entry per element) or `map`
//! (one `k:` entry per element, its fields tracked inside);
//! `metadata.finalizers` is always a set.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One path, as `FieldsV1` keys.
pub type Path = Vec<String>;
/// A set of leaf paths.
pub type FieldSet = BTreeSet<Path>;

/// How a list is merged and owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced and owned as a whole.
    Atomic,
    /// Elements are scalars, owned one by one.
    Set,
    /// Elements are objects identified by these key fields.
    Map(Vec<String>),
}

/// The schema of the field `key` inside an object schema.
pub fn child_schema<'a>(schema: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    let s = schema?;
    s.get("properties")
        .and_then(|p| p.get(key))
        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
}

/// The kind of the list at `prefix` with schema `schema`.
pub fn list_kind(prefix: &[String], schema: Option<&Value>) -> ListKind {
    if prefix == ["f:metadata", "f:finalizers"] {
        return ListKind::Set;
    }
    match schema
        .and_then(|s| s.get("x-kubernetes-list-type"))
        .and_then(Value::as_str)
    {
        Some("set") => ListKind::Set,
        Some("map") => {
            let keys: Vec<String> = schema
                .and_then(|s| s.get("x-kubernetes-list-map-keys"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if keys.is_empty() {
                ListKind::Atomic
            } else {
                ListKind::Map(keys)
            }
        }
        _ => ListKind::Atomic,
    }
}

/// The `k:` segment of a map-list element, if it has every key field.
pub fn element_key(e: &Value, keys: &[String]) -> Option<String> {
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), e.get(k)?.clone());
    }
    Some(format!("k:{}", Value::Object(m)))
}

fn matches_key(e: &Value, key: &Map<String, Value>) -> bool {
    key.iter().all(|(k, v)| e.get(k) == Some(v))
}

fn collect(v: &Value, schema: Option<&Value>, prefix: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                prefix.push(format!("f:{k}"));
                collect(c, child_schema(schema, k), prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => match list_kind(prefix, schema) {
            ListKind::Set => {
                for e in a {
                    prefix.push(format!("v:{e}"));
                    out.insert(prefix.clone());
                    prefix.pop();
                }
            }
            ListKind::Map(keys) if a.iter().all(|e| element_key(e, &keys).is_some()) => {
                let items = schema.and_then(|s| s.get("items"));
                for e in a {
                    prefix.push(element_key(e, &keys).expect("checked"));
                    out.insert(prefix.clone());
                    collect(e, items, prefix, out);
                    prefix.pop();
                }
            }
            _ => {
                out.insert(prefix.clone());
            }
        },
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

/// The leaf paths of a value whose schema (rooted like the value) is `schema`.
pub fn leaf_paths(v: &Value, schema: Option<&Value>) -> FieldSet {
    let mut out = FieldSet::new();
    collect(v, schema, &mut Vec::new(), &mut out);
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
        } else if let Some(j) = p.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(j).ok()?;
            cur.as_array()?.iter().find(|e| matches_key(e, &key))?
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
        let next = if let Some(k) = p.strip_prefix("f:") {
            cur.get_mut(k)
        } else if let Some(j) = p.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(j) else {
                return;
            };
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|e| matches_key(e, &key)))
        } else {
            None
        };
        let Some(next) = next else { return };
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
    } else if let Some(j) = last.strip_prefix("k:")
        && let (Ok(key), Some(a)) = (
            serde_json::from_str::<Map<String, Value>>(j),
            cur.as_array_mut(),
        )
    {
        a.retain(|e| !matches_key(e, &key));
    }
}

/// Whether the path names a map-list element (ends in a `k:` segment).
pub fn is_element(p: &[String]) -> bool {
    p.last().is_some_and(|s| s.starts_with("k:"))
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
    fn map_lists() {
        let schema = json!({"properties": {"status": {"properties": {"conditions": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
            "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}}}}}});
        let mut v = json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]}});
        let set = leaf_paths(&v, Some(&schema));
        let a: Path = vec![
            "f:status".into(),
            "f:conditions".into(),
            "k:{\"type\":\"A\"}".into(),
        ];
        assert!(set.contains(&a));
        assert_eq!(set.len(), 6);
        let mut status = a.clone();
        status.push("f:status".into());
        assert_eq!(value_at(&v, &status), Some(&json!("True")));
        let fields = to_fields_v1(&set);
        assert_eq!(
            fields["f:status"]["f:conditions"]["k:{\"type\":\"A\"}"]["."],
            json!({})
        );
        assert_eq!(from_fields_v1(&fields), set);
        remove_path(&mut v, &a);
        assert_eq!(
            v["status"]["conditions"],
            json!([{"type": "B", "status": "False"}])
        );
    }

    #[test]
    fn roundtrip() {
        let v = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["x", "y"]}, "spec": {"size": 1, "list": [1, 2], "empty": {}}});
        let set = leaf_paths(&v, None);
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
