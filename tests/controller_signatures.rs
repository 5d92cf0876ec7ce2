//! Signatures through the path a cluster user takes: the real kubectl applies
//! `examples/inspect-signed.yaml` and `examples/mirror-signed.yaml` as
//! written (only the key, generated here, and the registry host put in) to
//! kube-emulator, and the controller binary reconciles them against a real
//! Distribution registry behind TLS that holds a cosign-signed image (an
//! openssl signature in the `sha256-<hex>.sig` attachment, pushed by skopeo)
//! and an unsigned one.
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::Cluster;
use support::controller_proc::ControllerProc;
use support::cosign;
use support::registry::Registry;

const EXAMPLE_HOST: &str = "registry.example.internal:5000";
const EXAMPLE_KEY: &str = "    -----BEGIN PUBLIC KEY-----
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGDjc3EhZRzXH8QfrCgN/Wk/xLfbb
    /pCQEmTZztTCM8cfy6sy/RLYaKZMRe7A1279Sr5Giy+jeMgRegnYIFoafw==
    -----END PUBLIC KEY-----
";

/// `kubectl ARGS` (stdin from `input`): (success, stdout, stderr).
async fn kubectl(kubeconfig: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    let out = support::kubectl::run(kubeconfig, None, args, input).await;
    (out.ok, out.stdout, out.stderr)
}

/// An example file with the placeholder key and registry replaced.
fn example(name: &str, host: &str, public_key: &str) -> String {
    let text = std::fs::read_to_string(support::repo_root().join("examples").join(name)).unwrap();
    assert!(
        text.contains(EXAMPLE_KEY) && text.contains(EXAMPLE_HOST),
        "{name}"
    );
    let key: String = public_key.lines().map(|l| format!("    {l}\n")).collect();
    text.replace(EXAMPLE_KEY, &key).replace(EXAMPLE_HOST, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_verify_and_mirror_cosign_signatures_in_the_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::tls();
    let h = reg.host.clone();
    let (key, public) = cosign::key_pair(tmp.path(), "cosign");
    let signed = cosign::push_image(&h, "team/app:1.0.0", "1", tmp.path());
    let unsigned = cosign::push_image(&h, "team/app:1.1.0", "2", tmp.path());
    let sig_manifest = cosign::sign(&h, "team/app", &signed, &key, tmp.path());

    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig.clone();
    // The examples set no CA: the registry's is trusted as a system CA.
    let ca = reg.cert_dir().join("ca.crt");
    let mut ctl = ControllerProc::start_trusting(&kc, tmp.path(), "sig", &[], &ca);

    let (ok, _, err) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        &example("inspect-signed.yaml", &h, &public),
    )
    .await;
    assert!(ok, "{err}");
    // The commands the example's comment gives.
    let (ok, _, err) = kubectl(
        &kc,
        &[
            "-n",
            "mirrors",
            "wait",
            "--for=condition=Ready",
            "imageinspection/app",
            "--timeout=60s",
        ],
        "",
    )
    .await;
    assert!(ok, "{err}\n{}", ctl.log_text());
    let (ok, out, err) = kubectl(
        &kc,
        &[
            "-n",
            "mirrors",
            "get",
            "imageinspection",
            "app",
            "-o",
            r#"jsonpath={range .status.signatures[*]}{.type} {.verified} {.reason}{"\n"}{end}"#,
        ],
        "",
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "sigstore true \n");

    let (ok, _, err) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        &example("mirror-signed.yaml", &h, &public),
    )
    .await;
    assert!(ok, "{err}");
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let (ok, out, err) = kubectl(
            &kc,
            &[
                "-n",
                "mirrors",
                "get",
                "imagemirror",
                "signed",
                "-o",
                "json",
            ],
            "",
        )
        .await;
        assert!(ok, "{err}");
        let o: Value = serde_json::from_str(&out).unwrap();
        if o["status"]["tags"].as_array().is_some_and(|t| t.len() == 2) {
            break o["status"].clone();
        }
        assert!(Instant::now() < until, "{o:#}\n{}", ctl.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let tag = |n: &str| {
        status["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(tag("1.0.0")["verified"], true, "{status:#}");
    assert_eq!(tag("1.0.0")["destinationDigest"], signed.as_str());
    let e = tag("1.1.0")["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("has no signatures") && e.contains("Require"),
        "{e}"
    );
    // The signed tag and its signature, byte for byte; nothing of the other.
    let sig_tag = |d: &str| format!("sha256-{}.sig", d.trim_start_matches("sha256:"));
    assert!(cosign::raw_manifest(&h, &format!("mirror/app:{}", sig_tag(&signed))) == sig_manifest);
    assert!(
        cosign::raw_manifest(&h, "mirror/app:1.0.0") == cosign::raw_manifest(&h, "team/app:1.0.0")
    );
    assert!(!cosign::exists(&h, "mirror/app:1.1.0"));
    assert!(!cosign::exists(
        &h,
        &format!("mirror/app:{}", sig_tag(&unsigned))
    ));
    ctl.assert_running();
    ctl.kill();

    // `controller --policy FILE`: every copy must satisfy it too.
    let reject = tmp.path().join("reject.json");
    std::fs::write(&reject, r#"{"default": [{"type": "reject"}]}"#).unwrap();
    let mut ctl = ControllerProc::start_trusting(
        &kc,
        tmp.path(),
        "sig-policy",
        &["--policy", reject.to_str().unwrap()],
        &ca,
    );
    let rejected = example("mirror-signed.yaml", &h, &public)
        .replace("name: signed", "name: rejected")
        .replace("/mirror/app", "/rejected/app");
    let (ok, _, err) = kubectl(&kc, &["apply", "-f", "-"], &rejected).await;
    assert!(ok, "{err}");
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, out, err) = kubectl(
            &kc,
            &[
                "-n",
                "mirrors",
                "get",
                "imagemirror",
                "rejected",
                "-o",
                "json",
            ],
            "",
        )
        .await;
        assert!(ok, "{err}");
        let o: Value = serde_json::from_str(&out).unwrap();
        let tags = o["status"]["tags"].as_array().cloned().unwrap_or_default();
        if let Some(t) = tags.iter().find(|t| t["name"] == "1.0.0") {
            let e = t["error"].as_str().unwrap_or_default();
            assert!(e.contains("rejected by policy"), "{o:#}");
            break;
        }
        assert!(Instant::now() < until, "{o:#}\n{}", ctl.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!cosign::exists(&h, "rejected/app:1.0.0"));
    ctl.assert_running();
    ctl.kill();
}

/// A `--registries.d` or `--policy` that `controller` cannot use is an
/// error at start, not a flag accepted and ignored.
#[test]
fn controller_refuses_a_registries_d_or_policy_it_cannot_use() {
    for (flag, value, want) in [
        (
            "--registries.d",
            "/nonexistent/registries.d",
            "not a directory",
        ),
        ("--policy", "/nonexistent/policy.json", "policy.json"),
    ] {
        let out = support::kubemirror()
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .args([flag, value, "controller"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(value) && err.contains(want), "{err}");
        assert!(!err.contains("cluster"), "checked before connecting: {err}");
    }
}
