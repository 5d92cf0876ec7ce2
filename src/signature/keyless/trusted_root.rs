//! A Sigstore trust root: the Fulcio CAs (certificate chains, each valid for
//! a time range), the transparency logs' keys (Rekor) and the CT logs' keys.
//! Read from `trusted_root.json` (the protobuf-specs `TrustedRoot` in its
//! JSON form, media type `application/vnd.dev.sigstore.trustedroot+json;version=0.1`),
//! or built from parts as containers-policy.json(5)'s `fulcio.caPath` and
//! `rekorPublicKeyPath` give them. Sigstore's public-good root is embedded
//! ([`TrustedRoot::public_good`]) so that verifying needs no network.
//!
//! The JSON is read with serde into the few fields verification needs
//! (the protobuf crates of Sigstore bring a protobuf runtime and a second
//! RustCrypto generation for four structs); unknown fields are ignored, as
//! protobuf JSON readers do. Every list and size is bounded.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use super::KeylessError;
use super::keys::{VerifyKey, pem_certificates};
use crate::digest;

/// Largest trusted root read.
pub const MAX_TRUSTED_ROOT: usize = 1 << 20;
/// Most CAs, logs, and certificates per chain kept from one root.
pub const MAX_ENTRIES: usize = 64;
pub const MAX_CHAIN: usize = 10;

/// The public-good instance's trust root (embedded).
const PUBLIC_GOOD: &[u8] = include_bytes!("public_good_trusted_root.json");

/// A time range in Unix seconds; `end` open when `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub start: i64,
    pub end: Option<i64>,
}

impl Validity {
    pub const ALWAYS: Validity = Validity {
        start: i64::MIN,
        end: None,
    };

    pub fn contains(&self, t: i64) -> bool {
        t >= self.start && self.end.is_none_or(|e| t <= e)
    }
}

/// One Fulcio CA: its chain, issuing certificate first, root last.
#[derive(Clone, Debug)]
pub struct CertificateAuthority {
    pub uri: String,
    pub chain: Vec<Vec<u8>>,
    pub valid: Validity,
}

/// A log's key (transparency or CT).
#[derive(Clone, Debug)]
pub struct LogKey {
    pub base_url: String,
    /// The log id: SHA-256 of the key's DER SubjectPublicKeyInfo.
    pub log_id: Vec<u8>,
    pub key: VerifyKey,
    pub valid: Validity,
}

/// What a signature is verified against.
#[derive(Clone, Debug, Default)]
pub struct TrustedRoot {
    pub cas: Vec<CertificateAuthority>,
    pub tlogs: Vec<LogKey>,
    pub ctlogs: Vec<LogKey>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: Option<String>,
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawCa>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    public_key: RawPublicKey,
    log_id: Option<RawLogId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPublicKey {
    raw_bytes: Option<String>,
    valid_for: Option<RawRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCa {
    #[serde(default)]
    uri: String,
    cert_chain: RawChain,
    valid_for: Option<RawRange>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct RawRange {
    start: Option<String>,
    end: Option<String>,
}

fn malformed(what: impl std::fmt::Display) -> KeylessError {
    KeylessError::Malformed(format!("trusted root: {what}"))
}

fn time(s: &str, at: &str) -> Result<i64, KeylessError> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| malformed(format!("{at}: {s:?} is not an RFC 3339 time: {e}")))
}

fn range(r: Option<&RawRange>, at: &str) -> Result<Validity, KeylessError> {
    let Some(r) = r else {
        return Ok(Validity::ALWAYS);
    };
    Ok(Validity {
        start: match &r.start {
            Some(s) => time(s, at)?,
            None => i64::MIN,
        },
        end: r.end.as_deref().map(|e| time(e, at)).transpose()?,
    })
}

fn b64(s: &str, at: &str) -> Result<Vec<u8>, KeylessError> {
    B64.decode(s.trim())
        .map_err(|e| malformed(format!("{at}: not base64: {e}")))
}

fn logs(raw: Vec<RawLog>, what: &str) -> Result<Vec<LogKey>, KeylessError> {
    if raw.len() > MAX_ENTRIES {
        return Err(malformed(format!("more than {MAX_ENTRIES} {what}")));
    }
    let mut out = Vec::new();
    for (i, l) in raw.into_iter().enumerate() {
        let at = format!("{what}[{i}]");
        let Some(raw_bytes) = &l.public_key.raw_bytes else {
            continue; // a key this root does not publish: nothing to verify with
        };
        let der = b64(raw_bytes, &at)?;
        let key = VerifyKey::from_spki_der(&der).map_err(|e| malformed(format!("{at}: {e}")))?;
        let computed = digest_bytes(&der);
        if let Some(id) = &l.log_id {
            let given = b64(&id.key_id, &format!("{at}.logId"))?;
            if given != computed {
                return Err(malformed(format!(
                    "{at}: logId is not the SHA-256 of the public key"
                )));
            }
        }
        out.push(LogKey {
            base_url: l.base_url,
            log_id: computed,
            key,
            valid: range(l.public_key.valid_for.as_ref(), &at)?,
        });
    }
    Ok(out)
}

/// SHA-256 of `b`, raw.
pub(crate) fn digest_bytes(b: &[u8]) -> Vec<u8> {
    hex::decode(digest::hex_of(&digest::sha256(b))).unwrap_or_default()
}

impl TrustedRoot {
    /// Sigstore's public-good trust root, embedded at build time.
    pub fn public_good() -> &'static TrustedRoot {
        static ROOT: OnceLock<TrustedRoot> = OnceLock::new();
        ROOT.get_or_init(|| {
            // A unit test proves the embedded file parses.
            TrustedRoot::from_json(PUBLIC_GOOD).unwrap_or_default()
        })
    }

