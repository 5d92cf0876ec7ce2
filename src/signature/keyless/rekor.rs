//! Rekor transparency-log evidence, checked offline: the signed entry
//! timestamp (SET: the log's signature over the canonical JSON of the
//! entry's body, integrated time, log id and index), the inclusion proof
//! (RFC 6962 Merkle audit path) and its checkpoint (a signed note), and that
//! the logged `hashedrekord` entry is this signature, certificate and artifact.
//!
//! Hand-written: no kept crate verifies Rekor evidence without also bringing
//! a Rekor client (sigstore-rs needs reqwest with aws-lc-rs and an OIDC
//! stack for its verifier). The canonical JSON of a SET has four fixed keys
//! whose string values are checked to be base64 or hex, so it is formatted
//! directly (RFC 8785 needs no escaping for them).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};

use super::KeylessError;
use super::trusted_root::{LogKey, TrustedRoot};

/// Largest logged entry body read.
pub const MAX_BODY: usize = 64 * 1024;
/// Most hashes in an inclusion proof (a tree of 2^64 leaves needs 64).
pub const MAX_PROOF_HASHES: usize = 64;

/// The digest a log entry records for what was signed: the artifact's (a
/// `hashedrekord`) or the DSSE payload's.
#[derive(Clone, Copy, Debug)]
pub struct LoggedDigest<'a> {
    /// Rekor's name of the hash: `sha256`, `sha384` or `sha512`.
    pub algorithm: &'a str,
    pub digest: &'a [u8],
}

impl<'a> LoggedDigest<'a> {
    pub fn sha256(digest: &'a [u8]) -> Self {
        LoggedDigest {
            algorithm: "sha256",
            digest,
        }
    }
}

/// A logged entry, as a SET or inclusion proof vouches for it.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// The canonicalized body, base64 as logged.
    pub body_b64: String,
    /// The decoded body.
    pub body: Vec<u8>,
    pub integrated_time: i64,
    pub log_index: i64,
    /// SHA-256 of the log's key.
    pub log_id: Vec<u8>,
}

impl LogEntry {
    pub fn new(
        body_b64: &str,
        integrated_time: i64,
        log_index: i64,
        log_id: Vec<u8>,
    ) -> Result<Self, KeylessError> {
        if body_b64.len() > MAX_BODY * 4 / 3 + 4 {
            return Err(KeylessError::Malformed(format!(
                "log entry body larger than {MAX_BODY} bytes"
            )));
        }
        let body = B64
            .decode(body_b64)
            .map_err(|e| KeylessError::Malformed(format!("log entry body: not base64: {e}")))?;
        if log_index < 0 || integrated_time < 0 {
            return Err(KeylessError::Malformed(
                "log entry: negative log index or integrated time".into(),
            ));
        }
        Ok(LogEntry {
            body_b64: body_b64.to_string(),
            body,
            integrated_time,
            log_index,
            log_id,
        })
    }

