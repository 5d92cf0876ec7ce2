//! Keyless Sigstore (issue 14) through the command line: `copy --policy`
//! with containers-policy.json(5) `sigstoreSigned.fulcio`, against a real
//! Distribution registry holding cosign-layout attachments (pushed by
//! skopeo) whose certificates and Rekor entries come from a test Sigstore
//! (tests/support/test_sigstore.rs); and `verify-blob` over bundles.
mod support;

use std::path::Path;
use std::process::Output;

use support::cmd::{err, ok};
use support::referrers::Pusher;
use support::registry::Registry;
use support::test_sigstore::{Curve, EMAIL, ISSUER, LeafSpec, SctSpec, T0, TestSigstore};
use support::{cosign, kubemirror};

fn km(args: &[&str]) -> Output {
    let mut c = kubemirror();
    c.args(args);
    c.output().expect("run kubemirror")
}

/// Push an image and its keyless signature made with `annotate`; returns the image reference.
fn signed_image(
    reg: &Registry,
    repo: &str,
    seed: &str,
    tmp: &Path,
    annotate: impl FnOnce(&[u8]) -> std::collections::BTreeMap<String, String>,
) -> String {
    let digest = cosign::push_image(&reg.host, &format!("{repo}:v1"), seed, tmp);
    let payload = cosign::payload(&format!("{}/{repo}", reg.host), &digest);
    let annotations = annotate(&payload)
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    cosign::push_signature(&reg.host, repo, &digest, &payload, annotations, tmp);
    reg.image(&format!("{repo}:v1"))
}

/// A policy file `name`.json trusting keyless signatures of `email` by `s`'s
/// CA, logged by the Rekor key `rekor_pem`, for HOST/keyless/*.
fn policy(
    reg: &Registry,
    dir: &Path,
    name: &str,
    (s, email, rekor_pem): (&TestSigstore, &str, &str),
) -> String {
    let ca = dir.join(format!("{name}-ca.pem"));
    let rekor = dir.join(format!("{name}-rekor.pub"));
    std::fs::write(&ca, s.ca_pem()).unwrap();
    std::fs::write(&rekor, rekor_pem).unwrap();
    let p = dir.join(format!("{name}.json"));
    let json = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {format!("{}/keyless", reg.host): [{
            "type": "sigstoreSigned",
            "fulcio": {"caPath": ca, "oidcIssuer": ISSUER, "subjectEmail": email},
            "rekorPublicKeyPath": rekor,
            "signedIdentity": {"type": "matchRepository"}
        }]}}
    });
    std::fs::write(&p, serde_json::to_vec(&json).unwrap()).unwrap();
    p.display().to_string()
}

