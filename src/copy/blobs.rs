//! Moving blobs: each one is reused at the destination when possible (present,
//! or mounted from another repository of the same registry), else streamed
//! source → destination with no temporary copy; the destination verifies the
//! digest as it writes. Transfers run in parallel within `--jobs` and the
//! adaptive per-registry windows; a transfer that fails with a retryable error
//! is retried from the start.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use super::Progress;
use crate::image::registry_context::Window;
use crate::image::{Blob, BlobInfo, Error, ImageDestination, ImageSource, ReuseHint, Reused};

/// Counters of what the mover did.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes: AtomicU64,
    pub copied: AtomicU64,
    pub skipped: AtomicU64,
    pub mounted: AtomicU64,
}

/// Copies blobs between one source and one destination.
pub struct BlobMover<'a> {
    pub src: &'a dyn ImageSource,
    pub dst: &'a dyn ImageDestination,
    pub hint: ReuseHint,
    pub windows: Vec<Arc<Window>>,
    pub retry_times: u32,
    pub progress: Option<Arc<dyn Progress>>,
    pub counters: Counters,
}

impl BlobMover<'_> {
    /// Copy every blob in `blobs` (already de-duplicated), `jobs` at a time.
    pub async fn copy_all(&self, blobs: Vec<BlobInfo>, jobs: usize) -> Result<(), Error> {
        // Collected first so that the future stays `Send` (see engine.rs).
        let copies: Vec<_> = blobs.into_iter().map(|b| self.copy_one(b)).collect();
        futures::stream::iter(copies)
            .buffer_unordered(jobs.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn copy_one(&self, info: BlobInfo) -> Result<(), Error> {
        if let Some(p) = &self.progress {
            p.blob_started(&info.digest, info.size);
        }
        match self.dst.try_reusing_blob(&info, &self.hint).await? {
            Some(Reused::Present) => {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                self.done(&info, true);
                return Ok(());
            }
            Some(Reused::Mounted) => {
                self.counters.mounted.fetch_add(1, Ordering::Relaxed);
                self.done(&info, true);
                return Ok(());
            }
            None => {}
        }
        let mut attempt = 0;
        loop {
            match self.transfer(&info).await {
                Ok(n) => {
                    self.counters.bytes.fetch_add(n, Ordering::Relaxed);
                    self.counters.copied.fetch_add(1, Ordering::Relaxed);
                    self.done(&info, false);
                    return Ok(());
                }
                Err(e) if e.is_retryable() && attempt < self.retry_times => {
                    attempt += 1;
                    // A registry's Retry-After, at most a minute between attempts.
                    let wait = e
                        .retry_after()
                        .map(|w| w.min(Duration::from_secs(60)))
                        .unwrap_or_else(|| backoff(attempt));
                    tracing::warn!(blob = %info.digest, attempt, "retrying blob after error: {e}");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt: stream the blob through; returns the bytes moved.
    async fn transfer(&self, info: &BlobInfo) -> Result<u64, Error> {
        let mut permits = Vec::with_capacity(self.windows.len());
        for w in &self.windows {
            permits.push(w.acquire().await);
        }
        let blob = self.src.get_blob(info).await?;
        let moved = Arc::new(AtomicU64::new(0));
        let counter = moved.clone();
        let progress = self.progress.clone();
        let stream = blob
            .stream
            .inspect_ok(move |chunk| {
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if let Some(p) = &progress {
                    p.bytes(chunk.len() as u64);
                }
            })
            .boxed();
        let size = info.size.or(blob.size);
        self.dst.put_blob(info, Blob { stream, size }).await?;
        drop(permits);
        Ok(moved.load(Ordering::Relaxed))
    }

    fn done(&self, info: &BlobInfo, skipped: bool) {
        if let Some(p) = &self.progress {
            p.blob_done(&info.digest, skipped);
        }
    }
}

/// Exponential backoff with jitter: ~0.5 s, 1 s, 2 s … capped at 30 s.
pub fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << attempt.min(6).saturating_sub(1));
    let jitter = rand::random::<u64>() % (base / 2 + 1);
    Duration::from_millis((base + jitter).min(30_000))
}
