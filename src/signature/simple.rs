//! containers-signature(5) "simple signing": a JSON payload naming an image
//! (`critical.identity.docker-reference`) and its manifest digest
//! (`critical.image.docker-manifest-digest`), wrapped in a binary OpenPGP
//! signed message (what `skopeo copy --sign-by` and `gpg --sign` write).
//!
//! [`open`] reads the message without trusting it (payload, issuer key);
//! [`verify`] checks it against a [`Keyring`] and returns the payload only
//! when a trusted key made the signature. Neither checks the digest or
//! identity: that is `verify.rs`'s job, with the image in hand.
//! [`sign`] makes a signature skopeo accepts (used by the tests, and ready
//! for a `--sign-by`).

use std::io::Read;

use pgp::composed::{Deserializable, Message, MessageBuilder, SignedPublicKey, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password, PublicKeyTrait};
use serde::Deserialize;
use serde_json::Value;

use super::SignatureError;

/// `critical.type` of a simple signature.
pub const SIGNATURE_TYPE: &str = "atomic container signature";

/// Payloads larger than this are refused (containers/image's limit for one signature).
pub const MAX_PAYLOAD: u64 = 4 << 20;

/// The claims of a simple-signing or sigstore payload (both share the
/// `critical` shape; only `critical.type` differs). Not trusted by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// `critical.identity.docker-reference`: what the image is signed as.
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`: the manifest signed.
    pub manifest_digest: String,
    /// `optional` (creator, timestamp, …), as found.
    pub optional: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayload {
    critical: RawCritical,
    #[serde(default)]
    optional: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCritical {
    #[serde(rename = "type")]
    typ: String,
    image: RawImage,
    identity: RawIdentity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

impl Payload {
    /// Parse a payload strictly (unknown `critical` fields are refused, as
    /// containers/image does) and require `critical.type` == `want_type`.
    pub fn parse(bytes: &[u8], want_type: &str) -> Result<Self, SignatureError> {
        let raw: RawPayload = serde_json::from_slice(bytes)
            .map_err(|e| SignatureError::Malformed(format!("payload: {e}")))?;
        if raw.critical.typ != want_type {
            return Err(SignatureError::Malformed(format!(
                "payload type {:?}, expected {want_type:?}",
                raw.critical.typ
            )));
        }
        crate::digest::parse(&raw.critical.image.digest)
            .map_err(|e| SignatureError::Malformed(format!("payload: {e}")))?;
        Ok(Payload {
            docker_reference: raw.critical.identity.docker_reference,
            manifest_digest: raw.critical.image.digest,
            optional: raw.optional,
        })
    }

    /// The JSON of a new payload (what a signer signs), with `creator` set.
    pub fn to_json(docker_reference: &str, manifest_digest: &str, typ: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "critical": {
                "identity": {"docker-reference": docker_reference},
                "image": {"docker-manifest-digest": manifest_digest},
                "type": typ,
            },
            "optional": {"creator": concat!("kubemirror ", env!("CARGO_PKG_VERSION"))},
        }))
        .expect("a JSON value serialises")
    }
}

/// A set of trusted OpenPGP public keys (a keyring: armored or binary, one
/// key or many, as `gpg --export [--armor]` writes).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Parse one keyring (armored or binary). Keys whose self-signatures do
    /// not verify are refused.
    pub fn from_bytes(data: &[u8]) -> Result<Self, SignatureError> {
        let mut ring = Keyring::default();
        ring.add(data)?;
        Ok(ring)
    }

    /// Add the keys of another keyring (several armored blocks one after
    /// the other are read too, as `cat a.asc b.asc` makes).
    pub fn add(&mut self, data: &[u8]) -> Result<(), SignatureError> {
        const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
        if let Ok(text) = std::str::from_utf8(data)
            && text.matches(BEGIN).count() > 1
        {
            for (i, _) in text.match_indices(BEGIN) {
                let end = text[i + 1..].find(BEGIN).map_or(text.len(), |j| i + 1 + j);
                self.add(&text.as_bytes()[i..end])?;
            }
            return Ok(());
        }
        let bad = |e: pgp::errors::Error| SignatureError::Key(format!("OpenPGP keyring: {e}"));
        let (keys, _) = SignedPublicKey::from_reader_many(data).map_err(bad)?;
        let before = self.keys.len();
        for key in keys {
            let key = key.map_err(bad)?;
            key.verify().map_err(|e| {
                SignatureError::Key(format!(
                    "OpenPGP key {}: invalid self-signature: {e}",
                    fingerprint_hex(&key)
                ))
            })?;
            self.keys.push(key);
        }
        if self.keys.len() == before {
            return Err(SignatureError::Key("OpenPGP keyring holds no keys".into()));
        }
        Ok(())
    }

    /// Upper-case hex fingerprints of the primary keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(fingerprint_hex).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn fingerprint_hex(k: &impl KeyDetails) -> String {
    k.fingerprint().to_string().to_uppercase()
}

/// A simple signature read without trusting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    /// The signed payload bytes, exactly as signed.
    pub payload: Vec<u8>,
    /// Who says they signed: the issuer fingerprint (upper-case hex) when the
    /// signature carries one, else the 16-hex-digit key id.
    pub key_id: String,
}

/// A signature a trusted key made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub payload: Vec<u8>,
    /// Fingerprint of the primary key of the certificate that signed.
    pub signer_fingerprint: String,
    /// Fingerprint of the (sub)key that made the signature.
    pub signing_key_fingerprint: String,
}

/// Parse the message, read its literal data (bounded) and hand it with the
/// message (read to the end, so it can be verified).
fn read_message(message: &[u8]) -> Result<(Message<'_>, Vec<u8>), SignatureError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        SignatureError::Malformed(format!("OpenPGP message: {what}: {e}"))
    };
    if message.is_empty() {
        return Err(SignatureError::Malformed("empty signature".into()));
    }
    let msg = Message::from_bytes(message).map_err(|e| bad("parse", &e))?;
    let mut msg = msg.decompress().map_err(|e| bad("decompress", &e))?;
    if !msg.is_signed() {
        return Err(SignatureError::Malformed(
            "OpenPGP message is not signed".into(),
        ));
    }
    let mut payload = Vec::new();
    (&mut msg)
        .take(MAX_PAYLOAD + 1)
        .read_to_end(&mut payload)
        .map_err(|e| bad("read", &e))?;
    if payload.len() as u64 > MAX_PAYLOAD {
        return Err(SignatureError::Malformed(format!(
            "signed payload over {MAX_PAYLOAD} bytes"
        )));
    }
    Ok((msg, payload))
}

fn the_signature<'m>(msg: &'m Message<'_>) -> Option<&'m pgp::packet::Signature> {
    match msg {
        Message::Signed { reader, .. } => Some(reader.signature()),
        Message::SignedOnePass { reader, .. } => reader.signature(),
        _ => None,
    }
}

fn issuer_of(sig: &pgp::packet::Signature) -> String {
    if let Some(fp) = sig.issuer_fingerprint().first() {
        return fp.to_string().to_uppercase();
    }
    sig.issuer()
        .first()
        .map(|k| k.to_string().to_uppercase())
        .unwrap_or_else(|| "unknown".into())
}

/// Read a simple signature without verifying it: the payload and who claims
/// to have signed it. For reports; never for trust decisions.
pub fn open(message: &[u8]) -> Result<Untrusted, SignatureError> {
    let (msg, payload) = read_message(message)?;
    let sig = the_signature(&msg)
        .ok_or_else(|| SignatureError::Malformed("OpenPGP message has no signature".into()))?;
    Ok(Untrusted {
        payload,
        key_id: issuer_of(sig),
    })
}

/// Verify a simple signature against trusted keys (primary keys and their
/// subkeys). Returns the payload only when one of them made the signature;
/// the payload is still to be checked against the image (`verify::examine`).
pub fn verify(message: &[u8], keyring: &Keyring) -> Result<Verified, SignatureError> {
    let (msg, payload) = read_message(message)?;
    let sig = the_signature(&msg)
        .ok_or_else(|| SignatureError::Malformed("OpenPGP message has no signature".into()))?;
    let issuer_ids: Vec<_> = sig.issuer().into_iter().copied().collect();
    let issuer_fprs: Vec<_> = sig.issuer_fingerprint().into_iter().cloned().collect();
    let named = |k: &dyn KeyDetails| {
        (issuer_ids.is_empty() && issuer_fprs.is_empty())
            || issuer_ids.contains(&k.key_id())
            || issuer_fprs.contains(&k.fingerprint())
    };
    for cert in &keyring.keys {
        let candidates = std::iter::once((&cert.primary_key as &dyn PublicKeyTrait, {
            let d: &dyn KeyDetails = &cert.primary_key;
            (named(d), fingerprint_hex(&cert.primary_key))
        }))
        .chain(cert.public_subkeys.iter().map(|sk| {
            (
                sk as &dyn PublicKeyTrait,
                (named(sk as &dyn KeyDetails), fingerprint_hex(sk)),
            )
        }));
        for (key, (is_named, fpr)) in candidates {
            if is_named && msg.verify(key).is_ok() {
                still_valid(cert, &fpr, sig, unix_now())?;
                return Ok(Verified {
                    payload,
                    signer_fingerprint: fingerprint_hex(cert),
                    signing_key_fingerprint: fpr,
                });
            }
        }
    }
    Err(SignatureError::Untrusted(format!(
        "signed by key {}, which is not among the trusted keys",
        issuer_of(sig)
    )))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// When `start + validity` (seconds) ends (RFC 4880: a zero validity never ends).
fn ends(start: i64, validity: Option<i64>) -> Option<i64> {
    validity.filter(|&s| s > 0).map(|s| start + s)
}

/// The date of a unix time, for messages (`2020-01-02T00:00:00Z`).
fn date(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// What gpg checks besides the cryptography (and skopeo refuses on, through
/// gpgme): the certificate and the signing (sub)key are neither revoked nor
/// expired now, and the signature itself has not expired.
fn still_valid(
    cert: &SignedPublicKey,
    signing_fpr: &str,
    sig: &pgp::packet::Signature,
    now: i64,
) -> Result<(), SignatureError> {
    use pgp::packet::SignatureType as T;
    let primary = fingerprint_hex(cert);
    if !cert.details.revocation_signatures.is_empty() {
        return Err(SignatureError::Invalidated(format!(
            "signed by key {primary}, which is revoked"
        )));
    }
    // The newest self-signature says when the certificate expires.
    let newest = cert
        .details
        .users
        .iter()
        .flat_map(|u| &u.signatures)
        .chain(&cert.details.direct_signatures)
        .max_by_key(|s| s.created().map(|c| c.timestamp()));
    let created = cert.primary_key.created_at().timestamp();
    if let Some(end) =
        newest.and_then(|s| ends(created, s.key_expiration_time().map(|d| d.num_seconds())))
        && end <= now
    {
        return Err(SignatureError::Invalidated(format!(
            "signed by key {primary}, which expired on {}",
            date(end)
        )));
    }
    if signing_fpr != primary
        && let Some(sk) = cert
            .public_subkeys
            .iter()
            .find(|sk| fingerprint_hex(sk) == signing_fpr)
    {
        if sk
            .signatures
            .iter()
            .any(|s| s.typ() == Some(T::SubkeyRevocation))
        {
            return Err(SignatureError::Invalidated(format!(
                "signed by subkey {signing_fpr} of key {primary}, which is revoked"
            )));
        }
        let binding = sk
            .signatures
            .iter()
            .filter(|s| s.typ() == Some(T::SubkeyBinding))
            .max_by_key(|s| s.created().map(|c| c.timestamp()));
        let created = sk.key.created_at().timestamp();
        if let Some(end) =
            binding.and_then(|s| ends(created, s.key_expiration_time().map(|d| d.num_seconds())))
            && end <= now
        {
            return Err(SignatureError::Invalidated(format!(
                "signed by subkey {signing_fpr} of key {primary}, which expired on {}",
                date(end)
            )));
        }
    }
    if let Some(made) = sig.created().map(|c| c.timestamp())
        && let Some(end) = ends(
            made,
            sig.signature_expiration_time().map(|d| d.num_seconds()),
        )
        && end <= now
    {
        return Err(SignatureError::Invalidated(format!(
            "the signature by key {primary} expired on {}",
            date(end)
        )));
    }
    Ok(())
}

/// An OpenPGP secret key to sign with (`gpg --export-secret-keys`, armored
/// or binary; the primary key signs).
#[derive(Clone)]
pub struct SigningKey {
    key: SignedSecretKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.fingerprint())
    }
}

impl SigningKey {
    pub fn from_bytes(data: &[u8]) -> Result<Self, SignatureError> {
        let (key, _) = SignedSecretKey::from_reader_single(data)
            .map_err(|e| SignatureError::Key(format!("OpenPGP secret key: {e}")))?;
        Ok(SigningKey { key })
    }

    /// Upper-case hex fingerprint of the primary key.
    pub fn fingerprint(&self) -> String {
        fingerprint_hex(&self.key.primary_key)
    }
}

/// The thread RNG (rand 0.9) under the rand_core 0.6 traits rpgp asks for.
struct Rng06;

impl p256::elliptic_curve::rand_core::RngCore for Rng06 {
    fn next_u32(&mut self) -> u32 {
        rand::RngCore::next_u32(&mut rand::rng())
    }
    fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut rand::rng())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rng(), dest)
    }
    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> Result<(), p256::elliptic_curve::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl p256::elliptic_curve::rand_core::CryptoRng for Rng06 {}

/// Sign `payload` as a binary OpenPGP message (one-pass signature, SHA-256,
/// binary literal data), the shape `skopeo copy --sign-by` writes, minus
/// compression.
pub fn sign(payload: &[u8], key: &SigningKey, passphrase: &str) -> Result<Vec<u8>, SignatureError> {
    let mut builder = MessageBuilder::from_bytes("", payload.to_vec());
    builder.sign(
        &key.key.primary_key,
        Password::from(passphrase),
        HashAlgorithm::Sha256,
    );
    builder
        .to_vec(Rng06)
        .map_err(|e| SignatureError::Key(format!("signing with {}: {e}", key.fingerprint())))
}

/// A simple signature claiming `docker_reference` for `manifest_digest`.
pub fn sign_image(
    docker_reference: &str,
    manifest_digest: &str,
    key: &SigningKey,
    passphrase: &str,
) -> Result<crate::image::Signature, SignatureError> {
    let payload = Payload::to_json(docker_reference, manifest_digest, SIGNATURE_TYPE);
    Ok(crate::image::Signature::SimpleSigning(
        sign(&payload, key, passphrase)?.into(),
    ))
}
