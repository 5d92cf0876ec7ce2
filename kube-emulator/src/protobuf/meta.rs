//! `meta.k8s.io/v1` messages between their protobuf form (k8s-pb) and JSON:
//! ObjectMeta (with owner references and managedFields), ListMeta, Time,
//! Status and DeleteOptions.

use std::collections::BTreeMap;

use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb;
use serde_json::{Map, Value, json};

/// A string field of a JSON object.
pub fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

/// A JSON object of string values as a map (other values are skipped).
pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON array of strings.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Inserts `key` when `value` is present.
pub fn set(m: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        m.insert(key.into(), v.into());
    }
}

/// Inserts `key` when the map is not empty.
pub fn set_map<V: Into<Value> + Clone>(
    m: &mut Map<String, Value>,
    key: &str,
    map: &BTreeMap<String, V>,
) {
    if !map.is_empty() {
        let o: Map<String, Value> = map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        m.insert(key.into(), Value::Object(o));
    }
}

/// Inserts `key` when the list is not empty.
pub fn set_list(m: &mut Map<String, Value>, key: &str, list: Vec<Value>) {
    if !list.is_empty() {
        m.insert(key.into(), Value::Array(list));
    }
}

/// An RFC 3339 time as `Time`.
pub fn time_to_pb(v: Option<&Value>) -> Option<pb::Time> {
    let ts: jiff::Timestamp = v?.as_str()?.parse().ok()?;
    Some(pb::Time {
        seconds: Some(ts.as_second()),
        nanos: Some(ts.subsec_nanosecond()),
    })
}

