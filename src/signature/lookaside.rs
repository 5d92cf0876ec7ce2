//! Lookaside storage of simple signatures (docs/signature-protocols.md of
//! containers/image): `BASE/REPO@ALG=HEX/signature-N`, N from 1, where REPO
//! is the repository path without the host (`library/busybox`). Reading
//! stops at the first missing N. `file://` is read and written;
//! `http(s)://` is read only, by `http_get`, the one function here that
//! speaks HTTP.

use std::path::PathBuf;

use bytes::Bytes;

use super::SignatureError;
use crate::digest::{self, Digest};
use crate::image::SystemContext;
use crate::reference::Reference;

/// At most this many signatures are read for one manifest.
pub const MAX_SIGNATURES: usize = 128;
/// One signature larger than this is refused.
pub const MAX_SIGNATURE_SIZE: usize = 4 << 20;

/// The URL of signature `index` (1-based) of `digest` in repository `image`.
pub fn signature_url(
    base: &str,
    image: &Reference,
    digest: &Digest,
    index: usize,
) -> Result<url::Url, SignatureError> {
    let base = super::registries_d::normalise_url(base)
        .map_err(|m| SignatureError::config("lookaside", m))?;
    let mut u = url::Url::parse(&base).map_err(|e| SignatureError::config(&base, e.to_string()))?;
    let repo = image.repository();
    if repo
        .split('/')
        .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(SignatureError::Storage {
            location: base,
            message: format!("unexpected path elements in repository {repo:?}"),
        });
    }
    let path = format!(
        "{}/{repo}@{}={}/signature-{index}",
        u.path().trim_end_matches('/'),
        digest.algorithm(),
        digest::hex_of(digest)
    );
    u.set_path(&path);
    Ok(u)
}

fn file_path(u: &url::Url) -> Result<PathBuf, SignatureError> {
    u.to_file_path().map_err(|_| SignatureError::Storage {
        location: u.to_string(),
        message: "not a local file URL".into(),
    })
}

fn storage_err(u: &url::Url, message: impl std::fmt::Display) -> SignatureError {
    SignatureError::Storage {
        location: u.to_string(),
        message: message.to_string(),
    }
}

/// Read every simple signature of `digest` stored under `base`.
pub async fn read(
    base: &str,
    image: &Reference,
    digest: &Digest,
    ctx: &SystemContext,
) -> Result<Vec<Bytes>, SignatureError> {
    let mut out = Vec::new();
    let mut client = None;
    for index in 1..=MAX_SIGNATURES + 1 {
        let u = signature_url(base, image, digest, index)?;
        let got = match u.scheme() {
            "file" => {
                let p = file_path(&u)?;
                match tokio::fs::read(&p).await {
                    Ok(b) => Some(Bytes::from(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        return Err(storage_err(&u, e));
                    }
                    // A disk or network file system that failed may come back.
                    Err(e) => return Err(unavailable(&u, e)),
                }
            }
            "http" | "https" => {
                if client.is_none() {
                    client = Some(http_client(ctx).map_err(|e| storage_err(&u, e))?);
                }
                http_get(client.as_ref().expect("set above"), &u, ctx.retry_times).await?
            }
            s => return Err(storage_err(&u, format!("unsupported scheme {s:?}"))),
        };
        let Some(sig) = got else { break };
        if index > MAX_SIGNATURES {
            return Err(storage_err(
                &u,
                format!("more than {MAX_SIGNATURES} signatures"),
            ));
        }
        if sig.len() > MAX_SIGNATURE_SIZE {
            return Err(storage_err(
                &u,
                format!("signature over {MAX_SIGNATURE_SIZE} bytes"),
            ));
        }
        out.push(sig);
    }
    Ok(out)
}

fn http_client(ctx: &SystemContext) -> Result<reqwest::Client, String> {
    // The crate builds reqwest without a default rustls provider; use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .tls_backend_rustls()
        .timeout(std::time::Duration::from_secs(60));
    for pem in &ctx.extra_ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())? {
            b = b.add_root_certificate(cert);
        }
    }
    if ctx.tls_verify == Some(false) {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| e.to_string())
}

fn unavailable(u: &url::Url, message: impl std::fmt::Display) -> SignatureError {
    SignatureError::Unavailable {
        location: u.to_string(),
        message: message.to_string(),
    }
}

