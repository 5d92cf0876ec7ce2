//! State shared by the HTTP handlers, the watches and the test hooks.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::hooks::{Injection, RecordedRequest};
use crate::store::{Change, State};

/// Default interval between watch BOOKMARK events.
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// The emulator's shared state.
#[derive(Debug)]
pub struct Inner {
    /// Objects, types, history (one lock for all writes).
    pub state: Mutex<State>,
    /// Interval between BOOKMARK events on watches that allow them.
    pub bookmark_interval: Mutex<Duration>,
    /// Bumped to end every open watch.
    pub close_watches: watch::Sender<u64>,
    /// Pending injected errors.
    pub injections: Mutex<Vec<Injection>>,
    /// Recorded requests.
    pub requests: Mutex<Vec<RecordedRequest>>,
    /// The address the server listens on.
    pub addr: SocketAddr,
}

impl Inner {
    /// A fresh emulator state for a server on `addr`.
    pub fn new(addr: SocketAddr) -> Arc<Self> {
        let (tx, _) = broadcast::channel::<Arc<Change>>(65_536);
        let (close, _) = watch::channel(0u64);
        Arc::new(Inner {
            state: Mutex::new(State::new(tx)),
            bookmark_interval: Mutex::new(DEFAULT_BOOKMARK_INTERVAL),
            close_watches: close,
            injections: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            addr,
        })
    }

    /// Locks the store (a poisoned lock is taken over: tests must not cascade).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current bookmark interval.
    pub fn bookmark_interval(&self) -> Duration {
        *self
            .bookmark_interval
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every open watch.
    pub fn close_all_watches(&self) {
        self.close_watches.send_modify(|n| *n += 1);
    }
}
