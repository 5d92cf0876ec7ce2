//! The chart linted (`helm lint --strict`) and rendered (`helm template`)
//! by the real Helm for several sets of values, each render checked for what
//! those values must produce: replicas and `--leader-elect` (one replica),
//! or `--shards`, the shard Leases' Role and a PodDisruptionBudget (more
//! than one replica), `--namespace` and a Role instead of a ClusterRole
//! for `watchNamespace`, the Lease Role naming the Lease the controller
//! holds, bindings whose roles exist and whose subject is the pod's
//! ServiceAccount, the extra CA, pod-spec pass-throughs, the ServiceMonitor,
//! and no RBAC or ServiceAccount when the user brings their own.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::cluster::RELEASE_NAMESPACE;
use crate::helm::{helm_command, no_helm};

const CHART: &str = "charts/kubemirror";

fn cases() -> Vec<(&'static str, Value)> {
    vec![
        ("defaults", json!({})),
        ("one namespace", json!({"watchNamespace": "team-a"})),
        (
            "four replicas sharded 64 ways in one namespace",
            json!({"replicaCount": 4, "sharding": {"shards": 64}, "watchNamespace": "team-a"}),
        ),
        (
            "three replicas (sharded), no leader election asked, extras",
            json!({
                "replicaCount": 3,
                "leaderElection": {"enabled": false},
                "extraCA": {"secret": "corp-ca"},
                "metrics": {"serviceMonitor": {"enabled": true}},
                "podAnnotations": {"example.com/a": "b"},
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                "affinity": {"nodeAffinity": {}},
                "imagePullSecrets": [{"name": "pull"}],
            }),
        ),
        (
            "no leader election, bring your own ServiceAccount and RBAC",
            json!({
                "leaderElection": {"enabled": false},
                "rbac": {"create": false},
                "serviceAccount": {"create": false, "name": "mirror-sa"},
            }),
        ),
    ]
}

/// `helm ARGS -f VALUES` in a scratch Helm home; stdout, or a panic with
/// Helm's output.
fn helm(dir: &std::path::Path, case: &str, args: &[&str], values: &Value) -> String {
    let file = dir.join("values.json");
    std::fs::write(&file, values.to_string()).unwrap();
    let out = helm_command(&dir.join("helm"))
        .args(args)
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| no_helm(e));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{case}: helm {}: {stdout}{stderr}",
        args.join(" ")
    );
    stdout.into_owned()
}

fn render(dir: &std::path::Path, case: &str, values: &Value) -> Vec<Value> {
    helm(
        dir,
        case,
        &["lint", "--strict", CHART, "-n", RELEASE_NAMESPACE],
        values,
    );
    let text = helm(
        dir,
        case,
        &["template", "kubemirror", CHART, "-n", RELEASE_NAMESPACE],
        values,
    );
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|d| !d.is_null())
        .collect()
}

fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    v.pointer(path).unwrap_or(&Value::Null)
}

