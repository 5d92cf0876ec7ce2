//! Secrets and ConfigMaps: base64 `data`, `stringData` folding, key names,
//! the required keys of typed secrets, immutable `type` and `immutable: true`.

use base64::Engine;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::object;

fn cause(reason: &'static str, field: String, message: String) -> Cause {
    Cause {
        reason,
        field,
        message,
    }
}

/// Prepares a Secret for storage (`old`: the stored version on updates).
pub fn prepare_secret(obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for v in data.values() {
            let s = v.as_str().unwrap_or("");
            if let Err(e) = base64::engine::general_purpose::STANDARD.decode(s) {
                return Err(ApiError::bad_request(format!(
                    "Secret in version \"v1\" cannot be handled as a Secret: {e}"
                )));
            }
        }
    }
    fold_string_data(obj);
    let mut causes = key_causes(obj, &["data"]);
    causes.extend(type_causes(obj));
    causes.extend(immutable_causes(obj, old, &["data", "type"]));
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("Secret", "", object::name(obj), causes))
    }
}

/// Prepares a ConfigMap for storage.
pub fn prepare_config_map(obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    let mut causes = key_causes(obj, &["data", "binaryData"]);
    causes.extend(immutable_causes(obj, old, &["data", "binaryData"]));
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "ConfigMap",
            "",
            object::name(obj),
            causes,
        ))
    }
}

fn fold_string_data(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(Value::Object(sd)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (k, v) in sd {
            let s = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            data[&k] = json!(base64::engine::general_purpose::STANDARD.encode(s));
        }
    }
    m.entry("type").or_insert_with(|| json!("Opaque"));
}

fn key_causes(obj: &Value, fields: &[&str]) -> Vec<Cause> {
    let mut out = vec![];
    for f in fields {
        let Some(map) = obj.get(*f).and_then(Value::as_object) else {
            continue;
        };
        for k in map.keys() {
            let ok = !k.is_empty()
                && k.len() <= 253
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                && k != "."
                && k != "..";
            if !ok {
                out.push(cause(
                    "FieldValueInvalid",
                    format!("{f}[{k}]"),
                    format!("Invalid value: {k:?}: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"),
                ));
            }
        }
    }
    out
}

fn decoded(obj: &Value, key: &str) -> Option<Vec<u8>> {
    let s = obj.get("data")?.get(key)?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn type_causes(obj: &Value) -> Vec<Cause> {
    let ty = obj.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    let required = |keys: &[&str]| -> Vec<Cause> {
        keys.iter()
            .filter(|k| decoded(obj, k).is_none())
            .map(|k| {
                cause(
                    "FieldValueRequired",
                    format!("data[{k}]"),
                    "Required value".into(),
                )
            })
            .collect()
    };
    match ty {
        "kubernetes.io/dockerconfigjson" | "kubernetes.io/dockercfg" => {
            let key = if ty.ends_with("json") {
                ".dockerconfigjson"
            } else {
                ".dockercfg"
            };
            match decoded(obj, key) {
                None => required(&[key]),
                Some(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                    Ok(_) => vec![],
                    Err(e) => vec![cause(
                        "FieldValueInvalid",
                        format!("data[{key}]"),
                        format!("Invalid value: \"<secret contents redacted>\": {e}"),
                    )],
                },
            }
        }
        "kubernetes.io/tls" => required(&["tls.crt", "tls.key"]),
        "kubernetes.io/ssh-auth" => required(&["ssh-privatekey"]),
        "kubernetes.io/basic-auth"
            if decoded(obj, "username").is_none() && decoded(obj, "password").is_none() =>
        {
            required(&["username", "password"])
        }
        _ => vec![],
    }
}

fn immutable_causes(obj: &Value, old: Option<&Value>, fields: &[&str]) -> Vec<Cause> {
    let Some(old) = old else { return vec![] };
    let mut out = vec![];
    if fields.contains(&"type") && obj.get("type") != old.get("type") {
        let ty = obj.get("type").and_then(Value::as_str).unwrap_or("");
        out.push(cause(
            "FieldValueInvalid",
            "type".into(),
            format!("Invalid value: {ty:?}: field is immutable"),
        ));
    }
    if old.get("immutable").and_then(Value::as_bool) == Some(true) {
        if obj.get("immutable") != old.get("immutable") {
            out.push(cause(
                "FieldValueForbidden",
                "immutable".into(),
                "Forbidden: field is immutable when `immutable` is set".into(),
            ));
        }
        for f in fields.iter().filter(|f| **f != "type") {
            if obj.get(*f) != old.get(*f) {
                out.push(cause(
                    "FieldValueForbidden",
                    (*f).into(),
                    "Forbidden: field is immutable when `immutable` is set".into(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn string_data_and_base64() {
        let mut s =
            json!({"metadata": {"name": "s"}, "stringData": {"a": "hi"}, "data": {"b": "eA=="}});
        prepare_secret(&mut s, None).unwrap();
        assert_eq!(
            s,
            json!({"metadata": {"name": "s"}, "data": {"a": "aGk=", "b": "eA=="}, "type": "Opaque"})
        );
        let mut bad = json!({"metadata": {"name": "s"}, "data": {"b": "not base64!"}});
        assert_eq!(prepare_secret(&mut bad, None).unwrap_err().code, 400);
    }

    #[test]
    fn typed_secrets() {
        let mut d = json!({"metadata": {"name": "d"}, "type": "kubernetes.io/dockerconfigjson", "data": {}});
        let e = prepare_secret(&mut d, None).unwrap_err();
        assert_eq!(
            e.message,
            "Secret \"d\" is invalid: data[.dockerconfigjson]: Required value"
        );
        let mut d = json!({"metadata": {"name": "d"}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("{nope")}});
        assert!(
            prepare_secret(&mut d, None)
                .unwrap_err()
                .message
                .contains("<secret contents redacted>")
        );
        let mut d = json!({"metadata": {"name": "d"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{\"auths\":{}}"}});
        prepare_secret(&mut d, None).unwrap();
        let mut changed = d.clone();
        changed["type"] = json!("Opaque");
        assert!(
            prepare_secret(&mut changed, Some(&d))
                .unwrap_err()
                .message
                .contains("type: Invalid value: \"Opaque\": field is immutable")
        );
    }

    #[test]
    fn config_map_keys_and_immutable() {
        let old = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": true});
        assert!(
            prepare_config_map(
                &json!({"metadata": {"name": "c"}, "data": {"bad key": "1"}}),
                None
            )
            .is_err()
        );
        let e = prepare_config_map(
            &json!({"metadata": {"name": "c"}, "data": {"a": "2"}, "immutable": true}),
            Some(&old),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "ConfigMap \"c\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
        );
    }
}
