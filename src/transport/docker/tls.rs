//! TLS for registry connections, per containers-certs.d(5): the system roots,
//! plus every `*.crt` in the certificate directory (`--cert-dir`, else
//! `/etc/containers/certs.d/HOST`, `/etc/docker/certs.d/HOST`,
//! `~/.config/containers/certs.d/HOST`) and `SystemContext::extra_ca_pem`;
//! a client certificate from a `NAME.cert` / `NAME.key` pair in the same
//! directory. With `tls_verify = false` any server certificate is accepted.
//!
//! Only the `ring` provider is compiled in; it is passed explicitly, so no
//! process-wide default provider has to be installed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::image::{Error, Result, SystemContext};

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The machine's trust anchors, loaded once per process.
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The certificate directories that apply to `host` (containers-certs.d(5)).
pub fn cert_dirs(ctx: &SystemContext, host: &str) -> Vec<PathBuf> {
    if let Some(d) = &ctx.cert_dir {
        return vec![d.clone()];
    }
    let mut dirs = vec![
        PathBuf::from("/etc/containers/certs.d").join(host),
        PathBuf::from("/etc/docker/certs.d").join(host),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(
            PathBuf::from(home)
                .join(".config/containers/certs.d")
                .join(host),
        );
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

fn tls_error(host: &str, message: String) -> Error {
    Error::Connection {
        host: host.to_string(),
        op: "TLS setup".into(),
        message,
        retryable: false,
    }
}

/// Build the rustls configuration for `host` under `ctx`.
pub fn client_config(ctx: &SystemContext, host: &str) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(host, e.to_string()))?;
    let dirs = cert_dirs(ctx, host);
    let client_pair = find_client_pair(host, &dirs)?;
    let mut config = if ctx.tls_verify == Some(false) {
        let b = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything));
        match client_pair {
            Some((certs, key)) => b
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_error(host, format!("client certificate: {e}")))?,
            None => b.with_no_client_auth(),
        }
    } else {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(native_roots().iter().cloned());
        for dir in &dirs {
            for path in files_with_ext(dir, "crt") {
                let pem = std::fs::read(&path)
                    .map_err(|e| tls_error(host, format!("{}: {e}", path.display())))?;
                add_pem_roots(&mut roots, &pem)
                    .map_err(|m| tls_error(host, format!("{}: {m}", path.display())))?;
            }
        }
        for pem in &ctx.extra_ca_pem {
            add_pem_roots(&mut roots, pem)
                .map_err(|m| tls_error(host, format!("extra CA: {m}")))?;
        }
        let b = builder.with_root_certificates(roots);
        match client_pair {
            Some((certs, key)) => b
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_error(host, format!("client certificate: {e}")))?,
            None => b.with_no_client_auth(),
        }
    };
    // HTTP/1.1 only: blobs are long streams, and separate connections per
    // concurrent transfer beat one HTTP/2 connection's flow-control window.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn add_pem_roots(roots: &mut RootCertStore, pem: &[u8]) -> std::result::Result<(), String> {
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("invalid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("invalid CA certificate: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("no PEM certificate found".into());
    }
    Ok(())
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

type ClientPair = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The first `NAME.cert` with its `NAME.key` (containers-certs.d(5)); a
/// certificate without its key (or the reverse) is an error, as there.
fn find_client_pair(host: &str, dirs: &[PathBuf]) -> Result<Option<ClientPair>> {
    for dir in dirs {
        if let Some(cert_path) = files_with_ext(dir, "cert").into_iter().next() {
            let key_path = cert_path.with_extension("key");
            if !key_path.exists() {
                return Err(tls_error(
                    host,
                    format!("missing key {} for client certificate", key_path.display()),
                ));
            }
            let certs = CertificateDer::pem_file_iter(&cert_path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| tls_error(host, format!("{}: {e}", cert_path.display())))?;
            let key = PrivateKeyDer::from_pem_file(&key_path)
                .map_err(|e| tls_error(host, format!("{}: {e}", key_path.display())))?;
            return Ok(Some((certs, key)));
        }
        for key_path in files_with_ext(dir, "key") {
            if !key_path.with_extension("cert").exists() {
                return Err(tls_error(
                    host,
                    format!(
                        "missing client certificate {} for key",
                        key_path.with_extension("cert").display()
                    ),
                ));
            }
        }
    }
    Ok(None)
}

/// `--tls-verify=false`: any certificate, any name.
#[derive(Debug)]
struct AcceptAnything;

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
