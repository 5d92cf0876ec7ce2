//! The keyless core against a test Sigstore (tests/support/test_sigstore.rs):
//! every positive and negative case of issue 14, for cosign annotations and
//! for bundles.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

#[path = "../../../tests/support/test_sigstore.rs"]
mod test_sigstore;

use super::bundle::{Artifact, Bundle, Signer};
use super::*;
use test_sigstore::{Curve, EMAIL, ISSUER, IssuerExt, LeafSpec, SctSpec, T0, TestSigstore};

fn trust(s: &TestSigstore, rules: Vec<IdentityRule>) -> KeylessTrust {
    KeylessTrust {
        root: Arc::new(TrustedRoot::from_json(&s.trusted_root_json()).unwrap()),
        identities: rules,
    }
}

fn email_rule() -> IdentityRule {
    IdentityRule::new(Some(ISSUER), None, Some(EMAIL), None).unwrap()
}

fn sig_of(a: &BTreeMap<String, String>) -> Vec<u8> {
    B64.decode(&a["dev.cosignproject.cosign/signature"])
        .unwrap()
}

fn verify(
    payload: &[u8],
    a: &BTreeMap<String, String>,
    t: &KeylessTrust,
) -> Result<Verified, KeylessError> {
    verify_cosign(payload, &sig_of(a), a, t)
}

#[test]
fn cosign_keyless_verifies() {
    let s = TestSigstore::new();
    let t = trust(&s, vec![email_rule()]);
    let leaf = s.leaf(&LeafSpec::default());
    let a = s.cosign_annotations(&leaf, b"payload", T0 + 60);
    let v = verify(b"payload", &a, &t).unwrap();
    assert_eq!(
        v,
        Verified {
            subject: EMAIL.into(),
            issuer: ISSUER.into(),
            log_index: 4242,
            integrated_time: T0 + 60
        }
    );
    // The deprecated issuer extension and URI identities (CI workflows).
    let wf = "https://github.example/org/repo/.github/workflows/release.yml@refs/tags/v1";
    let leaf = s.leaf(&LeafSpec {
        subject: wf.into(),
        issuer_ext: IssuerExt::V1,
        ..Default::default()
    });
    let a = s.cosign_annotations(&leaf, b"payload", T0 + 60);
    let rule = IdentityRule::new(
        None,
        Some("^https://oidc\\.test\\.example$"),
        None,
        Some("^https://github\\.example/org/repo/"),
    )
    .unwrap();
    let v = verify(b"payload", &a, &trust(&s, vec![rule])).unwrap();
    assert_eq!(v.subject, wf);
}