fn check(case: &str, values: &Value, docs: &[Value]) {
    let mut by_kind: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for d in docs {
        by_kind
            .entry(d["kind"].as_str().unwrap())
            .or_default()
            .push(d);
    }
    let dep = by_kind["Deployment"][0];
    let pod = get(dep, "/spec/template/spec");
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let env: BTreeSet<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let replicas = values["replicaCount"].as_i64().unwrap_or(1);
    let sharded = replicas > 1;
    let leader = values
        .pointer("/leaderElection/enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true)
        && !sharded;
    assert_eq!(dep["spec"]["replicas"], replicas, "{case}: replicas");
    assert_eq!(args.contains(&"--leader-elect"), leader, "{case}: {args:?}");
    let shards = values
        .pointer("/sharding/shards")
        .and_then(Value::as_i64)
        .unwrap_or(32);
    assert_eq!(
        args.contains(&format!("--shards={shards}").as_str()),
        sharded,
        "{case}: {args:?}"
    );
    let pdb = by_kind.get("PodDisruptionBudget").map(|v| v[0]);
    assert_eq!(pdb.is_some(), sharded, "{case}: PodDisruptionBudget");
    if let Some(pdb) = pdb {
        assert_eq!(pdb["spec"]["maxUnavailable"], 1, "{case}: {pdb}");
        assert_eq!(
            pdb["spec"]["selector"]["matchLabels"], dep["spec"]["selector"]["matchLabels"],
            "{case}: the PDB selects the controller's pods"
        );
    }
    let ns = values["watchNamespace"].as_str();
    match ns {
        Some(ns) => assert!(
            args.contains(&format!("--namespace={ns}").as_str()),
            "{case}: {args:?}"
        ),
        None => assert!(
            !args.iter().any(|a| a.starts_with("--namespace")),
            "{case}: {args:?}"
        ),
    }
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"], true,
        "{case}: readOnlyRootFilesystem"
    );
    assert_eq!(
        env.contains("SSL_CERT_DIR"),
        values.get("extraCA").is_some(),
        "{case}: SSL_CERT_DIR"
    );
    for key in [
        "nodeSelector",
        "tolerations",
        "affinity",
        "imagePullSecrets",
    ] {
        assert_eq!(
            pod.get(key).is_some(),
            values.get(key).is_some(),
            "{case}: pod spec {key}"
        );
    }
    if let Some(a) = values["podAnnotations"].as_object() {
        for (k, v) in a {
            assert_eq!(
                &dep["spec"]["template"]["metadata"]["annotations"][k], v,
                "{case}: podAnnotations"
            );
        }
    }
    let sa = pod["serviceAccountName"].as_str().unwrap();
    let create_sa = values
        .pointer("/serviceAccount/create")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    assert_eq!(
        by_kind.contains_key("ServiceAccount"),
        create_sa,
        "{case}: ServiceAccount"
    );
    assert_eq!(
        by_kind.contains_key("ServiceMonitor"),
        values.pointer("/metrics/serviceMonitor/enabled") == Some(&json!(true)),
        "{case}: ServiceMonitor"
    );

    let of = |kinds: &[&str]| -> Vec<&Value> {
        kinds
            .iter()
            .flat_map(|k| by_kind.get(k).cloned().unwrap_or_default())
            .collect()
    };
    let roles = of(&["Role", "ClusterRole"]);
    let bindings = of(&["RoleBinding", "ClusterRoleBinding"]);
    if values.pointer("/rbac/create") == Some(&json!(false)) {
        assert!(
            roles.is_empty() && bindings.is_empty(),
            "{case}: rbac.create=false still renders RBAC"
        );
        return;
    }
    let id = |kind: &Value, meta: &Value, name: &Value| {
        (
            kind.as_str().unwrap().to_string(),
            meta["namespace"].as_str().map(String::from),
            name.as_str().unwrap().to_string(),
        )
    };
    let names: BTreeSet<_> = roles
        .iter()
        .map(|r| id(&r["kind"], &r["metadata"], &r["metadata"]["name"]))
        .collect();
    let main = match ns {
        Some(ns) => (
            "Role".to_string(),
            Some(ns.to_string()),
            "kubemirror".to_string(),
        ),
        None => ("ClusterRole".to_string(), None, "kubemirror".to_string()),
    };
    assert!(names.contains(&main), "{case}: no {main:?} in {names:?}");
    let lease_role = (
        "Role".to_string(),
        Some(RELEASE_NAMESPACE.to_string()),
        "kubemirror-leader-election".to_string(),
    );
    assert_eq!(
        names.contains(&lease_role),
        leader,
        "{case}: leader-election Role: {names:?}"
    );
    let shard_role = (
        "Role".to_string(),
        Some(RELEASE_NAMESPACE.to_string()),
        "kubemirror-shards".to_string(),
    );
    assert_eq!(
        names.contains(&shard_role) && args.contains(&"--lease-name=kubemirror"),
        sharded,
        "{case}: shard Leases' Role: {names:?} {args:?}"
    );
    if leader {
        let lease = args
            .iter()
            .find_map(|a| a.strip_prefix("--lease-name="))
            .expect("--lease-name");
        let role = roles
            .iter()
            .find(|r| r["metadata"]["name"] == lease_role.2.as_str())
            .unwrap();
        let named = role["rules"].as_array().unwrap().iter().any(|r| {
            r["resourceNames"]
                .as_array()
                .is_some_and(|n| n.iter().any(|x| x == lease))
        });
        assert!(
            named,
            "{case}: the Lease Role does not name the Lease {lease}"
        );
        assert!(env.contains("POD_NAMESPACE"), "{case}: POD_NAMESPACE");
    }
    for b in bindings {
        let role = id(&b["roleRef"]["kind"], &b["metadata"], &b["roleRef"]["name"]);
        assert!(
            names.contains(&role),
            "{case}: {} binds a missing {role:?}",
            b["metadata"]["name"]
        );
        assert_eq!(
            b["subjects"],
            json!([{"kind": "ServiceAccount", "name": sa, "namespace": RELEASE_NAMESPACE}]),
            "{case}: subjects"
        );
    }
}

#[test]
fn chart_lints_and_renders_for_each_value_set() {
    let dir = tempfile::tempdir().unwrap();
    for (case, values) in cases() {
        let docs = render(dir.path(), case, &values);
        check(case, &values, &docs);
    }
}
