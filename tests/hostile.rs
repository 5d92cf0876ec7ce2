//! Hostile registries and tenants (issue 16), through the paths users take:
//! the controller binary against kube-emulator, `kubemirror sync -f`, and
//! the CLI. A registry may send any number, header or body; the process
//! must not panic, must stay within bounded memory and status size, and
//! must never send a credential to a host other than the registry's.
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

use kubemirror::api::v1alpha1::{ImageInspection, ImageMirror};
use support::cluster::Cluster;
use support::controller_proc::ControllerProc;
use support::hostile::{self, Behaviour, Hostile};
use support::registry::Registry;

/// The API server's object limit is ~1.5 MiB; a status stays far below.
const MAX_STATUS_BYTES: usize = 256 << 10;

fn push_hello(reg: &Registry, repo_tag: &str) {
    let layout = support::repo_root().join("examples/images/hello");
    support::run(
        support::skopeo()
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:1.0.0", layout.display()))
            .arg(reg.image(repo_tag)),
    );
}

fn mirror(name: &str, src: &str, dst: &str, tags: Value, creds: bool) -> ImageMirror {
    let side = |repo: &str| {
        let mut s = json!({"repository": repo, "tlsVerify": false});
        if creds {
            s["credentialsSecretRef"] = json!({"name": "hostile-creds"});
        }
        s
    };
    serde_json::from_value(json!({
        "apiVersion": "kubemirror.dev/v1alpha1",
        "kind": "ImageMirror",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"source": side(src), "destination": side(dst), "tags": tags},
    }))
    .unwrap()
}

