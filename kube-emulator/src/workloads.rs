//! The kinds a Helm chart of a controller creates: ServiceAccount, Service,
//! Role, RoleBinding, ClusterRole, ClusterRoleBinding, apps/v1 Deployment and
//! policy/v1 PodDisruptionBudget; and Pods, which `helm status` lists for
//! a Deployment (there are none unless a test writes them).
//!
//! They are stored as given (metadata checks, managedFields, server-side
//! apply, dry runs and watches as for every kind): no controller runs, so a
//! Deployment gets no ReplicaSets or Pods and its status stays as written, a
//! Service gets no ClusterIP and RBAC objects authorize nothing. There is no
//! schema either (no defaulting, no unknown-field detection, lists are atomic
//! for server-side apply). Deployments and PodDisruptionBudgets keep
//! `metadata.generation` as the API server does (bumped when anything but
//! status and metadata changes).

use crate::registry::{Builtin, ResourceType, Version};

/// One stored kind: group, plural, kind, namespaced, short names,
/// categories, status subresource, tracks generation.
struct Kind(
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
    bool,
    bool,
);

const RBAC: &str = "rbac.authorization.k8s.io";

const KINDS: &[Kind] = &[
    Kind(
        "",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        &[],
        false,
        false,
    ),
    Kind(
        "",
        "services",
        "Service",
        true,
        &["svc"],
        &["all"],
        true,
        false,
    ),
    Kind("", "pods", "Pod", true, &["po"], &["all"], true, false),
    Kind(RBAC, "roles", "Role", true, &[], &[], false, false),
    Kind(
        RBAC,
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        &[],
        false,
        false,
    ),
    Kind(
        RBAC,
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        &[],
        false,
        false,
    ),
    Kind(
        RBAC,
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        &[],
        false,
        false,
    ),
    Kind(
        "apps",
        "deployments",
        "Deployment",
        true,
        &["deploy"],
        &["all"],
        true,
        true,
    ),
    Kind(
        "policy",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        &[],
        true,
        true,
    ),
];

/// The resource types above, served in version `v1` of their group.
pub fn types() -> Vec<ResourceType> {
    KINDS
        .iter()
        .map(
            |Kind(group, plural, kind, namespaced, short, categories, status, _)| ResourceType {
                group: group.to_string(),
                versions: vec![Version {
                    name: "v1".into(),
                    schema: None,
                    printer_columns: vec![],
                    status: *status,
                }],
                plural: plural.to_string(),
                singular: kind.to_lowercase(),
                kind: kind.to_string(),
                list_kind: format!("{kind}List"),
                namespaced: *namespaced,
                short_names: short.iter().map(|s| s.to_string()).collect(),
                categories: categories.iter().map(|s| s.to_string()).collect(),
                builtin: Some(Builtin::Stored),
            },
        )
        .collect()
}

/// Whether `metadata.generation` is maintained for the stored kind `rt`.
pub fn tracks_generation(rt: &ResourceType) -> bool {
    KINDS
        .iter()
        .any(|k| k.0 == rt.group && k.1 == rt.plural && k.7)
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
