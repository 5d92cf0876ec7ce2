//! Watches as kube-rs uses them: `watcher()` with and without streaming
//! lists, re-list after a 410, selectors, bookmarks, no-op writes.

mod common;

use std::time::Duration;

use common::Env;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

async fn next<S, T>(s: &mut S) -> T
where
    S: Stream<Item = T> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("no event within 10 s")
        .expect("stream ended")
}

/// Short description of a watcher event: `Init`, `InitApply(a)`, `Apply(b)`, …
fn describe(e: &Result<Event<ConfigMap>, watcher::Error>) -> String {
    match e {
        Ok(Event::Init) => "Init".into(),
        Ok(Event::InitApply(o)) => format!("InitApply({})", o.name_any()),
        Ok(Event::InitDone) => "InitDone".into(),
        Ok(Event::Apply(o)) => format!("Apply({})", o.name_any()),
        Ok(Event::Delete(o)) => format!("Delete({})", o.name_any()),
        Err(e) => format!("Err({e})"),
    }
}

async fn watcher_lifecycle(config: watcher::Config) {
    let env = Env::start().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let mut s = watcher(api.clone(), config).boxed();
    for want in ["Init", "InitApply(a)", "InitDone"] {
        assert_eq!(describe(&next(&mut s).await), want);
    }
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    assert_eq!(describe(&next(&mut s).await), "Apply(b)");
    api.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    match next(&mut s).await {
        Ok(Event::Apply(o)) => assert_eq!(o.data.unwrap()["k"], "w"),
        other => panic!("{}", describe(&other)),
    }
    api.delete("b", &DeleteParams::default()).await.unwrap();
    assert_eq!(describe(&next(&mut s).await), "Delete(b)");
    env.emu.shutdown().await;
}

