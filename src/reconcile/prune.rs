//! Prune: delete destination tags this mirror wrote that left the selection
//! (and, for `deletionPolicy: Delete`, every tag it wrote).
//!
//! Planned in full before anything is deleted ([`plan`] is pure):
//! - only tags in the [`Record`](super::record::Record), and only while the
//!   destination still holds the digest recorded (a tag someone else changed
//!   is `Skipped` and leaves the record);
//! - a registry deletes a manifest, with every tag naming it: a tag whose
//!   manifest another tag that stays also names is `Skipped`;
//! - more deletions than `spec.pruneLimit` and none happens (all `Pending`,
//!   the object says so): a source that lists no tags cannot empty a mirror.
//!   A deletion of the object is not limited (its owner asked for it).
//!
//! Then [`execute`] deletes by digest (never by tag: what was checked is
//! what goes).

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;

use super::record::{self, Record};
use super::resolve::Endpoint;
use super::{Error, one_line};
use crate::digest::{self, Digest};
use crate::image;

/// What happens to one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Deleted,
    /// Would be deleted (dry run).
    Planned,
    /// Over `spec.pruneLimit`: nothing was deleted.
    Pending,
    Skipped,
    /// Already absent at the destination.
    Gone,
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deleted => "Deleted",
            Action::Planned => "Planned",
            Action::Pending => "Pending",
            Action::Skipped => "Skipped",
            Action::Gone => "Gone",
            Action::Failed => "Failed",
        }
    }
}

/// One tag of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub tag: String,
    /// The digest recorded for it.
    pub digest: String,
    pub action: Action,
    pub reason: String,
}

/// What a prune did.
#[derive(Debug, Clone, Default)]
pub struct PruneOutcome {
    pub entries: Vec<Entry>,
    /// Why the plan was not carried out (over the limit), for the condition.
    pub blocked: Option<String>,
    /// The registry refuses deletes (405): the message for the condition.
    pub refused: Option<String>,
}

impl PruneOutcome {
    pub fn count(&self, a: Action) -> usize {
        self.entries.iter().filter(|e| e.action == a).count()
    }

    /// Whether nothing this mirror wrote is left to delete (a deletion may finish).
    pub fn finished(&self) -> bool {
        self.entries
            .iter()
            .all(|e| matches!(e.action, Action::Deleted | Action::Skipped | Action::Gone))
    }
}

/// What [`plan`] needs to know about the destination.
#[derive(Debug, Default)]
pub struct Facts {
    /// Digest each candidate names now (`None`: absent).
    pub current: BTreeMap<String, Option<String>>,
    /// Every other destination tag and the digest it names (not candidates,
    /// not attachment or record tags), as far as known.
    pub others: BTreeMap<String, String>,
}

/// Tags this mirror wrote that are no longer selected (`selected` = `None`:
/// all of them, for a deletion).
pub fn candidates(rec: &Record, selected: Option<&BTreeSet<String>>) -> Vec<(String, String)> {
    rec.tags
        .iter()
        .filter(|(t, _)| selected.is_none_or(|s| !s.contains(*t)))
        .map(|(t, d)| (t.clone(), d.clone()))
        .collect()
}

/// The plan. `limit`: `None` for a deletion of the object.
pub fn plan(
    candidates: &[(String, String)],
    facts: &Facts,
    limit: Option<usize>,
    dry_run: bool,
) -> PruneOutcome {
    let mut out = PruneOutcome::default();
    let deleting: BTreeSet<&str> = candidates
        .iter()
        .filter(|(t, d)| facts.current.get(t).cloned().flatten().as_deref() == Some(d.as_str()))
        .map(|(t, _)| t.as_str())
        .collect();
    for (tag, recorded) in candidates {
        let entry = |action, reason: String| Entry {
            tag: tag.clone(),
            digest: recorded.clone(),
            action,
            reason,
        };
        let now = facts.current.get(tag).cloned().flatten();
        let e = match now {
            None => entry(Action::Gone, "already absent at the destination".into()),
            Some(d) if d != *recorded => entry(
                Action::Skipped,
                format!("changed by someone else since this mirror wrote it (now {d})"),
            ),
            Some(_) => {
                // Tags that stay: every other tag, and candidates not deleted
                // (changed by someone else), by what they name now.
                let staying_candidates = facts
                    .current
                    .iter()
                    .filter_map(|(t, d)| Some((t, d.as_ref()?)));
                let sharing: Vec<&str> = facts
                    .others
                    .iter()
                    .chain(staying_candidates)
                    .filter(|(t, d)| *d == recorded && !deleting.contains(t.as_str()))
                    .map(|(t, _)| t.as_str())
                    .take(3)
                    .collect();
                if sharing.is_empty() {
                    entry(
                        if dry_run {
                            Action::Planned
                        } else {
                            Action::Deleted
                        },
                        String::new(),
                    )
                } else {
                    entry(
                        Action::Skipped,
                        format!(
                            "its manifest is also tagged {}, which stays (a registry deletes a manifest with all its tags)",
                            sharing.join(", ")
                        ),
                    )
                }
            }
        };
        out.entries.push(e);
    }
    let to_delete = out
        .entries
        .iter()
        .filter(|e| matches!(e.action, Action::Deleted | Action::Planned))
        .count();
    if let Some(limit) = limit
        && to_delete > limit
    {
        let msg = format!(
            "prune would delete {to_delete} tags, more than spec.pruneLimit {limit}: nothing was deleted; check that the source lists its tags, or raise spec.pruneLimit"
        );
        for e in &mut out.entries {
            if matches!(e.action, Action::Deleted | Action::Planned) {
                e.action = Action::Pending;
                e.reason = msg.clone();
            }
        }
        out.blocked = Some(msg);
    }
    out
}

