//! Pruning and defaulting against a structural schema.

use serde_json::Value;

use super::join;

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Removes fields the schema does not declare (and `null`s of declared
/// non-nullable fields), recording the undeclared paths
/// (`spec.x`, `spec.items[0].y`) in `unknown`. At the root, `apiVersion`,
/// `kind` and `metadata` are always kept (metadata is the server's business).
pub fn prune(value: &mut Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    let root = path.is_empty();
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let embedded = schema
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if (root || embedded) && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child_path = join(path, &k);
                if let Some(s) = props.and_then(|p| p.get(&k)) {
                    // Nulls of non-nullable fields are dropped (defaulting may refill them).
                    if map[&k].is_null() && s.get("nullable").and_then(Value::as_bool) != Some(true)
                    {
                        map.remove(&k);
                        continue;
                    }
                    prune(map.get_mut(&k).expect("key"), s, &child_path, unknown);
                } else if let Some(a) = additional.filter(|a| a.is_object()) {
                    prune(map.get_mut(&k).expect("key"), a, &child_path, unknown);
                } else if preserves_unknown(schema)
                    || additional.and_then(Value::as_bool) == Some(true)
                {
                    // kept as is
                } else if props.is_some() || !preserves_unknown(schema) {
                    map.remove(&k);
                    unknown.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item, s, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Fills in `default` values of absent properties (recursively, also inside
/// defaults and array items).
pub fn apply_defaults(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if !map.contains_key(k)
                        && let Some(d) = s.get("default")
                    {
                        map.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = map.get_mut(k) {
                        apply_defaults(child, s);
                    }
                }
            } else if let Some(a) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in map.values_mut() {
                    apply_defaults(child, a);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for item in items {
                    apply_defaults(item, s);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_and_defaults() {
        let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "size": {"type": "integer", "default": 1},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}}
        }}}});
        let mut v = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"}, "spec": {"size": null, 
            "x": 1, "labels": {"k": "v"}, "free": {"any": {"thing": 1}}, "items": [{"a": "1", "b": 2}]}, "other": 1});
        let mut unknown = vec![];
        prune(&mut v, &schema, "", &mut unknown);
        apply_defaults(&mut v, &schema);
        assert_eq!(unknown, ["other", "spec.items[0].b", "spec.x"]);
        assert_eq!(
            v["spec"],
            json!({"size": 1, "labels": {"k": "v"}, "free": {"any": {"thing": 1}}, "items": [{"a": "1"}]})
        );
        assert_eq!(v["metadata"]["name"], "a");
    }
}
