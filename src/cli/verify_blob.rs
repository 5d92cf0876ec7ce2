//! `kubemirror verify-blob` (cosign's): verify a Sigstore bundle (v0.1–v0.3,
//! message signature or DSSE / in-toto) for an artifact, offline, over the
//! same verification core as images (`signature::keyless`). ARTIFACT is a
//! file (hashed as a stream, never read whole) or `sha256:HEX`. Keyless
//! bundles need the identity (`--certificate-identity(-regexp)`) and issuer
//! (`--certificate-oidc-issuer(-regexp)`); `--key` verifies a bundle made
//! with a key pair instead. Exit 0 and `Verified OK` on stderr when
//! verified; a one-line reason and exit 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::{CliResult, GlobalArgs};
use crate::signature::keyless::bundle::{Artifact, Bundle, Digests, Hasher, MAX_BUNDLE, Signer};
use crate::signature::keyless::keys::VerifyKey;
use crate::signature::keyless::{IdentityRule, KeylessTrust, TrustedRoot};

#[derive(Debug, clap::Args)]
pub struct VerifyBlobArgs {
    /// The artifact: a file, or `sha256:HEX` (its digest)
    #[arg(value_name = "ARTIFACT")]
    pub artifact: String,
    /// The Sigstore bundle (JSON) to verify
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The certificate's identity (SAN: email or URI), exactly
    #[arg(long, value_name = "IDENTITY")]
    pub certificate_identity: Option<String>,
    /// A regular expression the certificate's identity must match (searched: anchor it)
    #[arg(long, value_name = "REGEXP", conflicts_with = "certificate_identity")]
    pub certificate_identity_regexp: Option<String>,
    /// The certificate's OIDC issuer, exactly
    #[arg(long, value_name = "ISSUER")]
    pub certificate_oidc_issuer: Option<String>,
    /// A regular expression the OIDC issuer must match (searched: anchor it)
    #[arg(
        long,
        value_name = "REGEXP",
        conflicts_with = "certificate_oidc_issuer"
    )]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// A public key (PEM or DER; ECDSA P-256 / P-384) instead of a certificate identity
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// A Sigstore trusted_root.json (default: Sigstore's public-good root, embedded)
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Verify without network access (always the case: accepted for cosign's command lines)
    #[arg(long)]
    pub offline: bool,
}

fn read_limited(path: &PathBuf, max: usize, what: &str) -> Result<Vec<u8>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("reading {what} {}: {e}", path.display()))?;
    if meta.len() > max as u64 {
        return Err(format!(
            "{what} {} is larger than {max} bytes",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("reading {what} {}: {e}", path.display()))
}

/// ARTIFACT's digest(s): parsed from `sha256:HEX`, else the file hashed
/// as a stream (SHA-256, SHA-384 and SHA-512, in one pass).
enum ArtifactDigest {
    Sha256([u8; 32]),
    File(Digests),
}

fn artifact_digest(artifact: &str) -> Result<ArtifactDigest, String> {
    if let Some(hex) = artifact.strip_prefix("sha256:") {
        let bytes = hex::decode(hex)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| format!("{artifact:?}: want sha256: and 64 hex digits"))?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes);
        return Ok(ArtifactDigest::Sha256(out));
    }
    let mut f = std::fs::File::open(artifact).map_err(|e| format!("reading {artifact}: {e}"))?;
    let mut h = Hasher::default();
    std::io::copy(&mut f, &mut h).map_err(|e| format!("reading {artifact}: {e}"))?;
    Ok(ArtifactDigest::File(h.finish()))
}

pub async fn run(args: VerifyBlobArgs, _g: &GlobalArgs) -> CliResult {
    let root = match &args.trusted_root {
        Some(p) => TrustedRoot::from_json(&read_limited(
            p,
            crate::signature::keyless::trusted_root::MAX_TRUSTED_ROOT,
            "trusted root",
        )?)
        .map_err(|e| format!("--trusted-root {}: {e}", p.display()))?,
        None => TrustedRoot::public_good().clone(),
    };
    let bundle_bytes = read_limited(&args.bundle, MAX_BUNDLE, "bundle")?;
    let bundle = Bundle::parse(&bundle_bytes)
        .map_err(|e| format!("--bundle {}: {e}", args.bundle.display()))?;
    let digest = artifact_digest(&args.artifact)?;
    let artifact = match &digest {
        ArtifactDigest::Sha256(d) => Artifact::Sha256(d),
        ArtifactDigest::File(d) => Artifact::Digests(d),
    };
    let identity_given = args.certificate_identity.is_some()
        || args.certificate_identity_regexp.is_some()
        || args.certificate_oidc_issuer.is_some()
        || args.certificate_oidc_issuer_regexp.is_some();
    let verified = match &args.key {
        Some(k) => {
            if identity_given {
                return Err("--key verifies a key-pair signature: give no --certificate-* flags with it".into());
            }
            let data = read_limited(k, 64 * 1024, "key")?;
            let key = VerifyKey::from_pem_or_der(&data)
                .map_err(|e| format!("--key {}: {e}", k.display()))?;
            bundle.verify(artifact, Signer::Key(&key, &root))
        }
        None => {
            let rule = IdentityRule::new(
                args.certificate_oidc_issuer.as_deref(),
                args.certificate_oidc_issuer_regexp.as_deref(),
                args.certificate_identity.as_deref(),
                args.certificate_identity_regexp.as_deref(),
            )
            .map_err(|m| {
                format!(
                    "{} (--certificate-identity(-regexp) and --certificate-oidc-issuer(-regexp), or --key)",
                    m.replace("issuerRegExp", "--certificate-oidc-issuer-regexp")
                        .replace("subjectRegExp", "--certificate-identity-regexp")
                        .replace("of issuer and", "of --certificate-oidc-issuer and")
                        .replace("of subject and", "of --certificate-identity and")
                )
            })?;
            let trust = KeylessTrust {
                root: Arc::new(root),
                identities: vec![rule],
            };
            bundle.verify(artifact, Signer::Keyless(&trust))
        }
    }
    .map_err(|e| format!("{}: {e}", args.bundle.display()))?;
    if !verified.subject.is_empty() {
        eprintln!(
            "Certificate identity {} (issuer {}), Rekor log index {}, integrated {}",
            verified.subject,
            verified.issuer,
            verified.log_index,
            crate::signature::keyless::rfc3339(verified.integrated_time)
        );
    }
    eprintln!("Verified OK");
    Ok(ExitCode::SUCCESS)
}
