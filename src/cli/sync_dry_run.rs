//! `kubemirror sync -f FILE --dry-run`: the plan of each `ImageMirror` as
//! text, one line per step, nothing written:
//!
//! ```text
//! imagemirror default/app: copy 1.2.0 (up to date tags are skipped at copy time)
//! imagemirror default/app: prune 1.0.0 sha256:…: Planned
//! imagemirror default/app: prune 0.9.0 sha256:…: Skipped: changed by someone else since this mirror wrote it (now sha256:…)
//! imagemirror default/app: error: …
//! ```

use crate::reconcile::{Error, MirrorOutcome, one_line};

/// The plan lines of one mirror (`id`: `namespace/name`).
pub fn plan_text(id: &str, outcome: &Result<MirrorOutcome, Error>) -> String {
    let head = format!("imagemirror {id}:");
    let o = match outcome {
        Ok(o) => o,
        Err(e) => return format!("{head} error: {}\n", one_line(e)),
    };
    let mut out = String::new();
    let tags = o.dry_run.as_deref().unwrap_or_default();
    if tags.is_empty() {
        out += &format!("{head} copy nothing (no source tag matches spec.tags)\n");
    } else {
        out += &format!(
            "{head} copy {} (tags already up to date are skipped when copying)\n",
            tags.join(", ")
        );
    }
    match &o.prune {
        None => {}
        Some(p) if p.entries.is_empty() => {
            out += &format!("{head} prune nothing\n");
        }
        Some(p) => {
            for e in &p.entries {
                out += &format!("{head} prune {} {}: {}", e.tag, e.digest, e.action.as_str());
                if !e.reason.is_empty() {
                    out += &format!(": {}", e.reason);
                }
                out.push('\n');
            }
        }
    }
    out
}
