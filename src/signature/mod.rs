//! Image signatures: reading them where they live, writing them where they
//! belong, verifying them against trusted keys, and reporting on them.
//!
//! | format | stored as | read | written | verified |
//! |---|---|---|---|---|
//! | simple signing (containers-signature(5), OpenPGP) | `dir:` `signature-N`; registries: lookaside `BASE/REPO@sha256=HEX/signature-N` | transport; `file://`, `http(s)://` lookaside | transport; `file://` lookaside | [`simple::verify`] (rpgp; RSA, EdDSA, ECDSA keys and signing subkeys); [`simple::sign`] makes them |
//! | sigstore (cosign, ECDSA P-256 public key) | `dir:` `signature-N`; registries: `sha256-HEX.sig` attachment image | transport; attachment | transport; attachment (merged with what is there) | [`sigstore::verify`] (public key); keyless (Fulcio certificate + Rekor SET): [`keyless::verify_cosign`] |
//! | Sigstore bundle v0.1–v0.3 (cosign 3, `verify-blob`) | registries: OCI referrer of the image (referrers tag `sha256-HEX`) | [`referrers::read_bundles`] (for verification) | copied with the referrers tag | [`keyless::Bundle::verify`] |
//!
//! Where signatures live is the transports' business, as in containers/image:
//! `dir:` keeps `signature-N` files; the registry transport reads and writes
//! lookasides and sigstore attachments itself, over the image's registry
//! session (`transport::docker::{signatures, lookaside, attachment}`), as
//! `SystemContext::signature_storage` says. Nothing here speaks HTTP.
//!
//! Files: [`simple`] and [`sigstore`] (the formats), [`keyless`] (offline
//! keyless Sigstore: trust roots, Fulcio chains, Rekor evidence, bundles),
//! [`referrers`] (bundles attached as OCI referrers), [`identity`] (which
//! image a signature may vouch for), [`registries_d`] (where signatures
//! live: registries.d, and [`ResourceStorage`] for the resources), [`policy`]
//! (containers-policy.json(5)), [`verify`] (report entries for status), `io`
//! ([`read()`] and [`write()`], through the image traits only).
//!
//! Who calls what:
//! - the CLI: [`RegistriesD::load`] into `SystemContext::signature_storage`,
//!   [`Policy::load`] for `--policy`;
//! - the copy engine: [`read()`] the source's signatures, [`Policy::evaluate_image`]
//!   before writing anything, [`write()`] them before the top-level manifest (or
//!   copy the attachment images named by [`attachment_tags`] byte for byte);
//! - the reconcilers: [`ResourceStorage`] (sigstore attachments always; a
//!   spec's `signatureLookaside`, else the driver's registries.d),
//!   [`TrustedKey::parse`] for `verification.keys`, [`verify::report`] for
//!   `status.signatures[]`.

pub mod identity;
pub mod keyless;
pub mod policy;
pub mod referrers;
pub mod registries_d;
pub mod sigstore;
pub mod simple;
pub mod verify;

mod io;

pub use io::{Target, read, read_attachment, write, write_attachment};
pub use policy::{Policy, PolicyError};
pub use registries_d::{RegistriesD, ResourceStorage, StaticStorage};
pub use sigstore::attachment_tags;
pub use verify::{SignatureReport, TrustedKey, TrustedKeys};

/// What can be wrong with a signature, a key or a signature configuration.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature or its payload cannot be parsed.
    #[error("invalid signature: {0}")]
    Malformed(String),
    /// A key cannot be parsed or is unusable.
    #[error("invalid key: {0}")]
    Key(String),
    /// No trusted key made this signature.
    #[error("{0}")]
    Untrusted(String),
    /// A trusted key made it, but the key or the signature is no longer
    /// valid (expired, revoked), as gpg and skopeo refuse it.
    #[error("{0}")]
    Invalidated(String),
    /// A configuration file (registries.d, policy.json) is wrong.
    #[error("{path}: {message}")]
    Config { path: String, message: String },
}

impl SignatureError {
    pub(crate) fn config(path: impl std::fmt::Display, message: impl Into<String>) -> Self {
        SignatureError::Config {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl From<SignatureError> for crate::image::Error {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::Config { .. } | SignatureError::Key(_) => {
                crate::image::Error::Invalid(e.to_string())
            }
            _ => crate::image::Error::Signature(e.to_string()),
        }
    }
}
