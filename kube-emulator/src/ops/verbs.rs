//! The write verbs: create (POST), replace (PUT), patch (merge, JSON,
//! strategic, apply) and delete, with their preconditions and replies.

use std::sync::Arc;

use serde_json::{Value, json};

use super::write::{self, WriteReq};
use super::{FieldValidation, Reply, delete as del, generated_name, kinds};
use crate::error::{ApiError, ApiResult, Cause};
use crate::managed::{self, Scope};
use crate::object;
use crate::patch::{PatchError, json_patch, merge_patch, strategic_merge_patch};
use crate::registry::ResourceType;
use crate::selector::Selector;
use crate::store::{ObjKey, State};

/// What a request addresses, resolved against the registry.
#[derive(Debug, Clone)]
pub struct Target {
    /// The type.
    pub rt: Arc<ResourceType>,
    /// Requested version.
    pub version: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Name from the path.
    pub name: Option<String>,
    /// `status` or none.
    pub subresource: Option<String>,
}

impl Target {
    /// The key of the named object.
    pub fn key(&self) -> ApiResult<ObjKey> {
        let name = self.name.clone().ok_or_else(ApiError::page_not_found)?;
        self.key_for(&name)
    }

    /// The key of an object named `name` in this target's namespace.
    pub fn key_for(&self, name: &str) -> ApiResult<ObjKey> {
        let namespace = if self.rt.namespaced {
            self.namespace
                .clone()
                .ok_or_else(ApiError::page_not_found)?
        } else {
            String::new()
        };
        Ok(ObjKey {
            group: self.rt.group.clone(),
            plural: self.rt.plural.clone(),
            namespace,
            name: name.to_string(),
        })
    }

    /// The openAPIV3Schema of the requested version, if any.
    pub fn schema(&self) -> Option<&Value> {
        self.rt
            .version(&self.version)
            .and_then(|v| v.schema.as_ref())
    }

    fn scope(&self) -> Scope {
        match self.subresource.as_deref() {
            Some(_) => Scope::Status,
            None => Scope::Main {
                status_subresource: self.rt.has_status(&self.version),
            },
        }
    }
}

/// Write options from the query string.
#[derive(Debug, Clone)]
pub struct Options {
    /// `fieldManager`, if given.
    pub field_manager: Option<String>,
    /// Manager for Update entries: fieldManager or User-Agent prefix.
    pub manager: String,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldValidation`.
    pub validation: FieldValidation,
    /// `force=true` (apply).
    pub force: bool,
}

/// Patch flavours by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json` (merge semantics; built-ins only).
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply,
}

fn req<'a>(t: &'a Target, o: &Options, key: ObjKey, is_patch: bool, applied: bool) -> WriteReq<'a> {
    WriteReq {
        rt: &t.rt,
        version: &t.version,
        key,
        scope: t.scope(),
        manager: o.manager.clone(),
        dry_run: o.dry_run,
        validation: o.validation,
        is_patch,
        applied,
    }
}

fn check_namespace(st: &State, t: &Target) -> ApiResult<()> {
    let Some(ns) = t.namespace.as_deref().filter(|_| t.rt.namespaced) else {
        return Ok(());
    };
    let key = ObjKey {
        group: String::new(),
        plural: "namespaces".into(),
        namespace: String::new(),
        name: ns.into(),
    };
    match st.objects.get(&key) {
        None => Err(ApiError::not_found("namespaces", "", ns)),
        Some(n) if object::is_deleting(n) => Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            crate::error::qualified(&t.rt.plural, &t.rt.group),
            t.name.as_deref().unwrap_or("")
        ))),
        Some(_) => Ok(()),
    }
}

