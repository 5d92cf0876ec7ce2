//! Behaviour of the built-in kinds on write: Secret `stringData` folding,
//! Namespace defaults, Lease and events.k8s.io checks, CRD status.

use base64::Engine;
use serde_json::{Value, json};

use crate::crd;
use crate::error::{ApiError, ApiResult, Cause};
use crate::object;
use crate::registry::{Builtin, ResourceType};

/// Adjusts and checks `obj` before it is stored (`old` is the stored
/// version for updates).
pub fn prepare(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    match rt.builtin {
        Some(Builtin::Secret) => fold_string_data(obj),
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
    let (re, max) = if namespace {
        (LABEL, 63)
    } else {
        (SUBDOMAIN, 253)
    };
    let ok = name.len() <= max && regex::Regex::new(re).expect("static regex").is_match(name);
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

/// Whether `metadata.generation` is maintained for this type.
pub fn tracks_generation(rt: &ResourceType) -> bool {
    rt.is_custom() || rt.builtin == Some(Builtin::Crd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

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

    #[test]
    fn secret_string_data() {
        let rt = Registry::builtins().get("", "secrets").unwrap();
        let mut s =
            json!({"metadata": {"name": "s"}, "stringData": {"a": "hi"}, "data": {"b": "eA=="}});
        prepare(&rt, &mut s, None).unwrap();
        assert_eq!(
            s,
            json!({"metadata": {"name": "s"}, "data": {"a": "aGk=", "b": "eA=="}, "type": "Opaque"})
        );
    }
}
