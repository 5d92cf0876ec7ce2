//! One [`Session`] per (registry, SystemContext): the `reqwest::Client` (so
//! connections are pooled and kept alive), the endpoint (scheme, and the auth
//! challenge learned from the first refused request — there is no `/v2/` ping
//! unless `tls_verify = false` needs an HTTPS probe), resolved credentials and
//! the token cache.
//! Every request goes through [`Session::send`], which adds authorization
//! (only to the registry's own origin: a `Location` or `Link` naming another
//! host or scheme is followed without credentials),
//! retries transient failures (connection errors, 408, 429, 5xx) with
//! exponential backoff and jitter while honouring `Retry-After`, renews a
//! refused Bearer token once, and reports to the context's observer.
//!
//! Sessions are shared through the context's
//! [`RegistryContext`](crate::image::RegistryContext) (keyed by host and
//! everything in the context that changes what goes on the wire) and dropped
//! after a few idle minutes, so a reconciler that copies tag after tag pings
//! and logs in once.
//!
//! | file | `impl Session` for |
//! |---|---|
//! | `mod.rs` | [`Session::get`]: the session of a registry under a context |
//! | `key` | what in a context makes another session (TLS, cert dirs, credentials) |
//! | `endpoint` | the scheme probe and the auth challenge |
//! | `credentials` | `--creds`, else the credential store, per repository |
//! | `send` | authorized requests, redirects, retries with backoff |
//! | `throttle` | the context's 429 cool-off and the request observer |
//! | `errors` | registry and connection errors with the operation's context |

mod credentials;
mod endpoint;
mod errors;
mod key;
mod send;
mod throttle;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::auth::{CachedToken, Challenge, Scopes};
use super::tls;
pub use super::wire::{
    MAX_RETRY_WAIT, backoff, describe_connection_error, host_port, read_capped, registry_message,
    retry_after,
};
use crate::image::{
    Auth, CredentialStore, Error, RegistryContext, RequestObserver, Result, SystemContext,
};
pub(in crate::transport::docker) use endpoint::Endpoint;
pub(in crate::transport::docker) use key::context_key;

/// What a request is for, for error messages and token scopes.
#[derive(Debug, Clone)]
pub struct Op {
    /// The repository (`""` for registry-wide calls).
    pub repository: String,
    /// `pull`, `push`, `list tags`, `catalog`.
    pub op: &'static str,
    /// What is being read or written (`manifest v1`, `blob sha256:…`).
    pub what: String,
    pub scopes: Scopes,
}

impl Op {
    pub fn pull(repository: &str, what: impl Into<String>) -> Self {
        Op {
            repository: repository.into(),
            op: "pull",
            what: what.into(),
            scopes: Scopes::repository(repository, "pull"),
        }
    }

    pub fn push(repository: &str, what: impl Into<String>) -> Self {
        Op {
            repository: repository.into(),
            op: "push",
            what: what.into(),
            scopes: Scopes::repository(repository, "pull,push"),
        }
    }
}

/// A connection to one registry for one source or destination: the shared
/// state plus this context's observer and retry budget.
pub struct Session {
    /// `host[:port]` requests go to (`registry-1.docker.io` for Docker Hub).
    pub host: String,
    /// The registry as references name it (`docker.io`), for credential lookup.
    pub registry: String,
    pub(in crate::transport::docker) shared: Arc<Shared>,
    /// The cool-off per host is this context's.
    hosts: Arc<RegistryContext>,
    retry_times: u32,
    observer: Option<Arc<dyn RequestObserver>>,
    fail_fast_when_rate_limited: bool,
}

/// What every session of one registry under equivalent contexts (same TLS
/// settings and credentials) shares: the HTTP client and its connection
/// pool, the ping's outcome, resolved credentials and the token cache.
/// Observers and retry budgets are not part of it, so that the copy engine
/// wrapping each copy's observer still reuses connections and tokens.
pub(in crate::transport::docker) struct Shared {
    pub(in crate::transport::docker) http: reqwest::Client,
    insecure: bool,
    explicit: Option<Auth>,
    store: Option<Arc<dyn CredentialStore>>,
    endpoint: OnceCell<Endpoint>,
    /// A challenge learned from a refused request when the ping asked for none.
    learned: Mutex<Option<Challenge>>,
    creds: Mutex<HashMap<String, Option<Auth>>>,
    pub(in crate::transport::docker) tokens: Mutex<HashMap<String, CachedToken>>,
    pub(in crate::transport::docker) token_fetch: tokio::sync::Mutex<()>,
    /// What the registry's answers said of the OCI 1.1 referrers API (see
    /// `referrers::list`); the first request is sent alone.
    pub(in crate::transport::docker) referrers_api: super::referrers::ApiState,
}

impl Shared {
    fn new(ctx: &SystemContext, host: &str) -> Result<Shared> {
        let config = tls::client_config(ctx, host)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(
                ctx.user_agent
                    .as_deref()
                    .unwrap_or(concat!("kubemirror/", env!("CARGO_PKG_VERSION"))),
            )
            .build()
            .map_err(|e| Error::Connection {
                host: host.into(),
                op: "TLS setup".into(),
                message: crate::image::one_line(&e),
                retryable: false,
            })?;
        Ok(Shared {
            http,
            insecure: ctx.tls_verify == Some(false),
            explicit: ctx.credentials.clone(),
            store: ctx.credential_store.clone(),
            endpoint: OnceCell::new(),
            learned: Mutex::new(None),
            creds: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            token_fetch: tokio::sync::Mutex::new(()),
            referrers_api: Default::default(),
        })
    }
}

impl Session {
    /// The shared session for `registry` (a reference's registry name) under `ctx`.
    pub fn get(ctx: &SystemContext, registry: &str) -> Result<Arc<Session>> {
        let host = match registry {
            crate::reference::DOCKER_HUB | "index.docker.io" => {
                crate::reference::DOCKER_HUB_ENDPOINT
            }
            other => other,
        };
        let shared = ctx
            .registry
            .session(host, context_key(ctx, host), || Shared::new(ctx, host))?;
        Ok(Arc::new(Session {
            host: host.into(),
            registry: registry.into(),
            shared,
            hosts: ctx.registry.clone(),
            retry_times: ctx.retry_times,
            observer: ctx.observer.clone(),
            fail_fast_when_rate_limited: ctx.fail_fast_when_rate_limited,
        }))
    }

    /// Retries after a first failed attempt.
    pub fn retry_times(&self) -> u32 {
        self.retry_times
    }
}
