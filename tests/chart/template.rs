//! Reading the chart without helm: templates are reduced to plain YAML by
//! dropping lines that hold only template actions (`{{- if ... }}`,
//! `{{- toYaml ... }}`, ...) and replacing the remaining inline actions with
//! [`PLACEHOLDER`]. Both branches of a conditional survive, which is what the
//! checks want (every line the chart can render is looked at). The chart keeps
//! its templates simple enough for this: rules blocks, args and security
//! settings are literal YAML.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// What an inline `{{ ... }}` becomes.
pub const PLACEHOLDER: &str = "TEMPLATE";

pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/kubemirror")
}

pub fn read(rel: &str) -> String {
    let p = chart_dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// `{{/* ... */}}` comments removed (they may span lines).
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = rest[i + 2..].trim_start_matches('-').trim_start();
        if after.starts_with("/*") {
            let end = rest[i..]
                .find("*/")
                .and_then(|j| rest[i + j..].find("}}").map(|k| i + j + k + 2))
                .expect("unterminated template comment");
            out.push_str(&rest[..i]);
            rest = &rest[end..];
        } else {
            out.push_str(&rest[..i + 2]);
            rest = &rest[i + 2..];
        }
    }
    out.push_str(rest);
    out
}

/// Replace every `{{ ... }}` in `line` with `with`.
fn replace_actions(line: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("{{") {
        let j = rest[i..]
            .find("}}")
            .unwrap_or_else(|| panic!("unterminated action in {line:?}"));
        out.push_str(&rest[..i]);
        out.push_str(with);
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

/// The template as plain YAML text (see the module comment).
pub fn flatten(template: &str) -> String {
    strip_comments(template)
        .lines()
        .filter(|l| !l.trim().is_empty() && !replace_actions(l, "").trim().is_empty())
        .map(|l| replace_actions(l, PLACEHOLDER))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The YAML documents of a template file under `templates/`.
pub fn documents(template: &str) -> Vec<Value> {
    let text = flatten(&read(&format!("templates/{template}")));
    text.split("\n---")
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            serde_yaml::from_str(d)
                .unwrap_or_else(|e| panic!("templates/{template}: {e}\n--- flattened:\n{d}"))
        })
        .collect()
}

/// The control-structure balance of a template: `if`/`with`/`range`/`define`
/// blocks each closed by one `end`.
pub fn check_balanced(name: &str, template: &str) {
    let mut depth = 0i32;
    let text = strip_comments(template);
    let mut rest = text.as_str();
    while let Some(i) = rest.find("{{") {
        let j = rest[i..].find("}}").expect("unterminated action");
        let action = rest[i + 2..i + j]
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let word = action.split_whitespace().next().unwrap_or("");
        match word {
            "if" | "with" | "range" | "define" | "block" => depth += 1,
            "end" => depth -= 1,
            _ => {}
        }
        assert!(depth >= 0, "{name}: `end` without an opening block");
        rest = &rest[i + j + 2..];
    }
    assert_eq!(depth, 0, "{name}: {depth} block(s) not closed by `end`");
}

/// Every `.Values.a.b` path named by the template files.
pub fn values_paths(template: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\.Values((?:\.[A-Za-z0-9_]+)+)").unwrap();
    re.captures_iter(template)
        .map(|c| c[1].trim_start_matches('.').to_string())
        .collect()
}

/// `values` at a dotted path.
pub fn lookup<'a>(values: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(values, |v, k| v.get(k))
}

/// The chart's `values.yaml`.
pub fn values() -> Value {
    serde_yaml::from_str(&read("values.yaml")).expect("values.yaml parses")
}

/// The template files (`*.yaml` and `*.tpl` under `templates/`), sorted.
pub fn template_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(chart_dir().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// One RBAC rule as the chart writes it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    /// `resourceNames`, when the rule is limited to named objects.
    pub resource_names: Option<Vec<String>>,
}

impl Rule {
    /// Whether the rule allows `verb` on `group`/`resource` (named `name`,
    /// if the request names one), as the RBAC authorizer decides.
    pub fn allows(&self, group: &str, resource: &str, verb: &str, name: Option<&str>) -> bool {
        let any = |v: &[String], x: &str| v.iter().any(|s| s == x || s == "*");
        let named = match (&self.resource_names, name) {
            (None, _) => true,
            (Some(names), Some(n)) => any(names, n),
            (Some(_), None) => false,
        };
        any(&self.api_groups, group)
            && any(&self.resources, resource)
            && any(&self.verbs, verb)
            && named
    }
}

/// Where a role of the chart applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleScope {
    /// The controller's role: a ClusterRole, or a Role in `watchNamespace`.
    Watched,
    /// The leader-election Role, in the release namespace.
    Release,
    /// The shard and member Leases' Role (replicaCount > 1), in the release namespace.
    Shards,
}

/// The rules of each role in `templates/rbac.yaml`, with `fullname` for the
/// release's object names (`{{ include "kubemirror.fullname" . }}`).
pub fn rbac_roles(fullname: &str) -> Vec<(RoleScope, Vec<Rule>)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_sequence()
            .expect("a list")
            .iter()
            .map(|s| s.as_str().expect("a string").to_string())
            .collect()
    };
    documents("rbac.yaml")
        .into_iter()
        .filter_map(|d| {
            let rules = d.get("rules")?.as_sequence()?.clone();
            let name = d["metadata"]["name"].as_str().unwrap().to_string();
            let scope = if name.ends_with("-leader-election") {
                RoleScope::Release
            } else if name.ends_with("-shards") {
                RoleScope::Shards
            } else {
                RoleScope::Watched
            };
            let rules = rules
                .iter()
                .map(|r| Rule {
                    api_groups: strings(&r["apiGroups"]),
                    resources: strings(&r["resources"]),
                    verbs: strings(&r["verbs"]),
                    resource_names: r.get("resourceNames").map(|n| {
                        strings(n)
                            .into_iter()
                            .map(|s| s.replace(PLACEHOLDER, fullname))
                            .collect()
                    }),
                })
                .collect();
            Some((scope, rules))
        })
        .collect()
}
