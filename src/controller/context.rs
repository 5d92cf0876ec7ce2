//! What every reconcile shares: the client, the event recorder, metrics, the
//! reconcilers' environment, and per-object backoff for transient failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource};

use super::Error;
use super::metrics::Metrics;
use crate::reconcile::{self, ErrorKind};

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "kubemirror-controller";

/// First and longest wait after transient failures.
const BACKOFF_MIN: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub env: reconcile::Env,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        env: reconcile::Env,
    ) -> Self {
        Context {
            client,
            recorder,
            metrics,
            env,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The next wait for object `key` after a transient failure (5 s doubling to 5 min).
    pub fn backoff(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().expect("not poisoned");
        let n = f.entry(key.to_string()).or_insert(0);
        let d = BACKOFF_MIN
            .saturating_mul(1u32 << (*n).min(10))
            .min(BACKOFF_MAX);
        *n += 1;
        d
    }

    /// A success: the next failure of `key` starts the backoff again.
    pub fn reset_backoff(&self, key: &str) {
        self.failures.lock().expect("not poisoned").remove(key);
    }

    /// Publish an Event about `obj`; a failure to publish is logged, not fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(truncate(note, 1000)),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "publishing an Event failed");
        }
    }

    /// The requeue decision for a failed reconcile of `key` (`error_policy`).
    pub fn error_action(&self, key: &str, e: &Error) -> Action {
        match e.kind() {
            ErrorKind::Spec => Action::await_change(),
            ErrorKind::RateLimited(Some(after)) => {
                Action::requeue(after.max(Duration::from_secs(1)))
            }
            ErrorKind::RateLimited(None) | ErrorKind::Transient => {
                Action::requeue(self.backoff(key))
            }
        }
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}
