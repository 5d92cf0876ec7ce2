//! Status: pure functions from a reconcile's outcome (and the previous
//! status) to the new status and its conditions (`Ready`, `Reconciling`,
//! `Stalled`, kstatus style: the last two are present only while `True`).
//!
//! Rules: a condition's `lastTransitionTime` changes only when its status
//! does; a tag found up to date keeps the entry of the copy that last wrote
//! it; [`differs`] compares statuses without their timestamps, so a driver can
//! skip writes that would only move clocks.

use serde::Serialize;

use super::Error;
use super::apply::{InspectOutcome, MirrorOutcome, TagResult};
use super::prune::Action as PruneAction;
use crate::api::v1alpha1::{
    CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED, Condition, ImageInspectionStatus,
    ImageMirrorStatus, PruneStatus, TagStatus, TagSummary, Time,
};

/// Longest condition message; longer ones are cut (the tags list holds details).
pub const MAX_MESSAGE: usize = 1024;

/// Set condition `type_`, keeping `lastTransitionTime` when the status is unchanged.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let message = truncate(message);
    let existing = conditions.iter_mut().find(|c| c.type_ == type_);
    match existing {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now.clone();
            }
            c.status = status.to_string();
            c.reason = reason.to_string();
            c.message = message;
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message,
            observed_generation: generation,
            last_transition_time: now.clone(),
        }),
    }
    conditions.sort_by_key(|c| condition_order(&c.type_));
}

/// Drop condition `type_` (abnormal-true conditions are absent when false).
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// The condition of `type_`, if present.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether condition `type_` is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| c.status == "True")
}

fn condition_order(t: &str) -> u8 {
    match t {
        CONDITION_READY => 0,
        CONDITION_RECONCILING => 1,
        CONDITION_STALLED => 2,
        _ => 3,
    }
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return sanitise(message, MAX_MESSAGE);
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    sanitise(&format!("{}…", &message[..end]), MAX_MESSAGE + 1)
}

/// `s` made safe to show in a status, event or log: control characters
/// (newlines, NUL, escape sequences) become spaces and the text is cut to
/// `max` characters, saying how much was left out. A registry's body or a
/// file's bytes never reach a status beyond such a short excerpt.
pub fn sanitise(s: &str, max: usize) -> String {
    let total = s.chars().count();
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if total > max {
        out += &format!("… ({} more characters)", total - max);
    }
    out
}

/// Conditions for "work under way on a new generation": `Reconciling=True`,
/// and `Ready=Unknown` when the spec changed since the last reconcile.
pub fn progressing(
    conditions: &mut Vec<Condition>,
    observed_generation: Option<i64>,
    generation: Option<i64>,
    now: &Time,
) {
    let msg = match generation {
        Some(g) => format!("reconciling generation {g}"),
        None => "reconciling".to_string(),
    };
    set_condition(
        conditions,
        CONDITION_RECONCILING,
        "True",
        "Progressing",
        &msg,
        generation,
        now,
    );
    if observed_generation != generation {
        set_condition(
            conditions,
            CONDITION_READY,
            "Unknown",
            "Progressing",
            &msg,
            generation,
            now,
        );
    }
}

/// Conditions after a reconcile that failed as a whole.
fn failed(conditions: &mut Vec<Condition>, e: &Error, generation: Option<i64>, now: &Time) {
    let msg = e.to_string();
    set_condition(
        conditions,
        CONDITION_READY,
        "False",
        e.reason(),
        &msg,
        generation,
        now,
    );
    remove_condition(conditions, CONDITION_RECONCILING);
    if e.is_spec_error() {
        set_condition(
            conditions,
            CONDITION_STALLED,
            "True",
            e.reason(),
            &msg,
            generation,
            now,
        );
    } else {
        remove_condition(conditions, CONDITION_STALLED);
    }
}

