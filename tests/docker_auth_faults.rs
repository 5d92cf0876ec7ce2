//! The `docker` transport's Bearer token flow against a real Distribution
//! registry configured with `auth: token` and an in-test token server, and
//! its behaviour under faults injected by a proxy in front of a real
//! registry: throttling, server errors, broken connections, lying content,
//! redirects to storage, paginated tag lists.
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures::TryStreamExt;
use kubemirror::digest::VerifyingStream;
use kubemirror::image::{
    Auth, BlobInfo, ErrorKind, ImageSource, RegistryContext, ReuseHint, Secret, SystemContext,
};
use kubemirror::manifest;
use kubemirror::transport::parse_image_name;
use support::copyloop::{self, Counter};
use support::proxy::{Action, Proxy};
use support::registry::{Registry, RegistryOptions};
use support::token::{TokenOptions, TokenServer};

fn push_fixture(image: &str, flags: &[String], layer_size: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("img");
    support::mkimage(
        &layout,
        &["--tag", "v1", "--layers", "2", "--layer-size", layer_size],
    );
    support::run(
        support::skopeo()
            .arg("copy")
            .args(flags)
            .arg(format!("oci:{}:v1", layout.display()))
            .arg(image),
    );
    dir
}

fn ctx(counter: &Arc<Counter>, retry_times: u32) -> SystemContext {
    SystemContext {
        tls_verify: Some(false),
        observer: Some(counter.clone()),
        retry_times,
        ..Default::default()
    }
}