use kube::runtime::watcher::watcher;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_list_then_watch() {
    watcher_lifecycle(watcher::Config::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_streaming_lists() {
    watcher_lifecycle(watcher::Config::default().streaming_lists()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_relists_after_410() {
    let env = Env::start().await;
    let hooks = env.emu.hooks();
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let mut s = watcher(api.clone(), watcher::Config::default()).boxed();
    for want in ["Init", "InitApply(a)", "InitDone"] {
        assert_eq!(describe(&next(&mut s).await), want);
    }
    // A change the watch does not see, then compaction: resuming from the
    // watcher's last resourceVersion is now too old.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap(),
        )
        .await
        .unwrap();
    hooks.compact_history();
    hooks.close_watches();
    let mut seen = vec![];
    while seen.last().map(String::as_str) != Some("InitDone") {
        seen.push(describe(&next(&mut s).await));
    }
    assert!(
        seen[0].starts_with("Err(") && seen[0].contains("too old resource version"),
        "{seen:?}"
    );
    assert_eq!(&seen[1..], ["Init", "InitApply(a)", "InitDone"]);
    api.create(&PostParams::default(), &cm("c")).await.unwrap();
    assert_eq!(describe(&next(&mut s).await), "Apply(c)");

    // reset() drops everything: the watcher re-lists an empty collection.
    hooks.reset();
    let mut seen = vec![];
    while seen.last().map(String::as_str) != Some("InitDone") {
        seen.push(describe(&next(&mut s).await));
    }
    assert_eq!(
        seen.iter().filter(|e| e.starts_with("InitApply")).count(),
        0,
        "{seen:?}"
    );
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_watch_semantics() {
    let env = Env::start().await;
    let hooks = env.emu.hooks();
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let start_rv = a.resource_version().unwrap();

    // Selector transitions become ADDED / DELETED.
    let mut w = api
        .watch(&WatchParams::default().labels("app=x"), &start_rv)
        .await
        .unwrap()
        .boxed();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(next(&mut w).await.unwrap(), WatchEvent::Added(o) if o.name_any() == "a"));
    // A no-op write sends nothing; the next event is the real change.
    let same = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
        )
        .await
        .unwrap();
    let after_noop = api.get("a").await.unwrap();
    assert_eq!(same.resource_version(), after_noop.resource_version());
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    assert!(
        matches!(next(&mut w).await.unwrap(), WatchEvent::Modified(o) if o.data.as_ref().unwrap()["k"] == "2")
    );
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(next(&mut w).await.unwrap(), WatchEvent::Deleted(o) if o.name_any() == "a"));

    // Bookmarks when allowed.
    hooks.set_bookmark_interval(Duration::from_millis(100));
    let mut b = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(next(&mut b).await.unwrap(), WatchEvent::Added(_)));
    assert!(matches!(
        next(&mut b).await.unwrap(),
        WatchEvent::Bookmark(_)
    ));

    // Too old: one ERROR event with 410, then EOF.
    hooks.compact_history();
    let mut old = api
        .watch(&WatchParams::default(), &start_rv)
        .await
        .unwrap()
        .boxed();
    match next(&mut old).await.unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message
                    .starts_with(&format!("too old resource version: {start_rv} (")),
                "{}",
                e.message
            );
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), old.next())
            .await
            .unwrap()
            .is_none()
    );

    // Timeout ends the stream.
    let mut t = api
        .watch(
            &WatchParams::default().timeout(1),
            &api.get("a").await.unwrap().resource_version().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = t.next().await {
            assert!(matches!(e.unwrap(), WatchEvent::Bookmark(_)));
        }
    });
    drained.await.expect("watch did not end at timeoutSeconds");
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_watcher_and_object_refs() {
    let env = Env::start().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    api.create(&PostParams::default(), &cm("m")).await.unwrap();
    let meta: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(env.client(), "default");
    let mut s = watcher(meta, watcher::Config::default()).boxed();
    let mut names = vec![];
    loop {
        match next(&mut s).await.unwrap() {
            Event::InitApply(o) => names.push(o.name_any()),
            Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(names, ["m"]);
    api.create(&PostParams::default(), &cm("n")).await.unwrap();
    match next(&mut s).await.unwrap() {
        Event::Apply(o) => assert_eq!(o.object_ref(&()).name.as_deref(), Some("n")),
        _ => panic!("expected Apply"),
    }
    env.emu.shutdown().await;
}

/// Scale (issue 19): 10,000 objects, lists paged by `limit`/`continue`, and
/// several watchers with `in` label selectors (as sharded controller
/// replicas watch): each sees exactly its share, a label change moves an
/// object from one watcher to another (DELETED there, ADDED here), and
/// paging returns every object once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_objects_paged_lists_and_label_selected_watchers() {
    const N: usize = 10_000;
    let env = Env::start().await;
    env.emu.hooks().set_history_size(4 * N);
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let started = std::time::Instant::now();
    futures::stream::iter(0..N)
        .map(|i| {
            let api = api.clone();
            async move {
                let o: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("o-{i:05}"), "labels": {"shard": (i % 8).to_string()}},
                    "data": {"k": "v"},
                }))
                .unwrap();
                api.create(&PostParams::default(), &o).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    eprintln!("created {N} objects in {:?}", started.elapsed());
    env.emu.hooks().clear_requests();

    // Four watchers, two shards each.
    let mut watchers = Vec::new();
    for w in 0..4 {
        let sel = format!("shard in ({},{})", 2 * w, 2 * w + 1);
        let s = watcher(api.clone(), watcher::Config::default().labels(&sel)).boxed();
        watchers.push(s);
    }
    let started = std::time::Instant::now();
    for s in watchers.iter_mut() {
        let mut names = std::collections::BTreeSet::new();
        assert_eq!(describe(&next(s).await), "Init");
        loop {
            match next(s).await {
                Ok(Event::InitApply(o)) => {
                    assert!(names.insert(o.name_any()), "twice: {}", o.name_any())
                }
                Ok(Event::InitDone) => break,
                other => panic!("{}", describe(&other)),
            }
        }
        assert_eq!(names.len(), N / 4);
    }
    eprintln!(
        "4 label-selected watchers listed their 2,500 each in {:?}",
        started.elapsed()
    );
    // The lists were paged (kube-rs asks for 500 at a time).
    let pages = env
        .emu
        .hooks()
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains("continue="))
        .count();
    assert_eq!(pages, 4 * (N / 4 / 500 - 1), "continued pages");

    // A label change moves an object between watchers.
    api.patch(
        "o-00000",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"shard": "2"}}})),
    )
    .await
    .unwrap();
    assert_eq!(describe(&next(&mut watchers[0]).await), "Delete(o-00000)");
    assert_eq!(describe(&next(&mut watchers[1]).await), "Apply(o-00000)");
    env.emu.shutdown().await;
}

/// A continue token from before the retained history is `410 Expired`,
/// and a malformed one is `400`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_tokens_expire_with_the_history() {
    let env = Env::start().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    for n in ["a", "b", "c"] {
        api.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let page = api
        .list(&kube::api::ListParams::default().limit(2))
        .await
        .unwrap();
    let names: Vec<String> = page.items.iter().map(|o| o.name_any()).collect();
    assert_eq!(names, ["a", "b"]);
    let token = page.metadata.continue_.clone().expect("a continue token");
    let rest = api
        .list(
            &kube::api::ListParams::default()
                .limit(2)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|o| o.name_any()).collect::<Vec<_>>(),
        ["c"]
    );
    assert_eq!(rest.metadata.continue_, None);
    // Every page reports the first page's resourceVersion.
    assert_eq!(
        rest.metadata.resource_version,
        page.metadata.resource_version
    );
    // A change after the token, then the history is dropped: the changes
    // since the token's version can no longer be replayed.
    api.create(&PostParams::default(), &cm("d")).await.unwrap();
    env.emu.hooks().compact_history();
    let e = api
        .list(
            &kube::api::ListParams::default()
                .limit(2)
                .continue_token(&token),
        )
        .await
        .unwrap_err();
    assert_eq!(common::code(&e), 410, "{e}");
    let e = api
        .list(
            &kube::api::ListParams::default()
                .limit(2)
                .continue_token("garbage"),
        )
        .await
        .unwrap_err();
    assert_eq!(common::code(&e), 400, "{e}");
    env.emu.shutdown().await;
}