#[test]
fn copy_policy_fulcio_verifies_keyless_signatures() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let reg = Registry::plain();
    let regd = tmp.path().join("registries.d");
    std::fs::create_dir(&regd).unwrap();
    std::fs::write(
        regd.join("default.yaml"),
        format!(
            "docker:\n  {}:\n    use-sigstore-attachments: true\n",
            reg.host
        ),
    )
    .unwrap();
    let r = regd.to_str().unwrap();
    let s = TestSigstore::new();
    let leaf = s.leaf(&LeafSpec::default());
    let good = signed_image(&reg, "keyless/app", "11", tmp.path(), |p| {
        s.cosign_annotations(&leaf, p, T0 + 60)
    });
    let pol = policy(&reg, tmp.path(), "good", (&s, EMAIL, &s.rekor_pem()));
    let copy = |pol: &str, image: &str, to: &str| {
        km(&[
            "--policy",
            pol,
            "--registries.d",
            r,
            "copy",
            "-q",
            "--src-tls-verify=false",
            image,
            &format!("dir:{t}/{to}"),
        ])
    };
    ok(&copy(&pol, &good, "good"));
    assert!(Path::new(&format!("{t}/good/manifest.json")).exists());

    // Another subject email in the policy: refused, saying why.
    let other = policy(
        &reg,
        tmp.path(),
        "other",
        (&s, "someone@else.example", &s.rekor_pem()),
    );
    let e = err(&copy(&other, &good, "wrong-identity"));
    assert!(e.contains("matches no trusted subject"), "{e}");
    assert!(!Path::new(&format!("{t}/wrong-identity/manifest.json")).exists());

    // A Rekor key the policy does not trust.
    let rogue = TestSigstore::with_rekor_seed(9);
    let unknown = policy(&reg, tmp.path(), "unknown", (&s, EMAIL, &rogue.rekor_pem()));
    let e = err(&copy(&unknown, &good, "unknown-log"));
    assert!(e.contains("which the trust root does not know"), "{e}");

    // A tampered SET (integrated time moved), a certificate of another CA,
    // a certificate expired at the integrated time.
    let tampered = signed_image(&reg, "keyless/tampered", "12", tmp.path(), |p| {
        let mut a = s.cosign_annotations(&leaf, p, T0 + 60);
        let mut b: serde_json::Value =
            serde_json::from_str(&a["dev.sigstore.cosign/bundle"]).unwrap();
        b["Payload"]["integratedTime"] = (T0 + 61).into();
        a.insert("dev.sigstore.cosign/bundle".into(), b.to_string());
        a
    });
    let e = err(&copy(&pol, &tampered, "tampered"));
    assert!(e.contains("signed entry timestamp does not verify"), "{e}");
    let other_ca = TestSigstore::new();
    let stranger = other_ca.leaf(&LeafSpec::default());
    let unchained = signed_image(&reg, "keyless/unchained", "13", tmp.path(), |p| {
        // Logged in our Rekor, certified by another CA.
        let mut a = other_ca.cosign_annotations(&stranger, p, T0 + 60);
        let ours = s.cosign_annotations(&stranger, p, T0 + 60);
        a.insert(
            "dev.sigstore.cosign/bundle".into(),
            ours["dev.sigstore.cosign/bundle"].clone(),
        );
        a.insert(
            "dev.cosignproject.cosign/signature".into(),
            ours["dev.cosignproject.cosign/signature"].clone(),
        );
        a
    });
    let e = err(&copy(&pol, &unchained, "unchained"));
    assert!(e.contains("does not chain to a Fulcio CA"), "{e}");
    let expired = signed_image(&reg, "keyless/expired", "14", tmp.path(), |p| {
        s.cosign_annotations(&leaf, p, T0 + 3600)
    });
    let e = err(&copy(&pol, &expired, "expired"));
    assert!(e.contains("not valid at the log's integrated time"), "{e}");

    // Policy mistakes are reported when it is loaded.
    let bad = tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        br#"{"default":[{"type":"sigstoreSigned","fulcio":{"caData":"","oidcIssuer":"i","subjectEmail":"e"}}]}"#,
    )
    .unwrap();
    let e = err(&copy(bad.to_str().unwrap(), &good, "bad"));
    assert!(e.contains("rekorPublicKeyPath"), "{e}");
}

const BEACON: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const GITHUB: &str = "https://token.actions.githubusercontent.com";
const BEACON_DIGEST: &str =
    "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

/// A real public-good keyless bundle (v0.2: inclusion proof and checkpoint,
/// Fulcio certificate of a GitHub workflow), from sigstore-go's examples
/// (`examples/bundle-v02.json`), verified offline against the embedded
/// public-good trust root.
#[test]
fn verify_blob_accepts_a_real_public_good_bundle() {
    let bundle = support::repo_root().join("tests/data/public-good-bundle-v02.json");
    let b = bundle.to_str().unwrap();
    let args = |identity: &str, digest: &str| {
        km(&[
            "verify-blob",
            "--bundle",
            b,
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            GITHUB,
            "--offline",
            digest,
        ])
    };
    let o = args(BEACON, BEACON_DIGEST);
    ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("Verified OK"), "{stderr}");
    assert!(stderr.contains("Rekor log index 27246492"), "{stderr}");
    let e = err(&args("https://github.com/someone/else", BEACON_DIGEST));
    assert!(e.contains("matches no trusted subject"), "{e}");
    let e = err(&args(BEACON, &format!("sha256:{}", "0".repeat(64))));
    assert!(e.contains("another artifact"), "{e}");
    // One hash of the inclusion proof changed.
    let tmp = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][3] =
        "O86OnjaE1s+pcHWna1/xdeZ7ubCXgVmtV1f7nWlWYLI=".into();
    let tampered = tmp.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&v).unwrap()).unwrap();
    let e = err(&km(&[
        "verify-blob",
        "--bundle",
        tampered.to_str().unwrap(),
        "--certificate-identity",
        BEACON,
        "--certificate-oidc-issuer",
        GITHUB,
        BEACON_DIGEST,
    ]));
    assert!(
        e.contains("inclusion proof does not lead to its root hash"),
        "{e}"
    );
}

