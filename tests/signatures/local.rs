//! Signatures in local files: skopeo's simple signatures in `dir:`, openssl's
//! sigstore signatures; our verifier and policy against skopeo's verdicts.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use bytes::Bytes;
use kubemirror::digest;
use kubemirror::image::{Signature, SystemContext};
use kubemirror::signature::identity::SignedIdentity;
use kubemirror::signature::simple::{self, Keyring, Payload};
use kubemirror::signature::verify::{self, Subject, TrustedKey, TrustedKeys};
use kubemirror::signature::{self as sig, Policy, Target, sigstore};
use kubemirror::transport::parse_image_name;

use crate::support::{run, skopeo};
use crate::*;

#[test]
fn skopeo_simple_signature_verifies_with_the_signer_key_only() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = Gpg::new("Signer <signer@example.com>", "ed25519");
    let other = Gpg::new("Other <other@example.com>", "ed25519");
    let out = tmp.path().join("out");
    skopeo_signed_dir(&signer, &layout(tmp.path()), &out, IDENTITY);
    let message = std::fs::read(out.join("signature-1")).unwrap();
    let (_, d) = manifest_digest(&out);

    // Read without trust: payload and the issuer, as gpg names it.
    let untrusted = simple::open(&message).unwrap();
    assert_eq!(untrusted.key_id, signer.fpr);
    let p = Payload::parse(&untrusted.payload, simple::SIGNATURE_TYPE).unwrap();
    assert_eq!(p.docker_reference, IDENTITY);
    assert_eq!(p.manifest_digest, d.to_string());

    for armor in [true, false] {
        let ring = Keyring::from_bytes(&signer.export(armor)).unwrap();
        assert_eq!(ring.fingerprints(), std::slice::from_ref(&signer.fpr));
        let v = simple::verify(&message, &ring).unwrap();
        assert_eq!(v.signer_fingerprint, signer.fpr);
        assert_eq!(v.payload, untrusted.payload);
    }
    let wrong = Keyring::from_bytes(&other.export(true)).unwrap();
    let e = simple::verify(&message, &wrong).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "signed by key {}, which is not among the trusted keys",
            signer.fpr
        )
    );
    // A keyring holding both keys verifies: binary, or two armored blocks.
    let mut both = Keyring::from_bytes(&other.export(false)).unwrap();
    both.add(&signer.export(true)).unwrap();
    assert!(simple::verify(&message, &both).is_ok());
    let two_blocks = [other.export(true), signer.export(true)].concat();
    let both = Keyring::from_bytes(&two_blocks).unwrap();
    assert_eq!(both.fingerprints(), [other.fpr.clone(), signer.fpr.clone()]);
    assert!(simple::verify(&message, &both).is_ok());
    let e = Keyring::from_bytes(b"not a key").unwrap_err();
    assert!(
        e.to_string().starts_with("invalid key: OpenPGP keyring"),
        "{e}"
    );

    // The status report.
    let image = kubemirror::reference::parse(IDENTITY).unwrap();
    let subject = Subject {
        reference: Some(&image),
        manifest_digest: &d,
        manifest: None,
    };
    let sigs = [Signature::SimpleSigning(Bytes::from(message.clone()))];
    let keys = TrustedKeys::new([TrustedKey::parse("GPG", &signer.export(true)).unwrap()]);
    let r = &verify::report(&keys, &subject, &sigs, None)[0];
    assert!(r.verified, "{r:?}");
    assert_eq!(r.type_, "simple-signing");
    assert_eq!(r.key_id, signer.fpr);
    assert_eq!(r.identity, IDENTITY);
    assert_eq!(r.manifest_digest, d.to_string());
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&r.payload)
        .unwrap();
    assert_eq!(payload, untrusted.payload);

    let keys = TrustedKeys::new([TrustedKey::parse("GPG", &other.export(false)).unwrap()]);
    let r = &verify::report(&keys, &subject, &sigs, None)[0];
    assert!(!r.verified);
    assert_eq!(
        r.reason,
        format!(
            "no signature signed by a trusted key (signed by {})",
            signer.fpr
        )
    );
    assert_eq!(r.key_id, signer.fpr);
}

