//! Checks that need neither helm nor a Docker engine: the chart's CRDs are
//! the repository's, its templates are balanced and parse, every value they
//! name exists, the Deployment is hardened and passes only flags the binary
//! knows, and the Dockerfile copies what exists and runs as non-root.

use std::path::Path;
use std::process::Command;

use serde_yaml::Value;

use crate::template::{self, PLACEHOLDER};

fn repo(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[test]
fn chart_crds_are_the_repository_crds() {
    let ours = template::read("crds/kubemirror.dev_crds.yaml");
    assert!(
        ours == repo("crds/kubemirror.dev_crds.yaml"),
        "charts/kubemirror/crds/ differs from crds/: cp crds/kubemirror.dev_crds.yaml charts/kubemirror/crds/"
    );
    let files = std::fs::read_dir(template::chart_dir().join("crds"))
        .unwrap()
        .count();
    assert_eq!(
        files, 1,
        "charts/kubemirror/crds/ holds exactly the repository's CRD file"
    );
}

#[test]
fn chart_metadata_and_templates_parse() {
    let chart: Value = serde_yaml::from_str(&template::read("Chart.yaml")).unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "kubemirror");
    let cargo = repo("Cargo.toml");
    let version = cargo
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| l.strip_prefix("version = "))
        .unwrap()
        .trim_matches('"');
    assert_eq!(
        chart["appVersion"], version,
        "appVersion follows Cargo.toml"
    );

    let values = template::values();
    let mut kinds = Vec::new();
    for f in template::template_files() {
        let text = template::read(&format!("templates/{f}"));
        template::check_balanced(&f, &text);
        for path in template::values_paths(&text) {
            assert!(
                template::lookup(&values, &path).is_some(),
                "templates/{f} uses .Values.{path}, which values.yaml does not define"
            );
        }
        if f.ends_with(".yaml") {
            for d in template::documents(&f) {
                assert!(
                    d["apiVersion"].is_string(),
                    "templates/{f}: a document without apiVersion"
                );
                assert!(
                    d["metadata"]["name"].is_string(),
                    "templates/{f}: a document without a name"
                );
                kinds.push(d["kind"].as_str().unwrap().to_string());
            }
        }
    }
    for k in [
        "Deployment",
        "ServiceAccount",
        "Service",
        "ServiceMonitor",
        "Role",
        "RoleBinding",
    ] {
        assert!(
            kinds.iter().any(|x| x == k),
            "the chart has no {k}: {kinds:?}"
        );
    }
}

fn deployment() -> Value {
    let docs = template::documents("deployment.yaml");
    assert_eq!(docs.len(), 1);
    docs.into_iter().next().unwrap()
}

#[test]
fn deployment_is_hardened_and_probed() {
    let values = template::values();
    let pod = &values["podSecurityContext"];
    assert_eq!(pod["runAsNonRoot"], true);
    assert_eq!(pod["runAsUser"], 65532);
    assert_eq!(pod["seccompProfile"]["type"], "RuntimeDefault");
    let c = &values["securityContext"];
    assert_eq!(c["runAsNonRoot"], true);
    assert_eq!(c["runAsUser"], 65532);
    assert_eq!(c["allowPrivilegeEscalation"], false);
    assert_eq!(c["readOnlyRootFilesystem"], true);
    assert_eq!(c["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["seccompProfile"]["type"], "RuntimeDefault");

    let d = deployment();
    let spec = &d["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "health");
    let ports = container["ports"].as_sequence().unwrap();
    assert!(ports.iter().any(|p| p["name"] == "health"));
    assert!(ports.iter().any(|p| p["name"] == "metrics"));
    // The root filesystem is read-only: /tmp is an emptyDir.
    let mounts = container["volumeMounts"].as_sequence().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["name"] == "tmp" && m["mountPath"] == "/tmp")
    );
    let volumes = spec["volumes"].as_sequence().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["name"] == "tmp" && v["emptyDir"].is_mapping())
    );
    for key in [
        "nodeSelector",
        "tolerations",
        "affinity",
        "securityContext",
        "serviceAccountName",
    ] {
        assert!(spec.get(key).is_some(), "the pod spec has no {key}");
    }
}