/// HEADs at once while gathering facts.
const CONCURRENCY: usize = 4;
/// The most other destination tags looked at for shared manifests; past it
/// the prune is not carried out.
pub const MAX_OTHER_TAGS: usize = 5_000;

/// Gather [`Facts`] for `candidates` at `dest`. `known`: tags whose current
/// digest this sync already learnt (the copies). Looks at other tags only
/// when something may be deleted.
pub async fn facts(
    dest: &Endpoint,
    candidates: &[(String, String)],
    known: &BTreeMap<String, String>,
) -> Result<Facts, Error> {
    let mut f = Facts::default();
    let heads = head_all(dest, candidates.iter().map(|(t, _)| t.clone()).collect()).await?;
    f.current = heads;
    let any_deletable = candidates
        .iter()
        .any(|(t, d)| f.current.get(t).cloned().flatten().as_deref() == Some(d.as_str()));
    if !any_deletable {
        return Ok(f);
    }
    let listed = dest
        .reference
        .list_tags(&dest.ctx)
        .await
        .map_err(|e| Error::image(format!("listing tags of {}", dest.reference), e))?;
    let cand: BTreeSet<&str> = candidates.iter().map(|(t, _)| t.as_str()).collect();
    let others: Vec<String> = listed
        .into_iter()
        .filter(|t| {
            !cand.contains(t.as_str()) && !t.starts_with("sha256-") && !record::is_record_tag(t)
        })
        .collect();
    if others.len() > MAX_OTHER_TAGS {
        return Err(Error::Spec(format!(
            "spec.prune: the destination holds {} other tags, more than {MAX_OTHER_TAGS} to check for shared manifests; prune a repository this mirror has to itself",
            others.len()
        )));
    }
    let unknown: Vec<String> = others
        .iter()
        .filter(|t| !known.contains_key(*t))
        .cloned()
        .collect();
    for (t, d) in head_all(dest, unknown).await? {
        if let Some(d) = d {
            f.others.insert(t, d);
        }
    }
    for t in &others {
        if let Some(d) = known.get(t) {
            f.others.insert(t.clone(), d.clone());
        }
    }
    Ok(f)
}