#[test]
fn skopeo_simple_signature_is_refused_for_another_digest_or_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = Gpg::new("Signer <signer@example.com>", "ed25519");
    let out = tmp.path().join("out");
    skopeo_signed_dir(&signer, &layout(tmp.path()), &out, IDENTITY);
    let sigs = [Signature::SimpleSigning(Bytes::from(
        std::fs::read(out.join("signature-1")).unwrap(),
    ))];
    let (manifest, d) = manifest_digest(&out);
    let keys = TrustedKeys::new([TrustedKey::parse("gpg", &signer.export(true)).unwrap()]);

    let image = kubemirror::reference::parse(IDENTITY).unwrap();
    let other_manifest = [&manifest[..], b"\n"].concat();
    let other_d = digest::sha256(&other_manifest);
    let subject = Subject {
        reference: Some(&image),
        manifest_digest: &other_d,
        manifest: Some(&other_manifest),
    };
    let r = &verify::report(&keys, &subject, &sigs, None)[0];
    assert!(!r.verified);
    assert_eq!(r.reason, format!("signature is for {d} not {other_d}"));
    assert_eq!(r.key_id, signer.fpr, "the signer is still known");

    for name in [
        "registry.example/team/app:v2",
        "registry.example/team/evil:v1",
    ] {
        let other_image = kubemirror::reference::parse(name).unwrap();
        let subject = Subject {
            reference: Some(&other_image),
            manifest_digest: &d,
            manifest: Some(&manifest),
        };
        let r = &verify::report(&keys, &subject, &sigs, None)[0];
        assert!(!r.verified);
        assert_eq!(
            r.reason,
            format!("identity {IDENTITY} does not match {name}")
        );
        // …unless the rule says the repository is enough.
        let repo_only = verify::report(
            &keys,
            &subject,
            &sigs,
            Some(&SignedIdentity::MatchRepository),
        );
        assert_eq!(repo_only[0].verified, name.ends_with("app:v2"));
    }
}

#[test]
fn rsa_keys_verify_too() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = Gpg::new("RSA Signer <rsa@example.com>", "rsa2048");
    let out = tmp.path().join("out");
    skopeo_signed_dir(&signer, &layout(tmp.path()), &out, IDENTITY);
    let message = std::fs::read(out.join("signature-1")).unwrap();
    let ring = Keyring::from_bytes(&signer.export(false)).unwrap();
    assert_eq!(
        simple::verify(&message, &ring).unwrap().signer_fingerprint,
        signer.fpr
    );
}