fn done(
    conditions: &mut Vec<Condition>,
    ready: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if ready { "True" } else { "False" };
    set_condition(
        conditions,
        CONDITION_READY,
        status,
        reason,
        message,
        generation,
        now,
    );
    remove_condition(conditions, CONDITION_RECONCILING);
    remove_condition(conditions, CONDITION_STALLED);
}

/// Conditions of a suspended object: `Ready=False`, reason `Suspended`
/// (Flux shows suspension the same way); work resumes when `spec.suspend`
/// is false again.
pub fn suspended(conditions: &mut Vec<Condition>, generation: Option<i64>, now: &Time) {
    done(
        conditions,
        false,
        "Suspended",
        "spec.suspend is true: not syncing; set it to false to resume",
        generation,
        now,
    );
}

/// Conditions while a deletion under `deletionPolicy: Delete` cannot finish:
/// `Ready=False` with what blocks it (the object stays until it can, or
/// until `deletionPolicy` is set to `Retain`).
pub fn deletion_blocked(
    conditions: &mut Vec<Condition>,
    why: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let msg = format!(
        "deletion blocked: {why}; the tags this mirror wrote must go first (spec.deletionPolicy: Delete), or set spec.deletionPolicy to Retain to keep them"
    );
    done(conditions, false, "DeletionBlocked", &msg, generation, now);
}

