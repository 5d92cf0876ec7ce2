//! Adaptive concurrency per registry (AIMD, after ocync's per-registry
//! window): every registry host has a window of blob transfers that may run
//! at once. A 429 or 503 answer halves it (never below 1); each success grows
//! it by `1/window`, so it climbs back by about one per window's worth of
//! successes, up to its ceiling: the largest `--jobs` any copy under the
//! [`RegistryContext`](super::RegistryContext) asked for (a later copy asking
//! for more raises it; the first copy does not fix it). The window is fed by
//! the transports' [`RequestObserver`], so it sees throttling even when the
//! transport's own retry then succeeded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::image::RequestObserver;

/// One registry's window.
#[derive(Debug)]
pub struct Window {
    semaphore: Arc<Semaphore>,
    state: Mutex<WindowState>,
}

#[derive(Debug)]
struct WindowState {
    /// The current window (fractional, for additive increase).
    size: f64,
    /// Permits that exist (held or free) = floor(size), minus debt.
    permits: usize,
    /// Permits to take out of circulation as they are released.
    debt: usize,
    ceiling: usize,
}

impl Window {
    fn new(ceiling: usize) -> Self {
        let ceiling = ceiling.max(1);
        Window {
            semaphore: Arc::new(Semaphore::new(ceiling)),
            state: Mutex::new(WindowState {
                size: ceiling as f64,
                permits: ceiling,
                debt: 0,
                ceiling,
            }),
        }
    }

    /// Wait for a slot.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        let permit = self
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("window semaphore is never closed");
        Permit {
            window: self.clone(),
            permit: Some(permit),
        }
    }

    /// The current window size (whole transfers).
    pub fn size(&self) -> usize {
        let s = self.state.lock().expect("window lock");
        s.permits - s.debt.min(s.permits)
    }

    /// Throttled: halve the window.
    pub fn decrease(&self) {
        let mut s = self.state.lock().expect("window lock");
        s.size = (s.size / 2.0).max(1.0);
        let target = s.size.floor() as usize;
        let effective = s.permits - s.debt.min(s.permits);
        if effective > target {
            s.debt += effective - target;
        }
        // Take free permits out at once; held ones are dropped on release.
        while s.debt > 0 {
            match self.semaphore.try_acquire() {
                Ok(p) => {
                    p.forget();
                    s.debt -= 1;
                    s.permits -= 1;
                }
                Err(_) => break,
            }
        }
    }

    /// The most transfers the window may grow to.
    pub fn ceiling(&self) -> usize {
        self.state.lock().expect("window lock").ceiling
    }

    /// Let the window grow to `ceiling` (never lowers it). A window that was
    /// not throttled (at its old ceiling) opens to the new one at once; a
    /// throttled one climbs back additively as before.
    pub fn raise_ceiling(&self, ceiling: usize) {
        let mut s = self.state.lock().expect("window lock");
        if ceiling <= s.ceiling {
            return;
        }
        let open = s.size >= s.ceiling as f64;
        s.ceiling = ceiling;
        if open {
            s.size = ceiling as f64;
            self.grow_to_size(&mut s);
        }
    }

    /// Mint or un-debt permits until the effective count is `floor(size)`.
    fn grow_to_size(&self, s: &mut WindowState) {
        let target = s.size.floor() as usize;
        let effective = s.permits - s.debt.min(s.permits);
        if target > effective {
            let add = target - effective;
            // Cancel debt first, then mint new permits.
            let cancel = add.min(s.debt);
            s.debt -= cancel;
            let mint = add - cancel;
            s.permits += mint;
            self.semaphore.add_permits(mint);
        }
    }

    /// A success: grow additively.
    pub fn increase(&self) {
        let mut s = self.state.lock().expect("window lock");
        if s.size >= s.ceiling as f64 {
            return;
        }
        s.size = (s.size + 1.0 / s.size).min(s.ceiling as f64);
        self.grow_to_size(&mut s);
    }

    fn release(&self, permit: OwnedSemaphorePermit) {
        let mut s = self.state.lock().expect("window lock");
        if s.debt > 0 {
            s.debt -= 1;
            s.permits -= 1;
            permit.forget();
        } else {
            drop(permit);
        }
    }
}