/// Every flag the Deployment passes is one `kubemirror controller` accepts.
#[test]
fn deployment_flags_are_the_binarys_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubemirror"))
        .args(["controller", "--help"])
        .output()
        .expect("run kubemirror controller --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let d = deployment();
    let args: Vec<&str> = d["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"controller"), "{args:?}");
    for a in args.iter().filter(|a| a.starts_with("--")) {
        let flag = a.split('=').next().unwrap();
        assert!(
            help.contains(flag),
            "kubemirror controller does not know {flag}:\n{help}"
        );
    }
    for flag in [
        "--metrics-addr",
        "--health-addr",
        "--leader-elect",
        "--namespace",
        "--concurrency",
    ] {
        assert!(
            args.iter().any(|a| a.starts_with(flag)),
            "the Deployment never passes {flag}"
        );
    }
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap();
    assert!(
        env.iter()
            .any(|e| e["name"] == "RUST_LOG" && e["value"] == PLACEHOLDER)
    );
}

/// `COPY a b` / `COPY --from=x a b` sources of the Dockerfile.
fn dockerfile_copies(text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let from = words.iter().any(|w| w.starts_with("--from="));
        let paths: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        for src in &paths[..paths.len() - 1] {
            out.push((from, src.to_string()));
        }
    }
    out
}

#[test]
fn dockerfile_builds_the_binary_and_runs_as_non_root() {
    let text = repo("Dockerfile");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ignore = repo(".dockerignore");
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    let copies = dockerfile_copies(&text);
    assert!(copies.iter().any(|(from, s)| !from && s == "src/"));
    for (from, src) in &copies {
        if *from {
            continue;
        }
        assert!(
            root.join(src).exists(),
            "Dockerfile copies {src}, which does not exist"
        );
        let s = src.trim_end_matches('/');
        assert!(
            !ignored.contains(&s),
            ".dockerignore excludes {src}, which the Dockerfile copies"
        );
    }
    // Every workspace member is in the build context, or Cargo cannot load the workspace.
    let cargo: toml_lite::Doc = toml_lite::Doc::new(&repo("Cargo.toml"));
    for member in cargo.array("workspace", "members") {
        if member != "." {
            assert!(
                copies
                    .iter()
                    .any(|(_, s)| s.trim_end_matches('/') == member),
                "Dockerfile does not copy workspace member {member}"
            );
        }
    }
    // The binary it builds is the package's binary, and the entrypoint runs it.
    let bins = cargo.bin_names();
    assert!(
        text.contains("--bin kubemirror") && bins.contains(&"kubemirror".to_string()),
        "{bins:?}"
    );
    assert!(text.contains("cargo build --release --locked"));
    assert!(text.contains(r#"ENTRYPOINT ["kubemirror"]"#));
    assert!(text.contains(r#"CMD ["controller"]"#));
    // The last USER is non-root, numeric (runAsNonRoot needs a number).
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("a USER line");
    let uid = user.split(':').next().unwrap().trim();
    assert!(uid.parse::<u32>().is_ok_and(|u| u != 0), "USER {user}");
    assert_eq!(uid, "65532", "the chart's runAsUser");
    // The build toolchain is at least the crate's rust-version.
    let want = cargo.string("workspace.package", "rust-version");
    let have = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION");
    let minor = |v: &str| v.split('.').nth(1).unwrap().parse::<u32>().unwrap();
    assert!(
        minor(have) >= minor(&want),
        "Dockerfile Rust {have} < rust-version {want}"
    );
}

/// Just enough TOML reading for Cargo.toml (no toml crate in the tree).
mod toml_lite {
    pub struct Doc {
        lines: Vec<String>,
    }

    impl Doc {
        pub fn new(text: &str) -> Doc {
            Doc {
                lines: text.lines().map(|l| l.trim().to_string()).collect(),
            }
        }

        fn section(&self, name: &str) -> impl Iterator<Item = &String> {
            let header = format!("[{name}]");
            self.lines
                .iter()
                .skip_while(move |l| **l != header)
                .skip(1)
                .take_while(|l| !l.starts_with('['))
        }

        pub fn string(&self, section: &str, key: &str) -> String {
            self.section(section)
                .find_map(|l| l.strip_prefix(&format!("{key} = ")))
                .unwrap_or_else(|| panic!("[{section}] {key}"))
                .trim_matches('"')
                .to_string()
        }

        pub fn array(&self, section: &str, key: &str) -> Vec<String> {
            let v = self.string(section, key);
            v.trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }

        pub fn bin_names(&self) -> Vec<String> {
            let mut out = Vec::new();
            let mut in_bin = false;
            for l in &self.lines {
                if l.starts_with('[') {
                    in_bin = l == "[[bin]]";
                } else if in_bin && let Some(n) = l.strip_prefix("name = ") {
                    out.push(n.trim_matches('"').to_string());
                }
            }
            out
        }
    }
}
