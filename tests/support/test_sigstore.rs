//! A test Sigstore, made in memory: a Fulcio-like CA (P-384 root and
//! intermediate, as the public-good instance has), leaf certificates with
//! Fulcio's extensions (SAN email or URI, OIDC issuer in 1.3.6.1.4.1.57264.1.8
//! or the older .1.1), a Rekor key that signs entry timestamps and
//! checkpoints, and what cosign and Sigstore clients write with them: the
//! `dev.sigstore.cosign/*` annotations of a keyless signature, and bundles
//! v0.1–v0.3 (message signatures and DSSE).
//!
//! Leaves embed an SCT of a test CT log, signed over the precertificate
//! (RFC 6962), or a broken or missing one ([`SctSpec`]); their key is P-256
//! or P-384 ([`Curve`]).
//!
//! Standalone (rcgen, p256, p384, sha2, base64, serde_json, time, jiff, hex): the unit tests
//! include it with `#[path]`, the integration tests through `support`, so
//! nothing of kubemirror's own makes what kubemirror then verifies.
#![allow(dead_code)]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest as _, Sha256};

/// A fixed "now" for certificates: 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600;
/// The OIDC issuer test leaves carry by default.
pub const ISSUER: &str = "https://oidc.test.example";
/// The SAN test leaves carry by default.
pub const EMAIL: &str = "release@test.example";

fn at(t: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t).unwrap()
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// How a leaf certificate names its OIDC issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuerExt {
    /// 1.3.6.1.4.1.57264.1.8, DER UTF8String (Fulcio today).
    V2,
    /// 1.3.6.1.4.1.57264.1.1, raw bytes (older Fulcio).
    V1,
    None,
}

/// The embedded SCT of a leaf certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SctSpec {
    /// Signed by the test CT log over the precertificate.
    Valid,
    /// Signed, then its timestamp changed.
    Tampered,
    /// Signed by a CT log the trust root does not list.
    UnknownLog,
    /// No SCT extension.
    Missing,
}

/// The curve of a leaf's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// ECDSA P-256, signing with SHA-256 (Fulcio's usual leaves).
    P256,
    /// ECDSA P-384, signing with SHA-384.
    P384,
}

/// What a leaf certificate says.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    /// `Some(email)` or a URI when it contains "://".
    pub subject: String,
    pub issuer: String,
    pub issuer_ext: IssuerExt,
    pub not_before: i64,
    pub not_after: i64,
    pub code_signing: bool,
    pub sct: SctSpec,
    pub curve: Curve,
}

impl Default for LeafSpec {
    fn default() -> Self {
        LeafSpec {
            subject: EMAIL.into(),
            issuer: ISSUER.into(),
            issuer_ext: IssuerExt::V2,
            not_before: T0,
            not_after: T0 + 600,
            code_signing: true,
            sct: SctSpec::Valid,
            curve: Curve::P256,
        }
    }
}

/// A leaf's private key.
#[derive(Clone, Debug)]
pub enum LeafKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// A leaf certificate and its private key.
pub struct Leaf {
    pub der: Vec<u8>,
    pub pem: String,
    pub key: LeafKey,
}

impl Leaf {
    /// ECDSA signature (DER) over `msg`: SHA-256 with P-256, SHA-384 with P-384.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match &self.key {
            LeafKey::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
            LeafKey::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
        }
    }

    /// The digest of `msg` the leaf's signatures hash with, and its
    /// Sigstore (bundle, Rekor) names.
    pub fn digest(&self, msg: &[u8]) -> (Vec<u8>, &'static str, &'static str) {
        match &self.key {
            LeafKey::P256(_) => (sha256(msg).to_vec(), "SHA2_256", "sha256"),
            LeafKey::P384(_) => (sha2::Sha384::digest(msg).to_vec(), "SHA2_384", "sha384"),
        }
    }
}

/// The TBSCertificate of a DER certificate: the first element of its
/// outer SEQUENCE, read by hand (two DER headers) so that the test
/// Sigstore needs nothing of what kubemirror verifies with.
fn tbs_of(cert: &[u8]) -> Vec<u8> {
    // (header length, content length) of the DER element at the start of `b`.
    fn header(b: &[u8]) -> (usize, usize) {
        assert_eq!(b[0], 0x30, "a SEQUENCE");
        match b[1] {
            n if n < 0x80 => (2, usize::from(n)),
            0x81 => (3, usize::from(b[2])),
            0x82 => (4, usize::from(u16::from_be_bytes([b[2], b[3]]))),
            n => panic!("DER length form {n:#x} in a test certificate"),
        }
    }
    let (outer, _) = header(cert);
    let (h, n) = header(&cert[outer..]);
    cert[outer..outer + h + n].to_vec()
}

