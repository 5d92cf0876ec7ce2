//! Embedded signed certificate timestamps (SCTs, RFC 6962): the promise of
//! a certificate-transparency log that it logged a Fulcio leaf. A leaf
//! carries them in extension 1.3.6.1.4.1.11129.2.4.2; each is verified
//! against the trust root's `ctlogs` key whose log id (SHA-256 of the key's
//! DER SubjectPublicKeyInfo) it names, the key valid at the SCT's time.
//!
//! Logs sign the *precertificate* (RFC 6962 §3.2): the leaf's
//! TBSCertificate without the SCT extension, rebuilt here with `x509-cert`'s
//! DER encoder, with the SHA-256 of the issuing CA's SubjectPublicKeyInfo.
//!
//! The SCT list itself is TLS presentation language (RFC 5246 §4), not
//! ASN.1. The one kept crate for it, rustls' `sct` (archived), verifies
//! SCTs delivered over TLS for a final certificate, not embedded ones over
//! a precertificate, so the list's few length-prefixed fields are read by
//! hand below, every length checked against what remains, every count
//! capped.

use x509_cert::Certificate;
use x509_cert::der::asn1::{ObjectIdentifier, OctetString};
use x509_cert::der::{Decode as _, Encode as _};

use super::KeylessError;
use super::keys::VerifyKey;
use super::trusted_root::{LogKey, digest_bytes};

/// The embedded SCT list extension (RFC 6962 §3.3).
pub const OID_SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
/// Most SCTs read from one certificate.
pub const MAX_SCTS: usize = 16;
/// Largest SCT signature read (an ECDSA P-384 DER signature is ≤ 104 bytes).
const MAX_SIGNATURE: usize = 512;

/// One signed certificate timestamp (version 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sct {
    pub log_id: [u8; 32],
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    pub extensions: Vec<u8>,
    /// TLS HashAlgorithm (4 = SHA-256, 5 = SHA-384).
    pub hash: u8,
    /// TLS SignatureAlgorithm (3 = ECDSA).
    pub signature_alg: u8,
    pub signature: Vec<u8>,
}

fn malformed(m: impl std::fmt::Display) -> KeylessError {
    KeylessError::Malformed(format!("certificate SCT list: {m}"))
}

/// A reader over TLS-encoded bytes: every read checks what remains.
struct Tls<'a>(&'a [u8]);

impl<'a> Tls<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], KeylessError> {
        if self.0.len() < n {
            return Err(malformed(format!("{what}: truncated")));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8, KeylessError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<usize, KeylessError> {
        let b = self.take(2, what)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    /// An `opaque<0..2^16-1>`.
    fn vec16(&mut self, what: &str) -> Result<&'a [u8], KeylessError> {
        let n = self.u16(what)?;
        self.take(n, what)
    }
}

/// Read a `SignedCertificateTimestampList` (the TLS bytes inside the
/// extension's DER OCTET STRING). Unknown SCT versions are an error.
pub fn parse_list(tls: &[u8]) -> Result<Vec<Sct>, KeylessError> {
    let mut outer = Tls(tls);
    let list = outer.vec16("list length")?;
    if !outer.0.is_empty() {
        return Err(malformed("bytes after the list"));
    }
    let mut list = Tls(list);
    let mut out = Vec::new();
    while !list.0.is_empty() {
        if out.len() == MAX_SCTS {
            return Err(malformed(format!("more than {MAX_SCTS} SCTs")));
        }
        let mut s = Tls(list.vec16("SCT length")?);
        let version = s.u8("version")?;
        if version != 0 {
            return Err(malformed(format!("SCT version {version}, want 1 (0)")));
        }
        let log_id: [u8; 32] = s
            .take(32, "log id")?
            .try_into()
            .map_err(|_| malformed("log id"))?;
        let ts = s.take(8, "timestamp")?;
        let timestamp = u64::from_be_bytes(ts.try_into().map_err(|_| malformed("timestamp"))?);
        let extensions = s.vec16("extensions")?.to_vec();
        let hash = s.u8("hash algorithm")?;
        let signature_alg = s.u8("signature algorithm")?;
        let signature = s.vec16("signature")?;
        if signature.len() > MAX_SIGNATURE {
            return Err(malformed(format!(
                "signature longer than {MAX_SIGNATURE} bytes"
            )));
        }
        if !s.0.is_empty() {
            return Err(malformed("bytes after an SCT"));
        }
        out.push(Sct {
            log_id,
            timestamp,
            extensions,
            hash,
            signature_alg,
            signature: signature.to_vec(),
        });
    }
    if out.is_empty() {
        return Err(malformed("empty list"));
    }
    Ok(out)
}

/// The SCTs a certificate embeds, and what they sign.
#[derive(Clone, Debug)]
pub struct Embedded {
    pub scts: Vec<Sct>,
    /// The precertificate's TBS: the TBSCertificate without the SCT
    /// extension, DER.
    pub tbs: Vec<u8>,
}

/// The SCTs a certificate embeds; `Ok(None)` when it embeds none.
pub fn embedded(leaf_der: &[u8]) -> Result<Option<Embedded>, KeylessError> {
    let cert = Certificate::from_der(leaf_der)
        .map_err(|e| KeylessError::Malformed(format!("certificate: not X.509 DER: {e}")))?;
    let mut tbs = cert.tbs_certificate;
    let Some(exts) = tbs.extensions.as_mut() else {
        return Ok(None);
    };
    let Some(i) = exts.iter().position(|e| e.extn_id == OID_SCT_LIST) else {
        return Ok(None);
    };
    let ext = exts.remove(i);
    if exts.iter().any(|e| e.extn_id == OID_SCT_LIST) {
        return Err(malformed("the extension appears twice"));
    }
    if exts.is_empty() {
        tbs.extensions = None;
    }
    let inner = OctetString::from_der(ext.extn_value.as_bytes())
        .map_err(|e| malformed(format!("not a DER OCTET STRING: {e}")))?;
    let scts = parse_list(inner.as_bytes())?;
    let tbs = tbs
        .to_der()
        .map_err(|e| KeylessError::Malformed(format!("certificate: re-encoding: {e}")))?;
    Ok(Some(Embedded { scts, tbs }))
}

