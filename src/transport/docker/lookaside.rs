//! Lookaside storage of simple signatures (docs/signature-protocols.md of
//! containers/image): `BASE/REPO@ALG=HEX/signature-N`, N from 1, where REPO
//! is the repository path without the host (`library/busybox`). Reading
//! stops at the first missing N. `file://` is read and written;
//! `http(s)://` is read only, with the registry session's HTTP client (its
//! TLS settings, its observer), never with the registry's credentials.

use std::path::PathBuf;

use bytes::Bytes;
use reqwest::Method;

use super::client::Session;
use crate::digest::{self, Digest};
use crate::image::{Error, Result};
use crate::reference::Reference;

/// At most this many signatures are read for one manifest.
pub const MAX_SIGNATURES: usize = 128;
/// One signature larger than this is refused.
pub const MAX_SIGNATURE_SIZE: usize = 4 << 20;

/// The URL of signature `index` (1-based) of `digest` in repository `image`;
/// `base` is `file://`, `http(s)://` or an absolute path.
pub fn signature_url(
    base: &str,
    image: &Reference,
    digest: &Digest,
    index: usize,
) -> Result<url::Url> {
    let base = if base.starts_with('/') {
        format!("file://{base}")
    } else {
        base.to_string()
    };
    let mut u = url::Url::parse(&base)
        .map_err(|e| Error::Invalid(format!("lookaside {base:?}: invalid URL: {e}")))?;
    let repo = image.repository();
    if repo
        .split('/')
        .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(storage_err(
            &u,
            format!("unexpected path elements in repository {repo:?}"),
        ));
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

fn file_path(u: &url::Url) -> Result<PathBuf> {
    u.to_file_path()
        .map_err(|_| storage_err(u, "not a local file URL"))
}

/// Storage that answered in a way retrying cannot mend.
fn storage_err(u: &url::Url, message: impl std::fmt::Display) -> Error {
    Error::Signature(format!("lookaside {u}: {message}"))
}

/// Storage that failed in a way that may pass (a 5xx, a timeout, a broken
/// connection, a failing disk): transient for the caller.
fn unavailable(u: &url::Url, message: impl std::fmt::Display) -> Error {
    Error::Connection {
        host: u.host_str().unwrap_or("lookaside").to_string(),
        op: format!("reading signature {u}"),
        message: message.to_string(),
        retryable: true,
    }
}

/// Read every simple signature of `digest` stored under `base`.
pub async fn read(
    session: &Session,
    base: &str,
    image: &Reference,
    digest: &Digest,
) -> Result<Vec<Bytes>> {
    let mut out = Vec::new();
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
                    Err(e) => return Err(unavailable(&u, e)),
                }
            }
            "http" | "https" => http_get(session, &u).await?,
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

/// GET one signature, retrying what may pass (5xx, 408, 429, connection
/// failures and timeouts) within the session's retry budget, with backoff.
async fn http_get(session: &Session, u: &url::Url) -> Result<Option<Bytes>> {
    let mut attempt = 0;
    loop {
        match http_get_once(session, u).await {
            Err(e) if e.is_retryable() && attempt < session.retry_times() => {
                tokio::time::sleep(super::client::backoff(attempt, None)).await;
                attempt += 1;
            }
            r => return r,
        }
    }
}

/// One GET: `None` on 404, the body (bounded) on 200.
async fn http_get_once(session: &Session, u: &url::Url) -> Result<Option<Bytes>> {
    let host = u.host_str().unwrap_or_default().to_string();
    let sent = session.shared.http.get(u.clone()).send().await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => {
            session.observe(&host, &Method::GET, 0);
            return Err(unavailable(u, crate::image::one_line(&e)));
        }
    };
    let status = resp.status().as_u16();
    session.observe(&host, &Method::GET, status);
    match status {
        404 => return Ok(None),
        200 => {}
        408 | 429 | 500..=599 => {
            return Err(unavailable(
                u,
                format!(
                    "HTTP status {status} {}",
                    crate::image::error::status_text(status)
                ),
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
) -> Result<()> {
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
    let io = |p: &std::path::Path, e: std::io::Error| {
        Error::Signature(format!("lookaside {}: {e}", p.display()))
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| io(&dir, e))?;
    for (i, sig) in signatures.iter().enumerate() {
        let name = format!("signature-{}", i + 1);
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(&name);
        tokio::fs::write(&tmp, sig)
            .await
            .map_err(|e| io(&path, e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io(&path, e))?;
    }
    let mut n = signatures.len() + 1;
    loop {
        let p = dir.join(format!("signature-{n}"));
        match tokio::fs::remove_file(&p).await {
            Ok(()) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(io(&p, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::SystemContext;

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
        let session = Session::get(&SystemContext::default(), "reg.io").unwrap();
        assert!(read(&session, &base, &r, &d).await.unwrap().is_empty());
        let sigs = [Bytes::from_static(b"one"), Bytes::from_static(b"two")];
        write(&base, &r, &d, &sigs).await.unwrap();
        assert_eq!(read(&session, &base, &r, &d).await.unwrap(), sigs);
        write(&base, &r, &d, &sigs[1..]).await.unwrap();
        assert_eq!(read(&session, &base, &r, &d).await.unwrap(), sigs[1..]);
        let e = write("https://x/", &r, &d, &sigs).await.unwrap_err();
        assert!(e.to_string().contains("only supported to file://"), "{e}");
    }
}