/// An SCT (RFC 6962 §3.2) by `log` over the precertificate `tbs` issued by
/// the CA whose SPKI is `issuer_spki`, at `timestamp_ms`: the TLS bytes of
/// a one-SCT SignedCertificateTimestampList.
pub fn sct_list(
    log: &p256::ecdsa::SigningKey,
    issuer_spki: &[u8],
    tbs: &[u8],
    timestamp_ms: u64,
) -> Vec<u8> {
    let mut signed = vec![0u8, 0u8];
    signed.extend_from_slice(&timestamp_ms.to_be_bytes());
    signed.extend_from_slice(&[0, 1]);
    signed.extend_from_slice(&sha256(issuer_spki));
    signed.extend_from_slice(&(tbs.len() as u32).to_be_bytes()[1..]);
    signed.extend_from_slice(tbs);
    signed.extend_from_slice(&[0, 0]);
    let sig: p256::ecdsa::Signature = log.sign(&signed);
    let sig = sig.to_der();
    let mut sct = vec![0u8];
    sct.extend_from_slice(&sha256(&spki(log)));
    sct.extend_from_slice(&timestamp_ms.to_be_bytes());
    sct.extend_from_slice(&[0, 0, 4, 3]);
    sct.extend_from_slice(&(sig.as_bytes().len() as u16).to_be_bytes());
    sct.extend_from_slice(sig.as_bytes());
    let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&(sct.len() as u16).to_be_bytes());
    list.extend_from_slice(&sct);
    list
}

pub struct Ca {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

/// The test Sigstore instance.
pub struct TestSigstore {
    pub root: Ca,
    pub intermediate: Ca,
    pub rekor: p256::ecdsa::SigningKey,
    pub ct: p256::ecdsa::SigningKey,
    /// The CA's validity in the trust root (Unix seconds).
    pub ca_valid: (i64, i64),
    leaf_seed: std::cell::Cell<u8>,
}

fn ca(name: &str, issuer: Option<&Ca>, not_before: i64, not_after: i64) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::OrganizationName, "test.example");
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = at(not_before);
    p.not_after = at(not_after);
    let cert = match issuer {
        None => p.self_signed(&key).unwrap(),
        Some(i) => {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
            p.signed_by(&key, &i.cert, &i.key).unwrap()
        }
    };
    Ca { cert, key }
}

fn p256_key(seed: u8) -> p256::ecdsa::SigningKey {
    let mut bytes = [0x42u8; 32];
    bytes[0] = seed;
    p256::ecdsa::SigningKey::from_bytes(&bytes.into()).unwrap()
}

/// DER SPKI of a P-256 key.
pub fn spki(key: &p256::ecdsa::SigningKey) -> Vec<u8> {
    key.verifying_key().to_public_key_der().unwrap().into_vec()
}

/// PEM of a P-256 public key.
pub fn public_pem(key: &p256::ecdsa::SigningKey) -> String {
    key.verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap()
}

/// The Rekor evidence of one entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub body_b64: String,
    pub integrated_time: i64,
    pub log_index: i64,
    pub log_id: Vec<u8>,
    pub set: Vec<u8>,
}

impl Default for TestSigstore {
    fn default() -> Self {
        Self::new()
    }
}

impl TestSigstore {
    /// A CA valid a year around [`T0`], Rekor key seed 7, CT key seed 8.
    pub fn new() -> Self {
        Self::with_rekor_seed(7)
    }

    pub fn with_rekor_seed(seed: u8) -> Self {
        let root = ca("test-fulcio-root", None, T0 - 86400 * 365, T0 + 86400 * 365);
        let intermediate = ca(
            "test-fulcio-intermediate",
            Some(&root),
            T0 - 86400 * 300,
            T0 + 86400 * 300,
        );
        TestSigstore {
            root,
            intermediate,
            rekor: p256_key(seed),
            ct: p256_key(8),
            ca_valid: (T0 - 86400 * 300, T0 + 86400 * 300),
            leaf_seed: std::cell::Cell::new(1),
        }
    }

