//! Signatures of images on a registry, read and written by the registry
//! transport itself, as containers/image's docker source and destination do:
//! simple signatures in the lookaside storage registries.d (or a spec's
//! `signatureLookaside`) names, sigstore signatures in the cosign attachment
//! `sha256-<hex>.sig` of the image's repository, where
//! `use-sigstore-attachments` is on. Everything goes over the image's
//! registry session: one HTTP client, its credentials (registry requests
//! only), throttle, retries and observer.

use bytes::Bytes;
use futures::StreamExt;

use super::attachment::{self, MAX_LAYER};
use super::client::{Op, Session};
use super::{DockerReference, lookaside, source};
use crate::digest::{self, Digest};
use crate::image::{
    Blob, BlobInfo, Error, ErrorKind, ImageDestination, Result, ReuseHint, Signature,
    SignatureStorage,
};
use crate::manifest::Manifest;

fn push_unique(out: &mut Vec<Signature>, s: Signature) {
    if !out.contains(&s) {
        out.push(s);
    }
}

/// Every signature of manifest `digest` in `image`'s repository: lookaside
/// first, then the `.sig` attachment, without duplicates; none where
/// `storage` enables neither. A missing entry is no signature, not an error.
pub(super) async fn read(
    session: &Session,
    image: &DockerReference,
    storage: Option<&SignatureStorage>,
    digest: &Digest,
) -> Result<Vec<Signature>> {
    let mut out = Vec::new();
    let Some(storage) = storage else {
        return Ok(out);
    };
    if let Some(base) = &storage.lookaside {
        for s in lookaside::read(session, base, image.reference(), digest).await? {
            push_unique(&mut out, Signature::SimpleSigning(s));
        }
    }
    if storage.use_sigstore_attachments {
        for s in read_attachment(session, image, digest).await? {
            push_unique(&mut out, s);
        }
    }
    Ok(out)
}

/// The sigstore signatures in the `.sig` attachment of `digest`; none when
/// there is no attachment.
async fn read_attachment(
    session: &Session,
    image: &DockerReference,
    digest: &Digest,
) -> Result<Vec<Signature>> {
    let tag = attachment::signature_tag(digest);
    let repo = image.repository();
    let location = format!("docker://{}/{repo}:{tag}", image.reference().registry());
    let manifest = match source::get_manifest(session, &location, repo, &tag, None).await {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (info, annotations) in attachment::signature_layers(&manifest)? {
        let payload = get_small_blob(session, repo, &location, &info).await?;
        out.push(Signature::Sigstore {
            media_type: info
                .media_type
                .clone()
                .unwrap_or_else(|| attachment::MEDIA_TYPE.into()),
            payload,
            annotations,
        });
    }
    Ok(out)
}

/// A blob of at most [`MAX_LAYER`] bytes, checked against its digest.
async fn get_small_blob(
    session: &Session,
    repo: &str,
    location: &str,
    info: &BlobInfo,
) -> Result<Bytes> {
    let op = Op::pull(repo, format!("blob {}", info.digest));
    let path = format!("/v2/{repo}/blobs/{}", info.digest);
    let mut resp = session.send_following(&op, &path, &|r| r).await?;
    if !resp.status().is_success() {
        return Err(session.status_error(&op, resp).await);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| session.connection_error(&op, &session.host, &e))?
    {
        if (body.len() + chunk.len()) as u64 > MAX_LAYER {
            return Err(Error::Signature(format!(
                "{location}: signature layer {} over {MAX_LAYER} bytes",
                info.digest
            )));
        }
        body.extend_from_slice(&chunk);
    }
    digest::verify_bytes(&info.digest, &body).map_err(|e| Error::Digest {
        location: location.to_string(),
        what: format!("signature layer {}", info.digest),
        source: e,
    })?;
    Ok(Bytes::from(body))
}

/// Store `signatures` of manifest `digest`: simple ones in the
/// `lookaside-staging` (else `lookaside`) storage, merged with what is
/// there; sigstore ones added to the `.sig` attachment (merged with its
/// layers), when `use-sigstore-attachments` is on. Either one missing its
/// configuration is an error that says what to configure.
pub(super) async fn write(
    dst: &super::DockerDestination,
    session: &Session,
    image: &DockerReference,
    storage: Option<&SignatureStorage>,
    digest: &Digest,
    signatures: &[Signature],
) -> Result<()> {
    let storage = storage.cloned().unwrap_or_default();
    let name = crate::reference::name(image.reference());
    let simple: Vec<Bytes> = signatures
        .iter()
        .filter_map(|s| match s {
            Signature::SimpleSigning(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    let cosign: Vec<Signature> = signatures
        .iter()
        .filter(|s| matches!(s, Signature::Sigstore { .. }))
        .cloned()
        .collect();
    if !simple.is_empty() {
        let Some(base) = storage
            .lookaside_staging
            .as_ref()
            .or(storage.lookaside.as_ref())
        else {
            return Err(Error::Signature(format!(
                "{image}: cannot store {} simple signature(s): no lookaside is configured for {name} (set lookaside-staging in registries.d or signatureLookaside, or drop signatures with --remove-signatures)",
                simple.len(),
            )));
        };
        let mut all = lookaside::read(session, base, image.reference(), digest).await?;
        for s in simple {
            if !all.contains(&s) {
                all.push(s);
            }
        }
        lookaside::write(base, image.reference(), digest, &all).await?;
    }
    if !cosign.is_empty() {
        if !storage.use_sigstore_attachments {
            return Err(Error::Signature(format!(
                "{image}: cannot store {} sigstore signature(s): sigstore attachments are off for {name} (set use-sigstore-attachments: true in registries.d, or drop signatures with --remove-signatures)",
                cosign.len(),
            )));
        }
        write_attachment(dst, session, image, digest, &cosign).await?;
    }
    Ok(())
}

/// Add `signatures` to the `.sig` attachment of `digest` (kept: what it
/// already holds), and push it through `dst` (the same repository).
async fn write_attachment(
    dst: &super::DockerDestination,
    session: &Session,
    image: &DockerReference,
    digest: &Digest,
    signatures: &[Signature],
) -> Result<()> {
    let mut all = read_attachment(session, image, digest).await?;
    let before = all.len();
    for s in signatures {
        push_unique(&mut all, s.clone());
    }
    if all.len() == before && before > 0 {
        return Ok(());
    }
    let att = attachment::build_attachment(&all);
    let hint = ReuseHint {
        source: Some(image.reference().clone()),
    };
    for (info, bytes) in att.blobs {
        if dst.try_reusing_blob(&info, &hint).await?.is_some() {
            continue;
        }
        let blob = Blob {
            size: Some(bytes.len() as u64),
            stream: futures::stream::once(async move { Ok(bytes) }).boxed(),
        };
        dst.put_blob(&info, blob).await?;
    }
    let manifest: &Manifest = &att.manifest;
    dst.put_manifest_by(manifest, &attachment::signature_tag(digest))
        .await
}
