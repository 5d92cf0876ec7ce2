//! Errors of a session's requests, naming the registry, repository and
//! operation (error bodies read up to [`MAX_ERROR_BODY`]).
use reqwest::Response;

use super::super::wire::{display_repo, join_what};
use super::{
    Op, Session, describe_connection_error, host_port, read_capped, registry_message, retry_after,
};
use crate::image::Error;

/// Error bodies are read up to this many bytes.
const MAX_ERROR_BODY: usize = 16 << 10;

impl Session {
    /// A `Error::Connection` for a failed request.
    pub fn connection_error(&self, op: &Op, host: &str, e: &reqwest::Error) -> Error {
        let (message, retryable) = describe_connection_error(e);
        Error::Connection {
            host: host.to_string(),
            op: format!("{} {}", op.op, op.what).trim().to_string(),
            message,
            retryable,
        }
    }

    /// A `Error::Registry` with a message of our own.
    pub fn plain_error(&self, op: &Op, status: u16, message: String) -> Error {
        Error::Registry {
            host: self.host.clone(),
            repository: display_repo(&op.repository),
            op: op.op.into(),
            status,
            message: join_what(&op.what, &message),
            retry_after: None,
        }
    }

    /// A `Error::Registry` from an error response (reads its body, bounded).
    pub async fn status_error(&self, op: &Op, resp: Response) -> Error {
        let status = resp.status().as_u16();
        // Without a Retry-After, a 429 says how long the host's cool-off is.
        let retry_after = retry_after(resp.headers()).or_else(|| {
            (status == 429)
                .then(|| self.hosts.throttle().closed_for(&host_port(resp.url())))
                .flatten()
        });
        // Always the registry's name, also for its token server or storage
        // backend: that is what the user configured (the `what` says more).
        let host = self.host.clone();
        let body = read_capped(resp, MAX_ERROR_BODY).await.unwrap_or_default();
        Error::Registry {
            host,
            repository: display_repo(&op.repository),
            op: op.op.into(),
            status,
            message: join_what(&op.what, &registry_message(&body)),
            retry_after,
        }
    }
}
