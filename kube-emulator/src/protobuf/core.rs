//! The core kinds clients write in protobuf (Secret, ConfigMap, Namespace)
//! between their k8s-pb form and JSON. Secret `data` and ConfigMap
//! `binaryData` are bytes in protobuf and base64 in JSON.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_pb::api::core::v1 as pb;
use serde_json::{Map, Value, json};

use super::meta::{
    object_meta_to_json, object_meta_to_pb, set, set_list, set_map, str_of, string_map, strings,
    time_to_json, time_to_pb,
};

fn bytes_map(v: Option<&Value>) -> std::collections::BTreeMap<String, Vec<u8>> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), STANDARD.decode(v.as_str()?).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn base64_map(m: &std::collections::BTreeMap<String, Vec<u8>>) -> Map<String, Value> {
    m.iter()
        .map(|(k, v)| (k.clone(), json!(STANDARD.encode(v))))
        .collect()
}

fn meta_pb(v: &Value) -> Option<k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta> {
    Some(object_meta_to_pb(v.get("metadata").unwrap_or(&Value::Null)))
}

fn head(api_version: &str, kind: &str, meta: Option<Value>) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("apiVersion".into(), json!(api_version));
    o.insert("kind".into(), json!(kind));
    o.insert("metadata".into(), meta.unwrap_or(json!({})));
    o
}

/// JSON → `Secret`.
pub fn secret_to_pb(v: &Value) -> pb::Secret {
    pb::Secret {
        metadata: meta_pb(v),
        immutable: v.get("immutable").and_then(Value::as_bool),
        data: bytes_map(v.get("data")),
        string_data: string_map(v.get("stringData")),
        r#type: str_of(v, "type"),
    }
}

/// `Secret` → JSON.
pub fn secret_to_json(s: &pb::Secret) -> Value {
    let mut o = head("v1", "Secret", s.metadata.as_ref().map(object_meta_to_json));
    set(&mut o, "immutable", s.immutable);
    if !s.data.is_empty() {
        o.insert("data".into(), Value::Object(base64_map(&s.data)));
    }
    set_map(&mut o, "stringData", &s.string_data);
    set(&mut o, "type", s.r#type.clone());
    Value::Object(o)
}

/// JSON → `ConfigMap`.
pub fn config_map_to_pb(v: &Value) -> pb::ConfigMap {
    pb::ConfigMap {
        metadata: meta_pb(v),
        immutable: v.get("immutable").and_then(Value::as_bool),
        data: string_map(v.get("data")),
        binary_data: bytes_map(v.get("binaryData")),
    }
}

/// `ConfigMap` → JSON.
pub fn config_map_to_json(c: &pb::ConfigMap) -> Value {
    let mut o = head(
        "v1",
        "ConfigMap",
        c.metadata.as_ref().map(object_meta_to_json),
    );
    set(&mut o, "immutable", c.immutable);
    set_map(&mut o, "data", &c.data);
    if !c.binary_data.is_empty() {
        o.insert(
            "binaryData".into(),
            Value::Object(base64_map(&c.binary_data)),
        );
    }
    Value::Object(o)
}

/// JSON → `Namespace`.
pub fn namespace_to_pb(v: &Value) -> pb::Namespace {
    let conditions = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| pb::NamespaceCondition {
                    r#type: str_of(c, "type"),
                    status: str_of(c, "status"),
                    last_transition_time: time_to_pb(c.get("lastTransitionTime")),
                    reason: str_of(c, "reason"),
                    message: str_of(c, "message"),
                })
                .collect()
        })
        .unwrap_or_default();
    pb::Namespace {
        metadata: meta_pb(v),
        spec: v.get("spec").map(|s| pb::NamespaceSpec {
            finalizers: strings(s.get("finalizers")),
        }),
        status: v.get("status").map(|s| pb::NamespaceStatus {
            phase: str_of(s, "phase"),
            conditions,
        }),
    }
}

/// `Namespace` → JSON.
pub fn namespace_to_json(n: &pb::Namespace) -> Value {
    let mut o = head(
        "v1",
        "Namespace",
        n.metadata.as_ref().map(object_meta_to_json),
    );
    if let Some(spec) = &n.spec {
        let mut s = Map::new();
        set_list(
            &mut s,
            "finalizers",
            spec.finalizers.iter().map(|f| json!(f)).collect(),
        );
        o.insert("spec".into(), Value::Object(s));
    }
    if let Some(status) = &n.status {
        let mut s = Map::new();
        set(&mut s, "phase", status.phase.clone());
        let conditions = status
            .conditions
            .iter()
            .map(|c| {
                let mut e = Map::new();
                set(&mut e, "type", c.r#type.clone());
                set(&mut e, "status", c.status.clone());
                set(
                    &mut e,
                    "lastTransitionTime",
                    time_to_json(c.last_transition_time.as_ref()),
                );
                set(&mut e, "reason", c.reason.clone());
                set(&mut e, "message", c.message.clone());
                Value::Object(e)
            })
            .collect();
        set_list(&mut s, "conditions", conditions);
        o.insert("status".into(), Value::Object(s));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_data_is_bytes_in_protobuf() {
        let v = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
            "data": {"release": "SDRzSQ=="}, "type": "helm.sh/release.v1"});
        let p = secret_to_pb(&v);
        assert_eq!(p.data["release"], b"H4sI");
        assert_eq!(secret_to_json(&p), v);
    }

    #[test]
    fn namespace_and_config_map_round_trip() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        assert_eq!(namespace_to_json(&namespace_to_pb(&ns)), ns);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "v"}, "binaryData": {"b": "AAE="}, "immutable": true});
        assert_eq!(config_map_to_json(&config_map_to_pb(&cm)), cm);
    }
}