/// A held slot; returned to the window when dropped.
pub struct Permit {
    window: Arc<Window>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            self.window.release(p);
        }
    }
}

/// Windows by registry host, shared by every copy under one registry context.
#[derive(Debug, Default)]
pub struct RegistryLimits {
    windows: Mutex<HashMap<String, Arc<Window>>>,
}

impl RegistryLimits {
    /// The window for `host`, created with `ceiling` slots, or with its
    /// ceiling raised to `ceiling` when it was lower.
    pub fn window(&self, host: &str, ceiling: usize) -> Arc<Window> {
        let w = self
            .windows
            .lock()
            .expect("limits lock")
            .entry(host.to_string())
            .or_insert_with(|| Arc::new(Window::new(ceiling)))
            .clone();
        w.raise_ceiling(ceiling);
        w
    }

    fn existing(&self, host: &str) -> Option<Arc<Window>> {
        self.windows.lock().expect("limits lock").get(host).cloned()
    }
}

impl RequestObserver for RegistryLimits {
    fn request(&self, host: &str, _method: &str, status: u16) {
        if let Some(w) = self.existing(host) {
            match status {
                429 | 503 => w.decrease(),
                200..=399 => w.increase(),
                _ => {}
            }
        }
    }
}

/// Passes every observation to two observers.
pub struct Tee(pub Arc<dyn RequestObserver>, pub Arc<dyn RequestObserver>);

impl RequestObserver for Tee {
    fn request(&self, host: &str, method: &str, status: u16) {
        self.0.request(host, method, status);
        self.1.request(host, method, status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn halves_on_throttle_and_grows_back() {
        let limits = RegistryLimits::default();
        let w = limits.window("r:5000", 8);
        assert_eq!(w.size(), 8);
        limits.request("r:5000", "PUT", 429);
        assert_eq!(w.size(), 4);
        limits.request("r:5000", "PUT", 503);
        assert_eq!(w.size(), 2);
        for _ in 0..3 {
            limits.request("r:5000", "PUT", 201);
        }
        assert!(w.size() >= 3, "grew back to {}", w.size());
        for _ in 0..200 {
            limits.request("r:5000", "PUT", 201);
        }
        assert_eq!(w.size(), 8, "never above the ceiling");
        // Unknown hosts are ignored.
        limits.request("other", "GET", 429);
    }

    #[tokio::test]
    async fn a_later_copy_raises_the_ceiling() {
        let limits = RegistryLimits::default();
        let w = limits.window("h", 2);
        assert_eq!((w.size(), w.ceiling()), (2, 2));
        // A smaller ask does not lower it; a larger one raises it at once.
        assert_eq!(limits.window("h", 1).size(), 2);
        let w = limits.window("h", 6);
        assert_eq!((w.size(), w.ceiling()), (6, 6));
        assert_eq!(w.semaphore.available_permits(), 6);
        // A throttled window gets the higher ceiling but climbs back to it.
        limits.request("h", "PUT", 429);
        assert_eq!(w.size(), 3);
        limits.window("h", 10);
        assert_eq!((w.size(), w.ceiling()), (3, 10));
        for _ in 0..500 {
            limits.request("h", "PUT", 201);
        }
        assert_eq!(w.size(), 10);
    }

    #[tokio::test]
    async fn held_permits_shrink_on_release() {
        let limits = RegistryLimits::default();
        let w = limits.window("h", 4);
        let held: Vec<_> = futures::future::join_all((0..4).map(|_| w.acquire())).await;
        w.decrease(); // window 2, but all 4 are held
        assert_eq!(w.size(), 2);
        drop(held);
        assert_eq!(w.semaphore.available_permits(), 2);
    }
}
