//! CustomResourceDefinitions: turning a stored CRD into a served
//! [`ResourceType`] and computing its (immediately Established) status.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::object;
use crate::registry::{PrinterColumn, ResourceType, Version, compare_versions};

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn invalid(name: &str, field: &str, msg: String) -> ApiError {
    ApiError::invalid(
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        name,
        vec![Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: msg,
        }],
    )
}

fn columns(v: &Value) -> Vec<PrinterColumn> {
    v.get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|c| PrinterColumn {
                    name: c.get("name").and_then(Value::as_str).unwrap_or("").into(),
                    type_: c
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("string")
                        .into(),
                    format: c.get("format").and_then(Value::as_str).unwrap_or("").into(),
                    description: c
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    json_path: c
                        .get("jsonPath")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The resource type a CRD defines, or 422 if the CRD is unusable.
pub fn to_resource_type(crd: &Value) -> ApiResult<ResourceType> {
    let name = object::name(crd);
    let spec = crd
        .get("spec")
        .ok_or_else(|| invalid(name, "spec", "Required value".into()))?;
    let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
    let names = spec.get("names").cloned().unwrap_or(json!({}));
    let plural = names.get("plural").and_then(Value::as_str).unwrap_or("");
    let kind = names.get("kind").and_then(Value::as_str).unwrap_or("");
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Err(invalid(
            name,
            "spec.names",
            "Invalid value: \"\": spec.group, spec.names.plural and spec.names.kind are required"
                .into(),
        ));
    }
    if name != format!("{plural}.{group}") {
        return Err(invalid(
            name,
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let mut versions: Vec<Version> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
                .map(|v| Version {
                    name: v.get("name").and_then(Value::as_str).unwrap_or("").into(),
                    schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                    printer_columns: columns(v),
                    status: v.pointer("/subresources/status").is_some(),
                })
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        return Err(invalid(
            name,
            "spec.versions",
            "Invalid value: null: must have exactly one version marked as storage version".into(),
        ));
    }
    versions.sort_by(|a, b| compare_versions(&a.name, &b.name));
    let scope = spec
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("Namespaced");
    Ok(ResourceType {
        group: group.into(),
        versions,
        plural: plural.into(),
        singular: names
            .get("singular")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| kind.to_lowercase()),
        kind: kind.into(),
        list_kind: names
            .get("listKind")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("{kind}List")),
        namespaced: scope != "Cluster",
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        builtin: None,
    })
}

/// The status a CRD gets at once: names accepted, Established.
pub fn status(crd: &Value, old: Option<&Value>) -> Value {
    let now = object::now_rfc3339();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut accepted = names.clone();
    if accepted.get("singular").is_none()
        && let Some(k) = names.get("kind").and_then(Value::as_str)
    {
        accepted["singular"] = json!(k.to_lowercase());
    }
    if accepted.get("listKind").is_none()
        && let Some(k) = names.get("kind").and_then(Value::as_str)
    {
        accepted["listKind"] = json!(format!("{k}List"));
    }
    let mut stored: Vec<String> = strings(old.and_then(|o| o.pointer("/status/storedVersions")));
    if let Some(vs) = crd.pointer("/spec/versions").and_then(Value::as_array) {
        for v in vs {
            if v.get("storage").and_then(Value::as_bool).unwrap_or(false)
                && let Some(n) = v.get("name").and_then(Value::as_str)
                && !stored.iter().any(|s| s == n)
            {
                stored.push(n.into());
            }
        }
    }
    let since = |t: &str| {
        old.and_then(|o| o.pointer("/status/conditions"))
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["type"] == t)
                    .and_then(|c| c.get("lastTransitionTime").cloned())
            })
    };
    let mut conditions = vec![
        json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": since("NamesAccepted").unwrap_or(json!(now))}),
        json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": since("Established").unwrap_or(json!(now))}),
    ];
    if object::is_deleting(crd) {
        conditions.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress", "lastTransitionTime": now}));
    }
    json!({ "acceptedNames": accepted, "storedVersions": stored, "conditions": conditions })
}