/// Bundles v0.1–v0.3 of the test Sigstore, message signatures and DSSE,
/// against a file artifact and `--trusted-root`; every refusal says why.
#[test]
fn verify_blob_checks_bundles_of_every_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = TestSigstore::new();
    let leaf = s.leaf(&LeafSpec::default());
    let artifact = dir.join("artifact.bin");
    std::fs::write(&artifact, b"release artifact\n").unwrap();
    let a = artifact.to_str().unwrap();
    let root = dir.join("trusted_root.json");
    std::fs::write(&root, s.trusted_root_json()).unwrap();
    let r = root.to_str().unwrap();
    let write = |name: &str, v: &serde_json::Value| {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
        p.display().to_string()
    };
    let verify = |bundle: &str, extra: &[&str]| {
        let mut args = vec![
            "verify-blob",
            "--bundle",
            bundle,
            "--trusted-root",
            r,
            "--certificate-identity",
            EMAIL,
            "--certificate-oidc-issuer-regexp",
            "^https://oidc\\.test\\.example$",
        ];
        args.extend_from_slice(extra);
        args.push(a);
        km(&args)
    };
    for (i, (mt, promise, proof)) in [
        (
            "application/vnd.dev.sigstore.bundle+json;version=0.1",
            true,
            false,
        ),
        (
            "application/vnd.dev.sigstore.bundle+json;version=0.2",
            false,
            true,
        ),
        ("application/vnd.dev.sigstore.bundle.v0.3+json", false, true),
    ]
    .into_iter()
    .enumerate()
    {
        for dsse in [false, true] {
            let b = write(
                &format!("b{i}-{dsse}.json"),
                &s.bundle(&leaf, b"release artifact\n", mt, dsse, promise, proof),
            );
            let o = verify(&b, &[]);
            ok(&o);
            assert!(String::from_utf8_lossy(&o.stderr).contains("Verified OK"));
        }
    }
    let good = s.bundle_v03(&leaf, b"release artifact\n");
    let g = write("good.json", &good);
    // The embedded public-good root does not know the test log.
    let e = err(&km(&[
        "verify-blob",
        "--bundle",
        &g,
        "--certificate-identity",
        EMAIL,
        "--certificate-oidc-issuer",
        ISSUER,
        a,
    ]));
    assert!(e.contains("which the trust root does not know"), "{e}");
    // Another artifact.
    let other = dir.join("other.bin");
    std::fs::write(&other, b"something else").unwrap();
    let e = err(&km(&[
        "verify-blob",
        "--bundle",
        &g,
        "--trusted-root",
        r,
        "--certificate-identity",
        EMAIL,
        "--certificate-oidc-issuer",
        ISSUER,
        other.to_str().unwrap(),
    ]));
    assert!(e.contains("another artifact"), "{e}");
    // No identity given; unknown version; malformed JSON; a tampered checkpoint.
    let e = err(&km(&[
        "verify-blob",
        "--bundle",
        &g,
        "--trusted-root",
        r,
        a,
    ]));
    assert!(e.contains("--certificate-oidc-issuer"), "{e}");
    let mut v = good.clone();
    v["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.4+json".into();
    let e = err(&verify(&write("v04.json", &v), &[]));
    assert!(e.contains("unknown media type"), "{e}");
    std::fs::write(dir.join("broken.json"), b"{\"mediaType\": [").unwrap();
    let e = err(&verify(dir.join("broken.json").to_str().unwrap(), &[]));
    assert!(e.contains("bundle: "), "{e}");
    let mut v = good.clone();
    let cp = "/verificationMaterial/tlogEntries/0/inclusionProof/checkpoint/envelope";
    let forged = v
        .pointer(cp)
        .unwrap()
        .as_str()
        .unwrap()
        .replace("\n2\n", "\n3\n");
    *v.pointer_mut(cp).unwrap() = forged.into();
    let e = err(&verify(&write("forged.json", &v), &[]));
    assert!(e.contains("checkpoint"), "{e}");
}

