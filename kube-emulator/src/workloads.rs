//! The kinds a Helm chart of a controller creates: ServiceAccount, Service,
//! Role, RoleBinding, ClusterRole, ClusterRoleBinding, apps/v1 Deployment and
//! policy/v1 PodDisruptionBudget; and Pods, which `helm status` lists for
//! a Deployment (there are none unless a test writes them).
//!
//! They are stored as given (metadata checks, managedFields, server-side
//! apply, dry runs and watches as for every kind): no controller runs, so a
//! Deployment gets no ReplicaSets or Pods and its status stays as written, a
//! Service gets no ClusterIP and RBAC objects authorize nothing. Each has
//! its OpenAPI v3 schema from k8s-openapi (Kubernetes 1.33's), which the
//! OpenAPI documents serve (`kubectl explain`) and writes go through like a
//! CRD's: unknown fields are pruned, and refused under
//! `fieldValidation=Strict` (as Helm and `kubectl apply` send it), types and
//! required fields are checked. Not modelled: the API server's defaults
//! (a Deployment's `replicas: 1`, strategy, ...), its semantic validation
//! (a selector matching the template's labels, ...), and list merge keys
//! (lists are atomic for server-side apply). Deployments and
//! PodDisruptionBudgets keep `metadata.generation` as the API server does
//! (bumped when anything but status and metadata changes).

use std::sync::LazyLock;

use k8s_openapi::api::{apps, core, policy, rbac};
use serde_json::Value;

use crate::registry::{Builtin, ResourceType, Version};

/// One stored kind.
struct Kind {
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    /// Whether it has the `status` subresource.
    status: bool,
    /// Whether `metadata.generation` is maintained.
    generation: bool,
    /// Its OpenAPI v3 schema (all references inlined).
    schema: fn() -> Value,
}

/// The OpenAPI v3 schema of `T` as k8s-openapi describes it (the API
/// server's own document, with descriptions), every `$ref` inlined, as a
/// CRD's `openAPIV3Schema` would be.
fn schema_of<T: schemars::JsonSchema>() -> Value {
    let settings = schemars::generate::SchemaSettings::openapi3().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let schema = settings.into_generator().into_root_schema_for::<T>();
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

macro_rules! schema {
    ($t:ty) => {{
        static SCHEMA: LazyLock<Value> = LazyLock::new(schema_of::<$t>);
        || SCHEMA.clone()
    }};
}

const RBAC: &str = "rbac.authorization.k8s.io";

const KINDS: &[Kind] = &[
    Kind {
        group: "",
        plural: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        status: false,
        generation: false,
        schema: schema!(core::v1::ServiceAccount),
    },
    Kind {
        group: "",
        plural: "services",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        status: true,
        generation: false,
        schema: schema!(core::v1::Service),
    },
    Kind {
        group: "",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        status: true,
        generation: false,
        schema: schema!(core::v1::Pod),
    },
    Kind {
        group: RBAC,
        plural: "roles",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        generation: false,
        schema: schema!(rbac::v1::Role),
    },
    Kind {
        group: RBAC,
        plural: "rolebindings",
        kind: "RoleBinding",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        generation: false,
        schema: schema!(rbac::v1::RoleBinding),
    },
    Kind {
        group: RBAC,
        plural: "clusterroles",
        kind: "ClusterRole",
        namespaced: false,
        short_names: &[],
        categories: &[],
        status: false,
        generation: false,
        schema: schema!(rbac::v1::ClusterRole),
    },
    Kind {
        group: RBAC,
        plural: "clusterrolebindings",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short_names: &[],
        categories: &[],
        status: false,
        generation: false,
        schema: schema!(rbac::v1::ClusterRoleBinding),
    },
    Kind {
        group: "apps",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        status: true,
        generation: true,
        schema: schema!(apps::v1::Deployment),
    },
    Kind {
        group: "policy",
        plural: "poddisruptionbudgets",
        kind: "PodDisruptionBudget",
        namespaced: true,
        short_names: &["pdb"],
        categories: &[],
        status: true,
        generation: true,
        schema: schema!(policy::v1::PodDisruptionBudget),
    },
];

/// The resource types above, served in version `v1` of their group.
pub fn types() -> Vec<ResourceType> {
    KINDS
        .iter()
        .map(|k| ResourceType {
            group: k.group.to_string(),
            versions: vec![Version {
                name: "v1".into(),
                schema: Some((k.schema)()),
                printer_columns: vec![],
                status: k.status,
            }],
            plural: k.plural.to_string(),
            singular: k.kind.to_lowercase(),
            kind: k.kind.to_string(),
            list_kind: format!("{}List", k.kind),
            namespaced: k.namespaced,
            short_names: k.short_names.iter().map(|s| s.to_string()).collect(),
            categories: k.categories.iter().map(|s| s.to_string()).collect(),
            builtin: Some(Builtin::Stored),
        })
        .collect()
}

/// Whether `metadata.generation` is maintained for the stored kind `rt`.
pub fn tracks_generation(rt: &ResourceType) -> bool {
    KINDS
        .iter()
        .any(|k| k.group == rt.group && k.plural == rt.plural && k.generation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn served_and_generation() {
        let reg = Registry::builtins();
        let d = reg.resolve("apps", "v1", "deployments").unwrap();
        assert!(d.namespaced && d.has_status("v1") && tracks_generation(&d));
        let cr = reg
            .resolve(RBAC, "v1", "clusterroles")
            .expect("clusterroles");
        assert!(!cr.namespaced && !tracks_generation(&cr));
        assert!(reg.resolve("", "v1", "serviceaccounts").is_some());
    }
}
