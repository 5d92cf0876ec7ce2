//! Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`) for
//! the kinds clients send and ask for that way: client-go's typed clients
//! (Helm's release storage, `kubectl create secret|configmap|namespace`)
//! write Secrets, ConfigMaps, Namespaces and DeleteOptions in protobuf and
//! prefer protobuf replies.
//!
//! A body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown`
//! envelope: `typeMeta {apiVersion, kind}` and `raw`, the encoded object.
//! The messages are k8s-pb's (the kube-rs project's prost bindings of the
//! upstream `.proto` files, so the wire format is not hand-decoded); this
//! module maps them to and from the JSON the rest of the emulator stores.
//! k8s-pb compiles every API group in one crate (about a minute of one
//! core, once); the mapping is kept to the kinds above because the emulator
//! stores JSON and every other kind reaches it as JSON.
//!
//! Replies: an object, list or `Status` of those kinds is encoded in
//! protobuf when the first `Accept` entry asks for it; everything else is
//! JSON, which client-go accepts whenever its `Accept` lists JSON or `*/*`
//! (as it always does). Watch streams stay JSON.

mod core;
mod meta;

use k8s_pb::api::core::v1 as core_pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta_pb;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::Value;

use crate::error::ApiError;

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// Whether a `Content-Type` is the protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or("").trim() == MEDIA_TYPE
}

/// Whether the first `Accept` entry is plain protobuf (not a Table or
/// PartialObjectMetadata view, which are served as JSON).
pub fn preferred(accept: &str) -> bool {
    let first = accept.split(',').next().unwrap_or("");
    let mut params = first.split(';').map(str::trim);
    params.next() == Some(MEDIA_TYPE) && params.all(|p| !p.starts_with("as="))
}

fn unsupported(what: &str) -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        format!(
            "kube-emulator decodes only Secret, ConfigMap, Namespace and DeleteOptions from {MEDIA_TYPE}, not {what}: send it as application/json"
        ),
    )
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("error decoding protobuf body: {e}"))
}

/// One message of type `M` from `raw`.
fn message<M: Message + Default>(raw: &[u8]) -> Result<M, ApiError> {
    M::decode(raw).map_err(bad)
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing the k8s\\0 prefix"))?;
    let env: Unknown = message(rest)?;
    let tm = env.type_meta.unwrap_or_default();
    let kind = tm.kind.unwrap_or_default();
    let raw = env.raw.unwrap_or_default();
    let raw = raw.as_slice();
    let mut v = match kind.as_str() {
        "Secret" => core::secret_to_json(&message(raw)?),
        "ConfigMap" => core::config_map_to_json(&message(raw)?),
        "Namespace" => core::namespace_to_json(&message(raw)?),
        "DeleteOptions" => meta::delete_options_to_json(&message::<meta_pb::DeleteOptions>(raw)?),
        other => return Err(unsupported(&format!("kind {other:?}"))),
    };
    if let (Some(m), Some(av)) = (v.as_object_mut(), tm.api_version) {
        m.insert("apiVersion".into(), Value::String(av));
        m.insert("kind".into(), Value::String(kind));
    }
    Ok(v)
}

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let env = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    env.encode(&mut out).expect("a Vec grows as needed");
    out
}

fn items<T>(v: &Value, f: impl Fn(&Value) -> T) -> Vec<T> {
    v.get("items")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(f).collect())
        .unwrap_or_default()
}

fn list_meta(v: &Value) -> Option<meta_pb::ListMeta> {
    Some(meta::list_meta_to_pb(
        v.get("metadata").unwrap_or(&Value::Null),
    ))
}

/// Encodes a reply body (an object, a list or a `Status`) in protobuf, if
/// its kind is one this module knows (`None`: send JSON).
pub fn encode(v: &Value) -> Option<Vec<u8>> {
    let kind = v.get("kind")?.as_str()?;
    if v.get("apiVersion")?.as_str()? != "v1" {
        return None;
    }
    let raw = match kind {
        "Secret" => core::secret_to_pb(v).encode_to_vec(),
        "ConfigMap" => core::config_map_to_pb(v).encode_to_vec(),
        "Namespace" => core::namespace_to_pb(v).encode_to_vec(),
        "SecretList" => core_pb::SecretList {
            metadata: list_meta(v),
            items: items(v, core::secret_to_pb),
        }
        .encode_to_vec(),
        "ConfigMapList" => core_pb::ConfigMapList {
            metadata: list_meta(v),
            items: items(v, core::config_map_to_pb),
        }
        .encode_to_vec(),
        "NamespaceList" => core_pb::NamespaceList {
            metadata: list_meta(v),
            items: items(v, core::namespace_to_pb),
        }
        .encode_to_vec(),
        "Status" => meta::status_to_pb(v).encode_to_vec(),
        _ => return None,
    };
    Some(envelope("v1", kind, raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_round_trip_and_negotiation() {
        let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}});
        let bytes = encode(&s).unwrap();
        assert!(bytes.starts_with(b"k8s\0"));
        assert_eq!(decode(&bytes).unwrap(), s);
        assert!(encode(&json!({"apiVersion": "apps/v1", "kind": "Deployment"})).is_none());
        assert!(preferred(
            "application/vnd.kubernetes.protobuf, application/json"
        ));
        assert!(!preferred(
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json"
        ));
        assert!(!preferred("application/json"));
        let e = decode(b"k8s\0").unwrap_err();
        assert_eq!(e.code, 415, "{}", e.message);
        assert_eq!(decode(b"{}").unwrap_err().code, 400);
    }
}
