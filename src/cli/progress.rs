//! What `copy` shows while it works, as skopeo decides: when stdout is a
//! terminal, a progress bar (bytes, blobs, rate; `indicatif`, drawn on
//! stderr); otherwise skopeo's progress lines on stdout (`Getting image
//! source signatures`, `Copying blob sha256:…`, `Copying config sha256:…`,
//! `Writing manifest to image destination`, `Storing signatures`, and the
//! `… list …` lines of an index copy), in skopeo's order; `-q` shows neither.
//!
//! The copy engine moves the blobs of every image of an index in one
//! parallel pool, while skopeo copies image after image; the lines are
//! therefore a script made from the engine's [`Outline`], each line printed
//! once the event it announces has happened and every line before it is out.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};

use crate::copy::{Outline, Progress};
use crate::digest::Digest;

/// How `copy` reports progress.
pub enum Display {
    Bar(Arc<TerminalProgress>),
    Lines(Arc<LineProgress>),
}

impl Display {
    /// skopeo's choice: nothing with `quiet`; a bar when stdout is a
    /// terminal; else lines on stdout.
    pub fn choose(quiet: bool) -> Option<Display> {
        if quiet {
            None
        } else if std::io::stdout().is_terminal() {
            Some(Display::Bar(TerminalProgress::new()))
        } else {
            Some(Display::Lines(Arc::new(LineProgress::default())))
        }
    }

    pub fn as_progress(&self) -> Arc<dyn Progress> {
        match self {
            Display::Bar(b) => b.clone(),
            Display::Lines(l) => l.clone(),
        }
    }

    pub fn finish(&self) {
        if let Display::Bar(b) = self {
            b.finish();
        }
    }
}

/// One bar for the whole copy: bytes moved, blobs done, rate.
pub struct TerminalProgress {
    bar: ProgressBar,
    total: AtomicU64,
    blobs: AtomicU64,
    done: AtomicU64,
}

impl TerminalProgress {
    fn new() -> Arc<Self> {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bytes_per_sec} [{wide_bar}] {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Arc::new(TerminalProgress {
            bar,
            total: AtomicU64::new(0),
            blobs: AtomicU64::new(0),
            done: AtomicU64::new(0),
        })
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

/// When a line of the script may be printed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Gate {
    Now,
    /// Once this blob has started (or been found at the destination).
    Blob(Digest),
    /// Once every blob is in place.
    Writing,
}

/// skopeo's progress lines on stdout (see the module docs).
#[derive(Default)]
pub struct LineProgress {
    state: Mutex<Script>,
}

#[derive(Default)]
struct Script {
    lines: Vec<(String, Gate)>,
    next: usize,
    started: HashSet<Digest>,
    writing: bool,
}

impl Script {
    /// Print every line whose gate is open, in order, stopping at the first closed one.
    fn advance(&mut self) {
        let mut out = std::io::stdout().lock();
        while let Some((line, gate)) = self.lines.get(self.next) {
            let open = match gate {
                Gate::Now => true,
                Gate::Blob(d) => self.started.contains(d) || self.writing,
                Gate::Writing => self.writing,
            };
            if !open {
                break;
            }
            // A closed stdout (`| head`) must not fail the copy.
            let _ = writeln!(out, "{line}");
            self.next += 1;
        }
        let _ = out.flush();
    }
}

/// The lines skopeo prints for `outline`, with their gates.
fn script(outline: &Outline) -> Vec<(String, Gate)> {
    let mut lines = Vec::new();
    let mut push = |s: String, g: Gate| lines.push((s, g));
    if let Some((selected, total)) = outline.list {
        if outline.signatures {
            push("Getting image list signatures".into(), Gate::Now);
        }
        push(
            format!("Copying {selected} of {total} images in list"),
            Gate::Now,
        );
    }
    let n = outline.images.len();
    for (i, image) in outline.images.iter().enumerate() {
        if outline.list.is_some() {
            push(
                format!("Copying image {} ({}/{n})", image.source_digest, i + 1),
                Gate::Now,
            );
        }
        if outline.signatures {
            push("Getting image source signatures".into(), Gate::Now);
        }
        for l in &image.layers {
            push(format!("Copying blob {l}"), Gate::Blob(l.clone()));
        }
        push(
            format!("Copying config {}", image.config),
            Gate::Blob(image.config.clone()),
        );
        push(
            "Writing manifest to image destination".into(),
            Gate::Writing,
        );
        push("Storing signatures".into(), Gate::Writing);
    }
    if outline.list.is_some() {
        push(
            "Writing manifest list to image destination".into(),
            Gate::Writing,
        );
        push("Storing list signatures".into(), Gate::Writing);
    }
    lines
}

impl Progress for LineProgress {
    fn outline(&self, outline: &Outline) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.lines = script(outline);
        s.advance();
    }

    fn blob_started(&self, digest: &Digest, _size: Option<u64>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.started.insert(digest.clone());
        s.advance();
    }

    fn writing_manifests(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.writing = true;
        s.advance();
    }

    fn up_to_date(&self, signatures: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if signatures {
            s.lines
                .push(("Getting image source signatures".into(), Gate::Now));
        }
        s.lines.push((
            "Skipping: image already present at destination".into(),
            Gate::Now,
        ));
        s.advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::OutlineImage;

    fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    #[test]
    fn a_list_copy_reads_as_skopeos() {
        let image = |c| OutlineImage {
            source_digest: d(c),
            layers: vec![d('1')],
            config: d('2'),
        };
        let outline = Outline {
            list: Some((2, 3)),
            images: vec![image('a'), image('b')],
            signatures: false,
        };
        let lines: Vec<String> = script(&outline).into_iter().map(|(l, _)| l).collect();
        assert_eq!(lines[0], "Copying 2 of 3 images in list");
        assert_eq!(lines[1], format!("Copying image {} (1/2)", d('a')));
        assert_eq!(lines[2], format!("Copying blob {}", d('1')));
        assert_eq!(lines[3], format!("Copying config {}", d('2')));
        assert_eq!(lines.last().unwrap(), "Storing list signatures");
        assert_eq!(lines.len(), 1 + 2 * 5 + 2);
    }
}