/// The bytes a log signs for a precertificate SCT (RFC 6962 §3.2).
pub fn signed_data(sct: &Sct, issuer_key_hash: &[u8], tbs: &[u8]) -> Option<Vec<u8>> {
    let tbs_len = u32::try_from(tbs.len()).ok().filter(|n| *n < 1 << 24)?;
    let ext_len = u16::try_from(sct.extensions.len()).ok()?;
    let mut m = Vec::with_capacity(tbs.len() + 64);
    m.push(0); // version v1
    m.push(0); // signature_type certificate_timestamp
    m.extend_from_slice(&sct.timestamp.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes()); // entry_type precert_entry
    m.extend_from_slice(issuer_key_hash);
    m.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
    m.extend_from_slice(tbs);
    m.extend_from_slice(&ext_len.to_be_bytes());
    m.extend_from_slice(&sct.extensions);
    Some(m)
}

fn check_one(
    sct: &Sct,
    issuer_key_hash: &[u8],
    tbs: &[u8],
    ctlogs: &[LogKey],
) -> Result<(), String> {
    let log = ctlogs
        .iter()
        .find(|l| l.log_id == sct.log_id)
        .ok_or("its CT log is not in the trust root")?;
    let secs = i64::try_from(sct.timestamp / 1000).unwrap_or(i64::MAX);
    if !log.valid.contains(secs) {
        return Err(format!(
            "its CT log's key was not valid at the SCT's time {}",
            super::rfc3339(secs)
        ));
    }
    let algs_match = matches!(
        (&log.key, sct.hash, sct.signature_alg),
        (VerifyKey::P256(_), 4, 3) | (VerifyKey::P384(_), 5, 3)
    );
    if !algs_match {
        return Err(format!(
            "signature algorithm ({}, {}) does not fit the log's key",
            sct.hash, sct.signature_alg
        ));
    }
    let msg = signed_data(sct, issuer_key_hash, tbs).ok_or("certificate too large")?;
    if !log.key.verifies(&msg, &sct.signature) {
        return Err("signature does not verify with its CT log's key".into());
    }
    Ok(())
}

/// Check that `leaf_der`, issued by the CA whose DER SubjectPublicKeyInfo
/// is `issuer_spki`, embeds at least one SCT that verifies with a key of
/// `ctlogs`. The error says why each SCT failed.
pub fn verify(leaf_der: &[u8], issuer_spki: &[u8], ctlogs: &[LogKey]) -> Result<(), KeylessError> {
    let Some(Embedded { scts, tbs }) = embedded(leaf_der)? else {
        return Err(KeylessError::Sct(
            "no valid SCT: the certificate embeds no signed certificate timestamp (extension 1.3.6.1.4.1.11129.2.4.2)".into(),
        ));
    };
    let issuer_key_hash = digest_bytes(issuer_spki);
    let mut why = Vec::new();
    for (i, sct) in scts.iter().enumerate() {
        match check_one(sct, &issuer_key_hash, &tbs, ctlogs) {
            Ok(()) => return Ok(()),
            Err(e) => why.push(format!("SCT {i}: {e}")),
        }
    }
    Err(KeylessError::Sct(format!(
        "no valid SCT: {}",
        why.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sig: &[u8]) -> Vec<u8> {
        let mut s = vec![0u8];
        s.extend_from_slice(&[7u8; 32]);
        s.extend_from_slice(&1_767_225_600_000u64.to_be_bytes());
        s.extend_from_slice(&[0, 0, 4, 3]);
        s.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        s.extend_from_slice(sig);
        s
    }

    fn list(scts: &[Vec<u8>]) -> Vec<u8> {
        let mut body = Vec::new();
        for s in scts {
            body.extend_from_slice(&(s.len() as u16).to_be_bytes());
            body.extend_from_slice(s);
        }
        let mut l = (body.len() as u16).to_be_bytes().to_vec();
        l.extend_from_slice(&body);
        l
    }

    #[test]
    fn parses_and_bounds_lists() {
        let scts = parse_list(&list(&[one(b"sig"), one(b"other")])).unwrap();
        assert_eq!(scts.len(), 2);
        assert_eq!(scts[0].log_id, [7u8; 32]);
        assert_eq!(scts[0].timestamp, 1_767_225_600_000);
        assert_eq!((scts[0].hash, scts[0].signature_alg), (4, 3));
        assert_eq!(scts[1].signature, b"other");
        for (bad, why) in [
            (list(&[]), "empty list"),
            (vec![0, 5, 1], "truncated"),
            (
                [list(&[one(b"s")]), vec![0]].concat(),
                "bytes after the list",
            ),
            (list(&[[one(b"s"), vec![9]].concat()]), "bytes after an SCT"),
            (
                list(&[[vec![1], one(b"s")[1..].to_vec()].concat()]),
                "version",
            ),
            (list(&vec![one(b"s"); MAX_SCTS + 1]), "more than"),
            (list(&[one(&[0u8; MAX_SIGNATURE + 1])]), "longer than"),
        ] {
            let e = parse_list(&bad).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