async fn read_blob(src: &dyn ImageSource, info: &BlobInfo) -> kubemirror::image::Result<u64> {
    let blob = src.get_blob(info).await?;
    let chunks: Vec<bytes::Bytes> =
        VerifyingStream::new(blob.stream, info.digest.clone(), info.size)
            .try_collect()
            .await?;
    Ok(chunks.iter().map(|c| c.len() as u64).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_scoped_cached_and_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let ts = TokenServer::start(
        dir.path(),
        TokenOptions {
            users: vec![("alice".into(), "tok-pw-93".into())],
            refresh_tokens: vec![("refresh-abc-77".into(), "alice".into())],
            expires_in: 2,
            ..Default::default()
        },
    )
    .await;
    let reg = Registry::start(RegistryOptions {
        extra_config: ts.registry_config(),
        ..Default::default()
    });
    let name = reg.image("t/app:v1");
    let flags = vec![
        "--dest-tls-verify=false".to_string(),
        "--dest-creds=alice:tok-pw-93".into(),
    ];
    let _fixture = push_fixture(&name, &flags, "50K");
    let before = ts.requests().len();

    // Anonymous pull: one token (scope pull) for the manifest and all blobs.
    let counter = Counter::new();
    let anon = ctx(&counter, 0);
    let r = parse_image_name(&name).unwrap();
    let src = r.new_image_source(&anon).await.unwrap();
    let m = src.get_manifest(None).await.unwrap();
    for d in manifest::blobs(&m.image().unwrap()) {
        read_blob(src.as_ref(), &BlobInfo::from(&d)).await.unwrap();
    }
    let reqs = &ts.requests()[before..];
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].scopes, ["repository:t/app:pull"]);
    assert_eq!(reqs[0].user, None);

    // Anonymous push is refused by the token server's grant, reported as such.
    let dst = r
        .with_tag("v2")
        .unwrap()
        .new_image_destination(&anon)
        .await
        .unwrap();
    let err = dst.put_manifest(&m, None).await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "401 Unauthorized from {} for repository t/app (push)",
            reg.host
        )),
        "{err}"
    );

    // Push with a password: GET with Basic; the mount asks for both repositories.
    let before = ts.requests().len();
    let counter = Counter::new();
    let alice = SystemContext {
        credentials: Some(Auth::from_creds("alice:tok-pw-93").unwrap()),
        ..ctx(&counter, 0)
    };
    let src = r.new_image_source(&alice).await.unwrap();
    let dst_name = reg.image("t/copy:v1");
    let dst = parse_image_name(&dst_name)
        .unwrap()
        .new_image_destination(&alice)
        .await
        .unwrap();
    let hint = ReuseHint {
        source: r.docker_reference(),
    };
    let done = copyloop::copy(src.as_ref(), dst.as_ref(), &hint)
        .await
        .unwrap();
    assert_eq!(done.mounted, 3, "{done:?}");
    let reqs = &ts.requests()[before..];
    assert!(
        reqs.iter()
            .all(|r| r.method == "GET" && r.user.as_deref() == Some("alice"))
    );
    let mut scope_sets: Vec<String> = reqs.iter().map(|r| r.scopes.join(" ")).collect();
    scope_sets.sort();
    scope_sets.dedup();
    assert_eq!(
        scope_sets.len(),
        reqs.len(),
        "one token per scope set: {reqs:?}"
    );
    assert!(
        scope_sets.contains(&"repository:t/app:pull repository:t/copy:pull,push".to_string())
            || scope_sets
                .contains(&"repository:t/copy:pull,push repository:t/app:pull".to_string()),
        "{scope_sets:?}"
    );
    let digest = support::run(support::skopeo().args([
        "inspect",
        "--tls-verify=false",
        "--creds=alice:tok-pw-93",
        "--format",
        "{{.Digest}}",
        &dst_name,
    ]))
    .stdout;
    assert_eq!(
        String::from_utf8_lossy(&digest).trim(),
        m.digest().to_string()
    );

    // Tokens expire (expires_in = 2): the next request fetches a new one.
    let before = ts.requests().len();
    src.manifest_digest().await.unwrap();
    assert_eq!(ts.requests().len(), before, "cached token reused");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    src.manifest_digest().await.unwrap();
    assert_eq!(ts.requests().len(), before + 1, "expired token renewed");

    // An identity token (docker login's refresh token): the OAuth2 POST form.
    let before = ts.requests().len();
    let idt = SystemContext {
        credentials: Some(Auth::IdentityToken {
            username: "alice".into(),
            token: Secret::new("refresh-abc-77"),
        }),
        ..ctx(&Counter::new(), 0)
    };
    let dst = r
        .with_tag("v3")
        .unwrap()
        .new_image_destination(&idt)
        .await
        .unwrap();
    dst.put_manifest(&m, None).await.unwrap();
    let reqs = &ts.requests()[before..];
    assert!(
        !reqs.is_empty() && reqs.iter().all(|r| r.method == "POST"),
        "{reqs:?}"
    );

    // A wrong password: the token server's 401, named with the registry.
    let bad = SystemContext {
        credentials: Some(Auth::from_creds("alice:NOPE-pw-55").unwrap()),
        retry_times: 2,
        ..ctx(&Counter::new(), 2)
    };
    let err = r
        .new_image_source(&bad)
        .await
        .unwrap()
        .get_manifest(None)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "401 Unauthorized from {} for repository t/app (pull)",
            reg.host
        )),
        "{msg}"
    );
    assert!(msg.contains("token"), "{msg}");
    assert!(!msg.contains("NOPE-pw-55") && !format!("{err:?}").contains("NOPE-pw-55"));
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_server_that_wants_post() {
    let dir = tempfile::tempdir().unwrap();
    let ts = TokenServer::start(
        dir.path(),
        TokenOptions {
            users: vec![("bob".into(), "post-pw-1".into())],
            get_allowed: false,
            ..Default::default()
        },
    )
    .await;
    let reg = Registry::start(RegistryOptions {
        extra_config: ts.registry_config(),
        ..Default::default()
    });
    let counter = Counter::new();
    let bob = SystemContext {
        credentials: Some(Auth::from_creds("bob:post-pw-1").unwrap()),
        ..ctx(&counter, 0)
    };
    let dst = parse_image_name(&reg.image("b/app:v1"))
        .unwrap()
        .new_image_destination(&bob)
        .await
        .unwrap();
    let blob = bytes::Bytes::from_static(b"{}");
    let info = BlobInfo::new(kubemirror::digest::sha256(&blob), Some(2));
    assert_eq!(
        dst.try_reusing_blob(&info, &ReuseHint::default())
            .await
            .unwrap(),
        None
    );
    let reqs = ts.requests();
    assert_eq!(
        reqs.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["POST"],
        "GET refused with 405, then POST"
    );
}