/// A `Time` as RFC 3339 with second precision, as the API server writes it.
pub fn time_to_json(t: Option<&pb::Time>) -> Option<Value> {
    let t = t?;
    let ts = jiff::Timestamp::new(t.seconds.unwrap_or(0), 0).ok()?;
    Some(json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

/// JSON `metadata` → `ObjectMeta`.
pub fn object_meta_to_pb(m: &Value) -> pb::ObjectMeta {
    pb::ObjectMeta {
        name: str_of(m, "name"),
        generate_name: str_of(m, "generateName"),
        namespace: str_of(m, "namespace"),
        self_link: str_of(m, "selfLink"),
        uid: str_of(m, "uid"),
        resource_version: str_of(m, "resourceVersion"),
        generation: m.get("generation").and_then(Value::as_i64),
        creation_timestamp: time_to_pb(m.get("creationTimestamp")),
        deletion_timestamp: time_to_pb(m.get("deletionTimestamp")),
        deletion_grace_period_seconds: m.get("deletionGracePeriodSeconds").and_then(Value::as_i64),
        labels: string_map(m.get("labels")),
        annotations: string_map(m.get("annotations")),
        owner_references: m
            .get("ownerReferences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|o| pb::OwnerReference {
                        api_version: str_of(o, "apiVersion"),
                        kind: str_of(o, "kind"),
                        name: str_of(o, "name"),
                        uid: str_of(o, "uid"),
                        controller: o.get("controller").and_then(Value::as_bool),
                        block_owner_deletion: o.get("blockOwnerDeletion").and_then(Value::as_bool),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        finalizers: strings(m.get("finalizers")),
        managed_fields: m
            .get("managedFields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| pb::ManagedFieldsEntry {
                        manager: str_of(e, "manager"),
                        operation: str_of(e, "operation"),
                        api_version: str_of(e, "apiVersion"),
                        time: time_to_pb(e.get("time")),
                        fields_type: str_of(e, "fieldsType"),
                        fields_v1: e.get("fieldsV1").map(|f| pb::FieldsV1 {
                            raw: Some(serde_json::to_vec(f).unwrap_or_default()),
                        }),
                        subresource: str_of(e, "subresource"),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// `ObjectMeta` → JSON `metadata`.
pub fn object_meta_to_json(m: &pb::ObjectMeta) -> Value {
    let mut o = Map::new();
    set(&mut o, "name", m.name.clone());
    set(&mut o, "generateName", m.generate_name.clone());
    set(&mut o, "namespace", m.namespace.clone());
    set(&mut o, "selfLink", m.self_link.clone());
    set(&mut o, "uid", m.uid.clone());
    set(&mut o, "resourceVersion", m.resource_version.clone());
    set(&mut o, "generation", m.generation);
    set(
        &mut o,
        "creationTimestamp",
        time_to_json(m.creation_timestamp.as_ref()),
    );
    set(
        &mut o,
        "deletionTimestamp",
        time_to_json(m.deletion_timestamp.as_ref()),
    );
    set(
        &mut o,
        "deletionGracePeriodSeconds",
        m.deletion_grace_period_seconds,
    );
    set_map(&mut o, "labels", &m.labels);
    set_map(&mut o, "annotations", &m.annotations);
    let owners = m
        .owner_references
        .iter()
        .map(|r| {
            let mut e = Map::new();
            set(&mut e, "apiVersion", r.api_version.clone());
            set(&mut e, "kind", r.kind.clone());
            set(&mut e, "name", r.name.clone());
            set(&mut e, "uid", r.uid.clone());
            set(&mut e, "controller", r.controller);
            set(&mut e, "blockOwnerDeletion", r.block_owner_deletion);
            Value::Object(e)
        })
        .collect();
    set_list(&mut o, "ownerReferences", owners);
    set_list(
        &mut o,
        "finalizers",
        m.finalizers.iter().map(|f| json!(f)).collect(),
    );
    let managed = m
        .managed_fields
        .iter()
        .map(|f| {
            let mut e = Map::new();
            set(&mut e, "manager", f.manager.clone());
            set(&mut e, "operation", f.operation.clone());
            set(&mut e, "apiVersion", f.api_version.clone());
            set(&mut e, "time", time_to_json(f.time.as_ref()));
            set(&mut e, "fieldsType", f.fields_type.clone());
            set(
                &mut e,
                "fieldsV1",
                f.fields_v1
                    .as_ref()
                    .and_then(|r| r.raw.as_deref())
                    .and_then(|raw| serde_json::from_slice::<Value>(raw).ok()),
            );
            set(&mut e, "subresource", f.subresource.clone());
            Value::Object(e)
        })
        .collect();
    set_list(&mut o, "managedFields", managed);
    Value::Object(o)
}

/// JSON list `metadata` → `ListMeta`.
pub fn list_meta_to_pb(m: &Value) -> pb::ListMeta {
    pb::ListMeta {
        self_link: None,
        resource_version: str_of(m, "resourceVersion"),
        r#continue: str_of(m, "continue"),
        remaining_item_count: m.get("remainingItemCount").and_then(Value::as_i64),
    }
}

/// A JSON `Status` → `Status`.
pub fn status_to_pb(s: &Value) -> pb::Status {
    let details = s.get("details").map(|d| pb::StatusDetails {
        name: str_of(d, "name"),
        group: str_of(d, "group"),
        kind: str_of(d, "kind"),
        uid: str_of(d, "uid"),
        causes: d
            .get("causes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| pb::StatusCause {
                        reason: str_of(c, "reason"),
                        message: str_of(c, "message"),
                        field: str_of(c, "field"),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        retry_after_seconds: d
            .get("retryAfterSeconds")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok()),
    });
    pb::Status {
        metadata: Some(list_meta_to_pb(s.get("metadata").unwrap_or(&Value::Null))),
        status: str_of(s, "status"),
        message: str_of(s, "message"),
        reason: str_of(s, "reason"),
        details,
        code: s
            .get("code")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok()),
    }
}

/// `DeleteOptions` → JSON, as the delete verbs read it.
pub fn delete_options_to_json(d: &pb::DeleteOptions) -> Value {
    let mut o = Map::new();
    set(&mut o, "gracePeriodSeconds", d.grace_period_seconds);
    if let Some(p) = &d.preconditions {
        let mut pre = Map::new();
        set(&mut pre, "uid", p.uid.clone());
        set(&mut pre, "resourceVersion", p.resource_version.clone());
        o.insert("preconditions".into(), Value::Object(pre));
    }
    set(&mut o, "orphanDependents", d.orphan_dependents);
    set(&mut o, "propagationPolicy", d.propagation_policy.clone());
    set_list(
        &mut o,
        "dryRun",
        d.dry_run.iter().map(|s| json!(s)).collect(),
    );
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_meta_round_trip() {
        let m = json!({
            "name": "sh.helm.release.v1.kubemirror.v1",
            "namespace": "kubemirror-system",
            "uid": "u",
            "resourceVersion": "12",
            "creationTimestamp": "2026-12-03T10:17:41Z",
            "labels": {"owner": "helm"},
            "annotations": {"a": "b"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "x", "controller": true}],
            "finalizers": ["f"],
            "managedFields": [{"manager": "helm", "operation": "Update", "apiVersion": "v1", "time": "2026-12-03T10:17:41Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}}}}],
        });
        assert_eq!(object_meta_to_json(&object_meta_to_pb(&m)), m);
    }
}
