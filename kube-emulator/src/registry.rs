//! The resource types the emulator serves: built-ins plus one entry per CRD.
//!
//! A [`ResourceType`] is keyed by `(group, plural)`; every served version of a
//! CRD is live as soon as the CRD is stored. Objects are stored once per
//! `(group, plural)` and only their `apiVersion` changes between versions
//! (conversion strategy `None`).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// Resource types with behaviour of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `v1 namespaces`.
    Namespace,
    /// `v1 secrets` (stringData folding).
    Secret,
    /// `v1 configmaps`.
    ConfigMap,
    /// `v1 events`.
    CoreEvent,
    /// `events.k8s.io/v1 events`.
    Event,
    /// `coordination.k8s.io/v1 leases`.
    Lease,
    /// `apiextensions.k8s.io/v1 customresourcedefinitions`.
    Crd,
    /// Stored as given (`crate::workloads`: Deployments, Services, RBAC, ...).
    Stored,
}

/// An `additionalPrinterColumns` entry.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// OpenAPI format, may be empty.
    pub format: String,
    /// Column description.
    pub description: String,
    /// 0 = shown by default, >0 = only with `-o wide`.
    pub priority: i64,
    /// JSONPath relative to the object, such as `.spec.size`.
    pub json_path: String,
}

/// One served version of a resource type.
#[derive(Debug, Clone)]
pub struct Version {
    /// Version name, such as `v1`.
    pub name: String,
    /// The `openAPIV3Schema` (CRDs only; `None` means "accept anything").
    pub schema: Option<Value>,
    /// Printer columns (empty: a single Age column).
    pub printer_columns: Vec<PrinterColumn>,
    /// Whether the `status` subresource is enabled.
    pub status: bool,
}

/// A resource type (a group + plural), with all its served versions.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group, `""` for core.
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<Version>,
    /// Plural resource name (URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Kind of lists.
    pub list_kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`kubectl get w`).
    pub short_names: Vec<String>,
    /// Categories (`kubectl get all`).
    pub categories: Vec<String>,
    /// Built-in behaviour, `None` for custom resources.
    pub builtin: Option<Builtin>,
}

impl ResourceType {
    /// The served version named `name`.
    pub fn version(&self, name: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// `group/version`, or `version` for core.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// Whether this is a custom resource (defined by a CRD).
    pub fn is_custom(&self) -> bool {
        self.builtin.is_none()
    }

    /// Whether the given version has the status subresource.
    pub fn has_status(&self, version: &str) -> bool {
        self.version(version).is_some_and(|v| v.status)
    }
}

/// Kubernetes version priority: GA > beta > alpha > other, higher numbers first.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn key(v: &str) -> (u8, u64, u64, String) {
        let parsed = v.strip_prefix('v').and_then(|rest| {
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let major: u64 = digits.parse().ok()?;
            let tail = &rest[digits.len()..];
            if tail.is_empty() {
                return Some((3, major, 0));
            }
            for (prefix, rank) in [("beta", 2u8), ("alpha", 1u8)] {
                if let Some(n) = tail.strip_prefix(prefix) {
                    let minor: u64 = n.parse().ok()?;
                    return Some((rank, major, minor));
                }
            }
            None
        });
        match parsed {
            Some((rank, major, minor)) => (rank, major, minor, String::new()),
            None => (0, 0, 0, v.to_string()),
        }
    }
    let (ka, kb) = (key(a), key(b));
    // Higher rank/number first; non-conforming versions alphabetically.
    kb.0.cmp(&ka.0)
        .then(kb.1.cmp(&ka.1))
        .then(kb.2.cmp(&ka.2))
        .then(ka.3.cmp(&kb.3))
}

/// All resource types, keyed by `(group, plural)`.
#[derive(Debug, Clone)]
pub struct Registry {
    types: BTreeMap<(String, String), Arc<ResourceType>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtins()
    }
}

/// A built-in type served in version `v1` of its group.
fn builtin(
    group: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    b: Builtin,
    status: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        versions: vec![Version {
            name: "v1".into(),
            schema: None,
            printer_columns: vec![],
            status,
        }],
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        builtin: Some(b),
    }
}

impl Registry {
    /// Only the built-in types.
    pub fn builtins() -> Self {
        let mut crd = builtin(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            Builtin::Crd,
            true,
        );
        crd.categories = vec!["api-extensions".into()];
        let list = [
            builtin(
                "",
                "namespaces",
                "Namespace",
                false,
                &["ns"],
                Builtin::Namespace,
                true,
            ),
            builtin("", "secrets", "Secret", true, &[], Builtin::Secret, false),
            builtin(
                "",
                "configmaps",
                "ConfigMap",
                true,
                &["cm"],
                Builtin::ConfigMap,
                false,
            ),
            builtin(
                "",
                "events",
                "Event",
                true,
                &["ev"],
                Builtin::CoreEvent,
                false,
            ),
            builtin(
                "events.k8s.io",
                "events",
                "Event",
                true,
                &["ev"],
                Builtin::Event,
                false,
            ),
            builtin(
                "coordination.k8s.io",
                "leases",
                "Lease",
                true,
                &[],
                Builtin::Lease,
                false,
            ),
            crd,
        ];
        let types = list
            .into_iter()
            .chain(crate::workloads::types())
            .map(|t| ((t.group.clone(), t.plural.clone()), Arc::new(t)))
            .collect();
        Registry { types }
    }

    /// Looks a type up by group and plural.
    pub fn get(&self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), plural.to_string()))
            .cloned()
    }

    /// Looks a type up by group, served version and plural.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.get(group, plural)
            .filter(|t| t.version(version).is_some())
    }

    /// Adds or replaces a type.
    pub fn insert(&mut self, t: ResourceType) {
        self.types
            .insert((t.group.clone(), t.plural.clone()), Arc::new(t));
    }

    /// Removes a type.
    pub fn remove(&mut self, group: &str, plural: &str) {
        self.types.remove(&(group.to_string(), plural.to_string()));
    }

    /// Groups (including `""`) with their versions, preferred first.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types.values() {
            let vs = out.entry(t.group.clone()).or_default();
            for v in &t.versions {
                if !vs.contains(&v.name) {
                    vs.push(v.name.clone());
                }
            }
        }
        for vs in out.values_mut() {
            vs.sort_by(|a, b| compare_versions(a, b));
        }
        out
    }

    /// Types served in `group/version`.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .values()
            .filter(|t| t.group == group && t.version(version).is_some())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority() {
        let mut v = vec!["v1alpha1", "v2", "v1beta1", "v1", "foo", "v2beta3"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["v2", "v1", "v2beta3", "v1beta1", "v1alpha1", "foo"]);
    }
}
