"""Lint and render charts/kubemirror with real Helm (v4, compiled into the
helm-python-sdk package's shared library: no helm binary needed), for
several sets of values, and check what each render must hold. Run through
charts/check.sh, which prepares the virtualenv.

tests/chart (cargo test) checks the templates without Helm; this is the
complement that needs the package from PyPI.
"""

import sys

import yaml
from helm_python import chart as hc

NS = "kubemirror-system"

CASES = {
    "defaults": {},
    "one namespace": {"watchNamespace": "team-a"},
    "three replicas, no leader election asked, extras": {
        "replicaCount": 3,
        "leaderElection": {"enabled": False},
        "extraCA": {"secret": "corp-ca"},
        "metrics": {"serviceMonitor": {"enabled": True}},
        "podAnnotations": {"example.com/a": "b"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        "affinity": {"nodeAffinity": {}},
        "imagePullSecrets": [{"name": "pull"}],
    },
    "no leader election, bring your own ServiceAccount and RBAC": {
        "leaderElection": {"enabled": False},
        "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": "mirror-sa"},
    },
}


def fail(case, msg):
    sys.exit(f"charts/check.py: {case}: {msg}")


def render(path, case, values):
    report = hc.lint(path, values, strict=True, namespace=NS)
    problems = [m for m in report.get("messages", []) if m["severity"] >= 2]
    if problems or report.get("errors"):
        fail(case, f"helm lint: {problems} {report.get('errors')}")
    out = hc.Chart.load(path).render(values, name="kubemirror", namespace=NS, is_install=True)
    docs = []
    for name, text in sorted(out.items()):
        if name.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def check(case, values, docs):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    dep = by_kind["Deployment"][0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args, env = c["args"], {e["name"]: e for e in c["env"]}
    replicas = values.get("replicaCount", 1)
    leader = values.get("leaderElection", {}).get("enabled", True) or replicas > 1
    if dep["spec"]["replicas"] != replicas:
        fail(case, "replicas")
    if ("--leader-elect" in args) != leader:
        fail(case, f"--leader-elect in {args}")
    ns = values.get("watchNamespace")
    if ns and f"--namespace={ns}" not in args or not ns and any(a.startswith("--namespace") for a in args):
        fail(case, f"--namespace in {args}")
    if c["securityContext"]["readOnlyRootFilesystem"] is not True:
        fail(case, "readOnlyRootFilesystem")
    if ("SSL_CERT_DIR" in env) != bool(values.get("extraCA")):
        fail(case, "SSL_CERT_DIR")
    for key in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets"):
        if (key in pod) != (key in values):
            fail(case, f"pod spec {key}")
    if values.get("podAnnotations") and not all(
        dep["spec"]["template"]["metadata"]["annotations"].get(k) == v
        for k, v in values["podAnnotations"].items()
    ):
        fail(case, "podAnnotations")
    sa = pod["serviceAccountName"]
    if ("ServiceAccount" in by_kind) != values.get("serviceAccount", {}).get("create", True):
        fail(case, "ServiceAccount")

    roles = by_kind.get("Role", []) + by_kind.get("ClusterRole", [])
    bindings = by_kind.get("RoleBinding", []) + by_kind.get("ClusterRoleBinding", [])
    if not values.get("rbac", {}).get("create", True):
        if roles or bindings:
            fail(case, "rbac.create=false still renders RBAC")
        return
    names = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in roles}
    main = ("Role", ns, "kubemirror") if ns else ("ClusterRole", None, "kubemirror")
    if main not in names:
        fail(case, f"no {main} in {names}")
    lease_role = ("Role", NS, "kubemirror-leader-election")
    if (lease_role in names) != leader:
        fail(case, f"leader-election Role: {names}")
    if leader:
        lease = next(a.split("=", 1)[1] for a in args if a.startswith("--lease-name="))
        rules = next(r for r in roles if r["metadata"]["name"] == lease_role[2])["rules"]
        if not any(lease in r.get("resourceNames", []) for r in rules):
            fail(case, f"the Lease Role does not name the Lease {lease}")
        if "POD_NAMESPACE" not in env:
            fail(case, "POD_NAMESPACE")
    for b in bindings:
        role = (b["roleRef"]["kind"], b["metadata"].get("namespace"), b["roleRef"]["name"])
        if role not in names:
            fail(case, f"{b['kind']} {b['metadata']['name']} binds a missing {role}")
        if b["subjects"] != [{"kind": "ServiceAccount", "name": sa, "namespace": NS}]:
            fail(case, f"{b['kind']} subjects {b['subjects']}")
    if ("ServiceMonitor" in by_kind) != values.get("metrics", {}).get("serviceMonitor", {}).get("enabled", False):
        fail(case, "ServiceMonitor")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "charts/kubemirror"
    for case, values in CASES.items():
        docs = render(path, case, values)
        check(case, values, docs)
        print(f"ok: {case}: {len(docs)} objects ({', '.join(sorted({d['kind'] for d in docs}))})")


if __name__ == "__main__":
    main()