/// Embedded SCTs through `verify-blob`: the test trust root lists a CT log,
/// so a leaf whose SCT is tampered with, is of an unknown log, or is
/// missing is refused, saying so; a P-384 leaf (ECDSA P-384 over SHA-384)
/// verifies, by file, and is refused with a clear message by digest.
#[test]
fn verify_blob_checks_scts_and_p384_leaves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = TestSigstore::new();
    std::fs::write(dir.join("artifact"), b"release artifact\n").unwrap();
    std::fs::write(dir.join("root.json"), s.trusted_root_json()).unwrap();
    let p = |n: &str| dir.join(n).display().to_string();
    let verify = |spec: LeafSpec, name: &str, artifact: &str| {
        let leaf = s.leaf(&spec);
        let b = s.bundle_v03(&leaf, b"release artifact\n");
        std::fs::write(dir.join(name), serde_json::to_vec(&b).unwrap()).unwrap();
        km(&[
            "verify-blob",
            "--bundle",
            &p(name),
            "--trusted-root",
            &p("root.json"),
            "--certificate-identity",
            EMAIL,
            "--certificate-oidc-issuer",
            ISSUER,
            artifact,
        ])
    };
    let a = p("artifact");
    ok(&verify(LeafSpec::default(), "good.json", &a));
    for (sct, why) in [
        (
            SctSpec::Tampered,
            "signature does not verify with its CT log's key",
        ),
        (SctSpec::UnknownLog, "its CT log is not in the trust root"),
        (SctSpec::Missing, "embeds no signed certificate timestamp"),
    ] {
        let spec = LeafSpec {
            sct,
            ..Default::default()
        };
        let e = err(&verify(spec, &format!("{sct:?}.json"), &a));
        assert!(
            e.contains("no valid SCT") && e.contains(why),
            "{sct:?}: {e}"
        );
    }
    let p384 = || LeafSpec {
        curve: Curve::P384,
        ..Default::default()
    };
    let o = verify(p384(), "p384.json", &a);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Verified OK"));
    let sha = kubemirror::digest::sha256(b"release artifact\n").to_string();
    let e = err(&verify(p384(), "p384-digest.json", &sha));
    assert!(e.contains("give the artifact's file"), "{e}");
    // A P-256 leaf by digest still verifies.
    ok(&verify(LeafSpec::default(), "p256-digest.json", &sha));
}