#[test]
fn cosign_keyless_refusals() {
    let s = TestSigstore::new();
    let t = trust(&s, vec![email_rule()]);
    let leaf = s.leaf(&LeafSpec::default());
    let good = s.cosign_annotations(&leaf, b"payload", T0 + 60);
    let reason = |r: Result<Verified, KeylessError>| r.unwrap_err().to_string();

    // A certificate of another CA: no chain.
    let other = TestSigstore::new();
    let stranger = other.leaf(&LeafSpec::default());
    let mut a = s.cosign_annotations(&stranger, b"payload", T0 + 60);
    let e = verify(b"payload", &a, &t).unwrap_err();
    assert!(matches!(e, KeylessError::Untrusted(_)), "{e}");
    assert!(
        e.to_string().contains("does not chain to a Fulcio CA"),
        "{e}"
    );

    // Expired at the integrated time (the leaf lives 10 minutes).
    let late = s.cosign_annotations(&leaf, b"payload", T0 + 1200);
    let e = verify(b"payload", &late, &t).unwrap_err();
    assert!(matches!(e, KeylessError::Expired(_)), "{e}");
    assert!(
        e.to_string()
            .contains("not valid at the log's integrated time"),
        "{e}"
    );

    // No CA of the trust root valid at that time.
    let old = s.leaf(&LeafSpec {
        not_before: s.ca_valid.0 - 1000,
        not_after: s.ca_valid.0 - 100,
        ..Default::default()
    });
    let a2 = s.cosign_annotations(&old, b"payload", s.ca_valid.0 - 500);
    let r = reason(verify(b"payload", &a2, &t));
    assert!(
        r.contains("no Fulcio CA of the trust root was valid"),
        "{r}"
    );

    // Wrong identity, wrong issuer.
    let r = reason(verify(
        b"payload",
        &good,
        &trust(
            &s,
            vec![IdentityRule::new(Some(ISSUER), None, Some("x@y"), None).unwrap()],
        ),
    ));
    assert!(r.contains("matches no trusted subject"), "{r}");
    let r = reason(verify(
        b"payload",
        &good,
        &trust(
            &s,
            vec![IdentityRule::new(Some("https://evil"), None, Some(EMAIL), None).unwrap()],
        ),
    ));
    assert!(r.contains("matches no trusted issuer"), "{r}");

    // Tampered SET: another integrated time, index or body than was signed.
    for (field, value) in [
        ("integratedTime", serde_json::json!(T0 + 61)),
        ("logIndex", serde_json::json!(1)),
    ] {
        let mut b: serde_json::Value =
            serde_json::from_str(&good["dev.sigstore.cosign/bundle"]).unwrap();
        b["Payload"][field] = value;
        a = good.clone();
        a.insert("dev.sigstore.cosign/bundle".into(), b.to_string());
        let r = reason(verify(b"payload", &a, &t));
        assert!(
            r.contains("signed entry timestamp does not verify"),
            "{field}: {r}"
        );
    }

    // An entry logged by a log the trust root does not know.
    let rogue = TestSigstore::with_rekor_seed(9);
    let mut rogue_root = rogue;
    rogue_root.root = TestSigstore::new().root; // only its Rekor key matters
    let foreign = s.cosign_annotations(&leaf, b"payload", T0 + 60);
    let mut b: serde_json::Value =
        serde_json::from_str(&foreign["dev.sigstore.cosign/bundle"]).unwrap();
    b["Payload"]["logID"] = hex::encode(rogue_root.log_id()).into();
    a = good.clone();
    a.insert("dev.sigstore.cosign/bundle".into(), b.to_string());
    let r = reason(verify(b"payload", &a, &t));
    assert!(r.contains("which the trust root does not know"), "{r}");

    // Another payload than the one logged and signed.
    let r = reason(verify(b"payloaD", &good, &t));
    assert!(r.contains("artifact digest differs"), "{r}");

    // Malformed annotations.
    for (k, v) in [
        ("dev.sigstore.cosign/bundle", "{not json"),
        ("dev.sigstore.cosign/certificate", "garbage"),
        (
            "dev.sigstore.cosign/certificate",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ),
    ] {
        a = good.clone();
        a.insert(k.into(), v.into());
        let e = verify(b"payload", &a, &t).unwrap_err();
        assert!(matches!(e, KeylessError::Malformed(_)), "{k}: {e}");
    }
    a = good.clone();
    a.remove("dev.sigstore.cosign/bundle");
    assert!(reason(verify(b"payload", &a, &t)).contains("needs its Rekor entry"));

    // Not a Fulcio certificate: no issuer extension, no code signing.
    for spec in [
        LeafSpec {
            issuer_ext: IssuerExt::None,
            ..Default::default()
        },
        LeafSpec {
            code_signing: false,
            ..Default::default()
        },
    ] {
        let l = s.leaf(&spec);
        let a = s.cosign_annotations(&l, b"payload", T0 + 60);
        let e = verify(b"payload", &a, &t).unwrap_err();
        assert!(matches!(e, KeylessError::Malformed(_)), "{e}");
    }
}