    /// The Rekor log id: SHA-256 of its DER SPKI.
    pub fn log_id(&self) -> Vec<u8> {
        sha256(&spki(&self.rekor)).to_vec()
    }

    /// `trusted_root.json` for this instance.
    pub fn trusted_root_json(&self) -> Vec<u8> {
        let rfc = |t: i64| jiff::Timestamp::from_second(t).unwrap().to_string();
        let log = |k: &p256::ecdsa::SigningKey, url: &str| {
            serde_json::json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": B64.encode(spki(k)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                              "validFor": {"start": rfc(T0 - 86400 * 365)}},
                "logId": {"keyId": B64.encode(sha256(&spki(k)))}
            })
        };
        serde_json::to_vec_pretty(&serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(&self.rekor, "https://rekor.test.example")],
            "certificateAuthorities": [{
                "subject": {"organization": "test.example", "commonName": "test-fulcio"},
                "uri": "https://fulcio.test.example",
                "certChain": {"certificates": [
                    {"rawBytes": B64.encode(self.intermediate.cert.der())},
                    {"rawBytes": B64.encode(self.root.cert.der())}
                ]},
                "validFor": {"start": rfc(self.ca_valid.0), "end": rfc(self.ca_valid.1)}
            }],
            "ctlogs": [log(&self.ct, "https://ctfe.test.example")],
            "timestampAuthorities": []
        }))
        .unwrap()
    }

    /// The CA chain as PEM (intermediate, then root): policy.json `fulcio.caPath`.
    pub fn ca_pem(&self) -> String {
        format!("{}{}", self.intermediate.cert.pem(), self.root.cert.pem())
    }

    /// The Rekor public key as PEM: policy.json `rekorPublicKeyPath`.
    pub fn rekor_pem(&self) -> String {
        public_pem(&self.rekor)
    }

    /// A leaf certificate issued by the intermediate.
    pub fn leaf(&self, spec: &LeafSpec) -> Leaf {
        let seed = self.leaf_seed.get();
        self.leaf_seed.set(seed.wrapping_add(1));
        let (key, pkcs8) = match spec.curve {
            Curve::P256 => {
                let k = p256_key(100u8.wrapping_add(seed));
                let der = k.to_pkcs8_der().unwrap();
                (LeafKey::P256(k), der)
            }
            Curve::P384 => {
                let mut bytes = [0x42u8; 48];
                bytes[0] = 100u8.wrapping_add(seed);
                let k = p384::ecdsa::SigningKey::from_bytes(&bytes.into()).unwrap();
                let der = k.to_pkcs8_der().unwrap();
                (LeafKey::P384(k), der)
            }
        };
        let kp = KeyPair::try_from(pkcs8.as_bytes()).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        let san = spec.subject.clone().try_into().unwrap();
        p.subject_alt_names = vec![if spec.subject.contains("://") {
            SanType::URI(san)
        } else {
            SanType::Rfc822Name(san)
        }];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.code_signing {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        }
        p.not_before = at(spec.not_before);
        p.not_after = at(spec.not_after);
        match spec.issuer_ext {
            IssuerExt::V2 => {
                // DER UTF8String (short form length: test issuers are < 128 bytes).
                let mut v = vec![0x0c, spec.issuer.len() as u8];
                v.extend_from_slice(spec.issuer.as_bytes());
                p.custom_extensions = vec![CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
                    v,
                )];
            }
            IssuerExt::V1 => {
                p.custom_extensions = vec![CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
                    spec.issuer.as_bytes().to_vec(),
                )];
            }
            IssuerExt::None => {}
        }
        // The precertificate dance: the log signs the TBS without the SCT
        // extension (rcgen writes custom extensions last and derives the
        // serial from the key, so the final TBS is this one plus the SCT).
        let precert = p
            .clone()
            .signed_by(&kp, &self.intermediate.cert, &self.intermediate.key)
            .unwrap();
        let log = match spec.sct {
            SctSpec::UnknownLog => p256_key(9),
            _ => self.ct.clone(),
        };
        let issuer_spki = self.intermediate.key.public_key_der();
        let mut list = sct_list(
            &log,
            &issuer_spki,
            &tbs_of(precert.der()),
            (spec.not_before as u64) * 1000,
        );
        if spec.sct == SctSpec::Tampered {
            list[4 + 1 + 32 + 7] ^= 1; // the timestamp's last byte
        }
        let cert = if spec.sct == SctSpec::Missing {
            precert
        } else {
            // The extension's value: a DER OCTET STRING holding the TLS list.
            let mut v = vec![0x04];
            match list.len() {
                n if n < 0x80 => v.push(n as u8),
                n if n < 0x100 => v.extend_from_slice(&[0x81, n as u8]),
                n => {
                    v.push(0x82);
                    v.extend_from_slice(&(n as u16).to_be_bytes());
                }
            }
            v.extend_from_slice(&list);
            p.custom_extensions.push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
                v,
            ));
            p.signed_by(&kp, &self.intermediate.cert, &self.intermediate.key)
                .unwrap()
        };
        Leaf {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key,
        }
    }

    /// Log an entry with `body` (JSON) at `integrated_time`: its SET.
    pub fn log(&self, body: &serde_json::Value, integrated_time: i64, log_index: i64) -> Entry {
        let body_b64 = B64.encode(serde_json::to_vec(body).unwrap());
        let log_id = self.log_id();
        let canonical = format!(
            r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
            body_b64,
            integrated_time,
            hex::encode(&log_id),
            log_index
        );
        let set: p256::ecdsa::Signature = self.rekor.sign(canonical.as_bytes());
        Entry {
            body_b64,
            integrated_time,
            log_index,
            log_id,
            set: set.to_der().as_bytes().to_vec(),
        }
    }

    /// A `hashedrekord` body for `sig` over an artifact of SHA-256 `digest` by `signer_pem`.
    pub fn hashedrekord(digest: &[u8], sig: &[u8], signer_pem: &str) -> serde_json::Value {
        Self::hashedrekord_with("sha256", digest, sig, signer_pem)
    }

    /// A `hashedrekord` body whose artifact digest is of `algorithm` (Rekor's name).
    pub fn hashedrekord_with(
        algorithm: &str,
        digest: &[u8],
        sig: &[u8],
        signer_pem: &str,
    ) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "0.0.1", "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": algorithm, "value": hex::encode(digest)}},
                "signature": {"content": B64.encode(sig),
                              "publicKey": {"content": B64.encode(signer_pem)}}
            }
        })
    }

    /// A cosign keyless signature over `payload` by `leaf`, logged at
    /// `integrated_time`: the layer annotations cosign writes.
    pub fn cosign_annotations(
        &self,
        leaf: &Leaf,
        payload: &[u8],
        integrated_time: i64,
    ) -> BTreeMap<String, String> {
        let sig = leaf.sign(payload);
        let e = self.log(
            &Self::hashedrekord(&sha256(payload), &sig, &leaf.pem),
            integrated_time,
            4242,
        );
        let bundle = serde_json::json!({
            "SignedEntryTimestamp": B64.encode(&e.set),
            "Payload": {"body": e.body_b64, "integratedTime": e.integrated_time,
                        "logIndex": e.log_index, "logID": hex::encode(&e.log_id)}
        });
        let mut a = BTreeMap::new();
        a.insert(
            "dev.cosignproject.cosign/signature".to_string(),
            B64.encode(&sig),
        );
        a.insert(
            "dev.sigstore.cosign/certificate".to_string(),
            leaf.pem.clone(),
        );
        a.insert("dev.sigstore.cosign/chain".to_string(), self.ca_pem());
        a.insert(
            "dev.sigstore.cosign/bundle".to_string(),
            serde_json::to_string(&bundle).unwrap(),
        );
        a
    }

    /// A checkpoint (signed note) for a tree of `size` with `root`.
    pub fn checkpoint(&self, size: u64, root: &[u8]) -> String {
        let body = format!("rekor.test.example - 1\n{size}\n{}\n", B64.encode(root));
        let sig: p256::ecdsa::Signature = self.rekor.sign(body.as_bytes());
        let mut raw = self.log_id()[..4].to_vec();
        raw.extend_from_slice(sig.to_der().as_bytes());
        format!("{body}\n\u{2014} rekor.test.example {}\n", B64.encode(raw))
    }

    /// What cosign 3 writes: a v0.3 message-signature bundle for
    /// `artifact`, signed by `leaf`, with an inclusion proof and checkpoint.
    pub fn bundle_v03(&self, leaf: &Leaf, artifact: &[u8]) -> serde_json::Value {
        self.bundle(
            leaf,
            artifact,
            "application/vnd.dev.sigstore.bundle.v0.3+json",
            false,
            false,
            true,
        )
    }

    /// A bundle of media type `media_type` for `artifact`, signed by
    /// `leaf`; `dsse` wraps an in-toto statement naming the artifact.
    /// With `promise` the SET is included, with `proof` an inclusion proof
    /// in a two-leaf tree and its checkpoint.
    pub fn bundle(
        &self,
        leaf: &Leaf,
        artifact: &[u8],
        media_type: &str,
        dsse: bool,
        promise: bool,
        proof: bool,
    ) -> serde_json::Value {
        let digest = sha256(artifact);
        let (content, body) = if dsse {
            let statement = serde_json::to_vec(&serde_json::json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "artifact", "digest": {"sha256": hex::encode(digest)}}],
                "predicateType": "https://slsa.dev/provenance/v1",
                "predicate": {}
            }))
            .unwrap();
            let typ = "application/vnd.in-toto+json";
            let mut pae = format!("DSSEv1 {} {} {} ", typ.len(), typ, statement.len()).into_bytes();
            pae.extend_from_slice(&statement);
            let sig = leaf.sign(&pae);
            (
                (
                    "dsseEnvelope",
                    serde_json::json!({
                        "payload": B64.encode(&statement), "payloadType": typ,
                        "signatures": [{"sig": B64.encode(&sig), "keyid": ""}]
                    }),
                ),
                serde_json::json!({
                    "apiVersion": "0.0.1", "kind": "dsse",
                    "spec": {
                        "envelopeHash": {"algorithm": "sha256", "value": hex::encode([0u8; 32])},
                        "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha256(&statement))},
                        "signatures": [{"signature": B64.encode(&sig),
                                        "verifier": B64.encode(&leaf.pem)}]
                    }
                }),
            )
        } else {
            let sig = leaf.sign(artifact);
            let (digest, bundle_alg, rekor_alg) = leaf.digest(artifact);
            (
                (
                    "messageSignature",
                    serde_json::json!({
                        "messageDigest": {"algorithm": bundle_alg, "digest": B64.encode(&digest)},
                        "signature": B64.encode(&sig)
                    }),
                ),
                Self::hashedrekord_with(rekor_alg, &digest, &sig, &leaf.pem),
            )
        };
        let e = self.log(&body, T0 + 60, 1);
        let mut entry = serde_json::json!({
            "logIndex": e.log_index.to_string(),
            "logId": {"keyId": B64.encode(&e.log_id)},
            "kindVersion": {"kind": body["kind"], "version": "0.0.1"},
            "integratedTime": e.integrated_time.to_string(),
            "canonicalizedBody": e.body_b64,
        });
        if promise {
            entry["inclusionPromise"] =
                serde_json::json!({"signedEntryTimestamp": B64.encode(&e.set)});
        }
        if proof {
            let leaf_hash = |b: &[u8]| -> [u8; 32] {
                let mut h = Sha256::new();
                h.update([0u8]);
                h.update(b);
                h.finalize().into()
            };
            let other = leaf_hash(b"another entry");
            let ours = leaf_hash(&B64.decode(&e.body_b64).unwrap());
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(other);
            h.update(ours);
            let root: [u8; 32] = h.finalize().into();
            entry["inclusionProof"] = serde_json::json!({
                "logIndex": "1", "rootHash": B64.encode(root), "treeSize": "2",
                "hashes": [B64.encode(other)],
                "checkpoint": {"envelope": self.checkpoint(2, &root)}
            });
        }
        let material = if media_type.ends_with("0.3") || media_type.contains("v0.3") {
            serde_json::json!({"certificate": {"rawBytes": B64.encode(&leaf.der)},
                               "tlogEntries": [entry]})
        } else {
            serde_json::json!({"x509CertificateChain": {"certificates": [
                                   {"rawBytes": B64.encode(&leaf.der)}]},
                               "tlogEntries": [entry]})
        };
        let mut b = serde_json::json!({"mediaType": media_type, "verificationMaterial": material});
        b[content.0] = content.1;
        b
    }
}
