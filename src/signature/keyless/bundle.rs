//! Sigstore bundles, v0.1 to v0.3 (`application/vnd.dev.sigstore.bundle+json;version=0.N`,
//! `application/vnd.dev.sigstore.bundle.v0.3+json`): a message signature or a
//! DSSE envelope, the signer's certificate (or a public key hint), and the
//! Rekor evidence. Read with serde into the fields verification needs (see
//! `trusted_root` for why not the protobuf crates); int64 fields accept the
//! protobuf JSON string form and plain numbers. Every size is bounded.
//!
//! Rules by version, as sigstore-go applies them: v0.1 needs the signed entry
//! timestamp (`inclusionPromise`); v0.2 and later need the inclusion proof
//! with its checkpoint (the SET, when present, is verified too). Exactly one
//! transparency-log entry is read.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::keys::VerifyKey;
use super::rekor::{InclusionProof, LogEntry, LoggedDigest};
use super::trusted_root::TrustedRoot;
use super::{KeylessError, KeylessTrust, Verified};

/// Largest bundle read.
pub const MAX_BUNDLE: usize = 1 << 20;
/// Largest DSSE payload read.
pub const MAX_DSSE_PAYLOAD: usize = 512 * 1024;

/// Media types of bundles, newest first (what a referrer's `artifactType` says).
pub const MEDIA_TYPES: [&str; 4] = [
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];

/// The in-toto payload type of DSSE envelopes.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// A hash a bundle's `messageDigest` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_bundle(name: &str) -> Option<Self> {
        match name {
            "SHA2_256" => Some(Hash::Sha256),
            "SHA2_384" => Some(Hash::Sha384),
            "SHA2_512" => Some(Hash::Sha512),
            _ => None,
        }
    }

    /// The bundle's name of the hash.
    pub fn bundle_name(self) -> &'static str {
        match self {
            Hash::Sha256 => "SHA2_256",
            Hash::Sha384 => "SHA2_384",
            Hash::Sha512 => "SHA2_512",
        }
    }

    /// Rekor's name of the hash.
    pub fn rekor_name(self) -> &'static str {
        match self {
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }

    fn of(self, b: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(b).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(b).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(b).to_vec(),
        }
    }
}

/// What was signed.
#[derive(Clone, Debug)]
pub enum Content {
    /// A signature over the artifact's bytes.
    Message {
        /// `messageDigest` (SHA2_256, SHA2_384 or SHA2_512), when given.
        digest: Option<(Hash, Vec<u8>)>,
        signature: Vec<u8>,
    },
    /// A DSSE envelope (in-toto statements).
    Dsse {
        payload_type: String,
        payload: Vec<u8>,
        signature: Vec<u8>,
    },
}

/// A parsed bundle.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// 1, 2 or 3.
    pub version: u8,
    /// The signer's certificate (DER), absent with a public key.
    pub certificate: Option<Vec<u8>>,
    pub entry: Option<LogEntry>,
    pub set: Option<Vec<u8>>,
    pub proof: Option<InclusionProof>,
    pub content: Content,
}

/// The artifact a bundle is checked against.
#[derive(Clone, Copy, Debug)]
pub enum Artifact<'a> {
    Bytes(&'a [u8]),
    /// Its digests, hashed from a stream ([`Hasher`]).
    Digests(&'a Digests),
    /// Only its SHA-256 (`sha256:HEX` on the command line).
    Sha256(&'a [u8; 32]),
}

impl Artifact<'_> {
    fn sha256(&self) -> [u8; 32] {
        match self {
            Artifact::Bytes(b) => Sha256::digest(b).into(),
            Artifact::Digests(d) => d.sha256,
            Artifact::Sha256(d) => **d,
        }
    }
}

/// An artifact's SHA-256, SHA-384 and SHA-512, as message signatures of
/// P-256 and P-384 keys and bundles' `messageDigest` need them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    pub sha256: [u8; 32],
    pub sha384: [u8; 48],
    pub sha512: [u8; 64],
}

impl Digests {
    fn of(&self, h: Hash) -> Vec<u8> {
        match h {
            Hash::Sha256 => self.sha256.to_vec(),
            Hash::Sha384 => self.sha384.to_vec(),
            Hash::Sha512 => self.sha512.to_vec(),
        }
    }
}

/// [`Digests`] of a stream, in one pass (`std::io::Write`).
#[derive(Clone, Default)]
pub struct Hasher(Sha256, sha2::Sha384, sha2::Sha512);