#[test]
fn policy_parts_root() {
    let s = TestSigstore::new();
    let root =
        TrustedRoot::from_parts(s.ca_pem().as_bytes(), &[s.rekor_pem().into_bytes()]).unwrap();
    let t = KeylessTrust {
        root: Arc::new(root),
        identities: vec![email_rule()],
    };
    let leaf = s.leaf(&LeafSpec::default());
    let a = s.cosign_annotations(&leaf, b"p", T0 + 60);
    verify(b"p", &a, &t).unwrap();
    // Root first in the PEM works too.
    let swapped = format!("{}{}", s.root.cert.pem(), s.intermediate.cert.pem());
    let root = TrustedRoot::from_parts(swapped.as_bytes(), &[s.rekor_pem().into_bytes()]).unwrap();
    let t = KeylessTrust {
        root: Arc::new(root),
        identities: vec![email_rule()],
    };
    verify(b"p", &a, &t).unwrap();
}

const V01: &str = "application/vnd.dev.sigstore.bundle+json;version=0.1";
const V02: &str = "application/vnd.dev.sigstore.bundle+json;version=0.2";
const V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const V03B: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";

fn check_bundle(
    s: &TestSigstore,
    b: &serde_json::Value,
    artifact: &[u8],
) -> Result<Verified, KeylessError> {
    let t = trust(s, vec![email_rule()]);
    Bundle::parse(&serde_json::to_vec(b).unwrap())?
        .verify(Artifact::Bytes(artifact), Signer::Keyless(&t))
}

#[test]
fn bundles_every_version() {
    let s = TestSigstore::new();
    let leaf = s.leaf(&LeafSpec::default());
    for (mt, promise, proof) in [
        (V01, true, false),
        (V01, true, true),
        (V02, false, true),
        (V02, true, true),
        (V03, false, true),
        (V03B, true, true),
    ] {
        for dsse in [false, true] {
            let b = s.bundle(&leaf, b"artifact", mt, dsse, promise, proof);
            let v = check_bundle(&s, &b, b"artifact")
                .unwrap_or_else(|e| panic!("{mt} dsse={dsse} promise={promise}: {e}"));
            assert_eq!(v.subject, EMAIL);
            assert_eq!(v.integrated_time, T0 + 60);
            // Another artifact.
            let e = check_bundle(&s, &b, b"other").unwrap_err();
            assert!(
                matches!(e, KeylessError::Signature(_) | KeylessError::Tlog(_)),
                "{mt}: {e}"
            );
        }
    }
    // By digest only (sha256:HEX on the command line).
    let b = s.bundle(&leaf, b"artifact", V03, false, false, true);
    let d: [u8; 32] = sha2::Sha256::digest(b"artifact").into();
    let t = trust(&s, vec![email_rule()]);
    Bundle::parse(&serde_json::to_vec(&b).unwrap())
        .unwrap()
        .verify(Artifact::Sha256(&d), Signer::Keyless(&t))
        .unwrap();
}

use sha2::Digest as _;

