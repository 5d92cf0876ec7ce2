//! Deleting an image from a registry (`kubemirror delete docker://…`, as
//! `skopeo delete`): a tag is first resolved to its manifest digest (one
//! HEAD, or a GET when the registry sends no `Docker-Content-Digest`), then
//! `DELETE /v2/<name>/manifests/<digest>`. As in the registry, this removes
//! the manifest and so every tag pointing at it; blobs stay until the
//! registry's garbage collection.

use reqwest::{Method, StatusCode};

use super::DockerReference;
use super::auth::Scopes;
use super::client::{Op, Session};
use super::source::{get_manifest, head_manifest};
use crate::digest::{self, Digest};
use crate::image::{Error, Result, SystemContext};

/// Delete the manifest `r` names; returns its digest. A registry that does
/// not allow deletes (405; Distribution without `storage.delete.enabled` /
/// `REGISTRY_STORAGE_DELETE_ENABLED=true`) gives an error saying so.
pub async fn delete_image(r: &DockerReference, ctx: &SystemContext) -> Result<Digest> {
    let session = Session::get(ctx, r.reference().registry())?;
    let repo = r.repository();
    let reference = r.manifest_ref();
    let digest = match digest::parse(&reference) {
        Ok(d) => d,
        Err(_) => {
            let op = Op::pull(repo, format!("manifest {reference}"));
            match head_manifest(&session, repo, &reference, op.clone()).await? {
                Some(Some(d)) => d,
                Some(None) => get_manifest(&session, &r.to_string(), repo, &reference, None)
                    .await?
                    .digest(),
                None => {
                    return Err(session.plain_error(
                        &op,
                        404,
                        "manifest unknown: manifest unknown".into(),
                    ));
                }
            }
        }
    };
    delete_digest(&session, repo, &digest).await?;
    Ok(digest)
}

/// `DELETE /v2/<name>/manifests/<digest>` in `r`'s repository: the
/// manifest and every tag naming it go. Deleting by digest, never by tag,
/// removes exactly what the caller checked, whatever the tag names by now.
pub async fn delete_manifest(
    r: &DockerReference,
    ctx: &SystemContext,
    digest: &Digest,
) -> Result<()> {
    let session = Session::get(ctx, r.reference().registry())?;
    delete_digest(&session, r.repository(), digest).await
}

async fn delete_digest(session: &Session, repo: &str, digest: &Digest) -> Result<()> {
    let op = Op {
        repository: repo.into(),
        op: "delete",
        what: format!("manifest {digest}"),
        scopes: Scopes::repository(repo, "delete"),
    };
    let path = format!("/v2/{repo}/manifests/{digest}");
    let resp = session.send(&op, Method::DELETE, &path, &|b| b).await?;
    match resp.status() {
        s if s.is_success() => Ok(()),
        StatusCode::METHOD_NOT_ALLOWED => {
            let mut e = session.status_error(&op, resp).await;
            if let Error::Registry { message, .. } = &mut e {
                message.push_str(
                    " (the registry does not allow deleting images; on Distribution set storage.delete.enabled: true, or REGISTRY_STORAGE_DELETE_ENABLED=true)",
                );
            }
            Err(e)
        }
        _ => Err(session.status_error(&op, resp).await),
    }
}

/// A `docker://` reference's registry side, for [`delete_image`].
pub fn docker_reference(r: &dyn crate::image::ImageReference) -> Result<DockerReference> {
    match (r.transport(), r.docker_reference()) {
        (super::TRANSPORT, Some(d)) => Ok(DockerReference::new(d)),
        (t, _) => Err(Error::Unsupported(format!(
            "deleting images is not supported for {t}: images by kubemirror (only docker://); remove the files instead"
        ))),
    }
}