/// skopeo's verdict: does `skopeo --policy P copy dir:SRC dir:DST` succeed?
fn skopeo_accepts(policy: &Path, src: &str, tmp: &Path, extra: &[&str]) -> (bool, String) {
    let dst = tempfile::tempdir_in(tmp).unwrap();
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(policy)
        .args(extra)
        .args(["copy", "-q", src])
        .arg(format!("dir:{}", dst.path().display()))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Our verdict on the same image, read through our transports.
async fn our_verdict(policy: &Path, src: &str, ctx: &SystemContext) -> Result<(), String> {
    let policy = Policy::load(policy).map_err(|e| e.to_string())?;
    let r = parse_image_name(src).unwrap();
    let s = r.new_image_source(ctx).await.unwrap();
    let m = s.get_manifest(None).await.unwrap();
    let sigs = sig::read(s.as_ref(), Target::TopLevel(&m.digest()))
        .await
        .unwrap();
    policy
        .evaluate_image(r.as_ref(), &m.bytes, &sigs)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn our_policy_agrees_with_skopeo_on_simple_signatures() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = Gpg::new("Signer <signer@example.com>", "ed25519");
    let other = Gpg::new("Other <other@example.com>", "ed25519");
    let out = tmp.path().join("out");
    skopeo_signed_dir(&signer, &layout(tmp.path()), &out, IDENTITY);
    // The same signature over a manifest that differs by one byte.
    let tampered = tmp.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    for f in std::fs::read_dir(&out).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, tampered.join(f.file_name().unwrap())).unwrap();
    }
    let mut m = std::fs::read(tampered.join("manifest.json")).unwrap();
    m.push(b'\n');
    std::fs::write(tampered.join("manifest.json"), m).unwrap();
    let unsigned = tmp.path().join("unsigned");
    run(skopeo().args([
        "copy",
        "-q",
        &format!("dir:{}", out.display()),
        &format!("dir:{}", unsigned.display()),
        "--remove-signatures",
    ]));

    let key = signer.export_to(tmp.path(), "signer.gpg");
    let other_key = other.export_to(tmp.path(), "other.gpg");
    let key_data = base64::engine::general_purpose::STANDARD.encode(signer.export(true));
    let signed_by = |key: &Path, identity: serde_json::Value| serde_json::json!({"type": "signedBy", "keyType": "GPGKeys", "keyPath": key, "signedIdentity": identity});
    let exact = |r: &str| serde_json::json!({"type": "exactReference", "dockerReference": r});
    let cases: Vec<(&str, serde_json::Value, &Path, bool)> = vec![
        (
            "right key, exact reference",
            serde_json::json!({"default": [signed_by(&key, exact(IDENTITY))]}),
            &out,
            true,
        ),
        (
            "right key, other reference",
            serde_json::json!({"default": [signed_by(&key, exact("registry.example/team/app:v2"))]}),
            &out,
            false,
        ),
        (
            "other key",
            serde_json::json!({"default": [signed_by(&other_key, exact(IDENTITY))]}),
            &out,
            false,
        ),
        (
            "keyData, exact repository",
            serde_json::json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": key_data,
            "signedIdentity": {"type": "exactRepository", "dockerRepository": "registry.example/team/app"}}]}),
            &out,
            true,
        ),
        (
            "keyPaths, wrong repository",
            serde_json::json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": [&other_key, &key],
            "signedIdentity": {"type": "exactRepository", "dockerRepository": "registry.example/team/other"}}]}),
            &out,
            false,
        ),
        (
            "default identity on dir: (no docker reference)",
            serde_json::json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": &key}]}),
            &out,
            false,
        ),
        (
            "tampered manifest",
            serde_json::json!({"default": [signed_by(&key, exact(IDENTITY))]}),
            &tampered,
            false,
        ),
        (
            "unsigned",
            serde_json::json!({"default": [signed_by(&key, exact(IDENTITY))]}),
            &unsigned,
            false,
        ),
        (
            "accept anything",
            serde_json::json!({"default": [{"type": "insecureAcceptAnything"}]}),
            &unsigned,
            true,
        ),
        (
            "reject",
            serde_json::json!({"default": [{"type": "reject"}]}),
            &out,
            false,
        ),
        (
            "dir scope rejects this path",
            serde_json::json!({"default": [{"type": "insecureAcceptAnything"}],
            "transports": {"dir": {out.to_str().unwrap(): [{"type": "reject"}]}}}),
            &out,
            false,
        ),
        (
            "dir scope of the parent directory",
            serde_json::json!({"default": [{"type": "reject"}],
            "transports": {"dir": {tmp.path().to_str().unwrap(): [signed_by(&key, exact(IDENTITY))]}}}),
            &out,
            true,
        ),
        (
            "docker scope does not apply to dir:",
            serde_json::json!({"default": [{"type": "insecureAcceptAnything"}],
            "transports": {"docker": {"": [{"type": "reject"}]}}}),
            &out,
            true,
        ),
        (
            "two requirements, one fails",
            serde_json::json!({"default": [signed_by(&key, exact(IDENTITY)), signed_by(&other_key, exact(IDENTITY))]}),
            &out,
            false,
        ),
    ];
    let ctx = SystemContext::default();
    for (name, policy, src, want) in cases {
        let p = tmp.path().join("policy.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
        let src = format!("dir:{}", src.display());
        let (theirs, stderr) = skopeo_accepts(&p, &src, tmp.path(), &[]);
        let ours = our_verdict(&p, &src, &ctx).await;
        assert_eq!(theirs, want, "{name}: skopeo said {stderr}");
        assert_eq!(ours.is_ok(), want, "{name}: we said {ours:?}");
        if let Err(reason) = ours {
            assert!(!reason.contains('\n'), "{name}: one line: {reason}");
        }
    }
}

