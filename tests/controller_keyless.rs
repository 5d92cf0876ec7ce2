//! Keyless Sigstore verification through the path a cluster user takes
//! (issue 14): the real kubectl creates the trust-root Secret from a
//! `trusted_root.json` file and applies `examples/mirror-keyless.yaml` as
//! written (only the registry host and the workflow identity put in) to
//! kube-emulator; the controller binary verifies, against a real
//! Distribution registry behind TLS, cosign-layout keyless signatures made
//! by a test Sigstore (tests/support/test_sigstore.rs).
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::Cluster;
use support::controller_proc::ControllerProc;
use support::cosign;
use support::registry::Registry;
use support::test_sigstore::{LeafSpec, T0, TestSigstore};

const EXAMPLE_HOST: &str = "registry.example.internal:5000";
const EXAMPLE_ISSUER: &str = "https://token.actions.githubusercontent.com";
const EXAMPLE_SUBJECT: &str =
    r"^https://github\.com/example-org/app/\.github/workflows/release\.yml@refs/tags/v";
const ISSUER: &str = "https://oidc.test.example";
const WORKFLOW: &str =
    "https://git.test.example/org/app/.github/workflows/release.yml@refs/tags/v1.0.0";

async fn kubectl(kubeconfig: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("kubectl timed out")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kubectl get KIND NAME -o json` in `mirrors`, polled until `done` holds.
async fn wait_for(
    kc: &Path,
    kind: &str,
    name: &str,
    ctl: &ControllerProc,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, out, err) =
            kubectl(kc, &["-n", "mirrors", "get", kind, name, "-o", "json"], "").await;
        assert!(ok, "{err}");
        let o: Value = serde_json::from_str(&out).unwrap();
        if done(&o) {
            return o;
        }
        assert!(Instant::now() < until, "{o:#}\n{}", ctl.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Push `repo:tag` signed keyless by a leaf of `spec`; returns its digest.
fn push_signed(
    s: &TestSigstore,
    host: &str,
    tag: &str,
    seed: &str,
    spec: &LeafSpec,
    tmp: &Path,
) -> String {
    let digest = cosign::push_image(host, &format!("team/app:{tag}"), seed, tmp);
    let payload = cosign::payload(&format!("{host}/team/app"), &digest);
    let leaf = s.leaf(spec);
    let annotations = s
        .cosign_annotations(&leaf, &payload, T0 + 60)
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    cosign::push_signature(host, "team/app", &digest, &payload, annotations, tmp);
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_mirrors_and_inspects_keyless_signed_images() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::tls();
    let h = reg.host.clone();
    let s = TestSigstore::new();
    let ours = LeafSpec {
        subject: WORKFLOW.into(),
        issuer: ISSUER.into(),
        ..Default::default()
    };
    let signed = push_signed(&s, &h, "1.0.0", "21", &ours, tmp.path());
    cosign::push_image(&h, "team/app:1.1.0", "22", tmp.path());
    let forked = LeafSpec {
        subject: "https://git.test.example/fork/app/.github/workflows/release.yml@refs/tags/v1.2.0"
            .into(),
        ..ours.clone()
    };
    push_signed(&s, &h, "1.2.0", "23", &forked, tmp.path());

    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig.clone();
    let ca = reg.cert_dir().join("ca.crt");
    let mut ctl = ControllerProc::start_with_env(
        &kc,
        tmp.path(),
        "keyless",
        &[],
        &[("SSL_CERT_FILE", ca.as_path())],
    );

    let text =
        std::fs::read_to_string(support::repo_root().join("examples/mirror-keyless.yaml")).unwrap();
    assert!(
        text.contains(EXAMPLE_HOST)
            && text.contains(EXAMPLE_ISSUER)
            && text.contains(EXAMPLE_SUBJECT)
    );
    let ours_re =
        r"^https://git\.test\.example/org/app/\.github/workflows/release\.yml@refs/tags/v";
    let example = text
        .replace(EXAMPLE_HOST, &h)
        .replace(EXAMPLE_ISSUER, ISSUER)
        .replace(EXAMPLE_SUBJECT, ours_re);
    let (ok, _, err) = kubectl(&kc, &["apply", "-f", "-"], &example).await;
    assert!(ok, "{err}");
    // Before the trust root's Secret exists: Stalled, saying which.
    let o = wait_for(&kc, "imagemirror", "keyless", &ctl, |o| {
        o["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Stalled" && c["status"] == "True")
        })
    })
    .await;
    assert!(o.to_string().contains("sigstore-root"), "{o:#}");

    // The command the example's comment gives.
    let root = tmp.path().join("trusted_root.json");
    std::fs::write(&root, s.trusted_root_json()).unwrap();
    let (ok, _, err) = kubectl(
        &kc,
        &[
            "-n",
            "mirrors",
            "create",
            "secret",
            "generic",
            "sigstore-root",
            &format!("--from-file={}", root.display()),
        ],
        "",
    )
    .await;
    assert!(ok, "{err}");

    let o = wait_for(&kc, "imagemirror", "keyless", &ctl, |o| {
        o["status"]["tags"].as_array().is_some_and(|t| t.len() == 3)
    })
    .await;
    let tag = |n: &str| {
        o["status"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(tag("1.0.0")["verified"], true, "{o:#}");
    assert_eq!(tag("1.0.0")["destinationDigest"], signed.as_str());
    let e = tag("1.1.0")["error"].as_str().unwrap().to_string();
    assert!(e.contains("has no signatures"), "{e}");
    let e = tag("1.2.0")["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("matches no trusted subject") && e.contains("fork/app"),
        "{e}"
    );
    assert!(
        cosign::raw_manifest(&h, "mirror/app:1.0.0") == cosign::raw_manifest(&h, "team/app:1.0.0")
    );
    assert!(!cosign::exists(&h, "mirror/app:1.1.0"));
    assert!(!cosign::exists(&h, "mirror/app:1.2.0"));

    let o = wait_for(&kc, "imageinspection", "keyless", &ctl, |o| {
        o["status"]["signatures"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    })
    .await;
    let sig = &o["status"]["signatures"][0];
    assert_eq!(sig["type"], "sigstore", "{o:#}");
    assert_eq!(sig["verified"], true, "{o:#}");
    assert_eq!(sig["keyId"], WORKFLOW);
    assert_eq!(sig["issuer"], ISSUER);
    assert_eq!(sig["logIndex"], 4242);
    assert_eq!(sig["integratedTime"], "2026-01-01T00:01:00Z");
    assert_eq!(sig["manifestDigest"], signed.as_str());

    // A keyless rule that says both issuer and issuerRegExp: Stalled.
    let bad = example
        .replace(
            "name: keyless\n  namespace: mirrors\nspec:\n  image",
            "name: bad\n  namespace: mirrors\nspec:\n  image",
        )
        .replace(
            &format!("- issuer: {ISSUER}"),
            &format!("- issuer: {ISSUER}\n        issuerRegExp: x"),
        );
    let bad: String = bad
        .split("---")
        .filter(|d| d.contains("name: bad"))
        .collect();
    let (ok, _, err) = kubectl(&kc, &["apply", "-f", "-"], &bad).await;
    assert!(ok, "{err}");
    let o = wait_for(&kc, "imageinspection", "bad", &ctl, |o| {
        o["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Stalled" && c["status"] == "True")
        })
    })
    .await;
    assert!(
        o.to_string()
            .contains("spec.verification.keyless[0]: exactly one of issuer and issuerRegExp"),
        "{o:#}"
    );
    ctl.assert_running();
    ctl.kill();
}