    /// Parse `trusted_root.json`.
    pub fn from_json(json: &[u8]) -> Result<Self, KeylessError> {
        if json.len() > MAX_TRUSTED_ROOT {
            return Err(malformed(format!("larger than {MAX_TRUSTED_ROOT} bytes")));
        }
        let raw: RawRoot = serde_json::from_slice(json).map_err(malformed)?;
        if let Some(m) = &raw.media_type
            && !m.starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(malformed(format!("unknown mediaType {m:?}")));
        }
        if raw.certificate_authorities.len() > MAX_ENTRIES {
            return Err(malformed(format!(
                "more than {MAX_ENTRIES} certificateAuthorities"
            )));
        }
        let mut cas = Vec::new();
        for (i, ca) in raw.certificate_authorities.into_iter().enumerate() {
            let at = format!("certificateAuthorities[{i}]");
            let certs = &ca.cert_chain.certificates;
            if certs.is_empty() || certs.len() > MAX_CHAIN {
                return Err(malformed(format!(
                    "{at}: certChain must hold 1 to {MAX_CHAIN} certificates"
                )));
            }
            let chain = certs
                .iter()
                .map(|c| b64(&c.raw_bytes, &at))
                .collect::<Result<Vec<_>, _>>()?;
            for c in &chain {
                super::cert::parse_ca(c).map_err(|e| malformed(format!("{at}: {e}")))?;
            }
            cas.push(CertificateAuthority {
                uri: ca.uri,
                chain,
                valid: range(ca.valid_for.as_ref(), &at)?,
            });
        }
        let root = TrustedRoot {
            cas,
            tlogs: logs(raw.tlogs, "tlogs")?,
            ctlogs: logs(raw.ctlogs, "ctlogs")?,
        };
        if root.cas.is_empty() && root.tlogs.is_empty() {
            return Err(malformed("no certificateAuthorities and no tlogs"));
        }
        Ok(root)
    }

    /// A root from a CA bundle (PEM: the Fulcio chain, root last or any
    /// order of one chain) and Rekor public keys (PEM or DER), as
    /// containers-policy.json(5)'s `fulcio` and `rekorPublicKey*` give them.
    /// The CA is trusted for as long as its certificates say.
    pub fn from_parts(ca_pem: &[u8], rekor_keys: &[Vec<u8>]) -> Result<Self, KeylessError> {
        let chain = pem_certificates(ca_pem, MAX_CHAIN)?;
        for c in &chain {
            super::cert::parse_ca(c)?;
        }
        let mut tlogs = Vec::new();
        for k in rekor_keys {
            let key = VerifyKey::from_pem_or_der(k)?;
            let der = key.spki_der();
            tlogs.push(LogKey {
                base_url: String::new(),
                log_id: digest_bytes(&der),
                key,
                valid: Validity::ALWAYS,
            });
        }
        // A PEM bundle may list the root first: the root is the self-issued one.
        let mut chain = chain;
        chain.sort_by_key(|c| super::cert::is_self_issued(c));
        Ok(TrustedRoot {
            cas: vec![CertificateAuthority {
                uri: String::new(),
                chain,
                valid: Validity::ALWAYS,
            }],
            tlogs,
            ctlogs: Vec::new(),
        })
    }

    /// The transparency log whose id is `log_id`.
    pub fn tlog(&self, log_id: &[u8]) -> Option<&LogKey> {
        self.tlogs.iter().find(|l| l.log_id == log_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_good_parses() {
        let r = TrustedRoot::from_json(PUBLIC_GOOD).unwrap();
        assert_eq!(r.cas.len(), 2);
        assert_eq!(r.cas[1].chain.len(), 2);
        assert_eq!(r.tlogs.len(), 1);
        assert_eq!(
            B64.encode(&r.tlogs[0].log_id),
            "wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0="
        );
        assert_eq!(r.ctlogs.len(), 2);
        assert!(r.cas[0].valid.contains(1_650_000_000));
        assert!(!r.cas[0].valid.contains(1_700_000_000));
        assert_eq!(TrustedRoot::public_good().cas.len(), 2);
    }

    #[test]
    fn malformed_roots_say_why() {
        let e = TrustedRoot::from_json(b"{").unwrap_err();
        assert!(e.to_string().starts_with("trusted root: "), "{e}");
        let e = TrustedRoot::from_json(br#"{"mediaType":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown mediaType"), "{e}");
        let e = TrustedRoot::from_json(br#"{"tlogs":[]}"#).unwrap_err();
        assert!(e.to_string().contains("no certificateAuthorities"), "{e}");
        let e = TrustedRoot::from_json(
            br#"{"certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"AAAA"}]}}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("certificateAuthorities[0]"), "{e}");
        let mut v: serde_json::Value = serde_json::from_slice(PUBLIC_GOOD).unwrap();
        v["tlogs"][0]["logId"]["keyId"] = "AAAA".into();
        let e = TrustedRoot::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(e.to_string().contains("logId is not the SHA-256"), "{e}");
    }
}