#[test]
fn openssl_sigstore_signature_verifies_with_the_right_key_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (k1, pub1) = openssl_key(tmp.path(), "k1");
    let (_, pub2) = openssl_key(tmp.path(), "k2");
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let d = digest::sha256(manifest);
    let image = kubemirror::reference::parse(IDENTITY).unwrap();
    let subject = Subject {
        reference: Some(&image),
        manifest_digest: &d,
        manifest: Some(manifest),
    };
    let right = TrustedKeys::new([TrustedKey::parse("Sigstore", &pub1).unwrap()]);
    let wrong = TrustedKeys::new([TrustedKey::parse("Sigstore", &pub2).unwrap()]);

    // Several signatures: openssl's DER S values are not normalised, so this
    // also covers high-S signatures.
    for _ in 0..4 {
        let good = openssl_sign(tmp.path(), &k1, &cosign_payload(IDENTITY, &d));
        let r = verify::examine(&good, &right, &subject, None);
        assert!(r.verified, "{r:?}");
        assert_eq!(
            r.key_id,
            sigstore::PublicKey::from_bytes(&pub1).unwrap().key_id()
        );
        let r = verify::examine(&good, &wrong, &subject, None);
        assert!(!r.verified);
        assert_eq!(r.reason, "no signature signed by a trusted key");
    }
    // cosign's own payloads name the repository only.
    let repo_only = openssl_sign(
        tmp.path(),
        &k1,
        &cosign_payload("registry.example/team/app", &d),
    );
    assert!(verify::examine(&repo_only, &right, &subject, None).verified);

    let other = digest::sha256(b"another manifest");
    let s = openssl_sign(tmp.path(), &k1, &cosign_payload(IDENTITY, &other));
    let r = verify::examine(&s, &right, &subject, None);
    assert!(!r.verified);
    assert_eq!(r.reason, format!("signature is for {other} not {d}"));
    assert_eq!(r.manifest_digest, other.to_string());

    let s = openssl_sign(
        tmp.path(),
        &k1,
        &cosign_payload("registry.example/team/evil:v1", &d),
    );
    let r = verify::examine(&s, &right, &subject, None);
    assert!(!r.verified);
    assert_eq!(
        r.reason,
        format!("identity registry.example/team/evil:v1 does not match {IDENTITY}")
    );
    // A simple-signing payload type under a sigstore signature is refused.
    let s = openssl_sign(
        tmp.path(),
        &k1,
        &Payload::to_json(IDENTITY, d.as_ref(), simple::SIGNATURE_TYPE),
    );
    let r = verify::examine(&s, &right, &subject, None);
    assert!(
        r.reason
            .contains("expected \"cosign container image signature\""),
        "{r:?}"
    );
}

#[test]
fn signatures_made_by_a_signing_subkey_verify_as_the_primary_key() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = Gpg::new("Sub Signer <sub@example.com>", "ed25519");
    run(signer.cmd().args([
        "--passphrase",
        "",
        "--quick-add-key",
        &signer.fpr,
        "ed25519",
        "sign",
        "never",
    ]));
    let out = tmp.path().join("out");
    skopeo_signed_dir(&signer, &layout(tmp.path()), &out, IDENTITY);
    let message = std::fs::read(out.join("signature-1")).unwrap();
    let untrusted = simple::open(&message).unwrap();
    assert_ne!(
        untrusted.key_id, signer.fpr,
        "gpg signs with the newest signing subkey"
    );
    let v = simple::verify(
        &message,
        &Keyring::from_bytes(&signer.export(true)).unwrap(),
    )
    .unwrap();
    assert_eq!(v.signer_fingerprint, signer.fpr);
    assert_eq!(v.signing_key_fingerprint, untrusted.key_id);
}

