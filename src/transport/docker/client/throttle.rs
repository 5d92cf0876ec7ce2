//! The registry context's 429 cool-off as a session sees it (wait, or fail
//! fast for the controller), and the observer every answer is reported to.
use reqwest::{Method, Response, StatusCode};

use super::super::wire::{display_repo, join_what};
use super::{MAX_RETRY_WAIT, Op, Session, retry_after};
use crate::image::{Error, Result};

impl Session {
    /// Tell the context's throttle about a 429 (other answers go through `observe`).
    pub(super) fn throttle_note(&self, host: &str, resp: &Response) {
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            self.hosts
                .throttle()
                .rate_limited(host, retry_after(resp.headers()));
        }
    }

    /// While `host` cools off after a 429 (the context's throttle): wait, or (with
    /// `fail_fast_when_rate_limited`) fail at once without sending anything.
    pub(super) async fn wait_for_host(&self, op: &Op, host: &str) -> Result<()> {
        let Some(wait) = self.hosts.throttle().closed_for(host) else {
            return Ok(());
        };
        if !self.fail_fast_when_rate_limited {
            // However long the host's cool-off, one wait is at most the cap.
            tokio::time::sleep(wait.min(MAX_RETRY_WAIT)).await;
            return Ok(());
        }
        Err(Error::Registry {
            host: self.host.clone(),
            repository: display_repo(&op.repository),
            op: op.op.into(),
            status: 429,
            message: join_what(
                &op.what,
                // No figure in the text: the status it ends up in stays the
                // same from one requeue to the next.
                &format!(
                    "{host} is rate limiting us (429 Too Many Requests): waiting before asking again"
                ),
            ),
            retry_after: Some(wait),
        })
    }

    pub(in crate::transport::docker) fn observe(&self, host: &str, method: &Method, status: u16) {
        if status != 0 && status != 429 {
            self.hosts.throttle().answered(host);
        }
        if let Some(o) = &self.observer {
            o.request(host, method.as_str(), status);
        }
    }
}
