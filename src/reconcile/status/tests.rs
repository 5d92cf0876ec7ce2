use super::*;
use crate::copy::CopyReport;
use crate::reconcile::apply::{TagError, TagOutcome};

fn at(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap())
}

fn copied(tag: &str, digest: &str, up_to_date: bool) -> TagOutcome {
    TagOutcome {
        tag: tag.into(),
        result: TagResult::Copied {
            report: CopyReport {
                source_digest: digest.into(),
                destination_digest: digest.into(),
                up_to_date,
                bytes_copied: if up_to_date { 0 } else { 100 },
                blobs_copied: if up_to_date { 0 } else { 3 },
                blobs_skipped: if up_to_date { 3 } else { 0 },
                ..Default::default()
            },
            verified: None,
        },
        drifted: None,
    }
}

fn failed_tag(tag: &str, e: &str) -> TagOutcome {
    TagOutcome {
        tag: tag.into(),
        result: TagResult::Failed(e.into()),
        drifted: None,
    }
}

fn ok(tags: Vec<TagOutcome>) -> Result<MirrorOutcome, Error> {
    Ok(MirrorOutcome {
        tags,
        ..Default::default()
    })
}

#[test]
fn success_sets_ready_and_per_tag_results() {
    let st = mirror_status(
        None,
        Some(1),
        &ok(vec![
            copied("v1", "sha256:a", false),
            copied("v2", "sha256:b", false),
        ]),
        "reg/dst",
        &at(0),
    );
    let ready = condition(&st.conditions, CONDITION_READY).unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(ready.reason, "Synced");
    assert_eq!(ready.observed_generation, Some(1));
    assert_eq!(ready.message, "2 tags in step with reg/dst");
    assert!(condition(&st.conditions, CONDITION_STALLED).is_none());
    assert!(condition(&st.conditions, CONDITION_RECONCILING).is_none());
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(
        st.summary,
        Some(TagSummary {
            selected: 2,
            synced: 2,
            failed: 0
        })
    );
    assert_eq!(st.tags[0].source_digest, "sha256:a");
    assert_eq!(st.tags[0].bytes_copied, 100);
    assert_eq!(st.tags[0].synced_at, Some(at(0)));
}

#[test]
fn transition_time_changes_only_with_status() {
    let first = mirror_status(
        None,
        Some(1),
        &ok(vec![copied("v1", "sha256:a", false)]),
        "d",
        &at(0),
    );
    // Same outcome later: Ready stays True, its transition time stays.
    let second = mirror_status(
        Some(&first),
        Some(1),
        &ok(vec![copied("v1", "sha256:a", true)]),
        "d",
        &at(60),
    );
    let t = |s: &ImageMirrorStatus| {
        condition(&s.conditions, CONDITION_READY)
            .unwrap()
            .last_transition_time
            .clone()
    };
    assert_eq!(t(&second), at(0));
    // An up-to-date tag keeps the entry of the copy that wrote it.
    assert_eq!(second.tags, first.tags);
    assert!(!differs(Some(&first), &second), "only clocks moved");
    // A failure flips Ready: new transition time.
    let third = mirror_status(
        Some(&second),
        Some(1),
        &ok(vec![failed_tag("v1", "boom")]),
        "d",
        &at(120),
    );
    let ready = condition(&third.conditions, CONDITION_READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "TagsFailed")
    );
    assert_eq!(ready.last_transition_time, at(120));
    assert!(
        ready.message.contains("1 of 1 tags failed: v1: boom"),
        "{}",
        ready.message
    );
    // The failed tag keeps its last mirrored digest and says why it failed now.
    assert_eq!(third.tags[0].source_digest, "sha256:a");
    assert_eq!(third.tags[0].error, "boom");
    assert!(differs(Some(&second), &third));
}

#[test]
fn one_failed_tag_leaves_the_others_synced() {
    let st = mirror_status(
        None,
        Some(3),
        &ok(vec![
            copied("v1", "sha256:a", false),
            failed_tag("v2", "401 Unauthorized"),
        ]),
        "d",
        &at(0),
    );
    assert_eq!(
        st.summary,
        Some(TagSummary {
            selected: 2,
            synced: 1,
            failed: 1
        })
    );
    assert!(st.tags[0].error.is_empty());
    assert_eq!(st.tags[1].error, "401 Unauthorized");
    assert!(!is_true(&st.conditions, CONDITION_READY));
}

