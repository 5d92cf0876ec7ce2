//! Cool-off per registry host after `429 Too Many Requests`, one per
//! [`RegistryContext`](super::RegistryContext) (so per CLI run or controller).
//!
//! One object's backoff does not protect a registry from a thousand objects:
//! once a host answers 429, every request under the context to it waits (the
//! CLI) or fails at once without being sent (the controller, which requeues
//! the object for when the host opens again, instead of holding a reconcile
//! slot). The host stays closed for its `Retry-After`, or else for 1 s
//! doubling with each consecutive 429 up to [`MAX_COOL_OFF`]; any other
//! answer ends the doubling. A registry that rate-limits us therefore sees a
//! few requests per cool-off, however many images and objects are queued.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest cool-off without a `Retry-After`.
pub const MAX_COOL_OFF: Duration = Duration::from_secs(60);
/// The first cool-off without a `Retry-After`.
const FIRST_COOL_OFF: Duration = Duration::from_secs(1);
/// The longest `Retry-After` honoured (a registry asking for hours is
/// asking for a requeue, which the controller decides on).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
pub struct Throttle {
    hosts: Mutex<HashMap<String, CoolOff>>,
}

#[derive(Debug, Clone, Copy)]
struct CoolOff {
    until: Instant,
    strikes: u32,
}

impl Throttle {
    /// `host` answered 429 (with `retry_after` if it sent one).
    pub fn rate_limited(&self, host: &str, retry_after: Option<Duration>) {
        let mut hosts = self.hosts.lock().expect("throttle lock");
        let now = Instant::now();
        let e = hosts.entry(host.to_string()).or_insert(CoolOff {
            until: now,
            strikes: 0,
        });
        let wait = match retry_after {
            Some(d) => d.min(MAX_RETRY_AFTER),
            None => FIRST_COOL_OFF
                .saturating_mul(1 << e.strikes.min(16))
                .min(MAX_COOL_OFF),
        };
        e.strikes = e.strikes.saturating_add(1);
        e.until = e.until.max(now.checked_add(wait).unwrap_or(now));
    }

    /// `host` answered something other than 429.
    pub fn answered(&self, host: &str) {
        let mut hosts = self.hosts.lock().expect("throttle lock");
        if let Some(e) = hosts.get_mut(host) {
            e.strikes = 0;
            if e.until <= Instant::now() {
                hosts.remove(host);
            }
        }
    }

    /// How much longer `host` is closed, if it is.
    pub fn closed_for(&self, host: &str) -> Option<Duration> {
        let hosts = self.hosts.lock().expect("throttle lock");
        let left = hosts
            .get(host)?
            .until
            .checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cool_off_doubles_honours_retry_after_and_resets() {
        let t = Throttle::default();
        assert_eq!(t.closed_for("r"), None);
        t.rate_limited("r", None);
        let first = t.closed_for("r").unwrap();
        assert!(
            first <= FIRST_COOL_OFF && first > FIRST_COOL_OFF / 2,
            "{first:?}"
        );
        t.rate_limited("r", None);
        let second = t.closed_for("r").unwrap();
        assert!(second > FIRST_COOL_OFF, "doubles: {second:?}");
        assert_eq!(t.closed_for("other"), None, "per host");
        for _ in 0..20 {
            t.rate_limited("r", None);
        }
        assert!(t.closed_for("r").unwrap() <= MAX_COOL_OFF);

        t.rate_limited("huge", Some(Duration::MAX));
        assert!(t.closed_for("huge").unwrap() <= MAX_RETRY_AFTER);
        t.rate_limited("s", Some(Duration::from_secs(30)));
        assert!(t.closed_for("s").unwrap() > Duration::from_secs(29));
        // A later, shorter cool-off never shortens the current one.
        t.rate_limited("s", Some(Duration::from_secs(1)));
        assert!(t.closed_for("s").unwrap() > Duration::from_secs(29));

        // Another answer ends the doubling (the open cool-off runs out).
        t.answered("r");
        assert!(t.closed_for("r").is_some());
        let u = Throttle::default();
        u.rate_limited("h", Some(Duration::ZERO));
        u.answered("h");
        u.rate_limited("h", None);
        assert!(
            u.closed_for("h").unwrap() <= FIRST_COOL_OFF,
            "strikes reset"
        );
    }
}