/// GET one signature, retrying what may pass (5xx, 408, 429, connection
/// failures and timeouts) `retries` times with backoff; still failing, it
/// is [`SignatureError::Unavailable`] (transient for the caller).
async fn http_get(
    client: &reqwest::Client,
    u: &url::Url,
    retries: u32,
) -> Result<Option<Bytes>, SignatureError> {
    let mut attempt = 0;
    loop {
        match http_get_once(client, u).await {
            Err(SignatureError::Unavailable { .. }) if attempt < retries => {
                attempt += 1;
                let wait = std::time::Duration::from_millis(200 << attempt.min(6));
                tokio::time::sleep(wait).await;
            }
            r => return r,
        }
    }
}

/// One GET: `None` on 404, the body (bounded) on 200.
async fn http_get_once(
    client: &reqwest::Client,
    u: &url::Url,
) -> Result<Option<Bytes>, SignatureError> {
    let mut resp = client
        .get(u.clone())
        .send()
        .await
        .map_err(|e| unavailable(u, crate::image::one_line(&e)))?;
    match resp.status().as_u16() {
        404 => return Ok(None),
        200 => {}
        s @ (408 | 429 | 500..=599) => {
            return Err(unavailable(
                u,
                format!("HTTP status {s} {}", crate::image::error::status_text(s)),
            ));
        }
        s => return Err(storage_err(u, format!("HTTP status {s}"))),
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| unavailable(u, crate::image::one_line(&e)))?
    {
        if body.len() + chunk.len() > MAX_SIGNATURE_SIZE {
            return Err(storage_err(
                u,
                format!("signature over {MAX_SIGNATURE_SIZE} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(body)))
}

/// Store `signatures` as the complete set for `digest` under a `file://`
/// `base`: `signature-1..N` written (each via a temporary file and rename),
/// any `signature-(N+1)…` left from before removed.
pub async fn write(
    base: &str,
    image: &Reference,
    digest: &Digest,
    signatures: &[Bytes],
) -> Result<(), SignatureError> {
    let first = signature_url(base, image, digest, 1)?;
    if first.scheme() != "file" {
        return Err(storage_err(
            &first,
            "writing signatures is only supported to file:// lookaside storage",
        ));
    }
    let dir = file_path(&first)?
        .parent()
        .expect("signature path has a parent")
        .to_path_buf();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| storage_err(&first, e))?;
    for (i, sig) in signatures.iter().enumerate() {
        let name = format!("signature-{}", i + 1);
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(&name);
        let loc = || dir.join(&name).display().to_string();
        tokio::fs::write(&tmp, sig)
            .await
            .map_err(|e| SignatureError::Storage {
                location: loc(),
                message: e.to_string(),
            })?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| SignatureError::Storage {
                location: loc(),
                message: e.to_string(),
            })?;
    }
    let mut n = signatures.len() + 1;
    loop {
        let p = dir.join(format!("signature-{n}"));
        match tokio::fs::remove_file(&p).await {
            Ok(()) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => {
                return Err(SignatureError::Storage {
                    location: p.display().to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_containers_image() {
        let r = crate::reference::parse("reg.io:5000/ns/app:v1").unwrap();
        let d = digest::sha256(b"m");
        let u = signature_url("file:///var/sigs/", &r, &d, 2).unwrap();
        assert_eq!(
            u.as_str(),
            format!(
                "file:///var/sigs/ns/app@sha256={}/signature-2",
                digest::hex_of(&d)
            )
        );
        let u = signature_url("https://s.example/base", &r, &d, 1).unwrap();
        assert!(
            u.as_str()
                .starts_with("https://s.example/base/ns/app@sha256=")
        );
    }

    #[tokio::test]
    async fn file_round_trip_and_shrink() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!("file://{}", dir.path().display());
        let r = crate::reference::parse("reg.io/ns/app:v1").unwrap();
        let d = digest::sha256(b"m");
        let ctx = SystemContext::default();
        assert!(read(&base, &r, &d, &ctx).await.unwrap().is_empty());
        let sigs = [Bytes::from_static(b"one"), Bytes::from_static(b"two")];
        write(&base, &r, &d, &sigs).await.unwrap();
        assert_eq!(read(&base, &r, &d, &ctx).await.unwrap(), sigs);
        write(&base, &r, &d, &sigs[1..]).await.unwrap();
        assert_eq!(read(&base, &r, &d, &ctx).await.unwrap(), sigs[1..]);
        let e = write("https://x/", &r, &d, &sigs).await.unwrap_err();
        assert!(e.to_string().contains("only supported to file://"), "{e}");
    }
}
