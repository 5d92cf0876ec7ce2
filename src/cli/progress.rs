//! The progress display of `copy` on a terminal (bytes, blobs, rate), built on
//! `indicatif`. Nothing is drawn when stderr is not a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use crate::copy::Progress;
use crate::digest::Digest;

/// One bar for the whole copy: bytes moved, blobs done, rate.
pub struct TerminalProgress {
    bar: ProgressBar,
    total: AtomicU64,
    blobs: AtomicU64,
    done: AtomicU64,
}

impl TerminalProgress {
    /// A display when stderr is a terminal, `None` when piped.
    pub fn if_terminal() -> Option<Arc<Self>> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bytes_per_sec} [{wide_bar}] {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(Arc::new(TerminalProgress {
            bar,
            total: AtomicU64::new(0),
            blobs: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }))
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn message(&self) {
        let (d, b) = (
            self.done.load(Ordering::Relaxed),
            self.blobs.load(Ordering::Relaxed),
        );
        self.bar.set_message(format!("{d}/{b} blobs"));
    }
}

impl Progress for TerminalProgress {
    fn blob_started(&self, _digest: &Digest, size: Option<u64>) {
        let total = self.total.fetch_add(size.unwrap_or(0), Ordering::Relaxed) + size.unwrap_or(0);
        self.bar.set_length(total);
        self.blobs.fetch_add(1, Ordering::Relaxed);
        self.message();
    }

    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }

    fn blob_done(&self, _digest: &Digest, _skipped: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.message();
    }
}
