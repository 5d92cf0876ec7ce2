//! Server-side apply: conflicts, ownership transfer, removal of fields a
//! manager stopped applying, and the merge of the applied configuration.

use serde_json::{Map, Value, json};

use super::fieldset::{
    FieldSet, ListKind, child_schema, element_key, is_element, is_prefix, leaf_paths, list_kind,
    path_string, remove_path, value_at,
};
use super::{Entry, Scope, read, tracked, write};
use crate::error::ApiError;

fn strip_nulls(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, c| !c.is_null());
        for c in m.values_mut() {
            strip_nulls(c);
        }
    }
}

fn merge(live: &mut Value, applied: &Value, schema: Option<&Value>, prefix: &mut Vec<String>) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, v) in a {
                prefix.push(format!("f:{k}"));
                let child = child_schema(schema, k);
                match l.get_mut(k) {
                    Some(existing) => merge(existing, v, child, prefix),
                    None => {
                        l.insert(k.clone(), v.clone());
                    }
                }
                prefix.pop();
            }
        }
        (Value::Array(l), Value::Array(a)) => match list_kind(prefix, schema) {
            ListKind::Set => {
                for e in a {
                    if !l.contains(e) {
                        l.push(e.clone());
                    }
                }
            }
            ListKind::Map(keys)
                if a.iter()
                    .chain(l.iter())
                    .all(|e| element_key(e, &keys).is_some()) =>
            {
                let items = schema.and_then(|s| s.get("items"));
                for e in a {
                    let key = element_key(e, &keys);
                    match l.iter_mut().find(|x| element_key(x, &keys) == key) {
                        Some(existing) => merge(existing, e, items, prefix),
                        None => l.push(e.clone()),
                    }
                }
            }
            _ => *l = a.clone(),
        },
        (live, applied) => *live = applied.clone(),
    }
}

fn manager_label(e: &Entry) -> String {
    let mut s = format!("{:?}", e.manager);
    if !e.subresource.is_empty() {
        s.push_str(&format!(" with subresource {:?}", e.subresource));
    }
    if e.operation == "Update" {
        s.push_str(&format!(" using {}", e.api_version));
    }
    s
}

fn conflict_error(conflicts: &[(String, String)]) -> ApiError {
    let message = if conflicts.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].0, conflicts[0].1
        )
    } else {
        let mut managers: Vec<&String> = conflicts.iter().map(|c| &c.0).collect();
        managers.sort();
        managers.dedup();
        let mut lines = vec![];
        for m in managers {
            lines.push(format!("conflicts with {m}"));
            lines.extend(
                conflicts
                    .iter()
                    .filter(|c| &c.0 == m)
                    .map(|c| format!("- {}", c.1)),
            );
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": p}))
        .collect();
    ApiError::new(409, "Conflict", message).with_details(json!({ "causes": causes }))
}

/// Who applies, how, and against which schema.
#[derive(Debug, Clone, Copy)]
pub struct Applier<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// The request's apiVersion (recorded in managedFields).
    pub api_version: &'a str,
    /// Main resource or `/status`.
    pub scope: Scope,
    /// The version's openAPIV3Schema (list types), if any.
    pub schema: Option<&'a Value>,
    /// `force=true`: take conflicting fields over.
    pub force: bool,
    /// The time recorded for changed entries.
    pub now: &'a str,
}

