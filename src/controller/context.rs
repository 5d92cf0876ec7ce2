//! What every reconcile shares: the client, the event recorder, metrics, the
//! reconcilers' environment, and per-object backoff for transient failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource};

use super::Error;
use super::metrics::Metrics;
use super::recorder::Recorder;
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
    backoff: Backoff,
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
            backoff: Backoff::default(),
        }
    }

    /// The next wait for object `key` after a transient failure.
    pub fn backoff(&self, key: &str) -> Duration {
        self.backoff.next(key)
    }

    /// A success: the next failure of `key` starts the backoff again.
    pub fn reset_backoff(&self, key: &str) {
        self.backoff.reset(key);
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
        requeue_after(e.kind(), || self.backoff(key))
            .map_or_else(Action::await_change, Action::requeue)
    }
}

/// When to try again after an error of `kind`: never until a change (spec
/// errors), after `Retry-After` (429), else after the object's backoff.
pub fn requeue_after(kind: ErrorKind, backoff: impl FnOnce() -> Duration) -> Option<Duration> {
    match kind {
        ErrorKind::Spec => None,
        ErrorKind::RateLimited(Some(after)) => Some(rate_limit_wait(after)),
        ErrorKind::RateLimited(None) | ErrorKind::Transient => Some(backoff()),
    }
}

/// The longest requeue after a registry's `Retry-After` (a longer wait is this).
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(3600);

/// The requeue after a registry asked to wait `after`: at least 1 s and at
/// most [`MAX_RATE_LIMIT_WAIT`], plus up to 20 % so that objects waiting on
/// one registry do not return at once. Never panics, whatever `after` is.
pub fn rate_limit_wait(after: Duration) -> Duration {
    let base = after.clamp(Duration::from_secs(1), MAX_RATE_LIMIT_WAIT);
    base.saturating_add(base.mul_f64(rand::random::<f64>() * 0.2))
}

/// Per-object exponential backoff: 5 s doubling to 5 min, reset on success.
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    pub fn next(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().expect("not poisoned");
        let n = f.entry(key.to_string()).or_insert(0);
        let d = BACKOFF_MIN
            .saturating_mul(1u32 << (*n).min(10))
            .min(BACKOFF_MAX);
        *n += 1;
        d
    }

    pub fn reset(&self, key: &str) {
        self.failures.lock().expect("not poisoned").remove(key);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_object_and_resets() {
        let b = Backoff::default();
        let secs: Vec<u64> = (0..8).map(|_| b.next("a").as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(b.next("b").as_secs(), 5, "per object");
        b.reset("a");
        assert_eq!(b.next("a").as_secs(), 5);
    }

    #[test]
    fn requeue_follows_the_error_kind() {
        let backoff = || Duration::from_secs(7);
        assert_eq!(requeue_after(ErrorKind::Spec, backoff), None);
        let after = requeue_after(
            ErrorKind::RateLimited(Some(Duration::from_secs(30))),
            backoff,
        )
        .unwrap();
        assert!(after >= Duration::from_secs(30) && after <= Duration::from_secs(36));
        let huge = requeue_after(ErrorKind::RateLimited(Some(Duration::MAX)), backoff).unwrap();
        assert!(huge >= MAX_RATE_LIMIT_WAIT && huge <= MAX_RATE_LIMIT_WAIT.mul_f64(1.2));
        assert_eq!(
            requeue_after(ErrorKind::RateLimited(None), backoff),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            requeue_after(ErrorKind::Transient, backoff),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn long_notes_are_cut_on_a_char_boundary() {
        let s = truncate("é".repeat(600), 1000);
        assert!(s.len() <= 1003 && s.ends_with('…'));
    }
}