/// `copy --policy` with `sigstoreSigned.fulcio`: a Sigstore bundle attached
/// as an OCI referrer (cosign 3's way, with the referrers tag) counts as
/// the image's signature, as it does for the controller; a bundle of
/// another identity, or no signature at all, is refused.
#[test]
fn copy_policy_fulcio_counts_referrer_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let reg = Registry::plain();
    let s = TestSigstore::new();
    let pol = policy(&reg, tmp.path(), "good", (&s, EMAIL, &s.rekor_pem()));
    let attach = |repo: &str, seed: &str, spec: Option<LeafSpec>| {
        cosign::push_image(&reg.host, &format!("{repo}:v1"), seed, tmp.path());
        let manifest = cosign::raw_manifest(&reg.host, &format!("{repo}:v1"));
        if let Some(spec) = spec {
            let leaf = s.leaf(&spec);
            let b = s.bundle_v03(&leaf, &manifest);
            let push = Pusher::plain(&reg.host);
            let artifact = push.attach(
                repo,
                &manifest,
                "application/vnd.dev.sigstore.bundle.v0.3+json",
                &serde_json::to_vec(&b).unwrap(),
            );
            push.referrers_tag(repo, &manifest, &[&artifact]);
        }
        reg.image(&format!("{repo}:v1"))
    };
    let copy = |image: &str, to: &str| {
        km(&[
            "--policy",
            &pol,
            "copy",
            "-q",
            "--src-tls-verify=false",
            image,
            &format!("dir:{t}/{to}"),
        ])
    };
    let good = attach("keyless/bundled", "21", Some(LeafSpec::default()));
    ok(&copy(&good, "good"));
    assert!(Path::new(&format!("{t}/good/manifest.json")).exists());
    // A P-384 signer's bundle (it signs the manifest's SHA-384).
    let p384 = attach(
        "keyless/p384",
        "22",
        Some(LeafSpec {
            curve: Curve::P384,
            ..Default::default()
        }),
    );
    ok(&copy(&p384, "p384"));
    let stranger = attach(
        "keyless/stranger",
        "23",
        Some(LeafSpec {
            subject: "someone@else.example".into(),
            ..Default::default()
        }),
    );
    let e = err(&copy(&stranger, "stranger"));
    assert!(e.contains("matches no trusted subject"), "{e}");
    assert!(!Path::new(&format!("{t}/stranger/manifest.json")).exists());
    let unsigned = attach("keyless/unsigned", "24", None);
    let e = err(&copy(&unsigned, "unsigned"));
    assert!(e.contains("no sigstore signature exists"), "{e}");
}

/// `--key`: a bundle signed with a key pair, its hashedrekord entry logged.
#[test]
fn verify_blob_with_a_public_key() {
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = TestSigstore::new();
    let key = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    let artifact = b"signed with a key\n";
    let sig: p256::ecdsa::Signature = key.sign(artifact);
    let sig = sig.to_der().as_bytes().to_vec();
    let pem = support::test_sigstore::public_pem(&key);
    let digest = kubemirror::digest::sha256(artifact);
    let raw = hex::decode(kubemirror::digest::hex_of(&digest)).unwrap();
    let e = s.log(&TestSigstore::hashedrekord(&raw, &sig, &pem), T0, 7);
    let bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {"publicKey": {"hint": "k"}, "tlogEntries": [{
            "logIndex": "7", "logId": {"keyId": b64(&e.log_id)},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
            "integratedTime": e.integrated_time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": b64(&e.set)},
            "canonicalizedBody": e.body_b64}]},
        "messageSignature": {"signature": b64(&sig)}
    });
    std::fs::write(dir.join("b.json"), serde_json::to_vec(&bundle).unwrap()).unwrap();
    std::fs::write(dir.join("a"), artifact).unwrap();
    std::fs::write(dir.join("k.pub"), &pem).unwrap();
    std::fs::write(dir.join("root.json"), s.trusted_root_json()).unwrap();
    let p = |n: &str| dir.join(n).display().to_string();
    let run = |k: &str| {
        km(&[
            "verify-blob",
            "--bundle",
            &p("b.json"),
            "--key",
            k,
            "--trusted-root",
            &p("root.json"),
            &p("a"),
        ])
    };
    ok(&run(&p("k.pub")));
    let other = p256::ecdsa::SigningKey::from_bytes(&[10u8; 32].into()).unwrap();
    std::fs::write(
        dir.join("other.pub"),
        support::test_sigstore::public_pem(&other),
    )
    .unwrap();
    let e = err(&run(&p("other.pub")));
    assert!(e.contains("not this signature"), "{e}");
    // A keyless bundle's flags do not go with --key.
    let e = err(&km(&[
        "verify-blob",
        "--bundle",
        &p("b.json"),
        "--key",
        &p("k.pub"),
        "--certificate-identity",
        EMAIL,
        &p("a"),
    ]));
    assert!(e.contains("--key"), "{e}");
}