/// Applies `applied` as `who.manager` onto `live` (the stored object, or a
/// skeleton for a create) and returns the merged object with updated
/// managedFields. Without `force`, a field owned by another manager with a
/// different value is a 409 Conflict in the API server's wording.
pub fn apply(live: &Value, applied: &Value, who: &Applier) -> Result<Value, ApiError> {
    let Applier {
        manager,
        api_version,
        scope,
        schema,
        force,
        now,
    } = *who;
    let mut applied_t = tracked(applied, scope);
    strip_nulls(&mut applied_t);
    let live_t = tracked(live, scope);
    let mine = leaf_paths(&applied_t, schema);
    let sub = scope.subresource();
    let mut entries = read(live);
    let is_me = |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource == sub;

    // As structured-merge-diff: merge the applied configuration into the
    // live object and look at every field another manager owns. A field
    // whose value the merge changes (a scalar or atomic list replaced, a
    // field removed because an ancestor became atomic) is a conflict; a map
    // that only gains or loses children is not (its children are judged by
    // their own paths), and neither is a map-list element's identity. So
    // applying the value a field already has shares its ownership.
    let mut preview = live_t.clone();
    merge(&mut preview, &applied_t, schema, &mut vec![]);
    let mut conflicts: Vec<(String, String)> = vec![];
    let mut taken: Vec<(usize, Vec<String>)> = vec![];
    for (i, e) in entries.iter().enumerate() {
        if is_me(e) {
            continue;
        }
        for q in &e.fields {
            if is_element(q) {
                continue;
            }
            let (before, after) = (value_at(&live_t, q), value_at(&preview, q));
            let changed = match (before, after) {
                (Some(Value::Object(_)), Some(Value::Object(_))) => false,
                (b, a) => b != a,
            };
            if changed {
                conflicts.push((manager_label(e), path_string(q)));
                taken.push((i, q.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.dedup();
        return Err(conflict_error(&conflicts));
    }
    for (i, q) in taken {
        entries[i].fields.remove(&q);
    }

    let mut result = live.clone();
    let previous: FieldSet = entries
        .iter()
        .find(|e| is_me(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    for p in previous.difference(&mine) {
        let co_owned = entries
            .iter()
            .any(|e| !is_me(e) && e.fields.iter().any(|q| is_prefix(q, p) || is_prefix(p, q)));
        if !co_owned {
            remove_path(&mut result, p);
        }
    }
    merge(&mut result, &applied_t, schema, &mut vec![]);

    match entries.iter_mut().find(|e| is_me(e)) {
        Some(e) => {
            if e.fields != mine {
                e.time = now.into();
            }
            e.fields = mine;
            e.api_version = api_version.into();
        }
        None => entries.push(Entry {
            manager: manager.into(),
            operation: "Apply".into(),
            api_version: api_version.into(),
            time: now.into(),
            subresource: sub.into(),
            fields: mine,
        }),
    }
    write(&mut result, &entries);
    if let Some(m) = result.as_object_mut()
        && m.get("metadata")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    {
        m.remove("metadata");
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: Scope = Scope::Main {
        status_subresource: false,
    };

    #[test]
    fn conflicts_and_force() {
        let live =
            json!({"apiVersion": "v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {}});
        let a = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": "a", "leaseDurationSeconds": 10}});
        let live = apply(
            &live,
            &a,
            &Applier {
                manager: "a",
                api_version: "coordination.k8s.io/v1",
                scope: MAIN,
                schema: None,
                force: false,
                now: "t",
            },
        )
        .unwrap();
        assert_eq!(live["spec"]["holderIdentity"], "a");
        // Same values from another manager: shared, no conflict.
        let same = apply(
            &live,
            &a,
            &Applier {
                manager: "c",
                api_version: "coordination.k8s.io/v1",
                scope: MAIN,
                schema: None,
                force: false,
                now: "t",
            },
        )
        .unwrap();
        assert_eq!(read(&same).len(), 2);
        let b = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": "b", "leaseDurationSeconds": 10}});
        let err = apply(
            &live,
            &b,
            &Applier {
                manager: "b",
                api_version: "coordination.k8s.io/v1",
                scope: MAIN,
                schema: None,
                force: false,
                now: "t",
            },
        )
        .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"a\": .spec.holderIdentity"
        );
        let forced = apply(
            &live,
            &b,
            &Applier {
                manager: "b",
                api_version: "coordination.k8s.io/v1",
                scope: MAIN,
                schema: None,
                force: true,
                now: "t",
            },
        )
        .unwrap();
        assert_eq!(forced["spec"]["holderIdentity"], "b");
        let owners = read(&forced);
        let a_entry = owners.iter().find(|e| e.manager == "a").unwrap();
        assert_eq!(a_entry.fields.len(), 1);
    }

    #[test]
    fn same_value_from_two_managers_is_shared() {
        let by = |manager: &'static str| Applier {
            manager,
            api_version: "v1",
            scope: MAIN,
            schema: None,
            force: false,
            now: "t",
        };
        // `spec: {}` applied by a, then defaulted by the server, then the same
        // `spec: {}` from b: no conflict on `.spec` (nothing changes).
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "labels": {"team": "x"}}, "spec": {}});
        let mut live = apply(&json!({"metadata": {"name": "n"}}), &ns, &by("a")).unwrap();
        live["spec"] = json!({"finalizers": ["kubernetes"]});
        let live = apply(&live, &ns, &by("b")).unwrap();
        let owners = read(&live);
        assert_eq!(owners.len(), 2);
        assert_eq!(owners[0].fields, owners[1].fields);
        // A changed label still conflicts, naming the owner and the field.
        let other =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"labels": {"team": "y"}}});
        assert_eq!(
            apply(&live, &other, &by("c")).unwrap_err().message,
            "Apply failed with 2 conflicts: conflicts with \"a\"\n- .metadata.labels.team\nconflicts with \"b\"\n- .metadata.labels.team"
        );
    }

    #[test]
    fn omitted_fields_are_removed() {
        let live = json!({"metadata": {"name": "w"}});
        let v1 = json!({"apiVersion": "x/v1", "kind": "W", "spec": {"a": 1, "b": 2}, "metadata": {"labels": {"x": "1"}}});
        let live = apply(
            &live,
            &v1,
            &Applier {
                manager: "m",
                api_version: "x/v1",
                scope: MAIN,
                schema: None,
                force: false,
                now: "t",
            },
        )
        .unwrap();
        let v2 = json!({"apiVersion": "x/v1", "kind": "W", "spec": {"a": 1}});
        let live = apply(
            &live,
            &v2,
            &Applier {
                manager: "m",
                api_version: "x/v1",
                scope: MAIN,
                schema: None,
                force: false,
                now: "t",
            },
        )
        .unwrap();
        assert_eq!(live["spec"], json!({"a": 1}));
        assert!(
            live["metadata"]
                .get("labels")
                .is_none_or(|l| l.as_object().unwrap().is_empty())
        );
    }

    #[test]
    fn map_lists_are_shared_per_element() {
        let schema = json!({"properties": {"status": {"properties": {"conditions": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
            "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}}}}}});
        let by = |manager: &'static str| Applier {
            manager,
            api_version: "x/v1",
            scope: Scope::Status,
            schema: Some(&schema),
            force: false,
            now: "t",
        };
        let cond = |t: &str, s: &str| json!({"apiVersion": "x/v1", "kind": "W", "status": {"conditions": [{"type": t, "status": s}]}});
        let live = json!({"metadata": {"name": "w"}, "spec": {}});
        let live = apply(&live, &cond("A", "True"), &by("a")).unwrap();
        let live = apply(&live, &cond("B", "False"), &by("b")).unwrap();
        assert_eq!(
            live["status"]["conditions"],
            json!([{"type": "A", "status": "True"}, {"type": "B", "status": "False"}])
        );
        // b may not change a's condition, but a may update its own.
        assert_eq!(
            apply(&live, &cond("A", "False"), &by("b"))
                .unwrap_err()
                .code,
            409
        );
        let live = apply(&live, &cond("A", "False"), &by("a")).unwrap();
        // a stops applying A: the element goes, B stays.
        let live = apply(
            &live,
            &json!({"apiVersion": "x/v1", "kind": "W", "status": {}}),
            &by("a"),
        )
        .unwrap();
        assert_eq!(
            live["status"]["conditions"],
            json!([{"type": "B", "status": "False"}])
        );
    }
}