/// A plain registry behind a fault-injecting proxy, with `t/app:v1` pushed.
async fn proxied() -> (Registry, Proxy, tempfile::TempDir) {
    let reg = Registry::plain();
    let fixture = push_fixture(&reg.image("t/app:v1"), &reg.tls_flags("dest"), "200K");
    let proxy = Proxy::start(&reg.base_url()).await;
    (reg, proxy, fixture)
}

fn is_blob(method: &str, path: &str) -> bool {
    method == "GET" && path.contains("/blobs/sha256:")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried() {
    let (_reg, proxy, _f) = proxied().await;
    let counter = Counter::new();
    let c = ctx(&counter, 3);
    let r = parse_image_name(&format!("docker://{}/t/app:v1", proxy.host)).unwrap();
    let src = r.new_image_source(&c).await.unwrap();

    // 429 with Retry-After: 1, then success: we waited as told.
    proxy.set_rule(|m, p, nth| {
        if m == "GET" && p.contains("/manifests/") && nth == 0 {
            Action::Respond(
                StatusCode::TOO_MANY_REQUESTS,
                vec![("retry-after", "1".into())],
                vec![],
            )
        } else {
            Action::Forward
        }
    });
    let t = Instant::now();
    let m = src.get_manifest(None).await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(counter.summary().get("GET 429"), Some(&1));

    // A manifest body cut short: fetched again.
    proxy.set_rule(|m, p, nth| {
        if m == "GET" && p.contains("/manifests/") && nth == 0 {
            Action::CutAfter(100)
        } else {
            Action::Forward
        }
    });
    proxy.clear_log();
    assert_eq!(src.get_manifest(None).await.unwrap(), m);
    assert_eq!(proxy.log().len(), 2);

    // 503 on a blob, then success.
    proxy.set_rule(|m, p, nth| {
        if is_blob(m, p) && nth == 0 {
            Action::Respond(StatusCode::SERVICE_UNAVAILABLE, vec![], b"busy".to_vec())
        } else {
            Action::Forward
        }
    });
    let layer = BlobInfo::from(&m.image().unwrap().layers()[0]);
    assert_eq!(
        read_blob(src.as_ref(), &layer).await.unwrap(),
        layer.size.unwrap()
    );
    assert_eq!(counter.summary().get("GET 503"), Some(&1));

    // Always 503: retry_times retries, then a one-line error.
    proxy.set_rule(|m, p, _| {
        if is_blob(m, p) {
            Action::Respond(
                StatusCode::SERVICE_UNAVAILABLE,
                vec![],
                br#"{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}"#.to_vec(),
            )
        } else {
            Action::Forward
        }
    });
    counter.reset();
    let layer2 = BlobInfo::from(&m.image().unwrap().layers()[1]);
    let err = read_blob(src.as_ref(), &layer2).await.unwrap_err();
    assert_eq!(counter.summary().get("GET 503"), Some(&4), "1 + 3 retries");
    assert_eq!(
        err.to_string(),
        format!(
            "503 Service Unavailable from {} for repository t/app (pull): blob {}: unavailable: maintenance",
            proxy.host, layer2.digest
        )
    );
    assert_eq!(err.kind(), ErrorKind::Transient);

    // A missing repository: 404 at once, no retries.
    proxy.set_rule(|_, _, _| Action::Forward);
    counter.reset();
    let missing = parse_image_name(&format!("docker://{}/nope/nothing:v1", proxy.host)).unwrap();
    let err = missing
        .new_image_source(&c)
        .await
        .unwrap()
        .get_manifest(None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "404 Not Found from {} for repository nope/nothing (pull): manifest v1",
            proxy.host
        )),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(counter.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_connections_resume_and_lying_content_never_lands() {
    let (reg, proxy, _f) = proxied().await;
    let counter = Counter::new();
    let c = ctx(&counter, 2);
    let r = parse_image_name(&format!("docker://{}/t/app:v1", proxy.host)).unwrap();
    let src = r.new_image_source(&c).await.unwrap();
    let m = src.get_manifest(None).await.unwrap();
    let layers: Vec<BlobInfo> = m
        .image()
        .unwrap()
        .layers()
        .iter()
        .map(BlobInfo::from)
        .collect();

    // Cut after 64 KiB; the registry honours Range: resumed where it broke.
    proxy.set_rule(|m, p, nth| {
        if is_blob(m, p) && nth == 0 {
            Action::CutAfter(64 << 10)
        } else {
            Action::Forward
        }
    });
    assert_eq!(
        read_blob(src.as_ref(), &layers[0]).await.unwrap(),
        layers[0].size.unwrap()
    );
    // Cut, and a server that ignores Range: re-read from the start, skipping what was delivered.
    proxy.clear_log();
    proxy.set_rule(|m, p, nth| match (is_blob(m, p), nth) {
        (true, 0) => Action::CutAfter(100 << 10),
        (true, _) => Action::StripRange,
        _ => Action::Forward,
    });
    assert_eq!(
        read_blob(src.as_ref(), &layers[1]).await.unwrap(),
        layers[1].size.unwrap()
    );
    assert_eq!(
        proxy
            .log()
            .iter()
            .filter(|s| is_blob(&s.method, &s.path))
            .count(),
        2
    );

    // Content that does not match its digest: the copy fails naming the blob,
    // and the destination never holds it.
    proxy.set_rule(|m, p, _| {
        if is_blob(m, p) {
            Action::Corrupt
        } else {
            Action::Forward
        }
    });
    let dst_reg = Registry::plain();
    let dst_ref = parse_image_name(&dst_reg.image("m/app:v1")).unwrap();
    let dst = dst_ref.new_image_destination(&c).await.unwrap();
    let err = copyloop::copy(src.as_ref(), dst.as_ref(), &ReuseHint::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    for l in m.image().unwrap().layers() {
        let info = BlobInfo::from(l);
        assert_eq!(
            dst.try_reusing_blob(&info, &ReuseHint::default())
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(dst.existing_manifest_digest().await.unwrap(), None);
    drop(reg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_storage_carry_no_credentials() {
    let (reg, proxy, _f) = proxied().await;
    let storage = Proxy::start(&reg.base_url()).await;
    let storage_host = storage.host.clone();
    // The registry front wants Basic auth (it refuses the first manifest read
    // with a challenge) and sends blob reads to "storage".
    proxy.set_rule(move |m, p, nth| {
        if p == "/v2/" || (p.contains("/manifests/") && nth == 0) {
            Action::Respond(
                StatusCode::UNAUTHORIZED,
                vec![("www-authenticate", r#"Basic realm="test""#.into())],
                vec![],
            )
        } else if is_blob(m, p) {
            Action::Redirect(format!("http://{storage_host}{p}"))
        } else {
            Action::Forward
        }
    });
    let counter = Counter::new();
    let c = SystemContext {
        credentials: Some(Auth::from_creds("carol:redirect-pw").unwrap()),
        ..ctx(&counter, 0)
    };
    let r = parse_image_name(&format!("docker://{}/t/app:v1", proxy.host)).unwrap();
    let src = r.new_image_source(&c).await.unwrap();
    let m = src.get_manifest(None).await.unwrap();
    let layer = BlobInfo::from(&m.image().unwrap().layers()[0]);
    assert_eq!(
        read_blob(src.as_ref(), &layer).await.unwrap(),
        layer.size.unwrap()
    );
    let front = proxy.log();
    assert!(
        front
            .iter()
            .skip_while(|s| !s.authorization)
            .all(|s| s.authorization),
        "{front:?}"
    );
    let back = storage.log();
    assert_eq!(back.len(), 1);
    assert!(
        !back[0].authorization,
        "Authorization must not follow a redirect to another host"
    );
    assert_eq!(counter.summary().get("GET 307"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_manifests_are_refused_and_tag_pages_are_followed() {
    let (reg, proxy, _f) = proxied().await;
    let counter = Counter::new();
    let c = ctx(&counter, 0);
    let r = parse_image_name(&format!("docker://{}/t/app:v1", proxy.host)).unwrap();
    let src = r.new_image_source(&c).await.unwrap();
    let m = src.get_manifest(None).await.unwrap();
    // 150 tags, then a registry that pages them 40 at a time.
    for i in 0..150 {
        let dst = r
            .with_tag(&format!("tag-{i:03}"))
            .unwrap()
            .new_image_destination(&c)
            .await
            .unwrap();
        dst.put_manifest(&m, None).await.unwrap();
    }
    proxy.set_rule(|m, p, _| {
        if m == "GET" && p.contains("/tags/list") {
            Action::Paginate(40)
        } else {
            Action::Forward
        }
    });
    counter.reset();
    let ours = r.list_tags(&c).await.unwrap();
    assert_eq!(ours.len(), 151);
    assert_eq!(counter.total(), 4, "4 pages of ≤ 40");
    let out = support::run(support::skopeo().args([
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/t/app", proxy.host),
    ]))
    .stdout;
    let theirs: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let theirs: Vec<String> = serde_json::from_value(theirs["Tags"].clone()).unwrap();
    assert_eq!(ours, theirs, "skopeo follows the same pages");

    // A 5 MiB manifest is refused before its body is read.
    proxy.set_rule(|m, p, _| {
        if m == "GET" && p.contains("/manifests/big") {
            Action::Respond(
                StatusCode::OK,
                vec![("content-type", manifest::OCI_MANIFEST.into())],
                vec![b' '; 5 << 20],
            )
        } else {
            Action::Forward
        }
    });
    let big = r
        .with_tag("big")
        .unwrap()
        .new_image_source(&c)
        .await
        .unwrap();
    let err = big.get_manifest(None).await.unwrap_err();
    assert!(
        err.to_string().contains("over the 4194304-byte limit"),
        "{err}"
    );
    // A manifest whose bytes differ from its digest is refused.
    proxy.set_rule(|m, p, _| {
        if m == "GET" && p.contains("/manifests/sha256:") {
            Action::Corrupt
        } else {
            Action::Forward
        }
    });
    let err = src.get_manifest(Some(&m.digest())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    drop(reg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_engine_reuses_connections_and_tokens_across_copies() {
    use kubemirror::copy::{CopyOptions, copy_image};
    let dir = tempfile::tempdir().unwrap();
    let ts = TokenServer::start(
        dir.path(),
        TokenOptions {
            users: vec![("eve".into(), "engine-pw".into())],
            ..Default::default()
        },
    )
    .await;
    let dst_reg = Registry::start(RegistryOptions {
        extra_config: ts.registry_config(),
        ..Default::default()
    });
    let src_reg = Registry::plain();
    let _f = push_fixture(
        &src_reg.image("t/app:v1"),
        &src_reg.tls_flags("dest"),
        "100K",
    );
    let src_counter = Counter::new();
    let dst_counter = Counter::new();
    let src_ctx = ctx(&src_counter, 1);
    let dst_ctx = SystemContext {
        credentials: Some(Auth::from_creds("eve:engine-pw").unwrap()),
        ..ctx(&dst_counter, 1)
    };
    let src = parse_image_name(&src_reg.image("t/app:v1")).unwrap();
    let dst = parse_image_name(&dst_reg.image("m/app:v1")).unwrap();
    let opts = CopyOptions::default();

    // Cold copy of 3 blobs (config + 2 layers).
    let report = copy_image(src.as_ref(), &src_ctx, dst.as_ref(), &dst_ctx, &opts)
        .await
        .unwrap();
    assert_eq!(report.blobs_copied, 3, "{report:?}");
    let d = dst_counter.summary();
    let s = src_counter.summary();
    eprintln!(
        "cold copy: source {s:?}, destination {d:?}, tokens {}",
        ts.requests().len()
    );
    // Destination, per blob: POST 202 (a mount that also opens the upload), PUT 201;
    // per image: HEAD 404 and PUT 201 of the manifest.
    assert_eq!(d.get("HEAD 404"), Some(&1), "{d:?}");
    assert_eq!(d.get("POST 202"), Some(&3), "{d:?}");
    assert_eq!(d.get("PUT 201"), Some(&4), "{d:?}");
    // Source: HEAD + GET of the manifest, one GET per blob (and the ping).
    assert_eq!(s.get("HEAD 200"), Some(&1), "{s:?}");
    assert_eq!(s.get("GET 200"), Some(&4), "manifest + 3 blobs: {s:?}");
    assert_eq!(ts.requests().len(), 1, "one token (pull,push on m/app)");
    // Once per registry: the scheme probe (an HTTPS attempt the plain-HTTP
    // registry refuses before any HTTP request), and at the destination the
    // first request's 401 that teaches the Bearer challenge.
    assert_eq!(s.get("GET 0"), Some(&1), "{s:?}");
    assert_eq!(
        (d.get("GET 0"), d.get("HEAD 401")),
        (Some(&1), Some(&1)),
        "{d:?}"
    );

    // Copies of further tags: no new ping, no new token; a no-op is two HEADs.
    src_counter.reset();
    dst_counter.reset();
    let report = copy_image(src.as_ref(), &src_ctx, dst.as_ref(), &dst_ctx, &opts)
        .await
        .unwrap();
    assert!(report.up_to_date);
    assert_eq!((src_counter.total(), dst_counter.total()), (1, 1));
    dst_counter.reset();
    let dst2 = parse_image_name(&dst_reg.image("m/app:v2")).unwrap();
    let report = copy_image(src.as_ref(), &src_ctx, dst2.as_ref(), &dst_ctx, &opts)
        .await
        .unwrap();
    assert_eq!(report.blobs_skipped, 3, "{report:?}");
    let d = dst_counter.summary();
    assert_eq!(
        (d.get("POST 201"), d.get("PUT 201")),
        (Some(&3), Some(&1)),
        "{d:?}"
    );
    assert_eq!(dst_counter.total(), 5, "{d:?}");
    assert_eq!(ts.requests().len(), 1, "token reused across copies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_ping_but_protected_repository() {
    // Some registries answer `/v2/` with 200 and ask for a token only on the
    // repository: the challenge of the refused request is answered then.
    let dir = tempfile::tempdir().unwrap();
    let ts = TokenServer::start(
        dir.path(),
        TokenOptions {
            users: vec![("fay".into(), "open-pw".into())],
            ..Default::default()
        },
    )
    .await;
    let reg = Registry::start(RegistryOptions {
        extra_config: ts.registry_config(),
        ..Default::default()
    });
    let proxy = Proxy::start(&reg.base_url()).await;
    proxy.set_rule(|_, p, _| {
        if p == "/v2/" {
            Action::Respond(StatusCode::OK, vec![], b"{}".to_vec())
        } else {
            Action::Forward
        }
    });
    let counter = Counter::new();
    let c = SystemContext {
        credentials: Some(Auth::from_creds("fay:open-pw").unwrap()),
        ..ctx(&counter, 0)
    };
    let r = parse_image_name(&format!("docker://{}/o/app:v1", proxy.host)).unwrap();
    let dst = r.new_image_destination(&c).await.unwrap();
    let info = BlobInfo::new(kubemirror::digest::sha256(b"{}"), Some(2));
    assert_eq!(
        dst.try_reusing_blob(&info, &ReuseHint::default())
            .await
            .unwrap(),
        None
    );
    assert_eq!(ts.requests().len(), 1);
    let s = counter.summary();
    assert_eq!(
        (s.get("POST 401"), s.get("POST 202")),
        (Some(&1), Some(&1)),
        "{s:?}"
    );
    // Learned: the next request carries the cached token at once.
    counter.reset();
    assert_eq!(
        dst.try_reusing_blob(&info, &ReuseHint::default())
            .await
            .unwrap(),
        None
    );
    assert_eq!(counter.total(), 1, "{:?}", counter.summary());
    assert_eq!(ts.requests().len(), 1);
    // Uploads (a streamed PUT is never replayed) carry it too.
    let blob = kubemirror::image::Blob {
        stream: Box::pin(futures::stream::once(async {
            Ok(bytes::Bytes::from_static(b"{}"))
        })),
        size: Some(2),
    };
    dst.put_blob(&info, blob).await.unwrap();
    assert_eq!(
        dst.try_reusing_blob(&info, &ReuseHint::default())
            .await
            .unwrap(),
        Some(kubemirror::image::Reused::Present)
    );
}

/// After a 429 the whole host cools off, for every session of the process:
/// a fail-fast context (the controller's) gets a RateLimited error carrying
/// the wait without sending anything; a waiting context (the CLI's) is held
/// until the cool-off ends, then sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_cools_the_whole_host_off() {
    let (_reg, proxy, _f) = proxied().await;
    proxy.set_rule(|m, p, nth| {
        if m == "GET" && p.contains("/manifests/") && nth == 0 {
            Action::Respond(StatusCode::TOO_MANY_REQUESTS, vec![], vec![])
        } else {
            Action::Forward
        }
    });
    let name = format!("docker://{}/t/app:v1", proxy.host);
    let counter = Counter::new();
    // This test's own registry context: no other test's cool-off reaches it.
    let hosts = RegistryContext::new();
    let first = parse_image_name(&name).unwrap();
    let err = first
        .new_image_source(&SystemContext {
            registry: hosts.clone(),
            ..ctx(&counter, 0)
        })
        .await
        .unwrap()
        .get_manifest(None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    // No Retry-After was sent: the error carries the host's cool-off.
    let cool_off = err.retry_after().expect("a wait");
    assert!(cool_off <= Duration::from_secs(1), "{cool_off:?}");

    // Fail-fast (the controller's way): nothing is sent.
    let sent = proxy.log().len();
    // Other credentials: another session (the cool-off is the host's).
    let session = |user: &str, fail_fast: bool| {
        let ctx = SystemContext {
            registry: hosts.clone(),
            credentials: Some(Auth::Basic {
                username: user.into(),
                password: Secret::new("pw".to_string()),
            }),
            fail_fast_when_rate_limited: fail_fast,
            ..ctx(&counter, 0)
        };
        let name = name.clone();
        async move {
            parse_image_name(&name)
                .unwrap()
                .new_image_source(&ctx)
                .await
                .unwrap()
                .get_manifest(None)
                .await
        }
    };
    let err = session("other", true).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert!(err.to_string().contains("rate limiting"), "{err}");
    assert!(err.retry_after().is_some());
    assert_eq!(
        proxy.log().len(),
        sent,
        "a request was sent during the cool-off"
    );

    // A waiting session is held until the cool-off ends, then succeeds.
    // Another registry context (another CLI run or controller) knows of
    // no cool-off: sent at once.
    let other = SystemContext {
        registry: RegistryContext::new(),
        fail_fast_when_rate_limited: true,
        ..ctx(&counter, 0)
    };
    parse_image_name(&name)
        .unwrap()
        .new_image_source(&other)
        .await
        .unwrap()
        .get_manifest(None)
        .await
        .expect("another context is not cooling off");
    assert_eq!(proxy.log().len(), sent + 1);
    let sent = sent + 1;

    let t = Instant::now();
    session("third", false).await.unwrap();
    assert!(t.elapsed() >= cool_off / 2, "not held: {:?}", t.elapsed());
    assert_eq!(proxy.log().len(), sent + 1);
}