/// The new `ImageMirror` status after a reconcile.
pub fn mirror_status(
    old: Option<&ImageMirrorStatus>,
    generation: Option<i64>,
    outcome: &Result<MirrorOutcome, Error>,
    destination: &str,
    now: &Time,
) -> ImageMirrorStatus {
    let mut st = old.cloned().unwrap_or_default();
    st.observed_generation = generation;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            failed(&mut st.conditions, e, generation, now);
            return bound(st);
        }
    };
    let old_tags = old.map(|o| o.tags.as_slice()).unwrap_or_default();
    let previous = |name: &str| old_tags.iter().find(|t| t.name == name);
    let mut tags = Vec::with_capacity(outcome.tags.len());
    let mut failures = Vec::new();
    let mut kept = Vec::new();
    let mut restored = Vec::new();
    for t in &outcome.tags {
        if t.drifted.is_some() {
            match t.result {
                TagResult::Kept => kept.push(t.tag.as_str()),
                _ => restored.push(t.tag.as_str()),
            }
        }
        let mut entry = match &t.result {
            TagResult::Kept => {
                // Left as someone else set it: say what it names now.
                let mut e = previous(&t.tag).cloned().unwrap_or_else(|| TagStatus {
                    name: t.tag.clone(),
                    ..Default::default()
                });
                e.destination_digest = t.drifted.clone().flatten().unwrap_or_default();
                e.error = String::new();
                e
            }
            TagResult::Copied { report, verified } => {
                let unchanged = previous(&t.tag).filter(|p| {
                    // Nothing written: the entry of the copy that wrote it stays.
                    (report.up_to_date || (report.bytes_copied == 0 && report.blobs_copied == 0))
                        && report.referrers_copied == 0
                        && p.error.is_empty()
                        && !p.drifted
                        && t.drifted.is_none()
                        && p.source_digest == report.source_digest
                        && p.destination_digest == report.destination_digest
                        && p.verified == *verified
                });
                match unchanged {
                    Some(p) => p.clone(),
                    None => TagStatus {
                        name: t.tag.clone(),
                        source_digest: report.source_digest.clone(),
                        destination_digest: report.destination_digest.clone(),
                        synced_at: Some(now.clone()),
                        bytes_copied: report.bytes_copied as i64,
                        blobs_copied: report.blobs_copied as i64,
                        blobs_skipped: report.blobs_skipped as i64 + report.blobs_mounted as i64,
                        signatures: report.signatures_copied as i64,
                        referrers: report.referrers_copied as i64,
                        verified: *verified,
                        error: String::new(),
                        drifted: false,
                    },
                }
            }
            TagResult::Failed(err) => {
                failures.push(format!("{}: {}", t.tag, err.message));
                // Keep what was last mirrored; say why this round failed.
                let mut e = previous(&t.tag).cloned().unwrap_or_else(|| TagStatus {
                    name: t.tag.clone(),
                    ..Default::default()
                });
                e.error = err.message.clone();
                e
            }
        };
        entry.drifted = t.drifted.is_some();
        tags.push(entry);
    }
    st.pruned = outcome
        .prune
        .as_ref()
        .map(|p| {
            p.entries
                .iter()
                .take(MAX_STATUS_TAGS)
                .map(|e| PruneStatus {
                    name: e.tag.clone(),
                    digest: e.digest.clone(),
                    action: e.action.as_str().to_string(),
                    reason: e.reason.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let selected = tags.len() as i64;
    let failed_n = failures.len() as i64;
    st.summary = Some(TagSummary {
        selected,
        synced: selected - failed_n - kept.len() as i64,
        failed: failed_n,
    });
    let total = tags.len();
    let truncated = bound_tags(&mut tags);
    st.omitted.clear();
    if tags.len() < total {
        st.omitted
            .insert("tags".into(), (total - tags.len()) as i64);
    }
    st.tags = tags;
    st.last_sync_time = Some(now.clone());
    let prune = outcome.prune.as_ref();
    let prune_failed: Vec<String> = prune
        .map(|p| {
            p.entries
                .iter()
                .filter(|e| e.action == PruneAction::Failed)
                .map(|e| format!("{}: {}", e.tag, e.reason))
                .collect()
        })
        .unwrap_or_default();
    if failures.is_empty() {
        let in_step = selected - kept.len() as i64;
        let mut msg = match in_step {
            0 if selected == 0 => "no source tag matches spec.tags".to_string(),
            1 => format!("1 tag in step with {destination}"),
            n => format!("{n} tags in step with {destination}"),
        };
        if !restored.is_empty() {
            msg += &format!(
                "; restored {} (changed at the destination by someone else)",
                restored.join(", ")
            );
        }
        if let Some(p) = prune {
            let deleted = p.count(PruneAction::Deleted);
            if deleted > 0 {
                msg += &format!("; pruned {deleted} tags");
            }
        }
        msg += &truncated;
        let (ready, reason, msg) = if let Some(r) = prune.and_then(|p| p.refused.as_ref()) {
            (
                false,
                "DeletesDisabled",
                format!("{msg}; prune failed: {r}"),
            )
        } else if let Some(b) = prune.and_then(|p| p.blocked.as_ref()) {
            (false, "PruneLimitExceeded", format!("{msg}; {b}"))
        } else if !prune_failed.is_empty() {
            (
                false,
                "PruneFailed",
                format!("{msg}; prune failed: {}", prune_failed.join("; ")),
            )
        } else if let Some(e) = &outcome.record_error {
            (false, "RecordFailed", format!("{msg}; {e}"))
        } else if !kept.is_empty() {
            (
                false,
                "Drifted",
                format!(
                    "{msg}; {} changed at the destination by someone else, kept (spec.driftPolicy: Keep)",
                    kept.join(", ")
                ),
            )
        } else {
            (true, "Synced", msg)
        };
        done(&mut st.conditions, ready, reason, &msg, generation, now);
    } else {
        let shown: Vec<&str> = failures
            .iter()
            .take(MAX_MESSAGE_FAILURES)
            .map(String::as_str)
            .collect();
        let more = failures.len().saturating_sub(MAX_MESSAGE_FAILURES);
        let msg = format!(
            "{failed_n} of {selected} tags failed: {}{}{truncated}",
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        );
        // Said apart: nothing is wrong with the spec or the images, the
        // registry asks us to slow down (and we do).
        let reason = match outcome.rate_limited() {
            Some(_) => "RateLimited",
            None => "TagsFailed",
        };
        done(&mut st.conditions, false, reason, &msg, generation, now);
    }
    bound(st)
}

/// At most this many entries in `status.tags`: an object selecting thousands
/// of tags stays far below the API server's object size limit (~1.5 MiB).
/// `status.summary` keeps the exact counts.
pub const MAX_STATUS_TAGS: usize = 200;
/// At most this many failures are named in the `Ready` message.
pub const MAX_MESSAGE_FAILURES: usize = 5;

/// Keep at most [`MAX_STATUS_TAGS`] entries, failed tags first (they need a
/// look), then the others in order; returns the text the condition message
/// gets when entries were left out.
fn bound_tags(tags: &mut Vec<TagStatus>) -> String {
    if tags.len() <= MAX_STATUS_TAGS {
        return String::new();
    }
    let total = tags.len();
    tags.sort_by_key(|t| t.error.is_empty());
    tags.truncate(MAX_STATUS_TAGS);
    format!(
        " (status.tags lists {MAX_STATUS_TAGS} of {total} tags, failed ones first; status.summary has the counts)"
    )
}

/// The new `ImageInspection` status after a reconcile.
pub fn inspection_status(
    old: Option<&ImageInspectionStatus>,
    generation: Option<i64>,
    outcome: &Result<InspectOutcome, Error>,
    now: &Time,
) -> ImageInspectionStatus {
    let o = match outcome {
        Ok(o) => o,
        Err(e) => {
            let mut st = old.cloned().unwrap_or_default();
            st.observed_generation = generation;
            failed(&mut st.conditions, e, generation, now);
            return bound(st);
        }
    };
    let i = &o.info;
    let verified = o.signatures.iter().filter(|s| s.verified).count();
    let mut st = ImageInspectionStatus {
        observed_generation: generation,
        conditions: old.map(|s| s.conditions.clone()).unwrap_or_default(),
        last_inspection_time: Some(now.clone()),
        name: i.name.clone(),
        digest: i.digest.clone(),
        tag: i.tag.clone(),
        created: i.created.clone(),
        docker_version: i.docker_version.clone(),
        labels: i.labels.clone().unwrap_or_default(),
        architecture: i.architecture.clone(),
        os: i.os.clone(),
        variant: i.variant.clone(),
        layers: i.layers.clone(),
        layers_data: i
            .layers_data
            .iter()
            .map(|l| crate::api::v1alpha1::LayerData {
                mime_type: l.mime_type.clone(),
                digest: l.digest.clone(),
                size: l.size,
                annotations: l.annotations.clone().unwrap_or_default(),
            })
            .collect(),
        env: i.env.clone().unwrap_or_default(),
        repo_tags: i.repo_tags.clone(),
        platforms: o.platforms.clone(),
        signatures: o.signatures.clone(),
        signature_summary: Some(if o.signatures.is_empty() {
            "none".to_string()
        } else {
            format!("{} ({verified} verified)", o.signatures.len())
        }),
        omitted: Default::default(),
    };
    let msg = format!("{} is {}", o.reference, i.digest);
    done(&mut st.conditions, true, "Inspected", &msg, generation, now);
    bound(st)
}

/// Keys holding clocks, ignored by [`differs`].
const TIMESTAMP_KEYS: &[&str] = &[
    "lastTransitionTime",
    "lastSyncTime",
    "lastInspectionTime",
    "syncedAt",
];

/// Whether `new` says anything `old` does not, ignoring timestamps: `false`
/// means the write can be skipped.
pub fn differs<S: Serialize>(old: Option<&S>, new: &S) -> bool {
    let Some(old) = old else { return true };
    let strip = |s: &S| {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        strip_keys(&mut v);
        v
    };
    strip(old) != strip(new)
}

fn strip_keys(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !TIMESTAMP_KEYS.contains(&k.as_str()));
            m.values_mut().for_each(strip_keys);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_keys),
        _ => {}
    }
}

mod bound;
pub use bound::{MAX_STATUS_BYTES, bound};

#[cfg(test)]
mod tests;
