//! JSON merge patch (RFC 7386), JSON patch (RFC 6902) with the API
//! server's `test` quirk (testing a missing location against `null` passes;
//! kube-rs' `finalizer()` relies on it), and the subset of strategic merge
//! patch the built-in kinds here need: merge semantics plus the `$patch`,
//! `$retainKeys`, `$setElementOrder/` and `$deleteFromPrimitiveList/`
//! directives, `metadata.finalizers` merged as a set and
//! `metadata.ownerReferences` merged by `uid`.

use serde_json::{Map, Value};

/// A JSON patch failure; the message is the API server's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is not a valid JSON patch.
    #[error("{0}")]
    Malformed(String),
    /// A `test` operation failed.
    #[error("testing value {0} failed: test failed")]
    TestFailed(String),
    /// A path does not exist or cannot be used.
    #[error("{0}")]
    Path(String),
}

/// Applies an RFC 7386 merge patch to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Applies a strategic merge patch (the subset described in the module docs).
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    smp(target, patch, &mut Vec::new());
}

fn smp(target: &mut Value, patch: &Value, path: &mut Vec<String>) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = p.clone();
        clean.remove("$patch");
        *target = Value::Object(clean);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k == "$patch" || k.starts_with("$setElementOrder/") || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(gone)) = (t.get_mut(field), v.as_array()) {
                list.retain(|e| !gone.contains(e));
            }
            continue;
        }
        if v.is_null() || v.get("$patch").and_then(Value::as_str) == Some("delete") {
            t.remove(k);
            continue;
        }
        path.push(k.clone());
        let at_meta = path.len() == 2 && path[0] == "metadata";
        match (t.get_mut(k), v) {
            (Some(Value::Array(live)), Value::Array(items)) if at_meta && k == "finalizers" => {
                for i in items {
                    if !live.contains(i) {
                        live.push(i.clone());
                    }
                }
            }
            (Some(Value::Array(live)), Value::Array(items))
                if at_meta && k == "ownerReferences" =>
            {
                for i in items {
                    match live
                        .iter_mut()
                        .find(|l| l.get("uid").is_some() && l.get("uid") == i.get("uid"))
                    {
                        Some(l) => smp(l, i, &mut Vec::new()),
                        None => live.push(i.clone()),
                    }
                }
            }
            (Some(existing), _) => smp(existing, v, path),
            (None, _) => {
                let mut fresh = Value::Null;
                smp(&mut fresh, v, path);
                t.insert(k.clone(), fresh);
            }
        }
        path.pop();
    }
    if let Some(keys) = p.get("$retainKeys").and_then(Value::as_array) {
        t.retain(|k, _| keys.iter().any(|x| x.as_str() == Some(k)));
    }
    for (k, order) in p {
        let (Some(field), Some(order)) = (k.strip_prefix("$setElementOrder/"), order.as_array())
        else {
            continue;
        };
        if let Some(Value::Array(list)) = t.get_mut(field)
            && list.iter().all(|e| !e.is_object())
        {
            list.sort_by_key(|e| order.iter().position(|o| o == e).unwrap_or(usize::MAX));
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(vec![]);
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| PatchError::Malformed(format!("invalid JSON pointer {path:?}")))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent<'a>(
    doc: &'a mut Value,
    tokens: &[String],
    path: &str,
) -> Result<&'a mut Value, PatchError> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| PatchError::Path(format!("doc is missing path: {path:?}: missing value")))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    let tokens = split_pointer(path)?;
    let Some((last, init)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent(doc, init, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| PatchError::Path(format!("invalid array index {last:?}")))?;
                if i > a.len() {
                    return Err(PatchError::Path(format!(
                        "add operation does not apply: doc is missing path: {path:?}"
                    )));
                }
                a.insert(i, value);
            }
        }
        _ => return Err(PatchError::Path(format!("doc is missing path: {path:?}"))),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, PatchError> {
    let tokens = split_pointer(path)?;
    let Some((last, init)) = tokens.split_last() else {
        return Err(PatchError::Path("cannot remove the document root".into()));
    };
    let missing = || {
        PatchError::Path(format!(
            "remove operation does not apply: doc is missing path: {path:?}"
        ))
    };
    match parent(doc, init, path)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}

fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        Some(doc)
    } else {
        doc.pointer(path)
    }
}

/// Applies an RFC 6902 JSON patch to `doc` (all or nothing).
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| PatchError::Malformed("json patch must be an array of operations".into()))?;
    let mut work = doc.clone();
    for op in ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| PatchError::Malformed("missing op".into()))?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| PatchError::Malformed(format!("operation {kind} missing path")))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| PatchError::Malformed(format!("operation {kind} missing value")))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| PatchError::Malformed(format!("operation {kind} missing from")))
        };
        match kind {
            "add" => add(&mut work, path, value()?)?,
            "remove" => {
                remove(&mut work, path)?;
            }
            "replace" => {
                let v = value()?;
                if path.is_empty() {
                    work = v;
                } else {
                    remove(&mut work, path).map_err(|_| PatchError::Path(format!("replace operation does not apply: doc is missing key: {path}: missing value")))?;
                    add(&mut work, path, v)?;
                }
            }
            "move" => {
                let v = remove(&mut work, from()?)?;
                add(&mut work, path, v)?;
            }
            "copy" => {
                let v = get(&work, from()?).cloned().ok_or_else(|| {
                    PatchError::Path(format!("copy from missing path {:?}", op.get("from")))
                })?;
                add(&mut work, path, v)?;
            }
            "test" => {
                let want = op.get("value").cloned().unwrap_or(Value::Null);
                let ok = match get(&work, path) {
                    Some(actual) => *actual == want,
                    None => want.is_null(),
                };
                if !ok {
                    return Err(PatchError::TestFailed(path.to_string()));
                }
            }
            other => return Err(PatchError::Malformed(format!("Unexpected kind: {other}"))),
        }
    }
    *doc = work;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}, "e": [1]}));
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "e": [1]}));
    }

    #[test]
    fn strategic() {
        let mut t = json!({"metadata": {"finalizers": ["a"], "labels": {"x": "1"}}, "data": {"k": "v"}, "spec": {"a": 1, "b": 2}});
        strategic_merge_patch(
            &mut t,
            &json!({
                "metadata": {"finalizers": ["b"], "$setElementOrder/finalizers": ["b", "a"], "labels": {"x": null}},
                "data": {"$patch": "replace", "n": "m"},
                "spec": {"$retainKeys": ["a"], "a": 3},
            }),
        );
        assert_eq!(
            t,
            json!({"metadata": {"finalizers": ["b", "a"], "labels": {}}, "data": {"n": "m"}, "spec": {"a": 3}})
        );
        strategic_merge_patch(
            &mut t,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(t["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn finalizer_quirk() {
        let mut d = json!({"metadata": {"name": "x"}});
        json_patch(&mut d, &json!([{"op": "test", "path": "/metadata/finalizers", "value": null}, {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}])).unwrap();
        assert_eq!(d["metadata"]["finalizers"], json!(["f"]));
        json_patch(&mut d, &json!([{"op": "test", "path": "/metadata/finalizers", "value": ["f"]}, {"op": "add", "path": "/metadata/finalizers/-", "value": "g"}])).unwrap();
        assert_eq!(d["metadata"]["finalizers"], json!(["f", "g"]));
        json_patch(&mut d, &json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "f"}, {"op": "remove", "path": "/metadata/finalizers/0"}])).unwrap();
        assert_eq!(d["metadata"]["finalizers"], json!(["g"]));
        let err = json_patch(
            &mut d,
            &json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "f"}]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "testing value /metadata/finalizers/0 failed: test failed"
        );
        assert_eq!(d["metadata"]["finalizers"], json!(["g"]));
    }

    #[test]
    fn replace_move_copy() {
        let mut d = json!({"a": {"b": 1}, "l": [1, 2]});
        json_patch(&mut d, &json!([{"op": "replace", "path": "/a/b", "value": 2}, {"op": "copy", "from": "/a", "path": "/c"}, {"op": "move", "from": "/l/0", "path": "/l/-"}])).unwrap();
        assert_eq!(d, json!({"a": {"b": 2}, "c": {"b": 2}, "l": [2, 1]}));
        assert!(
            json_patch(
                &mut d,
                &json!([{"op": "replace", "path": "/zz", "value": 1}])
            )
            .is_err()
        );
    }
}