fn inspection(name: &str, image: &str) -> ImageInspection {
    serde_json::from_value(json!({
        "apiVersion": "kubemirror.dev/v1alpha1",
        "kind": "ImageInspection",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"image": image, "tlsVerify": false},
    }))
    .unwrap()
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// The object's status once its `Ready` (or `Stalled`) condition says the
/// reconcile finished, polling the API; fails after `secs`.
async fn settled(
    ctrl: &mut ControllerProc,
    get: impl AsyncFn() -> Option<Value>,
    what: &str,
    secs: u64,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        ctrl.assert_running();
        if let Some(st) = get().await {
            let done = condition(&st, "Ready").is_some_and(|c| c["status"] != "Unknown")
                && condition(&st, "Reconciling").is_none();
            if done {
                return st;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not settle within {secs}s; controller log:\n{}",
            ctrl.log_text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn metrics_text(ctrl: &ControllerProc) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(format!("http://{}/metrics", ctrl.metrics_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// One controller, one cluster, a good registry and every hostile one:
/// nothing panics, every object settles, statuses stay small, credentials
/// reach no other host, Secrets are watched by metadata only, and the peak
/// RSS stays far below the chart's 512Mi limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn controller_survives_hostile_registries_and_leaks_nothing() {
    let cluster = Cluster::start().await;
    let good = Registry::plain();
    push_hello(&good, "team/app:v1");
    let collector = Hostile::start(Behaviour::Collector).await;
    let c = collector.host.clone();
    let token = Hostile::start(Behaviour::HugeTokenLifetime).await;
    let retry = Hostile::start(Behaviour::HugeRetryAfter).await;
    let link = Hostile::start(Behaviour::LinkTo {
        collector: c.clone(),
    })
    .await;
    let upload = Hostile::start(Behaviour::UploadTo {
        collector: c.clone(),
    })
    .await;
    let pages = Hostile::start(Behaviour::BigPages {
        page_bytes: 12_000_000,
    })
    .await;
    let many = Hostile::start(Behaviour::ManyTags { tags: 150_001 }).await;
    let huge = Hostile::start(Behaviour::HugeError { bytes: 3 << 20 }).await;

    let client = cluster.client();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "default");
    let creds = hostile::dockerconfigjson(&[&link.host, &upload.host, &good.host]);
    for (name, type_, data) in [
        (
            "hostile-creds",
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": creds}),
        ),
        (
            "unrelated",
            "Opaque",
            json!({"password": "never-read-by-kubemirror"}),
        ),
    ] {
        let s = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "default"},
            "type": type_, "stringData": data,
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }

    let g = &good.host;
    let mirrors: Api<ImageMirror> = Api::namespaced(client.clone(), "default");
    let names_v1 = json!({"names": ["v1"]});
    for m in [
        mirror(
            "good",
            &format!("{g}/team/app"),
            &format!("{g}/mirror/good"),
            names_v1.clone(),
            true,
        ),
        mirror(
            "token",
            &format!("{}/r", token.host),
            &format!("{g}/mirror/token"),
            names_v1.clone(),
            false,
        ),
        mirror(
            "retry",
            &format!("{}/r", retry.host),
            &format!("{g}/mirror/retry"),
            names_v1.clone(),
            false,
        ),
        mirror(
            "link",
            &format!("{}/r", link.host),
            &format!("{g}/mirror/link"),
            json!({"pattern": "^v"}),
            true,
        ),
        mirror(
            "upload",
            &format!("{g}/team/app"),
            &format!("{}/r", upload.host),
            names_v1.clone(),
            true,
        ),
        mirror(
            "pages",
            &format!("{}/r", pages.host),
            &format!("{g}/mirror/pages"),
            json!({"pattern": "^nothing$"}),
            false,
        ),
        mirror(
            "huge",
            &format!("{}/r", huge.host),
            &format!("{g}/mirror/huge"),
            json!({"pattern": "."}),
            false,
        ),
    ] {
        mirrors.create(&PostParams::default(), &m).await.unwrap();
    }
    let inspections: Api<ImageInspection> = Api::namespaced(client.clone(), "default");
    for i in [
        inspection("many", &format!("{}/r:v1", many.host)),
        inspection("environ", "docker-archive:/proc/self/environ"),
    ] {
        inspections
            .create(&PostParams::default(), &i)
            .await
            .unwrap();
    }
    cluster.emu.hooks().clear_requests();

    let mut ctrl = ControllerProc::start(
        &cluster.kubeconfig,
        cluster.dir.path(),
        "hostile",
        &["--namespace=default"],
    );
    let mirror_status = |name: &'static str| {
        let api = mirrors.clone();
        async move || {
            let m = api.get(name).await.ok()?;
            serde_json::to_value(m.status?).ok()
        }
    };
    let inspection_status = |name: &'static str| {
        let api = inspections.clone();
        async move || {
            let i = api.get(name).await.ok()?;
            serde_json::to_value(i.status?).ok()
        }
    };
    let size = |v: &Value| serde_json::to_vec(v).unwrap().len();

    let st = settled(&mut ctrl, mirror_status("good"), "good", 120).await;
    assert_eq!(condition(&st, "Ready").unwrap()["status"], "True", "{st}");

    // u64::MAX token lifetime: the token was fetched and cached, no panic.
    let st = settled(&mut ctrl, mirror_status("token"), "token", 120).await;
    assert_eq!(condition(&st, "Ready").unwrap()["status"], "False", "{st}");
    assert!(token.requests().iter().any(|r| r.uri.starts_with("/token")));

    // u64::MAX Retry-After: rate limited, requeued within the cap, no panic.
    let st = settled(&mut ctrl, mirror_status("retry"), "retry", 120).await;
    let ready = condition(&st, "Ready").unwrap();
    assert_eq!(ready["reason"], "RateLimited", "{st}");

    // A Link and an upload Location on another host: followed, without credentials.
    settled(&mut ctrl, mirror_status("link"), "link", 120).await;
    settled(&mut ctrl, mirror_status("upload"), "upload", 120).await;
    let seen = collector.requests();
    assert!(
        seen.iter().any(|r| r.uri.contains("/tags/list")),
        "the Link was followed: {seen:?}"
    );
    assert!(
        seen.iter().any(|r| r.uri.starts_with("/upload/")),
        "the upload Location was followed: {seen:?}"
    );
    assert!(
        collector.authorized_requests().is_empty(),
        "credentials reached another host: {:?}",
        collector.authorized_requests()
    );
    assert!(
        link.authorized_requests().len() + upload.authorized_requests().len() > 0,
        "the registries themselves did get the credentials"
    );

    // 12 MB pages forever: the tag cap ends it, with an error that names it.
    let st = settled(&mut ctrl, mirror_status("pages"), "pages", 180).await;
    let msg = condition(&st, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("more than 500000 tags"), "{msg}");
    assert!(msg.contains("--max-tags"), "{msg}");

    // A 3 MB tag name and a 3 MB error: the status stays small.
    let st = settled(&mut ctrl, mirror_status("huge"), "huge", 120).await;
    assert!(size(&st) < 16 << 10, "{} bytes", size(&st));
    let tags = st["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1, "only the valid tag is selected: {st}");
    assert!(tags[0]["error"].as_str().unwrap().len() < 4096);

    // 150,001 tags and an oversized config: a bounded status, counts kept.
    let st = settled(&mut ctrl, inspection_status("many"), "many", 180).await;
    assert_eq!(condition(&st, "Ready").unwrap()["status"], "True", "{st}");
    assert!(size(&st) <= MAX_STATUS_BYTES, "{} bytes", size(&st));
    let shown = st["repoTags"].as_array().unwrap().len() as i64;
    assert_eq!(
        st["omitted"]["repoTags"],
        json!(150_001 - shown),
        "{}",
        st["omitted"]
    );
    assert!(st["env"].as_array().unwrap().len() <= 256);
    assert!(st["omitted"]["env"].as_i64().unwrap() > 0);

    // A local transport: refused before any file is opened.
    let st = settled(&mut ctrl, inspection_status("environ"), "environ", 60).await;
    let stalled = condition(&st, "Stalled").expect("Stalled");
    let msg = stalled["message"].as_str().unwrap();
    assert!(msg.contains("not allowed in the cluster"), "{msg}");
    assert!(!st.to_string().contains("KUBECONFIG="), "{st}");

    // Secrets: listed and watched by metadata only; data read by name, only
    // for the Secret the objects name.
    let secret_requests: Vec<_> = cluster
        .emu
        .hooks()
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/secrets"))
        .collect();
    assert!(!secret_requests.is_empty());
    for r in &secret_requests {
        if r.path.ends_with("/secrets") {
            let accept = r.accept.as_deref().unwrap_or_default();
            assert!(
                accept.contains("as=PartialObjectMetadata"),
                "a Secret list/watch asked for full objects: {r:?}"
            );
        } else {
            assert!(r.path.ends_with("/secrets/hostile-creds"), "{r:?}");
        }
    }

    // Metrics: no panic caught, host labels only for named registries.
    let text = metrics_text(&ctrl).await;
    assert!(!text.contains(&collector.host), "{text}");
    assert!(text.contains("host=\"other\""), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("kubemirror_reconcile_panics_total{") && !l.ends_with(" 0")),
        "{text}"
    );

    let peak_kib = ctrl.proc_kib("VmHWM");
    eprintln!(
        "controller peak RSS against the hostile registries: {} MiB",
        peak_kib / 1024
    );
    assert!(peak_kib < 256 * 1024, "peak RSS {peak_kib} KiB");
    ctrl.assert_running();
    ctrl.terminate(20);
}

