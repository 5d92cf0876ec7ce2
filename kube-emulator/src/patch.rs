//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902) with the API
//! server's `test` quirk: testing a missing location against `null` passes
//! (kube-rs' `finalizer()` relies on it).

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
