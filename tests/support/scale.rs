//! The scale rig (issue 8), shared by `benches/scale.rs` and
//! `tests/scale_smoke.rs`: kube-emulator in process with the CRDs, a real
//! source and a real destination registry each behind a counting [`Proxy`],
//! a few dozen small source images, N `ImageMirror`s (mostly hits, some
//! misses), and the controller as a subprocess of the real binary so that
//! its peak RSS can be read from `/proc/PID/status`.
//!
//! [`run`] measures, in order:
//! 1. cold: from controller start until every object has `Ready` True (hits)
//!    or False (misses) with `observedGeneration == metadata.generation`;
//!    the controller's peak RSS; every registry request;
//! 2. warm re-sync by restart: a new controller process reconciles every
//!    object once (the initial list), nothing changed upstream;
//! 3. warm re-sync by interval (optional): every object's `spec.interval` is
//!    set short, and one round of interval-driven reconciles is counted.
//!
//! Registry requests are attributed per object: destination paths name the
//! object's own repository; source paths name a pushed (repository, tag) for
//! hits and an absent tag or repository for misses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::json;

use kubemirror::api::v1alpha1::ImageMirror;

use super::cluster::Cluster;
use super::controller_proc::{ControllerProc, cpu_seconds};
use super::proxy::{Proxy, Seen};
use super::registry::Registry;

/// The namespace every object lives in.
pub const NAMESPACE: &str = "default";

/// What to build and how to run it.
#[derive(Debug, Clone)]
pub struct Options {
    /// `ImageMirror` objects.
    pub objects: usize,
    /// Every `miss_every`-th object is a miss (0: none).
    pub miss_every: usize,
    /// Source repositories (`bench/app0` is a two-platform index).
    pub repos: usize,
    /// Tags per source repository.
    pub tags: usize,
    /// The controller's `--concurrency`.
    pub concurrency: u16,
    /// The `kubemirror` binary run as the controller.
    pub controller_bin: PathBuf,
    /// Seconds for the warm interval re-sync; `None` skips it.
    pub interval_secs: Option<u64>,
    /// Longest wait for any one phase.
    pub deadline: Duration,
    /// Added to every registry request by the proxies (a far-away registry).
    pub latency: Duration,
    /// Keep the controllers' logs (`RUST_LOG=info`) here, under
    /// `<run>-<name>.log`; `None`: in the rig's temporary directory, gone with it.
    pub logs: Option<PathBuf>,
}

/// What a mirror is expected to end as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Expect {
    /// The source tag exists: `Ready=True`.
    Hit,
    /// The source repository exists, the tag does not: `Ready=False`.
    MissingTag,
    /// The source repository does not exist: `Ready=False`.
    MissingRepo,
}

impl Expect {
    pub fn is_hit(self) -> bool {
        self == Expect::Hit
    }
}

/// One `ImageMirror` of the rig.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub source_repo: String,
    pub tag: String,
    pub expect: Expect,
}

/// Which registry a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Side {
    Source,
    Destination,
}

/// Whom a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Class {
    /// An object whose tag exists.
    Hit,
    /// An object whose tag or repository does not exist.
    Miss,
    /// Not attributable to one object (`/v2/`, `_catalog`).
    Other,
}

/// Registry requests by side, class and method.
#[derive(Debug, Clone, Default)]
pub struct Counts(pub BTreeMap<(Side, Class, String), usize>);