/// `kubemirror sync -f` against a registry sending 12 MB tag pages forever:
/// the listing stops at the tag cap with an error that says so, and the
/// peak RSS (GNU time's "Maximum resident set size") stays small.
/// `KUBEMIRROR_BIN` runs another build (to measure a previous one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_against_12mb_tag_pages_stays_small() {
    let pages = Hostile::start(Behaviour::BigPages {
        page_bytes: 12_000_000,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mirror.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: kubemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {{name: pages, namespace: default}}\nspec:\n  source: {{repository: '{}/r', tlsVerify: false}}\n  destination: {{repository: 'oci:{}/out'}}\n  tags: {{pattern: '^nothing$'}}\n",
            pages.host,
            dir.path().display()
        ),
    )
    .unwrap();
    let bin = std::env::var("KUBEMIRROR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_kubemirror").to_string());
    let child = tokio::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(&bin)
        .args(["sync", "-f"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("/usr/bin/time is installed");
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("sync finished")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let peak_kib: u64 = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no figure from /usr/bin/time: {stderr}"));
    eprintln!(
        "sync against 12 MB pages: peak RSS {} MiB, {} pages served",
        peak_kib / 1024,
        pages.requests().len()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("more than 500000 tags"),
        "{stdout}\n{stderr}"
    );
    assert!(peak_kib < 200 * 1024, "peak RSS {peak_kib} KiB");
}

/// An https registry whose token realm is plain http: the Basic credentials
/// are never sent in cleartext; the error says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_registry_with_http_token_realm_is_refused() {
    let collector = Hostile::start(Behaviour::Collector).await;
    let dir = tempfile::tempdir().unwrap();
    let ts = support::token::TokenServer::start(dir.path(), Default::default()).await;
    let config = ts
        .registry_config()
        .replace(&ts.realm, &format!("http://{}/token", collector.host));
    let reg = Registry::start(support::registry::RegistryOptions {
        tls: true,
        extra_config: config,
        ..Default::default()
    });
    let creds = format!("{}:{}", hostile::USER, hostile::PASSWORD);
    let out = support::kubemirror()
        .args(["list-tags", "--tls-verify=false", "--creds", &creds])
        .arg(format!("docker://{}/r", reg.host))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("refusing token realm http://"), "{stderr}");
    assert!(!stderr.contains(hostile::PASSWORD), "{stderr}");
    assert!(
        collector.requests().is_empty(),
        "{:?}",
        collector.requests()
    );
}