    /// The log (of `root`) that holds this entry.
    pub fn log<'r>(&self, root: &'r TrustedRoot) -> Result<&'r LogKey, KeylessError> {
        root.tlog(&self.log_id).ok_or_else(|| {
            KeylessError::Tlog(format!(
                "log entry is from log {} which the trust root does not know",
                hex::encode(&self.log_id)
            ))
        })
    }

    /// RFC 8785 canonical JSON of the entry, what a SET signs.
    fn canonical(&self) -> String {
        format!(
            r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
            self.body_b64,
            self.integrated_time,
            hex::encode(&self.log_id),
            self.log_index
        )
    }

    /// Verify the signed entry timestamp `set` with the log's key; the key
    /// must have been valid at the integrated time.
    pub fn verify_set(&self, set: &[u8], root: &TrustedRoot) -> Result<(), KeylessError> {
        let log = self.log(root)?;
        if !log.valid.contains(self.integrated_time) {
            return Err(KeylessError::Tlog(
                "the log's key was not valid at the entry's integrated time".into(),
            ));
        }
        if !log.key.verifies(self.canonical().as_bytes(), set) {
            return Err(KeylessError::Tlog(
                "signed entry timestamp does not verify with the log's key (tampered entry)".into(),
            ));
        }
        Ok(())
    }

    /// Verify an inclusion proof and its signed checkpoint.
    pub fn verify_inclusion(
        &self,
        proof: &InclusionProof,
        root: &TrustedRoot,
    ) -> Result<(), KeylessError> {
        let log = self.log(root)?;
        let leaf = hash_leaf(&self.body);
        let computed = root_from_proof(proof.log_index, proof.tree_size, leaf, &proof.hashes)?;
        if computed.as_slice() != proof.root_hash.as_slice() {
            return Err(KeylessError::Tlog(
                "inclusion proof does not lead to its root hash (tampered entry or proof)".into(),
            ));
        }
        let cp = Checkpoint::parse(&proof.checkpoint)?;
        if cp.size != proof.tree_size || cp.root != proof.root_hash {
            return Err(KeylessError::Tlog(
                "checkpoint is for another tree than the inclusion proof".into(),
            ));
        }
        if !cp
            .signatures
            .iter()
            .any(|(hint, sig)| hint == &log.log_id[..4] && log.key.verifies(cp.body, sig))
        {
            return Err(KeylessError::Tlog(
                "checkpoint is not signed by the log's key".into(),
            ));
        }
        Ok(())
    }

    /// Check that the logged entry is this signature: a `hashedrekord` of
    /// `signature` over an artifact whose digest is `artifact` by
    /// `signer_der` (the certificate, or with a public key its SPKI), or a
    /// `dsse` / `intoto` entry of a DSSE envelope whose payload has that
    /// digest and that holds `signature`.
    pub fn check_body(
        &self,
        artifact: &LoggedDigest<'_>,
        signature: &[u8],
        signer_der: &[u8],
    ) -> Result<(), KeylessError> {
        let mismatch = |what: &str| {
            KeylessError::Tlog(format!(
                "the log entry is not this signature: its {what} differs"
            ))
        };
        let body: serde_json::Value = serde_json::from_slice(&self.body)
            .map_err(|e| KeylessError::Malformed(format!("log entry body: {e}")))?;
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let spec = &body["spec"];
        let (hash, sigs): (&serde_json::Value, Vec<(String, String)>) = match body["kind"]
            .as_str()
            .unwrap_or_default()
        {
            "hashedrekord" => (
                &spec["data"]["hash"],
                vec![(
                    s(&spec["signature"]["content"]),
                    s(&spec["signature"]["publicKey"]["content"]),
                )],
            ),
            "dsse" => (
                &spec["payloadHash"],
                bounded_list(&spec["signatures"])
                    .map(|v| (s(&v["signature"]), s(&v["verifier"])))
                    .collect(),
            ),
            "intoto" => (
                &spec["content"]["payloadHash"],
                bounded_list(&spec["content"]["envelope"]["signatures"])
                    .map(|v| {
                        // intoto 0.0.2 logs the signature base64 twice.
                        let sig = B64
                            .decode(s(&v["sig"]))
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok())
                            .unwrap_or_default();
                        (sig, s(&v["publicKey"]))
                    })
                    .collect(),
            ),
            other => {
                return Err(KeylessError::Malformed(format!(
                    "log entry kind {other:?} is not supported (want hashedrekord, dsse or intoto)"
                )));
            }
        };
        if hash["algorithm"] != artifact.algorithm
            || hex::decode(s(&hash["value"])).ok().as_deref() != Some(artifact.digest)
        {
            return Err(mismatch("artifact digest"));
        }
        let ours = sigs.iter().any(|(sig, signer)| {
            B64.decode(sig).ok().as_deref() == Some(signature)
                && B64
                    .decode(signer)
                    .ok()
                    .and_then(|pem| String::from_utf8(pem).ok())
                    .and_then(|pem| super::keys::pem_rfc7468_decode(pem.trim()).ok())
                    .is_some_and(|(_, der)| der == signer_der)
        });
        if !ours {
            return Err(mismatch("signature or signer"));
        }
        Ok(())
    }
}

