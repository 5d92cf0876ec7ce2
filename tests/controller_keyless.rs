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
use support::referrers::Pusher;
use support::registry::Registry;
use support::test_sigstore::{LeafSpec, T0, TestSigstore};

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const EXAMPLE_HOST: &str = "registry.example.internal:5000";
const EXAMPLE_ISSUER: &str = "https://token.actions.githubusercontent.com";
const EXAMPLE_SUBJECT: &str =
    r"^https://github\.com/example-org/app/\.github/workflows/release\.yml@refs/tags/v";
const ISSUER: &str = "https://oidc.test.example";
const WORKFLOW: &str =
    "https://git.test.example/org/app/.github/workflows/release.yml@refs/tags/v1.0.0";

async fn kubectl(kubeconfig: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    let out = support::kubectl::run(kubeconfig, None, args, input).await;
    (out.ok, out.stdout, out.stderr)
}

/// `kubectl -n mirrors create KIND... sigstore-root --from-file=FILE` (the
/// trust root as a Secret or ConfigMap, as README's commands make it).
async fn create_root(kubeconfig: &Path, kind: &[&str], file: &Path) {
    let from = format!("--from-file={}", file.display());
    let mut args = vec!["-n", "mirrors", "create"];
    args.extend_from_slice(kind);
    args.extend(["sigstore-root", from.as_str()]);
    let (ok, _, err) = kubectl(kubeconfig, &args, "").await;
    assert!(ok, "{err}");
}