/// Random statuses, headers and bodies from fixed seeds (`HOSTILE_SEEDS`), against `inspect`,
/// `list-tags` and `copy` with credentials: no run panics, and no
/// credential reaches the other host that Locations and Links point at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_survives_random_registries() {
    let collector = Hostile::start(Behaviour::Collector).await;
    let hello = support::repo_root().join("examples/images/hello");
    let creds = format!("{}:{}", hostile::USER, hostile::PASSWORD);
    let mut finished = 0;
    let mut runs = 0;
    // `HOSTILE_SEEDS=N` runs seeds 1..=N (a longer campaign); CI runs 10.
    let seeds: u64 = std::env::var("HOSTILE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for seed in 1..=seeds {
        let reg = Hostile::start(Behaviour::Random {
            seed,
            collector: collector.host.clone(),
        })
        .await;
        let image = format!("docker://{}/r:v1", reg.host);
        let repo = format!("docker://{}/r", reg.host);
        let src = format!("oci:{}:1.0.0", hello.display());
        let commands: Vec<Vec<&str>> = vec![
            vec![
                "inspect",
                "--tls-verify=false",
                "--retry-times=1",
                "--creds",
                &creds,
                &image,
            ],
            vec!["list-tags", "--tls-verify=false", "--creds", &creds, &repo],
            vec![
                "copy",
                "--dest-tls-verify=false",
                "--retry-times=1",
                "--dest-creds",
                &creds,
                &src,
                &image,
            ],
        ];
        for args in commands {
            runs += 1;
            if let Some(stderr) = run_bounded(&args, Duration::from_secs(20)).await {
                finished += 1;
                assert!(
                    !stderr.contains("panicked"),
                    "seed {seed} {args:?}: {stderr}"
                );
                assert!(!stderr.contains(hostile::PASSWORD), "seed {seed}: {stderr}");
                assert!(
                    stderr.lines().count() <= 3 && stderr.len() < 4096,
                    "seed {seed} {args:?}: errors stay short: {} bytes",
                    stderr.len()
                );
            }
        }
    }
    eprintln!("{finished} of {runs} runs finished within 20 s");
    assert!(finished * 2 >= runs, "most runs end: {finished} of {runs}");
    assert!(
        collector.authorized_requests().is_empty(),
        "{:?}",
        collector.authorized_requests()
    );
}

/// Run kubemirror with `args`; its stderr when it exits within `limit` (it
/// must not die of a signal or a panic), `None` when it was still waiting on
/// the registry (killed).
async fn run_bounded(args: &[&str], limit: Duration) -> Option<String> {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubemirror"))
        .args(args)
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .ok()?
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 1),
        "{args:?} ended with {}: {stderr}",
        out.status
    );
    Some(stderr)
}

/// A local file that is not an archive: the error says so without quoting
/// its bytes (`/proc/self/environ` once put an environment variable into a
/// status), for the CLI and for `sync -f` alike.
#[test]
fn local_file_bytes_never_reach_an_error() {
    let sentinel = "KUBEMIRROR_SENTINEL=do-not-echo-4f1c";
    let (name, value) = sentinel.split_once('=').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inspect.yaml");
    std::fs::write(
        &file,
        "apiVersion: kubemirror.dev/v1alpha1\nkind: ImageInspection\nmetadata: {name: environ, namespace: default}\nspec:\n  image: docker-archive:/proc/self/environ\n",
    )
    .unwrap();
    for args in [
        vec!["inspect", "docker-archive:/proc/self/environ"],
        vec!["sync", "-f", file.to_str().unwrap()],
    ] {
        let out = support::kubemirror()
            .args(&args)
            .env(name, value)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{args:?}: {all}");
        assert!(all.contains("corrupt tar archive"), "{args:?}: {all}");
        assert!(!all.contains(value), "{args:?} echoed the file: {all}");
    }
}