/// POST: creates the object in `body`.
pub fn create(st: &mut State, t: &Target, o: &Options, mut body: Value) -> ApiResult<Reply> {
    if t.subresource.is_some() || t.name.is_some() {
        return Err(ApiError::method_not_allowed("POST"));
    }
    if t.rt.namespaced && t.namespace.is_none() {
        return Err(ApiError::page_not_found());
    }
    let body_ns = object::namespace(&body);
    if !body_ns.is_empty() && t.rt.namespaced && Some(body_ns) != t.namespace.as_deref() {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut name = object::name(&body).to_string();
    if name.is_empty() {
        let prefix = object::meta_str(&body, "generateName");
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &t.rt.kind,
                &t.rt.group,
                "",
                vec![Cause {
                    reason: "FieldValueRequired",
                    field: "metadata.name".into(),
                    message: "Required value: name or generateName is required".into(),
                }],
            ));
        }
        name = generated_name(prefix);
        object::meta_mut(&mut body).insert("name".into(), json!(name));
    }
    kinds::validate_name(&t.rt, &name)?;
    let t = Target {
        name: Some(name.clone()),
        ..t.clone()
    };
    check_namespace(st, &t)?;
    let key = t.key()?;
    let w = write::create(st, &req(&t, o, key, false, false), body)?;
    Ok(Reply {
        code: 201,
        body: w.object,
        warnings: w.warnings,
    })
}

/// PUT: replaces the named object.
pub fn replace(st: &mut State, t: &Target, o: &Options, body: Value) -> ApiResult<Reply> {
    let key = t.key()?;
    let old = st
        .objects
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.rt.plural, &t.rt.group, &key.name))?;
    let body_name = object::name(&body);
    if !body_name.is_empty() && body_name != key.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            key.name
        )));
    }
    match object::resource_version(&body) {
        "" if t.rt.is_custom() => {
            return Err(ApiError::invalid(
                &t.rt.kind,
                &t.rt.group,
                &key.name,
                vec![Cause {
                    reason: "FieldValueInvalid",
                    field: "metadata.resourceVersion".into(),
                    message: "Invalid value: 0x0: must be specified for an update".into(),
                }],
            ));
        }
        "" => {}
        rv if rv != object::resource_version(&old) => {
            return Err(ApiError::conflict(&t.rt.plural, &t.rt.group, &key.name));
        }
        _ => {}
    }
    let w = write::update(st, &req(t, o, key, false, false), old, body)?;
    Ok(Reply {
        code: 200,
        body: w.object,
        warnings: w.warnings,
    })
}

fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::Malformed(m) => ApiError::bad_request(m),
        other => ApiError::new(422, "Invalid", other.to_string()),
    }
}

/// PATCH: merge, JSON, strategic (as merge) or server-side apply.
pub fn patch(
    st: &mut State,
    t: &Target,
    o: &Options,
    kind: PatchKind,
    patch: Value,
) -> ApiResult<Reply> {
    let key = t.key()?;
    if kind == PatchKind::Strategic && t.rt.is_custom() {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    if kind == PatchKind::Apply {
        return apply(st, t, o, key, patch);
    }
    let old = st
        .objects
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.rt.plural, &t.rt.group, &key.name))?;
    let mut new = old.clone();
    match kind {
        PatchKind::Json => json_patch(&mut new, &patch).map_err(patch_error)?,
        _ if !patch.is_object() => {
            return Err(ApiError::bad_request("patch body must be a JSON object"));
        }
        PatchKind::Strategic => strategic_merge_patch(&mut new, &patch),
        _ => merge_patch(&mut new, &patch),
    }
    let rv = object::resource_version(&new);
    if !rv.is_empty() && rv != object::resource_version(&old) {
        return Err(ApiError::conflict(&t.rt.plural, &t.rt.group, &key.name));
    }
    let w = write::update(st, &req(t, o, key, true, false), old, new)?;
    Ok(Reply {
        code: 200,
        body: w.object,
        warnings: w.warnings,
    })
}