#[test]
fn bundle_refusals() {
    let s = TestSigstore::new();
    let leaf = s.leaf(&LeafSpec::default());
    let reason = |b: &serde_json::Value| check_bundle(&s, b, b"artifact").unwrap_err().to_string();

    // v0.1 needs the promise, v0.2+ the proof.
    let r = reason(&s.bundle(&leaf, b"artifact", V01, false, false, true));
    assert!(r.contains("v0.1 needs an inclusion promise"), "{r}");
    let r = reason(&s.bundle(&leaf, b"artifact", V03, false, true, false));
    assert!(r.contains("v0.3 needs an inclusion proof"), "{r}");

    // A tampered inclusion proof, root hash, checkpoint.
    let good = s.bundle(&leaf, b"artifact", V03, false, false, true);
    let proof = "/verificationMaterial/tlogEntries/0/inclusionProof";
    let mut b = good.clone();
    *b.pointer_mut(&format!("{proof}/hashes/0")).unwrap() = B64.encode([7u8; 32]).into();
    assert!(reason(&b).contains("inclusion proof does not lead to its root hash"));
    let mut b = good.clone();
    *b.pointer_mut(&format!("{proof}/treeSize")).unwrap() = "3".into();
    assert!(reason(&b).contains("inclusion proof"));
    let mut b = good.clone();
    let cp = b
        .pointer(&format!("{proof}/checkpoint/envelope"))
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let forged = cp.replacen("rekor.test.example - 1", "rekor.test.example - 2", 1);
    *b.pointer_mut(&format!("{proof}/checkpoint/envelope"))
        .unwrap() = forged.into();
    assert!(reason(&b).contains("checkpoint is not signed by the log's key"));
    // A tampered body: the proof no longer leads to the root.
    let mut b = good.clone();
    *b.pointer_mut("/verificationMaterial/tlogEntries/0/canonicalizedBody")
        .unwrap() = B64.encode(b"{}").into();
    assert!(reason(&b).contains("inclusion proof does not lead"));

    // Unknown versions, malformed JSON, a wrong identity.
    let mut b = good.clone();
    b["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.9+json".into();
    assert!(reason(&b).contains("unknown media type"));
    let e = Bundle::parse(b"{\"mediaType\":").unwrap_err();
    assert!(matches!(e, KeylessError::Malformed(_)), "{e}");
    let t = trust(
        &s,
        vec![IdentityRule::new(Some(ISSUER), None, Some("x@y"), None).unwrap()],
    );
    let e = Bundle::parse(&serde_json::to_vec(&good).unwrap())
        .unwrap()
        .verify(Artifact::Bytes(b"artifact"), Signer::Keyless(&t))
        .unwrap_err();
    assert!(matches!(e, KeylessError::Identity(_)), "{e}");
    // No tlog entry at all.
    let mut b = good.clone();
    b["verificationMaterial"]["tlogEntries"] = serde_json::json!([]);
    assert!(reason(&b).contains("no transparency log entry"));
}

/// Embedded SCTs: one verifying with a CT log of the trust root is needed
/// when the root lists CT logs; a tampered one, one of an unknown log, or
/// none is refused, as cosign does.
#[test]
fn embedded_scts() {
    let s = TestSigstore::new();
    let t = trust(&s, vec![email_rule()]);
    let good = s.leaf(&LeafSpec::default());
    let good_a = s.cosign_annotations(&good, b"payload", T0 + 60);
    verify(b"payload", &good_a, &t).unwrap();
    let b = s.bundle(&good, b"artifact", V03, false, false, true);
    check_bundle(&s, &b, b"artifact").unwrap();
    for (spec, why) in [
        (
            SctSpec::Tampered,
            "signature does not verify with its CT log's key",
        ),
        (SctSpec::UnknownLog, "its CT log is not in the trust root"),
        (SctSpec::Missing, "embeds no signed certificate timestamp"),
    ] {
        let leaf = s.leaf(&LeafSpec {
            sct: spec,
            ..Default::default()
        });
        let a = s.cosign_annotations(&leaf, b"payload", T0 + 60);
        let e = verify(b"payload", &a, &t).unwrap_err();
        assert!(matches!(e, KeylessError::Sct(_)), "{spec:?}: {e}");
        let e = e.to_string();
        assert!(
            e.starts_with("no valid SCT: ") && e.contains(why),
            "{spec:?}: {e}"
        );
        let b = s.bundle(&leaf, b"artifact", V03, false, false, true);
        let e = check_bundle(&s, &b, b"artifact").unwrap_err().to_string();
        assert!(e.contains("no valid SCT"), "{spec:?}: {e}");
    }
    // The CT log's key was not valid yet at the SCT's time.
    let mut root: serde_json::Value = serde_json::from_slice(&s.trusted_root_json()).unwrap();
    root["ctlogs"][0]["publicKey"]["validFor"]["start"] = "2026-06-01T00:00:00Z".into();
    let late = KeylessTrust {
        root: Arc::new(TrustedRoot::from_json(&serde_json::to_vec(&root).unwrap()).unwrap()),
        identities: vec![email_rule()],
    };
    let e = verify(b"payload", &good_a, &late).unwrap_err().to_string();
    assert!(e.contains("was not valid at the SCT's time"), "{e}");
    // A root without CT logs (policy.json's caPath) needs no SCT.
    root["ctlogs"] = serde_json::json!([]);
    let no_ct = KeylessTrust {
        root: Arc::new(TrustedRoot::from_json(&serde_json::to_vec(&root).unwrap()).unwrap()),
        identities: vec![email_rule()],
    };
    let bare = s.leaf(&LeafSpec {
        sct: SctSpec::Missing,
        ..Default::default()
    });
    let a = s.cosign_annotations(&bare, b"payload", T0 + 60);
    verify(b"payload", &a, &no_ct).unwrap();
}

/// Message signatures of a P-384 leaf (ECDSA P-384 over SHA-384, the
/// bundle's messageDigest SHA2_384) and of a P-256 leaf (SHA-256).
#[test]
fn bundles_by_curve() {
    let s = TestSigstore::new();
    let t = trust(&s, vec![email_rule()]);
    for curve in [Curve::P256, Curve::P384] {
        let leaf = s.leaf(&LeafSpec {
            curve,
            ..Default::default()
        });
        let b = s.bundle(&leaf, b"artifact", V03, false, false, true);
        let want = if curve == Curve::P384 {
            "SHA2_384"
        } else {
            "SHA2_256"
        };
        assert_eq!(b["messageSignature"]["messageDigest"]["algorithm"], want);
        check_bundle(&s, &b, b"artifact").unwrap_or_else(|e| panic!("{curve:?}: {e}"));
        let e = check_bundle(&s, &b, b"other").unwrap_err().to_string();
        assert!(e.contains("another artifact"), "{curve:?}: {e}");
        // The DSSE form too.
        let b = s.bundle(&leaf, b"artifact", V03, true, false, true);
        check_bundle(&s, &b, b"artifact").unwrap_or_else(|e| panic!("{curve:?} dsse: {e}"));
        // By SHA-256 only: fine for P-256, a clear refusal for P-384.
        let b = s.bundle(&leaf, b"artifact", V03, false, false, true);
        let d: [u8; 32] = sha2::Sha256::digest(b"artifact").into();
        let r = Bundle::parse(&serde_json::to_vec(&b).unwrap())
            .unwrap()
            .verify(Artifact::Sha256(&d), Signer::Keyless(&t));
        match curve {
            Curve::P256 => {
                r.unwrap();
            }
            Curve::P384 => {
                let e = r.unwrap_err().to_string();
                assert!(e.contains("give the artifact's file"), "{e}");
            }
        }
    }
    // A P-384 signature checked as if SHA-256 were its hash: the digest
    // says SHA2_256 but the key signs SHA-384 — refused by the log entry.
    let leaf = s.leaf(&LeafSpec {
        curve: Curve::P384,
        ..Default::default()
    });
    let mut b = s.bundle(&leaf, b"artifact", V03, false, false, true);
    b["messageSignature"]["messageDigest"] = serde_json::json!({
        "algorithm": "SHA2_256", "digest": B64.encode(sha2::Sha256::digest(b"artifact"))});
    let e = check_bundle(&s, &b, b"artifact").unwrap_err().to_string();
    assert!(e.contains("artifact digest differs"), "{e}");
    b["messageSignature"]["messageDigest"]["algorithm"] = "MD5".into();
    let e = check_bundle(&s, &b, b"artifact").unwrap_err().to_string();
    assert!(e.contains("not supported"), "{e}");
}
