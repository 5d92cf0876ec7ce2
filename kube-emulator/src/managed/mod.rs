//! `metadata.managedFields`: who owns which field, server-side apply and
//! the ownership bookkeeping of ordinary writes.
//!
//! The model is deliberately small (see the requirements §6): map leaves,
//! whole lists, labels/annotations per key, finalizers as a set. A manager
//! is identified by `(manager, operation, subresource)` like the real server.

mod apply;
pub mod fieldset;

use serde_json::{Map, Value, json};

pub use apply::{Applier, apply};
use fieldset::{
    FieldSet, Path, from_fields_v1, is_element, is_prefix, leaf_paths, to_fields_v1, value_at,
};

use crate::object;

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `status` is excluded when `status_subresource` is set.
    Main {
        /// Whether the status subresource is enabled (status not tracked here).
        status_subresource: bool,
    },
    /// The `/status` subresource.
    Status,
}

impl Scope {
    /// `managedFields[].subresource` for this scope.
    pub fn subresource(self) -> &'static str {
        match self {
            Scope::Main { .. } => "",
            Scope::Status => "status",
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion used by the manager.
    pub api_version: String,
    /// Last change time.
    pub time: String,
    /// `""` or `status`.
    pub subresource: String,
    /// Owned leaf paths.
    pub fields: FieldSet,
}

impl Entry {
    fn same_manager(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

/// Reads `metadata.managedFields`.
pub fn read(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return vec![];
    };
    list.iter()
        .map(|e| Entry {
            manager: e
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            operation: e
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or("Update")
                .into(),
            api_version: e
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            time: e.get("time").and_then(Value::as_str).unwrap_or("").into(),
            subresource: e
                .get("subresource")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
        })
        .collect()
}

/// Writes `metadata.managedFields` (dropping empty entries; none = absent).
pub fn write(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    let meta = object::meta_mut(obj);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// Metadata fields owned by the server, never tracked.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The part of `obj` that `scope` tracks.
pub fn tracked(obj: &Value, scope: Scope) -> Value {
    let mut out = Map::new();
    let Some(m) = obj.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in m {
        let keep = match (scope, k.as_str()) {
            (_, "apiVersion" | "kind") => false,
            (Scope::Status, key) => key == "status",
            (
                Scope::Main {
                    status_subresource: true,
                },
                "status",
            ) => false,
            _ => true,
        };
        if !keep {
            continue;
        }
        if k == "metadata" {
            let mut meta = v.as_object().cloned().unwrap_or_default();
            meta.retain(|k, _| !SYSTEM_METADATA.contains(&k.as_str()));
            if !meta.is_empty() {
                out.insert(k.clone(), Value::Object(meta));
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn touched(q: &Path, set: &FieldSet) -> bool {
    set.iter().any(|p| {
        p == q || (!is_element(p) && is_prefix(p, q)) || (!is_element(q) && is_prefix(q, p))
    })
}

/// Records an ordinary (non-apply) write: fields it changed move to
/// `(manager, Update, scope)`, fields it removed leave every manager.
/// Entries are taken from `new` (which may carry client-written managedFields).
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    scope: Scope,
    schema: Option<&Value>,
    now: &str,
) {
    let empty = json!({});
    let old_t = tracked(old.unwrap_or(&empty), scope);
    let new_t = tracked(new, scope);
    let old_paths = leaf_paths(&old_t, schema);
    let new_paths = leaf_paths(&new_t, schema);
    // A map-list element changes only by appearing; its fields are tracked one by one.
    let changed: FieldSet = new_paths
        .iter()
        .filter(|p| {
            if is_element(p) {
                !old_paths.contains(*p)
            } else {
                value_at(&old_t, p) != value_at(&new_t, p)
            }
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_paths.difference(&new_paths).cloned().collect();
    let mut entries = read(new);
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    let all: FieldSet = changed.union(&removed).cloned().collect();
    for e in entries.iter_mut() {
        e.fields.retain(|q| !touched(q, &all));
    }
    if !changed.is_empty() {
        let sub = scope.subresource();
        match entries
            .iter_mut()
            .find(|e| e.same_manager(manager, "Update", sub))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now.into();
                e.api_version = api_version.into();
            }
            None => entries.push(Entry {
                manager: manager.into(),
                operation: "Update".into(),
                api_version: api_version.into(),
                time: now.into(),
                subresource: sub.into(),
                fields: changed,
            }),
        }
    }
    write(new, &entries);
}

/// `obj` with every `managedFields[].time` blanked, for no-op comparisons.
pub fn without_times(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(list) = o
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    {
        for e in list {
            if let Some(m) = e.as_object_mut() {
                m.remove("time");
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_moves_ownership() {
        let old = json!({"metadata": {"name": "a"}, "spec": {"a": 1, "b": 2}});
        let mut new = old.clone();
        track_update(
            None,
            &mut new,
            "creator",
            "v1",
            Scope::Main {
                status_subresource: true,
            },
            None,
            "t0",
        );
        let mut next = new.clone();
        next["spec"]["a"] = json!(5);
        next["spec"].as_object_mut().unwrap().remove("b");
        track_update(
            Some(&new),
            &mut next,
            "editor",
            "v1",
            Scope::Main {
                status_subresource: true,
            },
            None,
            "t1",
        );
        let e = read(&next);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].manager, "editor");
        assert_eq!(e[0].fields.len(), 1);
    }
}
