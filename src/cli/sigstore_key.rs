//! `kubemirror generate-sigstore-key --output-prefix P` (skopeo 1.10+'s):
//! an ECDSA P-256 key pair for sigstore signing, written as cosign writes it
//! so that `skopeo copy --sign-by-sigstore-private-key P.private` and
//! `cosign` read it: `P.pub` is a PEM `PUBLIC KEY` (PKIX), `P.private` a PEM
//! block of cosign's encrypted format (go-securesystemslib `encrypted`):
//! JSON `{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":…},
//! "cipher":{"name":"nacl/secretbox","nonce":…},"ciphertext":…}` (byte
//! strings in base64) whose ciphertext is the PKCS#8 private key sealed with
//! NaCl secretbox under a scrypt-derived key. Existing files are not
//! overwritten.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

use super::{CliResult, GlobalArgs};

/// The PEM type cosign and containers/image read the encrypted key under.
pub const PRIVATE_KEY_PEM_TYPE: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Write PREFIX.pub and PREFIX.private
    #[arg(long, value_name = "PREFIX", required = true)]
    pub output_prefix: PathBuf,
    /// Read the passphrase that protects the private key from PATH (first line); default: from stdin
    #[arg(long, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
}

/// Seal `plaintext` under `passphrase` in go-securesystemslib's `encrypted` JSON.
pub fn encrypt(plaintext: &[u8], passphrase: &[u8]) -> Result<Vec<u8>, String> {
    let salt: [u8; 32] = rand::random();
    let nonce: [u8; 24] = rand::random();
    let params = scrypt::Params::new(15, 8, 1, 32).map_err(|e| format!("scrypt: {e}"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(passphrase, &salt, &params, &mut key).map_err(|e| format!("scrypt: {e}"))?;
    let sealed = XSalsa20Poly1305::new(&key.into())
        .encrypt(&nonce.into(), plaintext)
        .map_err(|e| format!("secretbox: {e}"))?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    // Go's field order (json.Marshal of the struct), compact.
    Ok(format!(
        r#"{{"kdf":{{"name":"scrypt","params":{{"N":32768,"r":8,"p":1}},"salt":"{}"}},"cipher":{{"name":"nacl/secretbox","nonce":"{}"}},"ciphertext":"{}"}}"#,
        b64(&salt),
        b64(&nonce),
        b64(&sealed)
    )
    .into_bytes())
}

/// Open go-securesystemslib's `encrypted` JSON with `passphrase`.
pub fn decrypt(sealed: &[u8], passphrase: &[u8]) -> Result<Vec<u8>, String> {
    #[derive(serde::Deserialize)]
    struct Data {
        kdf: Kdf,
        cipher: Cipher,
        ciphertext: String,
    }
    #[derive(serde::Deserialize)]
    struct Kdf {
        name: String,
        params: KdfParams,
        salt: String,
    }
    #[derive(serde::Deserialize)]
    struct KdfParams {
        #[serde(rename = "N")]
        n: u64,
        r: u32,
        p: u32,
    }
    #[derive(serde::Deserialize)]
    struct Cipher {
        name: String,
        nonce: String,
    }
    let d: Data = serde_json::from_slice(sealed).map_err(|e| format!("encrypted key: {e}"))?;
    if d.kdf.name != "scrypt" || d.cipher.name != "nacl/secretbox" {
        return Err(format!(
            "encrypted key: kdf {:?} / cipher {:?}: only scrypt and nacl/secretbox are supported",
            d.kdf.name, d.cipher.name
        ));
    }
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("encrypted key: {e}"))
    };
    let (salt, nonce, ciphertext) = (
        b64(&d.kdf.salt)?,
        b64(&d.cipher.nonce)?,
        b64(&d.ciphertext)?,
    );
    if !d.kdf.params.n.is_power_of_two() || nonce.len() != 24 {
        return Err("encrypted key: bad scrypt N or nonce".into());
    }
    let log_n = d.kdf.params.n.trailing_zeros() as u8;
    let params = scrypt::Params::new(log_n, d.kdf.params.r, d.kdf.params.p, 32)
        .map_err(|e| format!("encrypted key: scrypt: {e}"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(passphrase, &salt, &params, &mut key).map_err(|e| format!("scrypt: {e}"))?;
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| "encrypted key: bad nonce")?;
    XSalsa20Poly1305::new(&key.into())
        .decrypt(&nonce.into(), ciphertext.as_slice())
        .map_err(|_| "decrypting the private key: wrong passphrase (or a damaged key)".to_string())
}

/// A sigstore signer from a private key file in cosign's format (see the module docs).
pub struct SigstoreSigner {
    key: p256::ecdsa::SigningKey,
}

impl SigstoreSigner {
    pub fn load(path: &std::path::Path, passphrase: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading private key {}: {e}", path.display()))?;
        let begin = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("-----BEGIN ")
                    .and_then(|r| r.strip_suffix("-----"))
            })
            .ok_or_else(|| format!("{}: not a PEM file", path.display()))?;
        if begin != PRIVATE_KEY_PEM_TYPE && begin != "ENCRYPTED COSIGN PRIVATE KEY" {
            return Err(format!(
                "{}: unsupported private key type {begin:?} (want {PRIVATE_KEY_PEM_TYPE:?})",
                path.display()
            ));
        }
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let der = decrypt(&sealed, passphrase.as_bytes())?;
        use p256::pkcs8::DecodePrivateKey;
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(&der).map_err(|e| {
            format!(
                "{}: only ECDSA P-256 keys are supported: {e}",
                path.display()
            )
        })?;
        Ok(SigstoreSigner { key })
    }
}