fn bounded_list(v: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    v.as_array().into_iter().flatten().take(16)
}

/// An inclusion proof, decoded.
#[derive(Clone, Debug)]
pub struct InclusionProof {
    pub log_index: u64,
    pub tree_size: u64,
    pub root_hash: Vec<u8>,
    pub hashes: Vec<[u8; 32]>,
    /// The checkpoint's signed-note text.
    pub checkpoint: String,
}

fn hash_leaf(body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(body);
    h.finalize().into()
}

fn hash_children(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// RFC 9162 §2.1.3.2: the root an audit path leads to.
pub fn root_from_proof(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    hashes: &[[u8; 32]],
) -> Result<[u8; 32], KeylessError> {
    let bad = |m: &str| KeylessError::Tlog(format!("inclusion proof: {m}"));
    if index >= size {
        return Err(bad("log index beyond the tree size"));
    }
    if hashes.len() > MAX_PROOF_HASHES {
        return Err(bad("too many hashes"));
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in hashes {
        if sn == 0 {
            return Err(bad("more hashes than the tree has levels"));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = hash_children(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = hash_children(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(bad("fewer hashes than the tree has levels"));
    }
    Ok(r)
}

/// A checkpoint (signed note): `origin\nsize\nbase64(root)\n[other]\n\n— name base64(hint4‖sig)\n…`.
struct Checkpoint<'a> {
    body: &'a [u8],
    size: u64,
    root: Vec<u8>,
    signatures: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<'a> Checkpoint<'a> {
    fn parse(text: &'a str) -> Result<Self, KeylessError> {
        let bad = |m: &str| KeylessError::Tlog(format!("checkpoint: {m}"));
        if text.len() > 16 * 1024 {
            return Err(bad("larger than 16 KiB"));
        }
        let split = text.find("\n\n").ok_or_else(|| bad("no signature block"))?;
        let body = &text[..split + 1];
        let mut lines = body.lines();
        let _origin = lines.next().ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| bad("no tree size line"))?;
        let root = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .ok_or_else(|| bad("no root hash line"))?;
        let mut signatures = Vec::new();
        for line in text[split + 2..].lines().take(16) {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                continue;
            };
            let Some((_, sig)) = rest.rsplit_once(' ') else {
                continue;
            };
            if let Ok(raw) = B64.decode(sig)
                && raw.len() > 4
            {
                signatures.push((raw[..4].to_vec(), raw[4..].to_vec()));
            }
        }
        Ok(Checkpoint {
            body: body.as_bytes(),
            size,
            root,
            signatures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_paths() {
        // A tree of 3 leaves: root = H(H(l0,l1), l2).
        let l: Vec<[u8; 32]> = (0u8..3).map(|i| hash_leaf(&[i])).collect();
        let n01 = hash_children(&l[0], &l[1]);
        let root = hash_children(&n01, &l[2]);
        assert_eq!(root_from_proof(0, 3, l[0], &[l[1], l[2]]).unwrap(), root);
        assert_eq!(root_from_proof(1, 3, l[1], &[l[0], l[2]]).unwrap(), root);
        assert_eq!(root_from_proof(2, 3, l[2], &[n01]).unwrap(), root);
        assert_eq!(root_from_proof(0, 1, l[0], &[]).unwrap(), l[0]);
        assert!(root_from_proof(3, 3, l[2], &[n01]).is_err());
        assert!(root_from_proof(2, 3, l[2], &[n01, n01]).is_err());
        assert!(root_from_proof(0, 3, l[0], &[l[1]]).is_err());
        assert_ne!(root_from_proof(0, 3, l[0], &[l[2], l[1]]).unwrap(), root);
    }
}