#[tokio::test]
async fn policy_refuses_subkey_signatures_as_skopeo_does() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = Gpg::new("Sub Signer <sub@example.com>", "ed25519");
    run(signer.cmd().args([
        "--passphrase",
        "",
        "--quick-add-key",
        &signer.fpr,
        "ed25519",
        "sign",
        "never",
    ]));
    let out = tmp.path().join("out");
    skopeo_signed_dir(&signer, &layout(tmp.path()), &out, IDENTITY);
    let key = signer.export_to(tmp.path(), "signer.gpg");
    let p = tmp.path().join("policy.json");
    std::fs::write(
        &p,
        serde_json::to_vec(&serde_json::json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": key,
            "signedIdentity": {"type": "exactReference", "dockerReference": IDENTITY}}]}))
        .unwrap(),
    )
    .unwrap();
    let src = format!("dir:{}", out.display());
    let (theirs, stderr) = skopeo_accepts(&p, &src, tmp.path(), &[]);
    assert!(!theirs && stderr.contains("is not accepted"), "{stderr}");
    let ours = our_verdict(&p, &src, &SystemContext::default())
        .await
        .unwrap_err();
    assert!(ours.contains("signature by subkey"), "{ours}");
    // The status report (not skopeo's policy) accepts the subkey of a trusted key.
    let sigs = [Signature::SimpleSigning(Bytes::from(
        std::fs::read(out.join("signature-1")).unwrap(),
    ))];
    let (_, d) = manifest_digest(&out);
    let image = kubemirror::reference::parse(IDENTITY).unwrap();
    let subject = Subject {
        reference: Some(&image),
        manifest_digest: &d,
        manifest: None,
    };
    let keys = TrustedKeys::new([TrustedKey::parse("GPG", &signer.export(false)).unwrap()]);
    assert!(verify::report(&keys, &subject, &sigs, None)[0].verified);
}

#[tokio::test]
async fn both_formats_round_trip_through_dir_and_skopeo_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = Gpg::new("Signer <signer@example.com>", "ed25519");
    let (k1, pub1) = openssl_key(tmp.path(), "k1");
    let a = tmp.path().join("a");
    skopeo_signed_dir(&signer, &layout(tmp.path()), &a, IDENTITY);
    let (_, d) = manifest_digest(&a);
    let simple_sig =
        Signature::SimpleSigning(Bytes::from(std::fs::read(a.join("signature-1")).unwrap()));
    let cosign_sig = openssl_sign(tmp.path(), &k1, &cosign_payload(IDENTITY, &d));

    // Write dir:B with both signatures through signature::write.
    let ctx = SystemContext::default();
    let r = parse_image_name(&format!("dir:{}", a.display())).unwrap();
    let src = r.new_image_source(&ctx).await.unwrap();
    let manifest = src.get_manifest(None).await.unwrap();
    let have = sig::read(src.as_ref(), Target::TopLevel(&d)).await.unwrap();
    assert_eq!(have, std::slice::from_ref(&simple_sig));
    let b = tmp.path().join("b");
    let r = parse_image_name(&format!("dir:{}", b.display())).unwrap();
    let dst = r.new_image_destination(&ctx).await.unwrap();
    for desc in kubemirror::manifest::blobs(&manifest.image().unwrap()) {
        let info = kubemirror::image::BlobInfo::from(&desc);
        let blob = src.get_blob(&info).await.unwrap();
        dst.put_blob(&info, blob).await.unwrap();
    }
    dst.put_manifest(&manifest, None).await.unwrap();
    let n = sig::write(
        dst.as_ref(),
        Target::TopLevel(&d),
        &[simple_sig.clone(), cosign_sig.clone()],
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    dst.commit().await.unwrap();

    // skopeo copies both to dir:C; we read them back unchanged.
    let c = tmp.path().join("c");
    run(skopeo().args([
        "copy",
        "-q",
        &format!("dir:{}", b.display()),
        &format!("dir:{}", c.display()),
    ]));
    assert!(
        c.join("signature-2").exists(),
        "skopeo kept the sigstore signature"
    );
    let r = parse_image_name(&format!("dir:{}", c.display())).unwrap();
    let src = r.new_image_source(&ctx).await.unwrap();
    let sigs = sig::read(src.as_ref(), Target::TopLevel(&d)).await.unwrap();
    assert_eq!(sigs, [simple_sig, cosign_sig]);
    let image = kubemirror::reference::parse(IDENTITY).unwrap();
    let subject = Subject {
        reference: Some(&image),
        manifest_digest: &d,
        manifest: None,
    };
    let keys = TrustedKeys::new([
        TrustedKey::parse("GPG", &signer.export(true)).unwrap(),
        TrustedKey::parse("Sigstore", &pub1).unwrap(),
    ]);
    let reports = verify::report(&keys, &subject, &sigs, None);
    assert!(reports.iter().all(|r| r.verified), "{reports:?}");
    assert_eq!(reports[0].type_, "simple-signing");
    assert_eq!(reports[1].type_, "sigstore");
}