impl Counts {
    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    pub fn side(&self, side: Side) -> usize {
        self.0
            .iter()
            .filter(|((s, _, _), _)| *s == side)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn get(&self, side: Side, class: Class, method: &str) -> usize {
        self.0
            .get(&(side, class, method.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Requests of `class` on `side`, all methods.
    pub fn class(&self, side: Side, class: Class) -> usize {
        self.0
            .iter()
            .filter(|((s, c, _), _)| *s == side && *c == class)
            .map(|(_, n)| n)
            .sum()
    }

    /// `METHOD n` pairs of one side and class, for tables.
    pub fn methods(&self, side: Side, class: Class) -> Vec<(String, usize)> {
        self.0
            .iter()
            .filter(|((s, c, _), _)| *s == side && *c == class)
            .map(|((_, _, m), n)| (m.clone(), *n))
            .collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for ((side, class, method), n) in &self.0 {
            out.insert(format!("{side:?}/{class:?}/{method}"), json!(n));
        }
        serde_json::Value::Object(out)
    }
}

/// The cold run.
#[derive(Debug, Clone)]
pub struct Cold {
    /// Controller start → every object settled.
    pub seconds: f64,
    pub peak_rss_kib: u64,
    /// CPU time of the controller process, and of this process (the
    /// emulator, the proxies, the watch) over the run.
    pub controller_cpu_seconds: f64,
    pub rig_cpu_seconds: f64,
    pub requests: Counts,
    /// `PATCH …/imagemirrors/NAME/status` the controller sent.
    pub status_writes: usize,
    /// Events the controller created or updated.
    pub event_writes: usize,
    /// Reconciles the controller counted (`kubemirror_reconciles_total`), by result.
    pub reconciles: BTreeMap<String, u64>,
}

/// One warm re-sync measurement.
#[derive(Debug, Clone)]
pub struct Warm {
    pub method: &'static str,
    /// Start of the window → the counted reconciles done.
    pub seconds: f64,
    /// Reconciles of hits (result `ok`) in the window.
    pub hit_reconciles: u64,
    /// Reconciles of misses (result `tags_failed`) in the window.
    pub miss_reconciles: u64,
    pub requests: Counts,
    pub status_writes: usize,
    pub peak_rss_kib: u64,
}

impl Warm {
    /// Requests per reconcile of an unchanged tag on `side` with `method`
    /// (every hit selects one tag).
    pub fn per_tag(&self, side: Side, method: &str) -> f64 {
        self.requests.get(side, Class::Hit, method) as f64 / self.hit_reconciles.max(1) as f64
    }

    /// All requests per reconcile of an unchanged tag.
    pub fn per_tag_total(&self) -> f64 {
        (self.requests.class(Side::Source, Class::Hit)
            + self.requests.class(Side::Destination, Class::Hit)) as f64
            / self.hit_reconciles.max(1) as f64
    }
}

/// Everything [`run`] measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub options: Options,
    pub objects: usize,
    pub hits: usize,
    pub misses: usize,
    pub images: usize,
    pub concurrency: u16,
    /// Creating the N objects (kube-rs, concurrent POSTs).
    pub create_seconds: f64,
    pub cold: Cold,
    pub warm: Vec<Warm>,
    /// `(name, reason, message)` of the `Ready` condition of every miss.
    pub miss_conditions: Vec<(String, String, String)>,
}

/// The running parts.
pub struct Rig {
    pub cluster: Cluster,
    pub client: Client,
    pub src: Registry,
    pub dst: Registry,
    pub src_proxy: Proxy,
    pub dst_proxy: Proxy,
    pub cases: Vec<Case>,
    /// Pushed `(repository, tag)` pairs.
    pub images: HashSet<(String, String)>,
    /// The absent tags misses name.
    pub missing_tags: HashSet<String>,
    pub opts: Options,
}

impl Rig {
    /// Where a controller's log goes: `--logs DIR` (kept, named after the
    /// run: objects and, for scale-out, replicas) or the rig's temporary
    /// directory.
    pub fn log_path(&self, name: &str) -> PathBuf {
        match &self.opts.logs {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .unwrap_or_else(|e| panic!("--logs {}: {e}", dir.display()));
                dir.join(format!("{}-objects-{name}.log", self.opts.objects))
            }
            None => self.cluster.dir.path().join(format!("{name}.log")),
        }
    }

    /// Emulator + CRDs, both registries + proxies, the source images, and
    /// the case list (objects are created by [`Rig::create_mirrors`]).
    pub async fn start(opts: Options) -> Rig {
        let cluster = Cluster::start().await;
        let client = cluster.client();

        let (src, dst) = tokio::task::spawn_blocking(|| (Registry::plain(), Registry::plain()))
            .await
            .unwrap();
        let src_proxy = Proxy::start(&src.base_url()).await;
        let dst_proxy = Proxy::start(&dst.base_url()).await;
        src_proxy.set_latency(opts.latency);
        dst_proxy.set_latency(opts.latency);
        let images = {
            let (host, layouts, repos, tags) = (
                src.host.clone(),
                cluster.dir.path().join("layouts"),
                opts.repos,
                opts.tags,
            );
            tokio::task::spawn_blocking(move || push_images(&host, &layouts, repos, tags))
                .await
                .unwrap()
        };
        let cases = cases(&opts);
        let missing_tags = cases
            .iter()
            .filter(|c| c.expect == Expect::MissingTag)
            .map(|c| c.tag.clone())
            .collect();
        Rig {
            cluster,
            client,
            src,
            dst,
            src_proxy,
            dst_proxy,
            cases,
            images,
            missing_tags,
            opts,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.cluster.kubeconfig.clone()
    }

    pub fn api(&self) -> Api<ImageMirror> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    pub fn hits(&self) -> usize {
        self.cases.iter().filter(|c| c.expect.is_hit()).count()
    }

    /// Create every object (32 POSTs in flight); returns the seconds it took.
    pub async fn create_mirrors(&self, interval: &str) -> f64 {
        let started = Instant::now();
        let api = self.api();
        let objs: Vec<ImageMirror> = self
            .cases
            .iter()
            .map(|c| {
                serde_json::from_value(json!({
                    "apiVersion": "kubemirror.dev/v1alpha1",
                    "kind": "ImageMirror",
                    "metadata": {"name": c.name, "namespace": NAMESPACE},
                    "spec": {
                        "source": {"repository": format!("{}/{}", self.src_proxy.host, c.source_repo), "tlsVerify": false},
                        "destination": {"repository": format!("{}/mirror/{}", self.dst_proxy.host, c.name), "tlsVerify": false},
                        "tags": {"names": [c.tag]},
                        "interval": interval,
                    }
                }))
                .expect("a valid ImageMirror")
            })
            .collect();
        futures::stream::iter(objs)
            .map(|o| {
                let api = api.clone();
                async move { api.create(&PostParams::default(), &o).await }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await
            .expect("create ImageMirrors");
        started.elapsed().as_secs_f64()
    }

    /// Set `spec.interval` on every object (a new generation for each).
    pub async fn set_interval(&self, interval: &str) {
        let api = self.api();
        let patch = json!({"spec": {"interval": interval}});
        futures::stream::iter(self.cases.iter().map(|c| c.name.clone()))
            .map(|name| {
                let (api, patch) = (api.clone(), patch.clone());
                async move {
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await
            .expect("patch spec.interval");
    }

    /// Wait (watching, not polling) until every object has `Ready` True
    /// (hits) or False (misses) for its current generation; returns the
    /// `Ready` condition of every object. Panics at the deadline, naming
    /// the objects still unsettled and what they show.
    pub async fn wait_settled(&self) -> HashMap<String, (String, String, String)> {
        self.wait_settled_since(None).await
    }

    /// [`Rig::wait_settled`], counting only objects synced after `after`
    /// (`status.lastSyncTime`), and only those named in `only` if given.
    pub async fn wait_settled_since(
        &self,
        after: Option<(jiff::Timestamp, &HashSet<String>)>,
    ) -> HashMap<String, (String, String, String)> {
        let expect: HashMap<&str, Expect> = self
            .cases
            .iter()
            .filter(|c| after.is_none_or(|(_, only)| only.contains(&c.name)))
            .map(|c| (c.name.as_str(), c.expect))
            .collect();
        let mut state: HashMap<String, (bool, (String, String, String))> = HashMap::new();
        let mut settled = 0usize;
        let stream = watcher(self.api(), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        let deadline = tokio::time::Instant::now() + self.opts.deadline;
        while settled < expect.len() {
            let next = match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(n)) => n,
                Ok(None) => panic!("the ImageMirror watch ended"),
                Err(_) => {
                    let mut stuck: Vec<String> = expect
                        .iter()
                        .filter(|(n, _)| !state.get(**n).is_some_and(|s| s.0))
                        .map(|(n, e)| format!("{n} ({e:?}): {:?}", state.get(*n).map(|s| &s.1)))
                        .collect();
                    stuck.sort();
                    panic!(
                        "{} of {} ImageMirrors not settled after {:?}; first: {:#?}",
                        stuck.len(),
                        expect.len(),
                        self.opts.deadline,
                        &stuck[..stuck.len().min(10)]
                    );
                }
            };
            let Ok(obj) = next else { continue };
            let name = obj.metadata.name.clone().unwrap_or_default();
            let Some(&want) = expect.get(name.as_str()) else {
                continue;
            };
            let (mut ok, ready) = settled_as(&obj, want);
            if let Some((t, _)) = after {
                ok &= obj
                    .status
                    .as_ref()
                    .and_then(|s| s.last_sync_time.as_ref())
                    .is_some_and(|s| s.0 > t);
            }
            let was = state.insert(name, (ok, ready)).is_some_and(|s| s.0);
            match (was, ok) {
                (false, true) => settled += 1,
                (true, false) => settled -= 1,
                _ => {}
            }
        }
        state.into_iter().map(|(k, (_, r))| (k, r)).collect()
    }

    /// Every request both proxies logged since the last call, attributed.
    pub fn take_counts(&self) -> Counts {
        self.take_counts_from(self.src_proxy.take_log(), self.dst_proxy.take_log())
    }

    /// [`Rig::take_counts`] over given logs.
    pub fn take_counts_from(&self, src: Vec<Seen>, dst: Vec<Seen>) -> Counts {
        let mut counts = Counts::default();
        let by_name: HashMap<&str, Expect> = self
            .cases
            .iter()
            .map(|c| (c.name.as_str(), c.expect))
            .collect();
        for (side, log) in [(Side::Source, src), (Side::Destination, dst)] {
            for s in log {
                let class = self.classify(side, &s, &by_name);
                *counts.0.entry((side, class, s.method.clone())).or_default() += 1;
            }
        }
        counts
    }

    fn classify(&self, side: Side, s: &Seen, by_name: &HashMap<&str, Expect>) -> Class {
        let Some((repo, kind, reference)) = split_path(&s.path) else {
            return Class::Other;
        };
        let hit = match side {
            Side::Destination => match repo.strip_prefix("mirror/") {
                Some(name) => match by_name.get(name) {
                    Some(e) => e.is_hit(),
                    None => return Class::Other,
                },
                None => return Class::Other,
            },
            // A pushed repository serves hits, except for the absent tags
            // misses name (probes for attachments such as
            // `sha256-<hex>.sig` belong to the hit being copied).
            Side::Source => {
                self.images.iter().any(|(r, _)| r == repo)
                    && !(kind == "manifests" && self.missing_tags.contains(reference))
            }
        };
        if hit { Class::Hit } else { Class::Miss }
    }

    /// Status PATCHes and Event writes the API server received since the last call.
    pub fn take_api_writes(&self) -> (usize, usize) {
        let hooks = self.cluster.emu.hooks();
        let reqs = hooks.requests();
        hooks.clear_requests();
        let status = reqs
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.contains("/imagemirrors/"))
            .filter(|r| r.path.ends_with("/status"))
            .count();
        let events = reqs
            .iter()
            .filter(|r| r.method != "GET" && r.path.contains("/events"))
            .count();
        (status, events)
    }
}

/// `/v2/REPO/{manifests,blobs,tags}/REST` → (REPO, kind, REST).
fn split_path(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/v2/")?;
    for kind in ["manifests", "blobs", "tags"] {
        let marker = format!("/{kind}/");
        if let Some(i) = rest.rfind(&marker) {
            return Some((&rest[..i], kind, &rest[i + marker.len()..]));
        }
    }
    None
}

/// Whether `obj` shows the `Ready` state `want` for its generation, and its
/// `Ready` condition as (status, reason, message).
fn settled_as(obj: &ImageMirror, want: Expect) -> (bool, (String, String, String)) {
    let generation = obj.metadata.generation;
    let Some(st) = &obj.status else {
        return (false, Default::default());
    };
    let Some(ready) = st.conditions.iter().find(|c| c.type_ == "Ready") else {
        return (false, Default::default());
    };
    let status = if want.is_hit() { "True" } else { "False" };
    let ok = ready.status == status
        && st.observed_generation == generation
        && ready.observed_generation == generation;
    (
        ok,
        (
            ready.status.clone(),
            ready.reason.clone(),
            ready.message.clone(),
        ),
    )
}

/// `repos × tags` small images (one 2 KiB layer; `bench/app0` a two-platform
/// index), pushed with skopeo straight to the registry (not counted).
fn push_images(host: &str, layouts: &Path, repos: usize, tags: usize) -> HashSet<(String, String)> {
    let tag_names: Vec<String> = (0..tags).map(tag_name).collect();
    let mut jobs = Vec::new();
    for r in 0..repos {
        let layout = layouts.join(format!("app{r}"));
        let mut args: Vec<String> = vec![
            "--layers".into(),
            "1".into(),
            "--layer-size".into(),
            "2K".into(),
            "--seed".into(),
            (r + 1).to_string(),
        ];
        if r == 0 {
            args.extend(["--platforms".into(), "linux/amd64,linux/arm64".into()]);
        }
        for t in &tag_names {
            args.extend(["--tag".into(), t.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::mkimage(&layout, &args);
        for t in &tag_names {
            jobs.push((layout.clone(), format!("bench/app{r}"), t.clone()));
        }
    }
    // Four skopeo processes at a time.
    let queue = std::sync::Mutex::new(jobs.clone());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let Some((layout, repo, tag)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    super::run(
                        super::skopeo()
                            .args(["copy", "--all", "--quiet", "--dest-tls-verify=false"])
                            .arg(format!("oci:{}:{tag}", layout.display()))
                            .arg(format!("docker://{host}/{repo}:{tag}")),
                    );
                }
            });
        }
    });
    jobs.into_iter().map(|(_, r, t)| (r, t)).collect()
}

fn tag_name(t: usize) -> String {
    format!("1.{t}.0")
}

/// The objects: every `miss_every`-th a miss (alternately an absent tag and
/// an absent repository), the others spread over the pushed images.
pub fn cases(opts: &Options) -> Vec<Case> {
    let mut misses = 0;
    (0..opts.objects)
        .map(|i| {
            let name = format!("m-{i:05}");
            let repo = i % opts.repos;
            let tag = (i / opts.repos) % opts.tags;
            if opts.miss_every > 0 && i % opts.miss_every == opts.miss_every - 1 {
                misses += 1;
                if misses % 2 == 1 {
                    Case {
                        name,
                        source_repo: format!("bench/app{repo}"),
                        tag: format!("9.9.{i}"),
                        expect: Expect::MissingTag,
                    }
                } else {
                    Case {
                        name,
                        source_repo: format!("bench/gone{i}"),
                        tag: tag_name(tag),
                        expect: Expect::MissingRepo,
                    }
                }
            } else {
                Case {
                    name,
                    source_repo: format!("bench/app{repo}"),
                    tag: tag_name(tag),
                    expect: Expect::Hit,
                }
            }
        })
        .collect()
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>, k: &str) -> u64 {
    after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0)
}

/// Build the rig and measure: cold run, warm re-sync by restart, and (with
/// `interval_secs`) warm re-sync by interval. See the module docs.
pub async fn run(opts: Options) -> Report {
    let rig = Rig::start(opts.clone()).await;
    let hits = rig.hits();
    let misses = rig.cases.len() - hits;
    let create_seconds = rig.create_mirrors("1h").await;
    rig.take_counts();
    rig.take_api_writes();

    // Cold.
    let log = |n: usize| rig.log_path(&format!("controller-{n}"));
    let started = Instant::now();
    let rig_cpu = cpu_seconds("self");
    let mut ctl = ControllerProc::spawn(
        &opts.controller_bin,
        &rig.kubeconfig(),
        log(1),
        "scale",
        &[&format!("--concurrency={}", opts.concurrency)],
    );
    let ready = rig.wait_settled().await;
    let cold_seconds = started.elapsed().as_secs_f64();
    let reconciles = ctl.reconciles().await;
    let cold_requests = rig.take_counts();
    let (status_writes, event_writes) = rig.take_api_writes();
    let (peak, cpu) = ctl.stop();
    let cold = Cold {
        seconds: cold_seconds,
        peak_rss_kib: peak,
        controller_cpu_seconds: cpu,
        rig_cpu_seconds: cpu_seconds("self") - rig_cpu,
        requests: cold_requests,
        status_writes,
        event_writes,
        reconciles,
    };
    let mut miss_conditions: Vec<(String, String, String)> = rig
        .cases
        .iter()
        .filter(|c| !c.expect.is_hit())
        .map(|c| {
            let (_, reason, message) = ready[&c.name].clone();
            (c.name.clone(), reason, message)
        })
        .collect();
    miss_conditions.sort();

    // Warm, by restart: the new process lists every object and reconciles
    // each once; nothing changed, so each status write only moves lastSyncTime.
    rig.take_counts();
    rig.take_api_writes();
    let started = Instant::now();
    let mut ctl = ControllerProc::spawn(
        &opts.controller_bin,
        &rig.kubeconfig(),
        log(2),
        "scale",
        &[&format!("--concurrency={}", opts.concurrency)],
    );
    let r = ctl
        .wait_reconciles(hits as u64, misses as u64, opts.deadline)
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let requests = rig.take_counts();
    let (status_writes, _) = rig.take_api_writes();
    let mut warm = vec![Warm {
        method: "restart",
        seconds,
        hit_reconciles: delta(&r, &BTreeMap::new(), "ok"),
        miss_reconciles: delta(&r, &BTreeMap::new(), "tags_failed"),
        requests,
        status_writes,
        peak_rss_kib: ctl.proc_kib("VmHWM"),
    }];

    // Warm, by interval: every object on a short interval (a new
    // generation: settle it first), then count one round of ticks.
    if let Some(secs) = opts.interval_secs {
        rig.set_interval(&format!("{secs}s")).await;
        rig.wait_settled().await;
        let before = ctl.reconciles().await;
        rig.take_counts();
        rig.take_api_writes();
        let started = Instant::now();
        let want_ok = before.get("ok").copied().unwrap_or(0) + hits as u64;
        let after = ctl.wait_reconciles(want_ok, 0, opts.deadline).await;
        let requests = rig.take_counts();
        let (status_writes, _) = rig.take_api_writes();
        warm.push(Warm {
            method: "interval",
            seconds: started.elapsed().as_secs_f64(),
            hit_reconciles: delta(&after, &before, "ok"),
            miss_reconciles: delta(&after, &before, "tags_failed"),
            requests,
            status_writes,
            peak_rss_kib: ctl.proc_kib("VmHWM"),
        });
    }
    ctl.stop();

    Report {
        options: opts.clone(),
        objects: opts.objects,
        hits,
        misses,
        images: rig.images.len(),
        concurrency: opts.concurrency,
        create_seconds,
        cold,
        warm,
        miss_conditions,
    }
}