impl Hasher {
    pub fn finish(self) -> Digests {
        Digests {
            sha256: self.0.finalize().into(),
            sha384: self.1.finalize().into(),
            sha512: self.2.finalize().into(),
        }
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        self.1.update(buf);
        self.2.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Who may have signed.
#[derive(Clone, Copy, Debug)]
pub enum Signer<'a> {
    /// A Fulcio certificate of `trust.root` with a trusted identity.
    Keyless(&'a KeylessTrust),
    /// A public key; the log entry is checked against `root`'s logs.
    Key(&'a VerifyKey, &'a TrustedRoot),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Int {
    N(i64),
    S(String),
}

impl Int {
    fn get(&self, what: &str) -> Result<i64, KeylessError> {
        match self {
            Int::N(n) => Ok(*n),
            Int::S(s) => s
                .parse()
                .map_err(|_| malformed(format!("{what}: {s:?} is not an integer"))),
        }
    }
}

fn malformed(m: impl std::fmt::Display) -> KeylessError {
    KeylessError::Malformed(format!("bundle: {m}"))
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, KeylessError> {
    B64.decode(s.trim())
        .map_err(|_| malformed(format!("{what} is not base64")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    media_type: String,
    verification_material: RawMaterial,
    message_signature: Option<RawMessage>,
    dsse_envelope: Option<RawDsse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    x509_certificate_chain: Option<RawChain>,
    certificate: Option<RawBytes>,
    #[serde(default)]
    tlog_entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    log_index: Int,
    log_id: RawLogId,
    integrated_time: Int,
    inclusion_promise: Option<RawPromise>,
    inclusion_proof: Option<RawProof>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPromise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProof {
    log_index: Int,
    root_hash: String,
    tree_size: Int,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: Option<RawCheckpoint>,
}

#[derive(Deserialize)]
struct RawCheckpoint {
    envelope: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    message_digest: Option<RawDigest>,
    signature: String,
}

#[derive(Deserialize)]
struct RawDigest {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDsse {
    payload: String,
    payload_type: String,
    signatures: Vec<RawDsseSig>,
}

#[derive(Deserialize)]
struct RawDsseSig {
    sig: String,
}

/// The version of a bundle media type; `None` when unknown.
pub fn version_of(media_type: &str) -> Option<u8> {
    match media_type {
        "application/vnd.dev.sigstore.bundle+json;version=0.1" => Some(1),
        "application/vnd.dev.sigstore.bundle+json;version=0.2" => Some(2),
        "application/vnd.dev.sigstore.bundle+json;version=0.3"
        | "application/vnd.dev.sigstore.bundle.v0.3+json" => Some(3),
        _ => None,
    }
}

impl Bundle {
    /// Parse a bundle's JSON.
    pub fn parse(json: &[u8]) -> Result<Self, KeylessError> {
        if json.len() > MAX_BUNDLE {
            return Err(malformed(format!("larger than {MAX_BUNDLE} bytes")));
        }
        let raw: Raw = serde_json::from_slice(json).map_err(malformed)?;
        let version = version_of(&raw.media_type).ok_or_else(|| {
            malformed(format!(
                "unknown media type {:?} (want a bundle v0.1, v0.2 or v0.3)",
                raw.media_type
            ))
        })?;
        let m = raw.verification_material;
        let certificate = match (m.certificate, m.x509_certificate_chain) {
            (Some(c), None) => Some(b64(&c.raw_bytes, "certificate")?),
            (None, Some(chain)) => match chain.certificates.first() {
                Some(c) if chain.certificates.len() <= super::trusted_root::MAX_CHAIN => {
                    Some(b64(&c.raw_bytes, "x509CertificateChain")?)
                }
                _ => return Err(malformed("x509CertificateChain: 1 to 10 certificates")),
            },
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(malformed(
                    "both certificate and x509CertificateChain are given",
                ));
            }
        };
        if m.tlog_entries.len() > 1 {
            return Err(malformed("more than one tlogEntries entry"));
        }
        let (mut entry, mut set, mut proof) = (None, None, None);
        if let Some(e) = m.tlog_entries.into_iter().next() {
            entry = Some(LogEntry::new(
                &e.canonicalized_body,
                e.integrated_time.get("integratedTime")?,
                e.log_index.get("logIndex")?,
                b64(&e.log_id.key_id, "logId.keyId")?,
            )?);
            set = e
                .inclusion_promise
                .map(|p| b64(&p.signed_entry_timestamp, "signedEntryTimestamp"))
                .transpose()?;
            if let Some(p) = e.inclusion_proof {
                if p.hashes.len() > super::rekor::MAX_PROOF_HASHES {
                    return Err(malformed("inclusionProof: too many hashes"));
                }
                let hashes = p
                    .hashes
                    .iter()
                    .map(|h| {
                        b64(h, "inclusionProof.hashes")?
                            .try_into()
                            .map_err(|_| malformed("inclusionProof: a hash is not 32 bytes"))
                    })
                    .collect::<Result<Vec<[u8; 32]>, _>>()?;
                let index = p.log_index.get("inclusionProof.logIndex")?;
                let size = p.tree_size.get("inclusionProof.treeSize")?;
                proof = Some(InclusionProof {
                    log_index: u64::try_from(index)
                        .map_err(|_| malformed("inclusionProof.logIndex is negative"))?,
                    tree_size: u64::try_from(size)
                        .map_err(|_| malformed("inclusionProof.treeSize is negative"))?,
                    root_hash: b64(&p.root_hash, "inclusionProof.rootHash")?,
                    hashes,
                    checkpoint: p.checkpoint.map(|c| c.envelope).unwrap_or_default(),
                });
            }
        }
        let content = match (raw.message_signature, raw.dsse_envelope) {
            (Some(ms), None) => Content::Message {
                digest: match ms.message_digest {
                    Some(d) => match Hash::from_bundle(&d.algorithm) {
                        Some(h) => Some((h, b64(&d.digest, "messageDigest")?)),
                        None => {
                            return Err(malformed(format!(
                                "messageDigest algorithm {:?} is not supported (want SHA2_256, SHA2_384 or SHA2_512)",
                                d.algorithm
                            )));
                        }
                    },
                    None => None,
                },
                signature: b64(&ms.signature, "messageSignature.signature")?,
            },
            (None, Some(d)) => {
                if d.payload.len() > MAX_DSSE_PAYLOAD * 4 / 3 + 4 {
                    return Err(malformed(format!(
                        "DSSE payload larger than {MAX_DSSE_PAYLOAD} bytes"
                    )));
                }
                let [sig] = d.signatures.as_slice() else {
                    return Err(malformed("DSSE envelope must hold exactly one signature"));
                };
                Content::Dsse {
                    payload_type: d.payload_type,
                    payload: b64(&d.payload, "dsseEnvelope.payload")?,
                    signature: b64(&sig.sig, "dsseEnvelope signature")?,
                }
            }
            _ => {
                return Err(malformed(
                    "exactly one of messageSignature and dsseEnvelope is required",
                ));
            }
        };
        Ok(Bundle {
            version,
            certificate,
            entry,
            set,
            proof,
            content,
        })
    }

    /// Verify the bundle for `artifact` signed by `signer`.
    pub fn verify(
        &self,
        artifact: Artifact<'_>,
        signer: Signer<'_>,
    ) -> Result<Verified, KeylessError> {
        let root = match signer {
            Signer::Keyless(t) => &*t.root,
            Signer::Key(_, r) => r,
        };
        let entry = self
            .entry
            .as_ref()
            .ok_or_else(|| KeylessError::Tlog("bundle has no transparency log entry".into()))?;
        match (&self.set, &self.proof) {
            (None, None) => {
                return Err(KeylessError::Tlog(
                    "bundle has neither an inclusion promise nor an inclusion proof".into(),
                ));
            }
            (None, Some(_)) if self.version == 1 => {
                return Err(KeylessError::Tlog(
                    "bundle v0.1 needs an inclusion promise (signed entry timestamp)".into(),
                ));
            }
            (_, None) if self.version >= 2 => {
                return Err(KeylessError::Tlog(format!(
                    "bundle v0.{} needs an inclusion proof",
                    self.version
                )));
            }
            _ => {}
        }
        if let Some(set) = &self.set {
            entry.verify_set(set, root)?;
        }
        if let Some(p) = &self.proof {
            entry.verify_inclusion(p, root)?;
        }
        let artifact_sha = artifact.sha256();
        // What the signature covers, and the digest the log entry records.
        let (signed, logged, signature): (Signed<'_>, (Hash, Vec<u8>), &[u8]) = match &self.content
        {
            Content::Message { digest, signature } => {
                let hash = digest.as_ref().map_or(Hash::Sha256, |d| d.0);
                let ours = match (artifact, hash) {
                    (_, Hash::Sha256) => artifact_sha.to_vec(),
                    (Artifact::Bytes(b), h) => h.of(b),
                    (Artifact::Digests(d), h) => d.of(h),
                    (Artifact::Sha256(_), h) => {
                        return Err(KeylessError::Malformed(format!(
                            "the bundle's messageDigest is {}: give the artifact's file, not its sha256 digest",
                            h.bundle_name()
                        )));
                    }
                };
                if let Some((_, d)) = digest
                    && *d != ours
                {
                    return Err(KeylessError::Signature(
                        "bundle signs another artifact (messageDigest differs)".into(),
                    ));
                }
                (
                    Signed::Artifact(artifact, artifact_sha),
                    (hash, ours),
                    signature,
                )
            }
            Content::Dsse {
                payload_type,
                payload,
                signature,
            } => {
                check_statement(payload_type, payload, &artifact_sha)?;
                (
                    Signed::Bytes(pae(payload_type, payload)),
                    (Hash::Sha256, Sha256::digest(payload).to_vec()),
                    signature,
                )
            }
        };
        let logged_digest = LoggedDigest {
            algorithm: logged.0.rekor_name(),
            digest: &logged.1,
        };
        match signer {
            Signer::Keyless(trust) => {
                let cert = self.certificate.as_deref().ok_or_else(|| {
                    KeylessError::Malformed(
                        "bundle has no certificate: verify it with a public key".into(),
                    )
                })?;
                let leaf = super::cert::parse_leaf(cert)?;
                signed.fits(&leaf.key)?;
                entry.check_body(&logged_digest, signature, cert)?;
                super::verify_signed(leaf, entry, trust, |leaf| {
                    signed.verifies(&leaf.key, signature)
                })
            }
            Signer::Key(key, _) => {
                signed.fits(key)?;
                entry.check_body(&logged_digest, signature, &key.spki_der())?;
                if !signed.verifies(key, signature) {
                    return Err(KeylessError::Signature(
                        "signature does not verify with the key".into(),
                    ));
                }
                Ok(Verified {
                    subject: String::new(),
                    issuer: String::new(),
                    log_index: entry.log_index,
                    integrated_time: entry.integrated_time,
                })
            }
        }
    }
}

enum Signed<'a> {
    Artifact(Artifact<'a>, [u8; 32]),
    Bytes(Vec<u8>),
}

impl Signed<'_> {
    /// Whether `key` can verify what was signed: with only the artifact's
    /// SHA-256, a P-384 key (which signs SHA-384 digests) cannot.
    fn fits(&self, key: &VerifyKey) -> Result<(), KeylessError> {
        match (self, key) {
            (Signed::Artifact(Artifact::Sha256(_), _), VerifyKey::P384(_)) => {
                Err(KeylessError::Malformed(
                    "the signing key is ECDSA P-384, which signs the artifact's SHA-384: give the artifact's file, not its sha256 digest".into(),
                ))
            }
            _ => Ok(()),
        }
    }

    fn verifies(&self, key: &VerifyKey, sig: &[u8]) -> bool {
        match self {
            Signed::Bytes(b) => key.verifies(b, sig),
            Signed::Artifact(Artifact::Bytes(b), _) => key.verifies(b, sig),
            Signed::Artifact(Artifact::Sha256(_), d) => key.verifies_sha256_prehash(d, sig),
            Signed::Artifact(Artifact::Digests(d), _) => {
                key.verifies_prehash(&d.sha256, &d.sha384, sig)
            }
        }
    }
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// An in-toto statement must name the artifact among its subjects.
fn check_statement(payload_type: &str, payload: &[u8], sha: &[u8; 32]) -> Result<(), KeylessError> {
    if payload_type != IN_TOTO {
        return Err(malformed(format!(
            "DSSE payload type {payload_type:?} is not supported (want {IN_TOTO})"
        )));
    }
    let st: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| malformed(format!("in-toto statement: {e}")))?;
    let want = hex::encode(sha);
    let named = st["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .take(1024)
        .any(|s| s["digest"]["sha256"].as_str() == Some(want.as_str()));
    if !named {
        return Err(KeylessError::Signature(format!(
            "the in-toto statement does not name the artifact sha256:{want} as a subject"
        )));
    }
    Ok(())
}
