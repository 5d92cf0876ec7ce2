//! Fulcio certificates: what a leaf says (its SAN, the OIDC issuer in
//! Fulcio's extensions, its validity, its key) read with `x509-cert`, and
//! whether it chains to a CA of the trust root at a given time, decided by
//! `webpki` (path building, signatures, validity, basic constraints).
//!
//! Fulcio's own extensions (OID arc 1.3.6.1.4.1.57264.1) are read here by
//! hand: no kept crate knows them. `.1.1` (deprecated) holds the issuer as
//! raw bytes, `.1.8` as a DER UTF8String; `.1.8` wins when both are there.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, UnixTime};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};

use super::KeylessError;
use super::keys::VerifyKey;
use super::trusted_root::TrustedRoot;

/// Largest certificate read.
pub const MAX_CERTIFICATE: usize = 16 * 1024;
/// Longest SAN or issuer kept.
const MAX_NAME: usize = 1024;

/// Fulcio's OIDC issuer extension (deprecated raw-bytes form).
pub const OID_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's OIDC issuer extension (DER UTF8String).
pub const OID_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
const OID_SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// id-kp-codeSigning, DER content octets (for webpki).
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// What a Fulcio leaf certificate says.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub der: Vec<u8>,
    /// The SAN: an email address or a URI (a CI workflow).
    pub subject: String,
    /// The OIDC issuer (Fulcio extension).
    pub issuer: String,
    pub not_before: i64,
    pub not_after: i64,
    pub key: VerifyKey,
}

fn parse(der: &[u8]) -> Result<Certificate, KeylessError> {
    if der.len() > MAX_CERTIFICATE {
        return Err(KeylessError::Malformed(format!(
            "certificate larger than {MAX_CERTIFICATE} bytes"
        )));
    }
    Certificate::from_der(der)
        .map_err(|e| KeylessError::Malformed(format!("certificate: not X.509 DER: {e}")))
}

fn bounded(s: &str, what: &str) -> Result<String, KeylessError> {
    if s.len() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(KeylessError::Malformed(format!(
            "certificate {what}: longer than {MAX_NAME} bytes or holds control characters"
        )));
    }
    Ok(s.to_string())
}

/// Read a leaf certificate (DER).
pub fn parse_leaf(der: &[u8]) -> Result<Leaf, KeylessError> {
    let cert = parse(der)?;
    let tbs = &cert.tbs_certificate;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| KeylessError::Malformed(format!("certificate key: {e}")))?;
    let key = VerifyKey::from_spki_der(&spki)?;
    let mut subject = None;
    let mut issuer_v1 = None;
    let mut issuer_v2 = None;
    let mut code_signing = false;
    for ext in tbs.extensions.as_deref().unwrap_or_default() {
        let value = ext.extn_value.as_bytes();
        if ext.extn_id == OID_SAN {
            let san = SubjectAltName::from_der(value)
                .map_err(|e| KeylessError::Malformed(format!("certificate SAN: {e}")))?;
            subject = san.0.iter().find_map(|n| match n {
                GeneralName::Rfc822Name(s) => Some(s.to_string()),
                GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
                _ => None,
            });
        } else if ext.extn_id == OID_ISSUER_V2 {
            let s = x509_cert::der::asn1::Utf8StringRef::from_der(value).map_err(|e| {
                KeylessError::Malformed(format!("certificate issuer extension (.1.8): {e}"))
            })?;
            issuer_v2 = Some(s.as_str().to_string());
        } else if ext.extn_id == OID_ISSUER_V1 {
            let s = std::str::from_utf8(value).map_err(|_| {
                KeylessError::Malformed("certificate issuer extension (.1.1): not UTF-8".into())
            })?;
            issuer_v1 = Some(s.to_string());
        } else if ext.extn_id == OID_EKU {
            let eku = ExtendedKeyUsage::from_der(value)
                .map_err(|e| KeylessError::Malformed(format!("certificate EKU: {e}")))?;
            code_signing = eku.0.contains(&OID_CODE_SIGNING);
        }
    }
    let subject = subject.ok_or_else(|| {
        KeylessError::Malformed("certificate has no email or URI subject alternative name".into())
    })?;
    let issuer = issuer_v2.or(issuer_v1).ok_or_else(|| {
        KeylessError::Malformed(
            "certificate has no OIDC issuer extension (1.3.6.1.4.1.57264.1.8 or .1.1): not a Fulcio certificate".into(),
        )
    })?;
    if !code_signing {
        return Err(KeylessError::Malformed(
            "certificate is not for code signing (no id-kp-codeSigning extended key usage)".into(),
        ));
    }
    let secs = |t: x509_cert::time::Time| t.to_unix_duration().as_secs() as i64;
    Ok(Leaf {
        der: der.to_vec(),
        subject: bounded(&subject, "SAN")?,
        issuer: bounded(&issuer, "issuer")?,
        not_before: secs(tbs.validity.not_before),
        not_after: secs(tbs.validity.not_after),
        key,
    })
}