#[tokio::test]
async fn our_simple_signatures_satisfy_gpg_and_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = Gpg::new("Signer <signer@example.com>", "ed25519");
    let secret = run(signer.cmd().args([
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--armor",
        "--export-secret-keys",
        &signer.fpr,
    ]))
    .stdout;
    let key = simple::SigningKey::from_bytes(&secret).unwrap();
    assert_eq!(key.fingerprint(), signer.fpr);

    let out = tmp.path().join("out");
    run(skopeo().args([
        "copy",
        "-q",
        &format!("oci:{}:t", layout(tmp.path()).display()),
        &format!("dir:{}", out.display()),
    ]));
    let (_, d) = manifest_digest(&out);
    let Signature::SimpleSigning(message) =
        simple::sign_image(IDENTITY, d.as_ref(), &key, "").unwrap()
    else {
        unreachable!()
    };
    std::fs::write(out.join("signature-1"), &message).unwrap();

    // gpg, independently, verifies it and shows the payload.
    let verified = run(signer
        .cmd()
        .args(["--status-fd", "2", "--decrypt"])
        .arg(out.join("signature-1")));
    assert!(
        String::from_utf8_lossy(&verified.stderr).contains(&format!("VALIDSIG {}", signer.fpr)),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let p = Payload::parse(&verified.stdout, simple::SIGNATURE_TYPE).unwrap();
    assert_eq!(p.docker_reference, IDENTITY);
    assert_eq!(p.manifest_digest, d.to_string());

    // skopeo's policy accepts it, and so do we.
    let key_path = signer.export_to(tmp.path(), "signer.gpg");
    let p = tmp.path().join("policy.json");
    std::fs::write(
        &p,
        serde_json::to_vec(&serde_json::json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": key_path,
            "signedIdentity": {"type": "exactReference", "dockerReference": IDENTITY}}]}))
        .unwrap(),
    )
    .unwrap();
    let src = format!("dir:{}", out.display());
    let (theirs, stderr) = skopeo_accepts(&p, &src, tmp.path(), &[]);
    assert!(theirs, "skopeo refused our signature: {stderr}");
    assert_eq!(
        our_verdict(&p, &src, &SystemContext::default()).await,
        Ok(())
    );
    let e = simple::SigningKey::from_bytes(&signer.export(true)).unwrap_err();
    assert!(
        e.to_string().starts_with("invalid key: OpenPGP secret key"),
        "{e}"
    );
}

/// A GnuPG key made at a faked past time (`gpg --faked-system-time`), with
/// `expire` (`never`, `1d`, ...).
fn key_made_on(time: &str, uid: &str, expire: &str) -> Gpg {
    Gpg::generate(uid, "ed25519", expire, Some(time))
}

/// `dir:OUT` holding the fixture with one simple signature that gpg made
/// at `time` (with `extra` flags) over its digest as [`IDENTITY`].
fn dir_signed_at(gpg: &Gpg, tmp: &Path, name: &str, time: &str, extra: &[&str]) -> String {
    let out = tmp.join(name);
    run(skopeo().args([
        "copy",
        "-q",
        &format!("oci:{}:t", tmp.join("layout").display()),
        &format!("dir:{}", out.display()),
    ]));
    let (_, d) = manifest_digest(&out);
    let payload = tmp.join(format!("{name}.json"));
    std::fs::write(
        &payload,
        Payload::to_json(IDENTITY, d.as_ref(), simple::SIGNATURE_TYPE),
    )
    .unwrap();
    run(gpg
        .cmd()
        .args(["--faked-system-time", time, "--yes"])
        .args(extra)
        .arg("--output")
        .arg(out.join("signature-1"))
        .arg("--sign")
        .arg(&payload));
    format!("dir:{}", out.display())
}

