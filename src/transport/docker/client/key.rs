//! What in a [`SystemContext`] makes a different session: TLS settings,
//! the certificate directories' contents (so that edited files are reread),
//! extra CAs, the user agent and the credentials (secrets only hashed).

use std::sync::Arc;

use super::super::auth;
use super::super::tls;
use crate::image::SystemContext;

/// Everything in `ctx` that changes what a session sends; secrets only
/// hashed. A credential store is keyed by its
/// [`fingerprint`](CredentialStore::fingerprint) (so that the controller,
/// which builds a store from a Secret on every reconcile, keeps one session
/// per registry: without it every reconcile paid a refused request to learn
/// the challenge again, and left an HTTP client behind for minutes), else by
/// address: the shared state holds a clone of the `Arc`, so the address
/// cannot be reused while the entry lives.
pub(in crate::transport::docker) fn context_key(ctx: &SystemContext, host: &str) -> String {
    let ca = crate::digest::sha256(&ctx.extra_ca_pem.concat());
    // The certificate directories' listings, so that edited files are reread.
    let mut listing = String::new();
    for dir in tls::cert_dirs(ctx, host) {
        let mut entries: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                let mtime = m.modified().ok()?;
                Some(format!("{:?}:{}:{:?}", e.file_name(), m.len(), mtime))
            })
            .collect();
        entries.sort();
        listing += &format!("{}[{}]", dir.display(), entries.join(","));
    }
    let listing = crate::digest::sha256(listing.as_bytes());
    let store = match &ctx.credential_store {
        None => "none".to_string(),
        Some(s) => s
            .fingerprint()
            .map(|f| format!("fp:{f}"))
            .unwrap_or_else(|| format!("at:{:x}", Arc::as_ptr(s) as *const () as usize)),
    };
    format!(
        "{:?}|{:?}|{}|{}|{}|{store}",
        ctx.tls_verify,
        ctx.user_agent,
        listing.digest(),
        ca.digest(),
        auth::fingerprint(ctx.credentials.as_ref()),
    )
}