impl crate::copy::Signer for SigstoreSigner {
    fn sign(
        &self,
        docker_reference: &str,
        manifest_digest: &crate::digest::Digest,
    ) -> Result<crate::image::Signature, crate::image::Error> {
        use crate::signature::sigstore;
        use p256::ecdsa::signature::Signer as _;
        let payload = crate::signature::simple::Payload::to_json(
            docker_reference,
            manifest_digest.as_ref(),
            sigstore::PAYLOAD_TYPE,
        );
        let sig: p256::ecdsa::Signature = self.key.sign(&payload);
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert(
            sigstore::ANNOTATION_SIGNATURE.to_string(),
            base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes()),
        );
        Ok(crate::image::Signature::Sigstore {
            media_type: sigstore::MEDIA_TYPE.into(),
            payload: payload.into(),
            annotations,
        })
    }
}

/// A simple-signing (GnuPG key) signer for `copy --sign-by`.
pub struct GpgSigner {
    pub key: crate::signature::simple::SigningKey,
    pub passphrase: String,
}

impl crate::copy::Signer for GpgSigner {
    fn sign(
        &self,
        docker_reference: &str,
        manifest_digest: &crate::digest::Digest,
    ) -> Result<crate::image::Signature, crate::image::Error> {
        Ok(crate::signature::simple::sign_image(
            docker_reference,
            manifest_digest.as_ref(),
            &self.key,
            &self.passphrase,
        )?)
    }
}

/// PEM as Go's `pem.EncodeToMemory` writes it (64-character lines).
fn pem(kind: &str, bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = format!("-----BEGIN {kind}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {kind}-----\n"));
    out
}

fn passphrase(file: &Option<PathBuf>) -> Result<String, String> {
    let mut line = String::new();
    match file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("reading passphrase file {}: {e}", p.display()))?;
            line = text.lines().next().unwrap_or("").to_string();
        }
        None => {
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("reading the passphrase from stdin: {e}"))?;
        }
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub async fn run(args: GenerateArgs, _g: &GlobalArgs) -> CliResult {
    let prefix = args.output_prefix.display().to_string();
    let (private_path, public_path) = (
        PathBuf::from(format!("{prefix}.private")),
        PathBuf::from(format!("{prefix}.pub")),
    );
    for p in [&private_path, &public_path] {
        if p.exists() {
            return Err(format!("refusing to overwrite existing file {}", p.display()).into());
        }
    }
    let pass = passphrase(&args.passphrase_file)?;
    let secret = loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(k) = p256::SecretKey::from_slice(&bytes) {
            break k;
        }
    };
    let pkcs8 = secret
        .to_pkcs8_der()
        .map_err(|e| format!("encoding the private key: {e}"))?;
    let sealed = encrypt(pkcs8.as_bytes(), pass.as_bytes())?;
    let public = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| format!("encoding the public key: {e}"))?;
    let write = |path: &PathBuf, data: &[u8], mode: u32| -> Result<(), String> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        f.write_all(data)
            .map_err(|e| format!("writing {}: {e}", path.display()))
    };
    write(
        &private_path,
        pem(PRIVATE_KEY_PEM_TYPE, &sealed).as_bytes(),
        0o600,
    )?;
    write(&public_path, public.as_bytes(), 0o644)?;
    println!(
        "Key written to {:?} and {:?}",
        private_path.display().to_string(),
        public_path.display().to_string()
    );
    Ok(ExitCode::SUCCESS)
}
