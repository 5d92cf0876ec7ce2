//! The common tail of every write: type-specific preparation, status
//! subresource rules, schema pruning/defaulting/validation, generation,
//! managedFields, no-op detection, finalizer-driven deletion and commit.

use serde_json::{Value, json};

use super::{FieldValidation, delete, kinds, stamp_new};
use crate::error::{ApiError, ApiResult};
use crate::managed::{self, Scope};
use crate::object;
use crate::registry::ResourceType;
use crate::schema;
use crate::store::{EventType, ObjKey, State};

/// Describes one write.
#[derive(Debug, Clone)]
pub struct WriteReq<'a> {
    /// The type written.
    pub rt: &'a ResourceType,
    /// The API version of the request.
    pub version: &'a str,
    /// The object's key.
    pub key: ObjKey,
    /// Main resource or `/status`.
    pub scope: Scope,
    /// Field manager (fieldManager or User-Agent prefix).
    pub manager: String,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldValidation`.
    pub validation: FieldValidation,
    /// Whether the request is a PATCH (Strict unknown fields: 422 instead of 400).
    pub is_patch: bool,
    /// Whether managedFields are already computed (server-side apply).
    pub applied: bool,
}

/// The result of a write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The object as stored (or as it would be, for dry runs).
    pub object: Value,
    /// `Warning` header values.
    pub warnings: Vec<String>,
}

/// Applies `fieldValidation` to the unknown fields pruning found: Strict
/// fails (400 for POST/PUT, 422 for PATCH), Warn returns `Warning` texts.
pub fn unknown_fields(req: &WriteReq, unknown: &[String]) -> ApiResult<Vec<String>> {
    if unknown.is_empty() {
        return Ok(vec![]);
    }
    let list: Vec<String> = unknown
        .iter()
        .map(|u| format!("unknown field {u:?}"))
        .collect();
    match req.validation {
        FieldValidation::Strict if req.is_patch => {
            let causes: Vec<Value> = unknown
                .iter()
                .map(|u| json!({"reason": "FieldValueInvalid", "message": format!("unknown field {u:?}"), "field": u}))
                .collect();
            Err(ApiError::new(422, "Invalid", format!("strict decoding error: {}", list.join(", ")))
                .with_details(json!({ "name": req.key.name, "group": req.rt.group, "kind": req.rt.kind, "causes": causes })))
        }
        FieldValidation::Strict => {
            let k = &req.rt.kind;
            Err(ApiError::bad_request(format!(
                "{k} in version {:?} cannot be handled as a {k}: strict decoding error: {}",
                req.version,
                list.join(", ")
            )))
        }
        FieldValidation::Warn => Ok(list),
        FieldValidation::Ignore => Ok(vec![]),
    }
}

fn check_schema(req: &WriteReq, obj: &mut Value) -> ApiResult<Vec<String>> {
    let Some(sch) = req.rt.version(req.version).and_then(|v| v.schema.as_ref()) else {
        return Ok(vec![]);
    };
    let mut unknown = vec![];
    schema::prune(obj, sch, "", &mut unknown);
    let warnings = unknown_fields(req, &unknown)?;
    schema::apply_defaults(obj, sch);
    let mut errs = vec![];
    schema::validate(obj, sch, "", &mut errs);
    if !errs.is_empty() {
        return Err(ApiError::invalid(
            &req.rt.kind,
            &req.rt.group,
            &req.key.name,
            errs,
        ));
    }
    Ok(warnings)
}

const SERVER_FIELDS: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
];

/// Creates `obj` (name and namespace already resolved into `req.key`).
pub fn create(st: &mut State, req: &WriteReq, mut obj: Value) -> ApiResult<Written> {
    if st.objects.contains_key(&req.key) {
        return Err(ApiError::already_exists(
            &req.rt.plural,
            &req.rt.group,
            &req.key.name,
        ));
    }
    object::set_type(&mut obj, &req.rt.api_version(req.version), &req.rt.kind);
    {
        let meta = object::meta_mut(&mut obj);
        for f in SERVER_FIELDS {
            meta.remove(*f);
        }
        if !req.applied {
            meta.remove("managedFields");
        }
        meta.insert("name".into(), json!(req.key.name));
        if req.rt.namespaced {
            meta.insert("namespace".into(), json!(req.key.namespace));
        } else {
            meta.remove("namespace");
        }
    }
    if req.rt.is_custom()
        && req.rt.has_status(req.version)
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    kinds::prepare(req.rt, &mut obj, None)?;
    let warnings = check_schema(req, &mut obj)?;
    if !req.applied {
        managed::track_update(
            None,
            &mut obj,
            &req.manager,
            &req.rt.api_version(req.version),
            req.scope,
            req.rt.version(req.version).and_then(|v| v.schema.as_ref()),
            &object::now_rfc3339(),
        );
    }
    stamp_new(&mut obj);
    if kinds::tracks_generation(req.rt) {
        object::meta_mut(&mut obj).insert("generation".into(), json!(1));
    }
    if req.dry_run {
        return Ok(Written {
            object: obj,
            warnings,
        });
    }
    let stored = st.commit_put(req.key.clone(), obj, EventType::Added, None);
    after_put(st, req.rt, &stored);
    Ok(Written {
        object: stored,
        warnings,
    })
}

/// Replaces the stored `old` with `new` (the full intended object).
pub fn update(st: &mut State, req: &WriteReq, old: Value, mut new: Value) -> ApiResult<Written> {
    object::set_type(&mut new, &req.rt.api_version(req.version), &req.rt.kind);
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    // Status subresource rules.
    let has_status = req.rt.has_status(req.version);
    match req.scope {
        Scope::Main { .. } if has_status => copy_field(&old, &mut new, "status"),
        Scope::Status => {
            let mut merged = old.clone();
            copy_field(&new, &mut merged, "status");
            if let Some(mf) = new.pointer("/metadata/managedFields") {
                object::meta_mut(&mut merged).insert("managedFields".into(), mf.clone());
            }
            new = merged;
        }
        _ => {}
    }
    // Server-owned metadata.
    {
        let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
        let meta = object::meta_mut(&mut new);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "name",
            "namespace",
            "generation",
            "resourceVersion",
        ] {
            match old_meta.get(f) {
                Some(v) => meta.insert(f.into(), v.clone()),
                None => meta.remove(f),
            };
        }
        if meta
            .get("managedFields")
            .is_none_or(|m| m.as_array().is_none_or(Vec::is_empty))
        {
            match old_meta.get("managedFields") {
                Some(v) => meta.insert("managedFields".into(), v.clone()),
                None => meta.remove("managedFields"),
            };
        }
    }
    if object::is_deleting(&old) {
        let before = object::finalizers(&old);
        if object::finalizers(&new).iter().any(|f| !before.contains(f)) {
            return Err(ApiError::invalid(
                &req.rt.kind,
                &req.rt.group,
                &req.key.name,
                vec![crate::error::Cause {
                    reason: "FieldValueForbidden",
                    field: "metadata.finalizers".into(),
                    message:
                        "Forbidden: no new finalizers can be added if the object is being deleted"
                            .into(),
                }],
            ));
        }
    }
    kinds::prepare(req.rt, &mut new, Some(&old))?;
    let warnings = check_schema(req, &mut new)?;
    if kinds::tracks_generation(req.rt)
        && object::spec_part(&new, has_status) != object::spec_part(&old, has_status)
    {
        object::meta_mut(&mut new).insert("generation".into(), json!(object::generation(&old) + 1));
    }
    if !req.applied {
        managed::track_update(
            Some(&old),
            &mut new,
            &req.manager,
            &req.rt.api_version(req.version),
            req.scope,
            req.rt.version(req.version).and_then(|v| v.schema.as_ref()),
            &object::now_rfc3339(),
        );
    }
    if req.dry_run {
        return Ok(Written {
            object: new,
            warnings,
        });
    }
    if is_noop(&old, &new) {
        return Ok(Written {
            object: old,
            warnings,
        });
    }
    if object::is_deleting(&new) && object::finalizers(&new).is_empty() {
        st.objects.insert(req.key.clone(), new);
        let gone = delete::remove_now(st, &req.key).unwrap_or(json!({}));
        return Ok(Written {
            object: gone,
            warnings,
        });
    }
    let stored = st.commit_put(req.key.clone(), new, EventType::Modified, Some(old));
    after_put(st, req.rt, &stored);
    Ok(Written {
        object: stored,
        warnings,
    })
}

/// Whether `new` equals the stored `old`, ignoring managedFields times and
/// the apiVersion it was stored under.
fn is_noop(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = managed::without_times(v);
        if let Some(m) = v.as_object_mut() {
            m.remove("apiVersion");
        }
        v
    };
    strip(old) == strip(new)
}

fn copy_field(from: &Value, to: &mut Value, field: &str) {
    let Some(m) = to.as_object_mut() else { return };
    match from.get(field) {
        Some(v) => m.insert(field.into(), v.clone()),
        None => m.remove(field),
    };
}

/// Keeps the registry in step with stored CRDs.
pub fn after_put(st: &mut State, rt: &ResourceType, obj: &Value) {
    if rt.builtin == Some(crate::registry::Builtin::Crd)
        && let Ok(t) = crate::crd::to_resource_type(obj)
    {
        st.registry.insert(t);
    }
}