#[test]
fn spec_errors_stall_and_keep_previous_results() {
    let first = mirror_status(
        None,
        Some(1),
        &ok(vec![copied("v1", "sha256:a", false)]),
        "d",
        &at(0),
    );
    let e = Error::SecretNotFound {
        field: "spec.source.credentialsSecretRef".into(),
        name: "pull".into(),
        namespace: "ns".into(),
    };
    let st = mirror_status(Some(&first), Some(2), &Err(e), "d", &at(10));
    let stalled = condition(&st.conditions, CONDITION_STALLED).unwrap();
    assert_eq!(stalled.status, "True");
    assert_eq!(stalled.reason, "SecretNotFound");
    assert!(stalled.message.contains("\"pull\""));
    let ready = condition(&st.conditions, CONDITION_READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.observed_generation),
        ("False", Some(2))
    );
    assert_eq!(st.tags, first.tags);
    // Fixed: Stalled goes away.
    let fixed = mirror_status(
        Some(&st),
        Some(3),
        &ok(vec![copied("v1", "sha256:a", true)]),
        "d",
        &at(20),
    );
    assert!(condition(&fixed.conditions, CONDITION_STALLED).is_none());
    assert!(is_true(&fixed.conditions, CONDITION_READY));
}

#[test]
fn transient_errors_do_not_stall() {
    let e = Error::SecretLookup {
        name: "x".into(),
        message: "connection refused".into(),
    };
    let st = mirror_status(None, Some(1), &Err(e), "d", &at(0));
    assert!(condition(&st.conditions, CONDITION_STALLED).is_none());
    assert_eq!(
        condition(&st.conditions, CONDITION_READY).unwrap().status,
        "False"
    );
}

#[test]
fn progressing_marks_reconciling_and_unknown_ready_on_new_generation() {
    let mut conds = Vec::new();
    set_condition(
        &mut conds,
        CONDITION_READY,
        "True",
        "Synced",
        "ok",
        Some(1),
        &at(0),
    );
    let mut same = conds.clone();
    progressing(&mut same, Some(1), Some(1), &at(5));
    assert!(is_true(&same, CONDITION_RECONCILING));
    assert!(is_true(&same, CONDITION_READY));
    progressing(&mut conds, Some(1), Some(2), &at(5));
    assert_eq!(
        condition(&conds, CONDITION_READY).unwrap().status,
        "Unknown"
    );
    // Conditions keep a fixed order: Ready, Reconciling, Stalled.
    assert_eq!(conds[0].type_, CONDITION_READY);
}

#[test]
fn long_messages_are_cut() {
    let long = "é".repeat(MAX_MESSAGE);
    let mut conds = Vec::new();
    set_condition(
        &mut conds,
        CONDITION_READY,
        "False",
        "X",
        &long,
        None,
        &at(0),
    );
    assert!(conds[0].message.len() <= MAX_MESSAGE + 3);
}

#[test]
fn zero_selected_tags_is_ready_with_a_hint() {
    let st = mirror_status(None, Some(1), &ok(vec![]), "d", &at(0));
    let r = condition(&st.conditions, CONDITION_READY).unwrap();
    assert_eq!(r.status, "True");
    assert!(r.message.contains("no source tag matches"));
}

#[test]
fn inspection_status_fills_fields_and_summary() {
    let outcome = Ok(InspectOutcome {
        reference: "docker://r/a:v1".into(),
        info: crate::image::ImageInspectInfo {
            digest: "sha256:d".into(),
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        },
        platforms: vec![],
        signatures: vec![],
    });
    let st = inspection_status(None, Some(1), &outcome, &at(0));
    assert_eq!(st.digest, "sha256:d");
    assert_eq!(st.signature_summary.as_deref(), Some("none"));
    assert!(is_true(&st.conditions, CONDITION_READY));
    let again = inspection_status(Some(&st), Some(1), &outcome, &at(30));
    assert!(!differs(Some(&st), &again));
    let e: Result<InspectOutcome, Error> = Err(Error::Spec("spec.image: bad".into()));
    let bad = inspection_status(Some(&st), Some(2), &e, &at(40));
    assert!(is_true(&bad.conditions, CONDITION_STALLED));
    assert_eq!(bad.digest, "sha256:d", "last good result kept");
}

#[test]
fn thousands_of_tags_keep_the_status_bounded_and_the_counts_exact() {
    let mut tags: Vec<_> = (0..3000)
        .map(|i| copied(&format!("v{i}"), "sha256:a", false))
        .collect();
    tags.extend((0..40).map(|i| failed_tag(&format!("bad{i}"), "404 Not Found")));
    let st = mirror_status(None, Some(1), &ok(tags), "d", &at(0));
    assert_eq!(
        st.summary,
        Some(TagSummary {
            selected: 3040,
            synced: 3000,
            failed: 40
        })
    );
    assert_eq!(st.tags.len(), MAX_STATUS_TAGS);
    assert!(
        st.tags[..40].iter().all(|t| !t.error.is_empty()),
        "failed tags are listed first"
    );
    let ready = condition(&st.conditions, CONDITION_READY).unwrap();
    assert!(
        ready.message.contains("40 of 3040 tags failed"),
        "{}",
        ready.message
    );
    assert!(ready.message.contains("and 35 more"), "{}", ready.message);
    assert!(
        ready
            .message
            .contains(&format!("lists {MAX_STATUS_TAGS} of 3040")),
        "{}",
        ready.message
    );
    assert!(
        ready.message.len() < 2000,
        "message stays short: {}",
        ready.message.len()
    );
    let yaml = serde_yaml::to_string(&st).unwrap();
    assert!(yaml.len() < 100_000, "status is {} bytes", yaml.len());
}