/// Check that `der` is a certificate (for trust root entries).
pub fn parse_ca(der: &[u8]) -> Result<(), KeylessError> {
    parse(der).map(|_| ())
}

/// Whether `der` names itself as its issuer (a root). False when unparsable.
pub fn is_self_issued(der: &[u8]) -> bool {
    parse(der).is_ok_and(|c| c.tbs_certificate.issuer == c.tbs_certificate.subject)
}

/// The DER SubjectPublicKeyInfo of the certificate of `chain` whose subject
/// is `leaf`'s issuer (the CA that signed it, for SCTs' issuer key hash).
fn issuer_spki(leaf: &Leaf, chain: &[Vec<u8>]) -> Result<Vec<u8>, KeylessError> {
    let leaf = parse(&leaf.der)?;
    chain
        .iter()
        .filter_map(|c| Certificate::from_der(c).ok())
        .find(|c| c.tbs_certificate.subject == leaf.tbs_certificate.issuer)
        .and_then(|c| c.tbs_certificate.subject_public_key_info.to_der().ok())
        .ok_or_else(|| {
            KeylessError::Untrusted("the certificate's issuer is not in its CA chain".into())
        })
}

/// Check that `leaf` chains to a CA of `root` that was valid at `time`
/// (Unix seconds), every certificate of the path valid then too. Returns
/// the issuing CA's DER SubjectPublicKeyInfo.
pub fn verify_chain(leaf: &Leaf, root: &TrustedRoot, time: i64) -> Result<Vec<u8>, KeylessError> {
    if time < 0 {
        return Err(KeylessError::Malformed(format!(
            "integrated time {time} is before 1970"
        )));
    }
    if time < leaf.not_before || time > leaf.not_after {
        return Err(KeylessError::Expired(format!(
            "certificate was not valid at the log's integrated time {} (valid {} to {})",
            super::rfc3339(time),
            super::rfc3339(leaf.not_before),
            super::rfc3339(leaf.not_after)
        )));
    }
    let leaf_der = CertificateDer::from(leaf.der.as_slice());
    let ee = webpki::EndEntityCert::try_from(&leaf_der)
        .map_err(|e| KeylessError::Malformed(format!("certificate: {e}")))?;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(time as u64));
    let mut last = None;
    for ca in root.cas.iter().filter(|ca| ca.valid.contains(time)) {
        let Some((root_der, intermediates)) = ca.chain.split_last() else {
            continue;
        };
        let root_der = CertificateDer::from(root_der.as_slice());
        let Ok(anchor) = webpki::anchor_from_trusted_cert(&root_der) else {
            continue;
        };
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        match ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &intermediates,
            at,
            webpki::KeyUsage::required_if_present(EKU_CODE_SIGNING),
            None,
            None,
        ) {
            Ok(_) => return issuer_spki(leaf, &ca.chain),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. }) => {
            KeylessError::Expired(format!(
                "a certificate of the chain was not valid at the log's integrated time {}",
                super::rfc3339(time)
            ))
        }
        Some(e) => KeylessError::Untrusted(format!(
            "certificate does not chain to a Fulcio CA of the trust root valid at {} ({e:?})",
            super::rfc3339(time)
        )),
        None => KeylessError::Untrusted(format!(
            "no Fulcio CA of the trust root was valid at the log's integrated time {}",
            super::rfc3339(time)
        )),
    })
}