/// The leaf the examples trust: the release workflow, from the test issuer.
fn workflow_leaf() -> LeafSpec {
    LeafSpec {
        subject: WORKFLOW.into(),
        issuer: ISSUER.into(),
        ..Default::default()
    }
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
    let ours = workflow_leaf();
    let signed = push_signed(&s, &h, "1.0.0", "21", &ours, tmp.path());
    cosign::push_image(&h, "team/app:1.1.0", "22", tmp.path());
    let forked = LeafSpec {
        subject: "https://git.test.example/fork/app/.github/workflows/release.yml@refs/tags/v1.2.0"
            .into(),
        ..ours.clone()
    };
    push_signed(&s, &h, "1.2.0", "23", &forked, tmp.path());
    // 1.3.0: signed as cosign 3 does, a bundle (DSSE, in-toto statement
    // naming the image) attached as an OCI referrer; no `.sig` attachment.
    let referred = cosign::push_image(&h, "team/app:1.3.0", "24", tmp.path());
    let referred_manifest = cosign::raw_manifest(&h, "team/app:1.3.0");
    let bundle = s.bundle(
        &s.leaf(&ours),
        &referred_manifest,
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        true,
        false,
        true,
    );
    // Where the registry has no referrers API, the referrers tag lists it.
    let pusher = Pusher::tls(&reg.host, &reg.cert_dir().join("ca.crt"));
    let artifact = pusher.attach(
        "team/app",
        &referred_manifest,
        BUNDLE,
        &serde_json::to_vec(&bundle).unwrap(),
    );
    pusher.referrers_tag("team/app", &referred_manifest, &[&artifact]);

    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig.clone();
    let ca = reg.cert_dir().join("ca.crt");
    let mut ctl = ControllerProc::start_trusting(&kc, tmp.path(), "keyless", &[], &ca);

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
    create_root(&kc, &["secret", "generic"], &root).await;

    let o = wait_for(&kc, "imagemirror", "keyless", &ctl, |o| {
        o["status"]["tags"].as_array().is_some_and(|t| t.len() == 4)
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
    // The referrer's bundle counts; the image and its referrers tag travel.
    assert_eq!(tag("1.3.0")["verified"], true, "{o:#}");
    assert_eq!(tag("1.3.0")["destinationDigest"], referred.as_str());
    let referrers_tag = format!(
        "mirror/app:sha256-{}",
        referred.trim_start_matches("sha256:")
    );
    assert!(cosign::exists(&h, &referrers_tag));

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

/// A registry with the OCI 1.1 referrers API (a test layer over
/// Distribution) and no referrers tag: the bundle is found through
/// `GET /v2/<name>/referrers/<digest>`, verified, and shown in an
/// inspection's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_api_bundles_are_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::plain();
    let api = support::referrers::ReferrersApi::start(&format!("http://{}", reg.host)).await;
    let h = api.host();
    let s = TestSigstore::new();
    let ours = workflow_leaf();
    let digest = cosign::push_image(&h, "team/app:2.0.0", "31", tmp.path());
    let manifest = cosign::raw_manifest(&h, "team/app:2.0.0");
    let bundle = s.bundle_v03(&s.leaf(&ours), &manifest);
    let artifact = Pusher::plain(&h).attach(
        "team/app",
        &manifest,
        BUNDLE,
        &serde_json::to_vec(&bundle).unwrap(),
    );
    api.register("team/app", &artifact);
    assert!(!cosign::exists(
        &h,
        &format!("team/app:sha256-{}", digest.trim_start_matches("sha256:"))
    ));

    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig.clone();
    let mut ctl = ControllerProc::start(&kc, tmp.path(), "keyless-referrers", &[]);
    let root = tmp.path().join("trusted_root.json");
    std::fs::write(&root, s.trusted_root_json()).unwrap();
    let (ok, _, err) = kubectl(&kc, &["create", "namespace", "mirrors"], "").await;
    assert!(ok, "{err}");
    create_root(&kc, &["secret", "generic"], &root).await;
    api.proxy.clear_log();
    let inspection = format!(
        r#"apiVersion: kubemirror.dev/v1alpha1
kind: ImageInspection
metadata:
  name: referred
  namespace: mirrors
spec:
  image: {h}/team/app:2.0.0
  tlsVerify: false
  verification:
    keyless:
      - issuer: {ISSUER}
        subject: {WORKFLOW}
    trustedRootRef: {{kind: Secret, name: sigstore-root, key: trusted_root.json}}
"#
    );
    let (ok, _, err) = kubectl(&kc, &["apply", "-f", "-"], &inspection).await;
    assert!(ok, "{err}");
    let o = wait_for(&kc, "imageinspection", "referred", &ctl, |o| {
        o["status"]["signatures"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    })
    .await;
    let sig = &o["status"]["signatures"][0];
    assert_eq!(sig["verified"], true, "{o:#}");
    assert_eq!(sig["keyId"], WORKFLOW);
    assert_eq!(sig["issuer"], ISSUER);
    assert_eq!(sig["manifestDigest"], digest.as_str());
    let log = api.proxy.log();
    let asked = format!("/v2/team/app/referrers/{digest}");
    assert!(
        log.iter().any(|r| r.method == "GET" && r.path == asked),
        "{log:?}"
    );
    let tag = format!(
        "/v2/team/app/manifests/sha256-{}",
        digest.trim_start_matches("sha256:")
    );
    assert!(
        !log.iter().any(|r| r.path == tag),
        "the referrers tag was read: {log:?}"
    );
    ctl.assert_running();
    ctl.kill();
}

/// `trustedRootRef` of kind ConfigMap, through
/// `examples/mirror-keyless-private-root.yaml`: Stalled (Ready=False) while
/// the ConfigMap is missing, then missing its key; verified once it is
/// created with the command the example gives; a change to the ConfigMap
/// (another Sigstore's root) re-verifies at once, well before the
/// object's interval (1h): the metadata watch triggers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_trust_root_is_read_and_watched() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::tls();
    let h = reg.host.clone();
    let s = TestSigstore::new();
    let ours = workflow_leaf();
    let signed = push_signed(&s, &h, "1.0.0", "41", &ours, tmp.path());

    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig.clone();
    let ca = reg.cert_dir().join("ca.crt");
    let mut ctl = ControllerProc::start_trusting(&kc, tmp.path(), "keyless-configmap", &[], &ca);
    let text = std::fs::read_to_string(
        support::repo_root().join("examples/mirror-keyless-private-root.yaml"),
    )
    .unwrap();
    assert!(text.contains(EXAMPLE_HOST) && text.contains(EXAMPLE_SUBJECT));
    let ours_re =
        r"^https://git\.test\.example/org/app/\.github/workflows/release\.yml@refs/tags/v";
    let example = text
        .replace(EXAMPLE_HOST, &h)
        .replace(EXAMPLE_ISSUER, ISSUER)
        .replace(EXAMPLE_SUBJECT, ours_re);
    let (ok, _, err) = kubectl(&kc, &["apply", "-f", "-"], &example).await;
    assert!(ok, "{err}");
    let stalled_with = |why: &'static str| {
        move |o: &Value| {
            let conds = o["status"]["conditions"].as_array().cloned();
            conds.is_some_and(|c| {
                c.iter().any(|c| {
                    c["type"] == "Stalled"
                        && c["status"] == "True"
                        && c["message"].as_str().is_some_and(|m| m.contains(why))
                }) && c
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "False")
            })
        }
    };
    wait_for(
        &kc,
        "imageinspection",
        "private-root",
        &ctl,
        stalled_with("ConfigMap \"sigstore-root\" named by spec.verification.trustedRootRef not found in namespace \"mirrors\""),
    )
    .await;

    let configmap = |name: &str, file: &Path| {
        let kc = kc.clone();
        let arg = format!("--from-file={name}={}", file.display());
        async move {
            // create --dry-run | apply: creates it, or replaces its data.
            let (ok, yaml, err) = kubectl(
                &kc,
                &[
                    "-n",
                    "mirrors",
                    "create",
                    "configmap",
                    "sigstore-root",
                    &arg,
                    "--dry-run=client",
                    "-o",
                    "yaml",
                ],
                "",
            )
            .await;
            assert!(ok, "{err}");
            let (ok, _, err) = kubectl(&kc, &["apply", "-f", "-"], &yaml).await;
            assert!(ok, "{err}");
        }
    };
    let root = tmp.path().join("trusted_root.json");
    std::fs::write(&root, s.trusted_root_json()).unwrap();
    // A ConfigMap without the key the object names.
    configmap("root.json", &root).await;
    wait_for(
        &kc,
        "imageinspection",
        "private-root",
        &ctl,
        stalled_with("no key \"trusted_root.json\" (keys: root.json)"),
    )
    .await;
    // The command the example's comment gives (its data replacing the above).
    let (ok, _, err) = kubectl(
        &kc,
        &["-n", "mirrors", "delete", "configmap", "sigstore-root"],
        "",
    )
    .await;
    assert!(ok, "{err}");
    create_root(&kc, &["configmap"], &root).await;
    let verified = |want: bool| move |o: &Value| o["status"]["signatures"][0]["verified"] == want;
    let o = wait_for(&kc, "imageinspection", "private-root", &ctl, verified(true)).await;
    let sig = &o["status"]["signatures"][0];
    assert_eq!(sig["keyId"], WORKFLOW, "{o:#}");
    assert_eq!(sig["manifestDigest"], signed.as_str());

    // Another Sigstore's root in the ConfigMap: re-verified, refused.
    let other = TestSigstore::with_rekor_seed(9);
    let other_root = tmp.path().join("other").join("trusted_root.json");
    std::fs::create_dir(other_root.parent().unwrap()).unwrap();
    std::fs::write(&other_root, other.trusted_root_json()).unwrap();
    configmap("trusted_root.json", &other_root).await;
    let o = wait_for(
        &kc,
        "imageinspection",
        "private-root",
        &ctl,
        verified(false),
    )
    .await;
    let reason = o["status"]["signatures"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("does not know"), "{o:#}");
    ctl.assert_running();
    ctl.kill();
}
