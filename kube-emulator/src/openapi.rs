//! OpenAPI v3 documents, enough for kubectl: a root listing every
//! group-version with a content hash, and per group-version documents whose
//! item paths carry a `patch` operation with `x-kubernetes-group-version-kind`
//! and a `fieldValidation` parameter (so kubectl leaves validation to the
//! server). `strategic-merge-patch+json` is deliberately not offered.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn fnv_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`: every group-version with a `serverRelativeURL` whose hash
/// changes with the document.
pub fn root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, vs) in reg.groups() {
        for v in vs {
            let doc = document(reg, &g, &v).unwrap_or_default();
            let p = gv_path(&g, &v);
            let hash = fnv_hex(doc.to_string().as_bytes());
            paths.insert(
                p.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}") }),
            );
        }
    }
    json!({ "paths": paths })
}

/// The component name of a kind: `com.example.v1.Widget`, `io.k8s.api.core.v1.Secret`.
fn schema_name(t: &ResourceType, version: &str) -> String {
    let prefix = match t.group.as_str() {
        "" => "io.k8s.api.core".to_string(),
        "apiextensions.k8s.io" => {
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions".to_string()
        }
        g if g.ends_with(".k8s.io") || !t.is_custom() => {
            format!("io.k8s.api.{}", g.split('.').next().unwrap_or(g))
        }
        g => g.split('.').rev().collect::<Vec<_>>().join("."),
    };
    format!("{prefix}.{version}.{}", t.kind)
}

fn param(name: &str, location: &str) -> Value {
    json!({ "name": name, "in": location, "required": location == "path", "schema": { "type": "string", "uniqueItems": true } })
}

fn operation(action: &str, gvk: &Value, reference: &str, params: &[&str]) -> Value {
    let params: Vec<Value> = params.iter().map(|p| param(p, "query")).collect();
    let schema = json!({ "$ref": reference });
    let mut op = json!({
        "operationId": format!("{action}{}", gvk["kind"].as_str().unwrap_or("")),
        "parameters": params,
        "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": schema } } } },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    });
    match action {
        "patch" => {
            let patch = json!({ "schema": { "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch" } });
            op["requestBody"] = json!({ "content": {
                "application/apply-patch+yaml": patch,
                "application/json-patch+json": patch,
                "application/merge-patch+json": patch,
            }, "required": true });
        }
        "put" | "post" => {
            op["requestBody"] = json!({ "content": { "application/json": { "schema": schema } }, "required": true });
        }
        _ => {}
    }
    op
}

/// The document of one group-version, or `None` if nothing is served there.
pub fn document(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = reg.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(), json!({ "type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body." }));
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".into(),
        json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true }),
    );
    let base = format!("/{}", gv_path(group, version));
    for t in types {
        let gvk = json!({ "group": t.group, "version": version, "kind": t.kind });
        let name = schema_name(&t, version);
        let reference = format!("#/components/schemas/{name}");
        let mut schema = t
            .version(version)
            .and_then(|v| v.schema.clone())
            .unwrap_or(json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true }));
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert("metadata".into(), json!({ "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" }));
        }
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(name, schema);
        let list_ref = format!("#/components/schemas/{}", schema_name(&t, version) + "List");
        schemas.insert(format!("{}List", schema_name(&t, version)), json!({ "type": "object", "x-kubernetes-group-version-kind": [{ "group": t.group, "version": version, "kind": t.list_kind }] }));
        let ns = if t.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let mut path_params = vec![];
        if t.namespaced {
            path_params.push(param("namespace", "path"));
        }
        let write_params = ["dryRun", "fieldManager", "fieldValidation"];
        paths.insert(
            format!("{base}{ns}/{}", t.plural),
            json!({
                "get": operation("list", &gvk, &list_ref, &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"]),
                "post": operation("post", &gvk, &reference, &write_params),
                "delete": operation("deletecollection", &gvk, &reference, &["labelSelector", "fieldSelector"]),
                "parameters": path_params.clone(),
            }),
        );
        let mut item_params = vec![param("name", "path")];
        item_params.extend(path_params);
        let item = json!({
            "get": operation("get", &gvk, &reference, &[]),
            "put": operation("put", &gvk, &reference, &write_params),
            "patch": operation("patch", &gvk, &reference, &["dryRun", "fieldManager", "fieldValidation", "force"]),
            "delete": operation("delete", &gvk, &reference, &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
            "parameters": item_params,
        });
        paths.insert(format!("{base}{ns}/{}/{{name}}", t.plural), item.clone());
        if t.has_status(version) {
            paths.insert(format!("{base}{ns}/{}/{{name}}/status", t.plural), item);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.32.0" },
        "paths": paths,
        "components": { "schemas": schemas },
    }))
}