/// Signatures by an expired key, by a revoked key, and expired signatures
/// are refused, as gpg and skopeo refuse them, with a reason that says
/// which: by our policy (`kubemirror --policy … copy`) and in the verdicts
/// `status.signatures[]` shows. The same signature by a key still valid
/// passes everywhere, so each refusal is for the reason named.
#[tokio::test]
async fn expired_and_revoked_openpgp_keys_and_expired_signatures_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    layout(tmp.path());
    let past = "20200101T000000";
    let signed = "20200101T010000";
    let expired = key_made_on(past, "Expired <expired@example.com>", "1d");
    let revoked = key_made_on(past, "Revoked <revoked@example.com>", "never");
    let valid = key_made_on(past, "Valid <valid@example.com>", "never");
    let cases = [
        (
            "expired-key",
            &expired,
            vec![],
            "which expired on 2020-01-02",
        ),
        ("revoked-key", &revoked, vec![], "which is revoked"),
        (
            "expired-signature",
            &valid,
            vec!["--default-sig-expire", "1d"],
            "the signature by key",
        ),
        ("valid", &valid, vec![], ""),
    ];
    let mut sources = Vec::new();
    for (name, gpg, extra, _) in &cases {
        sources.push(dir_signed_at(gpg, tmp.path(), name, signed, extra));
    }
    // Revoke after signing: gpg's own revocation certificate, imported.
    let rev = revoked
        .home
        .path()
        .join(format!("openpgp-revocs.d/{}.rev", revoked.fpr));
    let text = std::fs::read_to_string(&rev)
        .unwrap()
        .replace(":-----BEGIN", "-----BEGIN");
    std::fs::write(&rev, text).unwrap();
    run(revoked.cmd().arg("--import").arg(&rev));

    for ((name, gpg, _, reason), src) in cases.iter().zip(&sources) {
        let key = gpg.export_to(tmp.path(), &format!("{name}.gpg"));
        let policy = tmp.path().join(format!("{name}-policy.json"));
        std::fs::write(
            &policy,
            serde_json::to_vec(&serde_json::json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": key,
                "signedIdentity": {"type": "exactReference", "dockerReference": IDENTITY}}]}))
            .unwrap(),
        )
        .unwrap();
        let (theirs, their_err) = skopeo_accepts(&policy, src, tmp.path(), &[]);
        let dst = tmp.path().join(format!("{name}-copy"));
        let ours = crate::support::kubemirror()
            .arg("--policy")
            .arg(&policy)
            .args(["copy", src])
            .arg(format!("dir:{}", dst.display()))
            .output()
            .unwrap();
        let our_err = String::from_utf8_lossy(&ours.stderr);
        // What `status.signatures[]` says about it.
        let ring = Keyring::from_bytes(&gpg.export(true)).unwrap();
        let message =
            std::fs::read(src.strip_prefix("dir:").unwrap().to_string() + "/signature-1").unwrap();
        let verdict = simple::verify(&message, &ring);
        if reason.is_empty() {
            assert!(theirs, "{name}: skopeo refused: {their_err}");
            assert!(ours.status.success(), "{name}: we refused: {our_err}");
            assert!(verdict.is_ok(), "{name}: {verdict:?}");
        } else {
            assert!(!theirs, "{name}: skopeo accepted it");
            assert!(!ours.status.success(), "{name}: we accepted it");
            assert!(our_err.contains(reason), "{name}: {our_err}");
            assert!(!dst.join("manifest.json").exists(), "{name}: written");
            let e = verdict.unwrap_err().to_string();
            assert!(e.contains(reason) && e.contains(&gpg.fpr), "{name}: {e}");
        }
    }
}