fn apply(st: &mut State, t: &Target, o: &Options, key: ObjKey, applied: Value) -> ApiResult<Reply> {
    let Some(manager) = o.field_manager.clone() else {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![Cause {
                reason: "FieldValueRequired",
                field: "fieldManager".into(),
                message: "Required value: is required for apply patch".into(),
            }],
        ));
    };
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "invalid object type: {api_version}, Kind={kind}"
        )));
    }
    if kind != t.rt.kind {
        return Err(ApiError::bad_request(format!(
            "the kind of the applied object ({kind}) does not match the kind of the resource ({})",
            t.rt.kind
        )));
    }
    // Unknown fields are dropped (or refused) before ownership is computed.
    let mut applied = applied;
    let mut unknown = vec![];
    if let Some(sch) = t.schema() {
        crate::schema::prune(&mut applied, sch, "", &mut unknown);
    }
    let warnings = write::unknown_fields(&req(t, o, key.clone(), true, true), &unknown)?;
    let gv = t.rt.api_version(&t.version);
    let now = object::now_rfc3339();
    let who = managed::Applier {
        manager: &manager,
        api_version: &gv,
        scope: t.scope(),
        schema: t.schema(),
        force: o.force,
        now: &now,
    };
    let o = Options {
        manager: manager.clone(),
        ..o.clone()
    };
    match st.objects.get(&key).cloned() {
        None => {
            if t.subresource.is_some() {
                return Err(ApiError::not_found(&t.rt.plural, &t.rt.group, &key.name));
            }
            check_namespace(st, t)?;
            kinds::validate_name(&t.rt, &key.name)?;
            let mut skeleton =
                json!({ "apiVersion": gv, "kind": t.rt.kind, "metadata": { "name": key.name } });
            if t.rt.namespaced {
                skeleton["metadata"]["namespace"] = json!(key.namespace);
            }
            let merged = managed::apply(&skeleton, &applied, &who)?;
            let w = write::create(st, &req(t, &o, key, true, true), merged)?;
            Ok(Reply {
                code: 201,
                body: w.object,
                warnings,
            })
        }
        Some(old) => {
            let rv = object::resource_version(&applied);
            if !rv.is_empty() && rv != object::resource_version(&old) {
                return Err(ApiError::conflict(&t.rt.plural, &t.rt.group, &key.name));
            }
            let merged = managed::apply(&old, &applied, &who)?;
            let w = write::update(st, &req(t, &o, key, true, true), old, merged)?;
            Ok(Reply {
                code: 200,
                body: w.object,
                warnings,
            })
        }
    }
}

/// DELETE of one object, honouring preconditions, dryRun and finalizers.
pub fn delete(st: &mut State, t: &Target, dry_run: bool, options: &Value) -> ApiResult<Reply> {
    let key = t.key()?;
    let obj = st
        .objects
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.rt.plural, &t.rt.group, &key.name))?;
    if let Some(uid) = options
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        && uid != object::meta_str(&obj, "uid")
    {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                crate::error::qualified(&t.rt.plural, &t.rt.group),
                key.name,
                object::meta_str(&obj, "uid")
            ),
        ));
    }
    if let Some(rv) = options
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        && rv != object::resource_version(&obj)
    {
        return Err(ApiError::conflict(&t.rt.plural, &t.rt.group, &key.name));
    }
    if t.rt.builtin == Some(crate::registry::Builtin::Namespace)
        && matches!(key.name.as_str(), "default" | "kube-system" | "kube-public")
    {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{}\" is forbidden: this namespace may not be deleted",
            key.name
        )));
    }
    let dry = dry_run
        || options
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let cascade = options.get("propagationPolicy").and_then(Value::as_str) != Some("Orphan");
    let mut out = if dry {
        obj
    } else {
        del::delete_object(st, &key, cascade)
    };
    object::set_type(&mut out, &t.rt.api_version(&t.version), &t.rt.kind);
    Ok(Reply::ok(out))
}

/// DELETE of a collection: every matching object.
pub fn delete_collection(
    st: &mut State,
    t: &Target,
    sel: &Selector,
    dry_run: bool,
) -> ApiResult<Reply> {
    let keys: Vec<ObjKey> = st
        .list(&t.rt.group, &t.rt.plural, t.namespace.as_deref())
        .into_iter()
        .filter(|(_, o)| sel.matches(o))
        .map(|(k, _)| k.clone())
        .collect();
    let mut items = vec![];
    for k in keys {
        let mut o = if dry_run {
            st.objects.get(&k).cloned().unwrap_or_default()
        } else {
            del::delete_object(st, &k, true)
        };
        object::set_type(&mut o, &t.rt.api_version(&t.version), &t.rt.kind);
        items.push(o);
    }
    Ok(Reply::ok(super::read::list_body(t, items, st.rv)))
}
