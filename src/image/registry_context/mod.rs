//! One registry context: everything this process knows about the registries
//! it talks to, held in one handle that the CLI or the controller creates and
//! carries in every [`SystemContext`](crate::image::SystemContext) (as
//! regclient's client owns its per-host throttles):
//!
//! - [`sessions`](RegistryContext::session): transport sessions (the registry
//!   transport's HTTP client, ping outcome, tokens), keyed by host and
//!   everything in a context that changes what goes on the wire, dropped after
//!   a few idle minutes;
//! - [`throttle`](RegistryContext::throttle): the cool-off per host after a
//!   `429 Too Many Requests`;
//! - [`limits`](RegistryContext::limits): the adaptive window of blob
//!   transfers per host that every copy under this context shares;
//! - [`lock_writes`](RegistryContext::lock_writes): one writer at a time per
//!   local store whose tags share one file (an OCI layout's `index.json`).
//!
//! Two contexts share nothing: tests (and two controllers in one process)
//! get their own by [`RegistryContext::new`]. Callers that do not care use
//! [`RegistryContext::process_default`] (what `SystemContext::default()`
//! carries): one context for the whole process, as before this handle existed.
//!
//! The session cache holds values of a type this layer does not know (the
//! registry transport's `Shared`, which sits a layer below and owns a
//! `reqwest::Client`): they are stored as `Arc<dyn Any>` and handed back by
//! type, so that `image` does not depend on a transport.

pub mod throttle;
pub mod windows;

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use throttle::Throttle;
pub use windows::{Permit, RegistryLimits, Tee, Window};

use super::Result;

/// Idle sessions are dropped after this long.
pub const SESSION_IDLE: Duration = Duration::from_secs(300);

/// Sessions (by host and context key), the 429 cool-off and the blob windows
/// of one CLI run or one controller. Cheap to share: carry it as an `Arc`.
#[derive(Default)]
pub struct RegistryContext {
    sessions: Mutex<HashMap<SessionKey, CacheEntry>>,
    throttle: Throttle,
    limits: Arc<RegistryLimits>,
    writes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// `(host, context key)`.
type SessionKey = (String, String);

struct CacheEntry {
    value: Arc<dyn Any + Send + Sync>,
    last_used: Instant,
}

impl fmt::Debug for RegistryContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sessions = self.sessions.lock().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("RegistryContext")
            .field("sessions", &sessions)
            .finish_non_exhaustive()
    }
}

impl RegistryContext {
    /// A fresh context that shares nothing with any other.
    pub fn new() -> Arc<RegistryContext> {
        Arc::new(RegistryContext::default())
    }

    /// The context of callers that did not make one (what
    /// `SystemContext::default()` carries): one per process.
    pub fn process_default() -> Arc<RegistryContext> {
        static DEFAULT: OnceLock<Arc<RegistryContext>> = OnceLock::new();
        DEFAULT.get_or_init(RegistryContext::new).clone()
    }

    /// The 429 cool-off per host.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// The blob-transfer windows per host.
    pub fn limits(&self) -> &Arc<RegistryLimits> {
        &self.limits
    }

    /// The session of type `T` for `host` under `key` (everything in a
    /// context that changes what a session sends), made by `make` when there
    /// is none (or it sat idle for [`SESSION_IDLE`]). Sessions of other types
    /// under the same key are never confused with it.
    pub fn session<T: Any + Send + Sync>(
        &self,
        host: &str,
        key: String,
        make: impl FnOnce() -> Result<T>,
    ) -> Result<Arc<T>> {
        let key = (
            host.to_string(),
            format!("{}|{key}", std::any::type_name::<T>()),
        );
        let mut map = self.sessions.lock().expect("session cache poisoned");
        let now = Instant::now();
        map.retain(|_, e| now.duration_since(e.last_used) < SESSION_IDLE);
        if let Some(e) = map.get_mut(&key)
            && let Ok(v) = e.value.clone().downcast::<T>()
        {
            e.last_used = now;
            return Ok(v);
        }
        let value = Arc::new(make()?);
        map.insert(
            key,
            CacheEntry {
                value: value.clone(),
                last_used: now,
            },
        );
        Ok(value)
    }

    /// Wait until nothing else under this context writes to the store `key`
    /// names ([`ImageReference::write_lock`](crate::image::ImageReference::write_lock)),
    /// then hold it until the guard drops. Not reentrant: a writer must not
    /// ask for the same key again while it holds it.
    pub async fn lock_writes(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut writes = self.writes.lock().expect("write locks poisoned");
            // Keys no writer holds or waits for are forgotten.
            writes.retain(|_, l| Arc::strong_count(l) > 1);
            writes.entry(key.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Sessions held now (for tests and debugging).
    pub fn session_count(&self) -> usize {
        self.sessions.lock().expect("session cache poisoned").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_shared_by_key_and_type_and_contexts_share_nothing() {
        let a = RegistryContext::new();
        let one = a.session("h", "k".into(), || Ok(1u32)).unwrap();
        let again = a.session("h", "k".into(), || Ok(2u32)).unwrap();
        assert!(Arc::ptr_eq(&one, &again));
        let other_key = a.session("h", "k2".into(), || Ok(3u32)).unwrap();
        assert_eq!(*other_key, 3);
        let other_type = a.session("h", "k".into(), || Ok(4u64)).unwrap();
        assert_eq!(*other_type, 4);
        assert_eq!(a.session_count(), 3);

        let b = RegistryContext::new();
        assert_eq!(*b.session("h", "k".into(), || Ok(5u32)).unwrap(), 5);
        a.throttle()
            .rate_limited("h", Some(Duration::from_secs(30)));
        assert!(a.throttle().closed_for("h").is_some());
        assert_eq!(
            b.throttle().closed_for("h"),
            None,
            "cool-off is per context"
        );
        let w = a.limits().window("h", 2);
        assert_eq!(w.size(), 2);
        assert!(
            !Arc::ptr_eq(&w, &b.limits().window("h", 2)),
            "windows are per context"
        );
        assert!(Arc::ptr_eq(
            &RegistryContext::process_default(),
            &RegistryContext::process_default()
        ));
    }

    #[tokio::test]
    async fn writes_to_one_store_wait_for_each_other() {
        let a = RegistryContext::new();
        let held = a.lock_writes("/layout").await;
        // Another store is free; the same one waits.
        drop(a.lock_writes("/other").await);
        let same = a.lock_writes("/layout");
        tokio::pin!(same);
        assert!(
            futures::poll!(same.as_mut()).is_pending(),
            "a second writer to the same store did not wait"
        );
        drop(held);
        drop(same.await);
        assert!(
            a.writes.lock().unwrap().len() <= 1,
            "released keys are forgotten"
        );
    }

    #[test]
    fn a_failed_make_caches_nothing() {
        let a = RegistryContext::new();
        let e = a.session::<u32>("h", "k".into(), || {
            Err(crate::image::Error::Invalid("no".into()))
        });
        assert!(e.is_err());
        assert_eq!(a.session_count(), 0);
    }
}