#[test]
fn rate_limited_failures_say_so() {
    let limited = |tag: &str, after: Option<u64>| TagOutcome {
        tag: tag.into(),
        result: TagResult::Failed(TagError {
            message: "registry 127.0.0.1:5000: 429 Too Many Requests".into(),
            rate_limited: Some(after.map(std::time::Duration::from_secs)),
        }),
        drifted: None,
    };
    let outcome = ok(vec![limited("a", Some(3)), limited("b", None)]);
    assert_eq!(
        outcome.as_ref().unwrap().rate_limited(),
        Some(Some(std::time::Duration::from_secs(3)))
    );
    let st = mirror_status(None, Some(1), &outcome, "dst", &at(0));
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "RateLimited")
    );
    assert!(ready.message.contains("429"), "{}", ready.message);

    // One failure of another kind: not (only) rate limiting.
    let mixed = ok(vec![
        limited("a", Some(3)),
        failed_tag("b", "manifest unknown"),
    ]);
    assert_eq!(mixed.as_ref().unwrap().rate_limited(), None);
    let st = mirror_status(None, Some(1), &mixed, "dst", &at(0));
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.reason, "TagsFailed");
    assert_eq!(ok(vec![]).unwrap().rate_limited(), None);
}

fn prune_entry(
    tag: &str,
    action: crate::reconcile::prune::Action,
    reason: &str,
) -> crate::reconcile::prune::Entry {
    crate::reconcile::prune::Entry {
        tag: tag.into(),
        digest: "sha256:p".into(),
        action,
        reason: reason.into(),
    }
}

#[test]
fn drift_is_reported_per_tag_and_kept_tags_are_not_ready() {
    let mut restored = copied("v1", "sha256:a", false);
    restored.drifted = Some(Some("sha256:evil".into()));
    let kept = TagOutcome {
        tag: "v2".into(),
        result: TagResult::Kept,
        drifted: Some(Some("sha256:evil".into())),
    };
    let st = mirror_status(
        None,
        Some(1),
        &ok(vec![restored.clone()]),
        "reg/dst",
        &at(0),
    );
    let ready = condition(&st.conditions, CONDITION_READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Synced")
    );
    assert!(ready.message.contains("restored v1"), "{}", ready.message);
    assert!(st.tags[0].drifted);
    let st = mirror_status(None, Some(1), &ok(vec![restored, kept]), "reg/dst", &at(0));
    let ready = condition(&st.conditions, CONDITION_READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Drifted")
    );
    assert_eq!(st.tags[1].destination_digest, "sha256:evil");
    assert!(st.tags[1].drifted);
    assert_eq!(st.summary.unwrap().synced, 1);
}

#[test]
fn prune_results_set_the_ready_reason() {
    use crate::reconcile::prune::{Action, PruneOutcome};
    let with = |p: PruneOutcome| {
        let o = Ok(MirrorOutcome {
            tags: vec![copied("v1", "sha256:a", true)],
            prune: Some(p),
            ..Default::default()
        });
        mirror_status(None, Some(1), &o, "reg/dst", &at(0))
    };
    let st = with(PruneOutcome {
        entries: vec![prune_entry("old", Action::Deleted, "")],
        ..Default::default()
    });
    let ready = condition(&st.conditions, CONDITION_READY).unwrap();
    assert_eq!(ready.reason, "Synced");
    assert!(ready.message.contains("pruned 1 tags"), "{}", ready.message);
    assert_eq!(st.pruned[0].action, "Deleted");
    let st = with(PruneOutcome {
        entries: vec![prune_entry("old", Action::Pending, "over")],
        blocked: Some("prune would delete 11 tags".into()),
        ..Default::default()
    });
    assert_eq!(
        condition(&st.conditions, CONDITION_READY).unwrap().reason,
        "PruneLimitExceeded"
    );
    let st = with(PruneOutcome {
        entries: vec![prune_entry("old", Action::Failed, "405")],
        refused: Some("reg/dst refuses deletes: 405".into()),
        ..Default::default()
    });
    let ready = condition(&st.conditions, CONDITION_READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "DeletesDisabled")
    );
    assert!(ready.message.contains("refuses deletes"));
}

#[test]
fn suspended_and_blocked_deletions_say_so() {
    let mut c = Vec::new();
    suspended(&mut c, Some(2), &at(0));
    let ready = condition(&c, CONDITION_READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Suspended")
    );
    deletion_blocked(&mut c, "reg refuses deletes", Some(3), &at(1));
    let ready = condition(&c, CONDITION_READY).unwrap();
    assert_eq!(ready.reason, "DeletionBlocked");
    assert!(ready.message.contains("reg refuses deletes") && ready.message.contains("Retain"));
}