async fn head_all(
    dest: &Endpoint,
    tags: Vec<String>,
) -> Result<BTreeMap<String, Option<String>>, Error> {
    let results: Vec<(String, image::Result<Option<Digest>>)> = futures::stream::iter(tags)
        .map(|t| async move {
            let r = match dest.reference.with_tag(&t) {
                Ok(r) => record::current_digest(r.as_ref(), &dest.ctx).await,
                Err(e) => Err(e),
            };
            (t, r)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for (t, r) in results {
        let d = r.map_err(|e| Error::image(format!("reading tag {t} of {}", dest.reference), e))?;
        out.insert(t, d.map(|d| d.to_string()));
    }
    Ok(out)
}

/// Carry out a plan: delete each planned digest once.
pub async fn execute(dest: &Endpoint, out: &mut PruneOutcome) {
    let mut done: BTreeMap<String, Result<(), String>> = BTreeMap::new();
    for e in out
        .entries
        .iter_mut()
        .filter(|e| e.action == Action::Deleted)
    {
        let result = match done.get(&e.digest) {
            Some(r) => r.clone(),
            None => {
                let r = match digest::parse(&e.digest) {
                    Ok(d) => dest.reference.delete_manifest(&dest.ctx, &d).await,
                    Err(err) => Err(image::Error::Invalid(err.to_string())),
                };
                let r = r.map_err(|err| {
                    if matches!(&err, image::Error::Registry { status: 405, .. }) {
                        out.refused = Some(format!(
                            "{} refuses deletes: {}",
                            dest.reference,
                            one_line(&err)
                        ));
                    }
                    one_line(&err)
                });
                done.insert(e.digest.clone(), r.clone());
                r
            }
        };
        if let Err(msg) = result {
            e.action = Action::Failed;
            e.reason = msg;
        }
    }
}

/// The record after a prune: deleted, absent and changed tags leave it.
pub fn update_record(rec: &mut Record, out: &PruneOutcome) {
    for e in &out.entries {
        let leaves = match e.action {
            Action::Deleted | Action::Gone => true,
            Action::Skipped => e.reason.starts_with("changed by someone else"),
            _ => false,
        };
        if leaves {
            rec.tags.remove(&e.tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn rec(tags: &[(&str, u8)]) -> Record {
        let mut r = Record::new("ns/m");
        for (t, n) in tags {
            r.insert(t, &d(*n));
        }
        r
    }

    fn facts(current: &[(&str, Option<u8>)], others: &[(&str, u8)]) -> Facts {
        Facts {
            current: current
                .iter()
                .map(|(t, n)| (t.to_string(), n.map(d)))
                .collect(),
            others: others.iter().map(|(t, n)| (t.to_string(), d(*n))).collect(),
        }
    }

    fn actions(o: &PruneOutcome) -> Vec<(&str, Action)> {
        o.entries
            .iter()
            .map(|e| (e.tag.as_str(), e.action))
            .collect()
    }

    #[test]
    fn only_recorded_unselected_tags_are_candidates() {
        let r = rec(&[("a", 1), ("b", 2), ("c", 3)]);
        let sel: BTreeSet<String> = ["b".to_string(), "x".to_string()].into();
        let c = candidates(&r, Some(&sel));
        assert_eq!(c, vec![("a".into(), d(1)), ("c".into(), d(3))]);
        assert_eq!(candidates(&r, None).len(), 3);
    }

    #[test]
    fn changed_absent_and_shared_tags_are_not_deleted() {
        let c = vec![
            ("a".to_string(), d(1)),
            ("b".to_string(), d(2)),
            ("c".to_string(), d(3)),
            ("e".to_string(), d(5)),
            ("f".to_string(), d(5)),
        ];
        let f = facts(
            &[
                ("a", Some(1)),
                ("b", Some(9)),
                ("c", Some(3)),
                ("e", Some(5)),
                ("f", Some(5)),
            ],
            &[("keep", 3)],
        );
        let o = plan(&c, &f, Some(10), false);
        assert_eq!(
            actions(&o),
            vec![
                ("a", Action::Deleted),
                ("b", Action::Skipped),
                ("c", Action::Skipped),
                ("e", Action::Deleted),
                ("f", Action::Deleted),
            ]
        );
        assert!(o.entries[1].reason.contains("changed by someone else"));
        assert!(o.entries[2].reason.contains("also tagged keep"));
        // A candidate someone moved onto a deletable candidate's manifest stays, and so does that manifest.
        let f = facts(&[("a", Some(1)), ("b", Some(1))], &[]);
        let o = plan(&c[..2], &f, Some(10), false);
        assert_eq!(
            actions(&o),
            vec![("a", Action::Skipped), ("b", Action::Skipped)]
        );
        assert!(o.entries[0].reason.contains("also tagged b"), "{o:?}");
        let f = facts(&[("a", None)], &[]);
        let o = plan(&c[..1], &f, Some(10), false);
        assert_eq!(actions(&o), vec![("a", Action::Gone)]);
    }

    #[test]
    fn over_the_limit_nothing_is_deleted_and_a_deletion_has_no_limit() {
        let c: Vec<(String, String)> = (0..5).map(|i| (format!("t{i}"), d(i))).collect();
        let cur: Vec<(String, Option<u8>)> = (0..5).map(|i| (format!("t{i}"), Some(i))).collect();
        let f = Facts {
            current: cur.iter().map(|(t, n)| (t.clone(), n.map(d))).collect(),
            others: BTreeMap::new(),
        };
        let o = plan(&c, &f, Some(4), false);
        assert!(o.entries.iter().all(|e| e.action == Action::Pending));
        assert!(o.blocked.as_deref().unwrap().contains("spec.pruneLimit 4"));
        let o = plan(&c, &f, Some(5), false);
        assert_eq!(o.count(Action::Deleted), 5);
        let o = plan(&c, &f, None, true);
        assert_eq!(o.count(Action::Planned), 5);
        assert!(o.blocked.is_none());
    }

    #[test]
    fn the_record_keeps_what_may_still_be_ours() {
        let mut r = rec(&[("a", 1), ("b", 2), ("c", 3), ("p", 4)]);
        let o = PruneOutcome {
            entries: vec![
                Entry {
                    tag: "a".into(),
                    digest: d(1),
                    action: Action::Deleted,
                    reason: String::new(),
                },
                Entry {
                    tag: "b".into(),
                    digest: d(2),
                    action: Action::Skipped,
                    reason: "changed by someone else".into(),
                },
                Entry {
                    tag: "c".into(),
                    digest: d(3),
                    action: Action::Skipped,
                    reason: "its manifest is also tagged".into(),
                },
                Entry {
                    tag: "p".into(),
                    digest: d(4),
                    action: Action::Failed,
                    reason: "405".into(),
                },
            ],
            ..Default::default()
        };
        update_record(&mut r, &o);
        assert_eq!(r.tags.keys().collect::<Vec<_>>(), vec!["c", "p"]);
        assert!(!o.finished());
    }
}
