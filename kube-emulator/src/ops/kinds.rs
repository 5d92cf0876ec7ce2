//! Behaviour of the built-in kinds on write: Secret `stringData` folding,
//! Namespace defaults, Lease and events.k8s.io checks, CRD status.

use serde_json::{Value, json};

use crate::crd;
use crate::error::{ApiError, ApiResult, Cause};
use crate::object;
use crate::registry::{Builtin, ResourceType};

/// Adjusts and checks `obj` before it is stored (`old` is the stored
/// version for updates).
pub fn prepare(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    validate_metadata(rt, obj)?;
    match rt.builtin {
        Some(Builtin::Secret) => super::secret::prepare_secret(obj, old)?,
        Some(Builtin::ConfigMap) => super::secret::prepare_config_map(obj, old)?,
        Some(Builtin::Namespace) => {
            let phase = old
                .and_then(|o| o.pointer("/status/phase").cloned())
                .unwrap_or(json!("Active"));
            obj["status"] = json!({ "phase": phase });
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({ "finalizers": ["kubernetes"] });
            }
            let name = object::name(obj).to_string();
            let labels = object::meta_mut(obj)
                .entry("labels")
                .or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        Some(Builtin::Lease) => {
            if let Some(d) = obj
                .pointer("/spec/leaseDurationSeconds")
                .and_then(Value::as_i64)
                && d <= 0
            {
                return Err(ApiError::invalid(
                    "Lease",
                    "coordination.k8s.io",
                    object::name(obj),
                    vec![Cause {
                        reason: "FieldValueInvalid",
                        field: "spec.leaseDurationSeconds".into(),
                        message: format!("Invalid value: {d}: must be greater than 0"),
                    }],
                ));
            }
        }
        Some(Builtin::Event) => check_event(obj)?,
        Some(Builtin::Crd) => {
            crd::to_resource_type(obj)?;
            let status = crd::status(obj, old);
            obj["status"] = status;
        }
        _ => {}
    }
    Ok(())
}

fn check_event(obj: &Value) -> ApiResult<()> {
    let mut causes = vec![];
    for f in [
        "eventTime",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
    ] {
        if obj
            .get(f)
            .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
        {
            causes.push(Cause {
                reason: "FieldValueRequired",
                field: f.into(),
                message: "Required value".into(),
            });
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "Event",
            "events.k8s.io",
            object::name(obj),
            causes,
        ))
    }
}

const SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Checks `metadata.name` of a new object: an RFC 1123 subdomain (a label
/// for namespaces), with the API server's wording.
pub fn validate_name(rt: &ResourceType, name: &str) -> ApiResult<()> {
    let namespace = rt.builtin == Some(Builtin::Namespace);
    let (pattern, max) = if namespace {
        (LABEL, 63)
    } else {
        (SUBDOMAIN, 253)
    };
    let ok = name.len() <= max && re(pattern).is_match(name);
    if ok {
        return Ok(());
    }
    let message = if name.len() > max {
        format!("Invalid value: {name:?}: must be no more than {max} characters")
    } else if namespace {
        format!(
            "Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    } else {
        format!(
            "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    };
    Err(ApiError::invalid(
        &rt.kind,
        &rt.group,
        name,
        vec![Cause {
            reason: "FieldValueInvalid",
            field: "metadata.name".into(),
            message,
        }],
    ))
}

const QUALIFIED_NAME: &str = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$";
const LABEL_VALUE: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

/// The compiled form of one of the patterns above (compiled once).
fn re(pattern: &'static str) -> &'static regex::Regex {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static CACHE: LazyLock<Mutex<HashMap<&'static str, &'static regex::Regex>>> =
        LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(pattern)
        .or_insert_with(|| Box::leak(Box::new(regex::Regex::new(pattern).expect("static regex"))))
}

/// Errors of a qualified key (`prefix/name`), in the API server's words.
fn key_errors(key: &str) -> Vec<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let mut out = vec![];
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !re(SUBDOMAIN).is_match(p))
    {
        out.push("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string());
    }
    if name.is_empty() {
        out.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        out.push("name part must be no more than 63 characters".into());
    } else if !re(QUALIFIED_NAME).is_match(name) {
        out.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into());
    }
    out
}

/// Checks label keys and values and annotation keys, as the API server does
/// for every kind.
pub fn validate_metadata(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    let mut causes = vec![];
    let mut invalid = |field: &str, value: &str, msg: String| {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value:?}: {msg}"),
        })
    };
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            for e in key_errors(k) {
                invalid("metadata.labels", k, e);
            }
            let v = v.as_str().unwrap_or("");
            if v.len() > 63 {
                invalid(
                    "metadata.labels",
                    v,
                    "must be no more than 63 characters".into(),
                );
            } else if !re(LABEL_VALUE).is_match(v) {
                invalid("metadata.labels", v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into());
            }
        }
    }
    if let Some(annotations) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        for k in annotations.keys() {
            for e in key_errors(&k.to_lowercase()) {
                invalid("metadata.annotations", k, e);
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &rt.kind,
            &rt.group,
            object::name(obj),
            causes,
        ))
    }
}

/// Whether `metadata.generation` is maintained for this type.
pub fn tracks_generation(rt: &ResourceType) -> bool {
    rt.is_custom() || rt.builtin == Some(Builtin::Crd) || crate::workloads::tracks_generation(rt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn labels_and_annotations() {
        let cm = Registry::builtins().get("", "configmaps").unwrap();
        let ok = json!({"metadata": {"name": "c", "labels": {"app.kubernetes.io/name": "x_y.z", "e": ""}, "annotations": {"example.com/Any": "any value"}}});
        assert!(validate_metadata(&cm, &ok).is_ok());
        let bad =
            json!({"metadata": {"name": "c", "labels": {"image": "registry.example:5000/app"}}});
        let e = validate_metadata(&cm, &bad).unwrap_err();
        assert!(e.message.starts_with("ConfigMap \"c\" is invalid: metadata.labels: Invalid value: \"registry.example:5000/app\": a valid label must be an empty string"), "{}", e.message);
        let bad_key = json!({"metadata": {"name": "c", "labels": {"Bad_Prefix/x": "1"}}});
        assert!(
            validate_metadata(&cm, &bad_key)
                .unwrap_err()
                .message
                .contains("prefix part a lowercase RFC 1123 subdomain")
        );
    }

    #[test]
    fn names() {
        let reg = Registry::builtins();
        let secrets = reg.get("", "secrets").unwrap();
        let ns = reg.get("", "namespaces").unwrap();
        assert!(validate_name(&secrets, "a.b-c").is_ok());
        let e = validate_name(&secrets, "Bad").unwrap_err();
        assert!(e.message.starts_with("Secret \"Bad\" is invalid: metadata.name: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain"), "{}", e.message);
        assert!(validate_name(&ns, "a.b").is_err());
        assert!(validate_name(&ns, "kube-system").is_ok());
    }
}
