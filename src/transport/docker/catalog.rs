//! Catalog and tag listing (`/v2/_catalog`, `/v2/<name>/tags/list`), following
//! `Link: <…>; rel="next"` pagination; [`DockerRegistry`] and
//! [`DockerRepository`] implement the image layer's `Registry`/`Repository`.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::LINK;

use super::DockerReference;
use super::auth::Scopes;
use super::client::{Op, Session, read_capped};
use super::page;
use crate::image::{
    Error, ImageReference, Registry, Repository, Result, SystemContext, TagListing,
};
use crate::reference::{self, Reference};

/// Pages are at most this large (JSON of names; Distribution sends a whole
/// tag list in one page when not asked for `?n=`).
const MAX_PAGE: usize = 16 << 20;
/// Pages followed at most (a registry that loops its `Link` must not hang us).
const MAX_PAGES: usize = 10_000;

/// The tags of `r`'s repository that `ctx.tag_listing` keeps, in the
/// registry's order (what `kubemirror list-tags` prints and the reconciler
/// filters). Pages are parsed one at a time and names not kept are dropped
/// as they are read, so memory holds one page and what is kept; past
/// `ctx.tag_listing.max_tags` names the listing fails.
pub async fn list_tags(r: &Reference, ctx: &SystemContext) -> Result<Vec<String>> {
    let session = Session::get(ctx, r.registry())?;
    tags_of(&session, r.repository(), None, &ctx.tag_listing).await
}

async fn tags_of(
    session: &Session,
    repository: &str,
    page: Option<usize>,
    listing: &TagListing,
) -> Result<Vec<String>> {
    let op = Op {
        op: "list tags",
        ..Op::pull(repository, "")
    };
    let first = match page {
        Some(n) => format!("/v2/{repository}/tags/list?n={n}"),
        None => format!("/v2/{repository}/tags/list"),
    };
    paginate(session, &op, first, "tags", listing).await
}

/// GET `first`, then each `rel="next"` (a `Link` to another host is
/// followed without credentials: see [`Session::send`]), collecting the
/// strings of array `key` that `listing` keeps.
async fn paginate(
    session: &Session,
    op: &Op,
    first: String,
    key: &str,
    listing: &TagListing,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut read = 0usize;
    let mut next = Some(first);
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(session.plain_error(op, 0, format!("more than {MAX_PAGES} pages")));
        }
        let resp = session.send(op, Method::GET, &path, &|r| r).await?;
        if !resp.status().is_success() {
            return Err(session.status_error(op, resp).await);
        }
        let url = resp.url().clone();
        next = resp
            .headers()
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link)
            .and_then(|l| url.join(&l).ok())
            .map(|u| u.to_string());
        let body = read_capped(resp, MAX_PAGE)
            .await
            .map_err(|m| session.plain_error(op, 0, m))?;
        let mut over = false;
        let mut each = |name: String| {
            read += 1;
            if read > listing.max_tags {
                over = true;
                return false;
            }
            if listing.keep.as_ref().is_none_or(|k| k(&name)) {
                out.push(name);
            }
            true
        };
        let parsed = page::parse(&body, key, &mut each);
        if over {
            return Err(session.plain_error(
                op,
                0,
                format!(
                    "the registry lists more than {} {key}: raise the limit (the controller's --max-tags) or ask the registry's owner",
                    listing.max_tags
                ),
            ));
        }
        parsed.map_err(|e| session.plain_error(op, 200, format!("invalid JSON: {e}")))?;
    }
    Ok(out)
}

/// The target of `rel="next"` in one `Link` header value.
pub fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

/// A registry's catalog.
pub struct DockerRegistry {
    session: Arc<Session>,
    registry: String,
    ctx: SystemContext,
    page_size: Option<usize>,
}

/// The catalog of `registry` (`host[:port]`, or `docker.io`).
pub fn registry(registry: &str, ctx: &SystemContext) -> Result<DockerRegistry> {
    Ok(DockerRegistry {
        session: Session::get(ctx, registry)?,
        registry: registry.to_string(),
        ctx: ctx.clone(),
        page_size: None,
    })
}

impl DockerRegistry {
    /// Ask for pages of `n` entries (`?n=`); the registry's default otherwise.
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = Some(n);
        self
    }
}

#[async_trait]
impl Registry for DockerRegistry {
    async fn repositories(&self) -> Result<Vec<String>> {
        let op = Op {
            repository: String::new(),
            op: "catalog",
            what: String::new(),
            scopes: Scopes::default().with("registry:catalog:*".into()),
        };
        let first = match self.page_size {
            Some(n) => format!("/v2/_catalog?n={n}"),
            None => "/v2/_catalog".to_string(),
        };
        // The catalog is bounded like a tag list (same cap), and kept whole.
        let all = TagListing {
            max_tags: self.ctx.tag_listing.max_tags,
            keep: None,
        };
        paginate(&self.session, &op, first, "repositories", &all).await
    }

    fn repository(&self, name: &str) -> Result<Box<dyn Repository>> {
        let r = reference::parse(&format!("{}/{name}", self.registry))?;
        Ok(Box::new(DockerRepository {
            reference: r,
            ctx: self.ctx.clone(),
            page_size: self.page_size,
        }))
    }
}

/// One repository of a registry.
pub struct DockerRepository {
    reference: Reference,
    ctx: SystemContext,
    page_size: Option<usize>,
}

#[async_trait]
impl Repository for DockerRepository {
    fn name(&self) -> String {
        reference::name(&self.reference)
    }

    async fn tags(&self) -> Result<Vec<String>> {
        let session = Session::get(&self.ctx, self.reference.registry())?;
        tags_of(
            &session,
            self.reference.repository(),
            self.page_size,
            &self.ctx.tag_listing,
        )
        .await
    }

    fn image(&self, tag_or_digest: &str) -> Result<Box<dyn ImageReference>> {
        let r = if tag_or_digest.contains(':') {
            crate::digest::parse(tag_or_digest).map_err(|e| Error::Invalid(e.to_string()))?;
            reference::with_digest(&self.reference, tag_or_digest)
        } else if reference::is_valid_tag(tag_or_digest) {
            reference::with_tag(&self.reference, tag_or_digest)
        } else {
            return Err(Error::Invalid(format!("invalid tag {tag_or_digest:?}")));
        };
        Ok(Box::new(DockerReference::new(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://x/a>; rel="prev", <https://x/b>; rel=next"#).as_deref(),
            Some("https://x/b")
        );
        assert_eq!(next_link(r#"<https://x/a>; rel="prev""#), None);
    }
}
