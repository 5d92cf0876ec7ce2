//! `kubemirror standalone-sign` / `standalone-verify` (skopeo's): a simple
//! signature (containers-signature(5)) over a manifest file, made and
//! checked without an image store. Keys come from the GnuPG keyring (as
//! skopeo's gpgme does: `$GNUPGHOME`, else `~/.gnupg`), read through the
//! `gpg` program; signing and verifying are `crate::signature::simple`'s.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use super::{CliResult, GlobalArgs};
use crate::signature::simple::{self, Keyring, Payload, SigningKey};

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The manifest file to sign
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// What the signature names the image as, e.g. registry.example/app:1.0
    #[arg(value_name = "DOCKER-REFERENCE")]
    pub docker_reference: String,
    /// Fingerprint of the GnuPG key to sign with
    #[arg(value_name = "KEY-FINGERPRINT")]
    pub fingerprint: String,
    /// Write the signature to SIGNATURE
    #[arg(short = 'o', long, value_name = "SIGNATURE", required = true)]
    pub output: PathBuf,
    /// File that holds the key's passphrase (first line)
    #[arg(long, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The manifest file the signature should sign
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// The image name the signature should claim
    #[arg(value_name = "DOCKER-REFERENCE")]
    pub docker_reference: String,
    /// Fingerprint of the key that should have signed
    #[arg(value_name = "KEY-FINGERPRINT")]
    pub fingerprint: String,
    /// The signature file
    #[arg(value_name = "SIGNATURE")]
    pub signature: PathBuf,
}

/// Run `gpg --batch` with `args`; its stdout.
fn gpg(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("gpg")
        .args(["--batch", "--no-tty", "--quiet"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running gpg (needed for the GnuPG keyring): {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "gpg {}: {}",
            args.join(" "),
            err.trim().replace('\n', "; ")
        ));
    }
    Ok(out.stdout)
}

/// The secret key `fingerprint` from the GnuPG keyring, and the passphrase
/// that unlocks it (first line of `passphrase_file`; empty without one).
pub fn keyring_signing_key(
    fingerprint: &str,
    passphrase_file: &Option<PathBuf>,
) -> Result<(SigningKey, String), String> {
    let passphrase = match passphrase_file {
        Some(p) => {
            let text = String::from_utf8(read(p, "passphrase file")?)
                .map_err(|_| format!("passphrase file {} is not UTF-8", p.display()))?;
            text.lines().next().unwrap_or("").to_string()
        }
        None => String::new(),
    };
    let mut export = vec!["--export-secret-keys"];
    let pass_arg;
    if let Some(p) = passphrase_file {
        pass_arg = p.display().to_string();
        export = vec![
            "--pinentry-mode",
            "loopback",
            "--passphrase-file",
            &pass_arg,
            "--export-secret-keys",
        ];
    }
    export.push(fingerprint);
    let secret = gpg(&export)?;
    if secret.is_empty() {
        return Err(format!(
            "no secret key {fingerprint} in the GnuPG keyring ($GNUPGHOME or ~/.gnupg)"
        ));
    }
    let key = SigningKey::from_bytes(&secret).map_err(|e| e.to_string())?;
    Ok((key, passphrase))
}

fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {what} {}: {e}", path.display()))
}

fn check_reference(r: &str) -> Result<(), String> {
    crate::reference::parse(r)
        .map(|_| ())
        .map_err(|e| format!("invalid docker reference {r:?}: {e}"))
}

pub async fn sign(args: SignArgs, _g: &GlobalArgs) -> CliResult {
    let manifest = read(&args.manifest, "manifest")?;
    check_reference(&args.docker_reference)?;
    let (key, passphrase) = keyring_signing_key(&args.fingerprint, &args.passphrase_file)?;
    let digest = crate::digest::sha256(&manifest);
    let payload = Payload::to_json(
        &args.docker_reference,
        digest.as_ref(),
        simple::SIGNATURE_TYPE,
    );
    let signature = simple::sign(&payload, &key, &passphrase)?;
    std::fs::write(&args.output, signature)
        .map_err(|e| format!("writing signature {}: {e}", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn verify(args: VerifyArgs, _g: &GlobalArgs) -> CliResult {
    let manifest = read(&args.manifest, "manifest")?;
    let signature = read(&args.signature, "signature")?;
    check_reference(&args.docker_reference)?;
    let fail = |m: String| format!("Error verifying signature: {m}");
    let keyring = Keyring::from_bytes(&gpg(&["--export"])?).map_err(|e| fail(e.to_string()))?;
    let verified = simple::verify(&signature, &keyring).map_err(|e| fail(e.to_string()))?;
    let want = args.fingerprint.to_uppercase();
    if verified.signer_fingerprint != want && verified.signing_key_fingerprint != want {
        return Err(fail(format!(
            "Signature by {} does not match expected fingerprint {}",
            verified.signer_fingerprint, args.fingerprint
        ))
        .into());
    }
    let payload = Payload::parse(&verified.payload, simple::SIGNATURE_TYPE)
        .map_err(|e| fail(e.to_string()))?;
    let same_name = match (
        crate::reference::parse(&payload.docker_reference),
        crate::reference::parse(&args.docker_reference),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same_name {
        return Err(fail(format!(
            "Docker reference {} does not match {}",
            payload.docker_reference, args.docker_reference
        ))
        .into());
    }
    let digest = crate::digest::sha256(&manifest);
    if payload.manifest_digest != digest.to_string() {
        return Err(fail(format!(
            "Signature for docker digest {:?} does not match",
            payload.manifest_digest
        ))
        .into());
    }
    println!("Signature verified, digest {}", payload.manifest_digest);
    Ok(ExitCode::SUCCESS)
}
