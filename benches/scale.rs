//! The scale benchmark (issue 8): N `ImageMirror`s (mixed hits and misses)
//! against kube-emulator, two real registries behind counting proxies, and
//! the release controller as a subprocess. Reports time to all Ready, the
//! controller's peak RSS, cold registry requests, and registry requests per
//! unchanged tag on a warm re-sync (by restart and by interval).
//!
//! With `--replicas 1,2,4` it runs the scale-out benchmark instead (issue
//! 19, `tests/support/scale_out.rs`): per replica count, time to all Ready,
//! per-replica peak RSS, warm re-sync requests per unchanged tag across all
//! replicas, and the takeover time of a SIGKILLed replica's shards.
//!
//! Run it with `scripts/scale [--objects N] [--concurrency C] [--json] ...`
//! (`cargo bench --bench scale -- ARGS`); see `--help`.
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::scale::{Class, Options, Report, Side, Warm};
use support::scale_out::{self, Replicas, ScaleOut};

const USAGE: &str = "\
scale benchmark (issue 8)
  --objects N          ImageMirror objects (default 1000)
  --miss-percent P     share of misses, absent tag or repository (default 10)
  --concurrency C      controller --concurrency (default 16)
  --repos R            source repositories (default 8; app0 is a 2-platform index)
  --tags T             tags per source repository (default 4)
  --interval SECS      warm re-sync by spec.interval of SECS; 0 skips it (default 10)
  --deadline SECS      longest wait for one phase (default 900)
  --json               print the report as JSON
  --replicas LIST      scale-out: run once per replica count (e.g. 1,2,4); 1 is
                       the single replica without sharding, more use --shards
  --shards S           shards with more than one replica (default 32)
  --latency D          added to every registry request by the proxies, e.g.
                       20ms (default 0)
  --lease-duration D   the replicas' lease duration (default 15s; renew
                       deadline 2/3 and retry period 2/15 of it)
  --logs DIR           keep every controller's log (RUST_LOG=info) in DIR,
                       one file per process: OBJECTS-objects-[R-replicas-I-round-K|controller-K].log";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --benches` runs bench targets without `--bench`: nothing to check here.
    if !args.iter().any(|a| a == "--bench") {
        println!("scale: run it with scripts/scale (cargo bench --bench scale)");
        return;
    }
    let mut opts = Options {
        objects: 1000,
        miss_every: 10,
        repos: 8,
        tags: 4,
        concurrency: 16,
        // `KUBEMIRROR_BIN=PATH` runs another build as the controller.
        controller_bin: std::env::var_os("KUBEMIRROR_BIN")
            .map(Into::into)
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_kubemirror").into()),
        interval_secs: Some(10),
        deadline: Duration::from_secs(900),
        latency: Duration::ZERO,
        logs: None,
    };
    let mut json = false;
    let mut replicas: Vec<usize> = Vec::new();
    let mut shards: u32 = 32;
    let mut lease = scale_out::LEASE_DURATION;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| die(&format!("{name} wants a number")))
        };
        match a.as_str() {
            "--bench" => {}
            "--objects" => opts.objects = num(a) as usize,
            "--miss-percent" => {
                let p = num(a);
                opts.miss_every = if p == 0 {
                    0
                } else {
                    (100 / p.min(100)) as usize
                };
            }
            "--concurrency" => opts.concurrency = num(a).clamp(1, u16::MAX as u64) as u16,
            "--repos" => opts.repos = num(a).max(1) as usize,
            "--tags" => opts.tags = num(a).max(1) as usize,
            "--interval" => opts.interval_secs = Some(num(a)).filter(|s| *s > 0),
            "--deadline" => opts.deadline = Duration::from_secs(num(a)),
            "--json" => json = true,
            "--replicas" => {
                let v = it.next().unwrap_or_else(|| die("--replicas wants a list"));
                replicas = v
                    .split(',')
                    .map(|n| n.trim().parse().ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<usize>>>()
                    .unwrap_or_else(|| die("--replicas wants counts like 1,2,4"));
            }
            "--shards" => shards = num(a).clamp(1, 256) as u32,
            "--latency" => opts.latency = duration(it.next()),
            "--lease-duration" => lease = duration(it.next()),
            "--logs" => {
                let dir = it.next().unwrap_or_else(|| die("--logs wants a directory"));
                opts.logs = Some(dir.into());
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => die(&format!("unknown argument {other:?}")),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if !replicas.is_empty() {
        let mut out = Vec::new();
        for &count in &replicas {
            let r = Replicas {
                count,
                shards,
                lease_duration: lease,
            };
            let report = rt.block_on(scale_out::run(opts.clone(), r));
            if !json {
                print_scale_out(&report, &opts);
            }
            out.push(report);
        }
        if json {
            let v: Vec<serde_json::Value> = out.iter().map(scale_out_json).collect();
            println!("{}", serde_json::to_string_pretty(&v).unwrap());
        } else {
            print_speedup(&out);
        }
        return;
    }
    let report = rt.block_on(support::scale::run(opts));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&report)).unwrap()
        );
    } else {
        print_table(&report);
    }
}

fn duration(v: Option<&String>) -> Duration {
    v.and_then(|v| kubemirror::api::v1alpha1::parse_go_duration(v).ok())
        .unwrap_or_else(|| die("want a duration such as 20ms or 15s"))
}

fn rss_list(k: &[u64]) -> String {
    k.iter()
        .map(|k| format!("{:.1}", mib(*k)))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn print_scale_out(r: &ScaleOut, opts: &Options) {
    println!(
        "scale-out: {} replica(s){}, {} ImageMirrors ({} hits), latency {:?} per registry request, --concurrency {}",
        r.replicas,
        if r.replicas > 1 {
            format!(" sharing {} shards", r.shards)
        } else {
            " (no sharding)".into()
        },
        r.objects,
        r.hits,
        opts.latency,
        opts.concurrency
    );
    println!("  time to all Ready (cold)      {:.1} s", r.cold_seconds);
    println!(
        "  peak RSS per replica (cold)   {} MiB",
        rss_list(&r.cold_peak_rss_kib)
    );
    println!("  cold registry requests        {}", r.cold_requests);
    println!(
        "  warm re-sync (restart all)    {:.2} requests per unchanged tag, all replicas ({} hits reconciled in {:.1} s; source {}, destination {})",
        r.warm_per_tag,
        r.hits,
        r.warm_seconds,
        r.warm_requests.class(Side::Source, Class::Hit),
        r.warm_requests.class(Side::Destination, Class::Hit)
    );
    println!(
        "  peak RSS per replica (warm)   {} MiB",
        rss_list(&r.warm_peak_rss_kib)
    );
    if let Some(t) = r.takeover_seconds {
        println!(
            "  takeover after SIGKILL        {t:.1} s ({} shards, {} hits reconciled again)",
            r.takeover_shards, r.takeover_objects
        );
    }
}

fn print_speedup(all: &[ScaleOut]) {
    let Some(base) = all.iter().find(|r| r.replicas == 1) else {
        return;
    };
    for r in all.iter().filter(|r| r.replicas > 1) {
        println!(
            "speed-up, {} replicas over 1: {:.2}x (cold time to all Ready)",
            r.replicas,
            base.cold_seconds / r.cold_seconds
        );
    }
}

fn scale_out_json(r: &ScaleOut) -> serde_json::Value {
    serde_json::json!({
        "replicas": r.replicas,
        "shards": r.shards,
        "objects": r.objects,
        "hits": r.hits,
        "coldSecondsToAllReady": r.cold_seconds,
        "coldPeakRssMiB": r.cold_peak_rss_kib.iter().map(|k| mib(*k)).collect::<Vec<_>>(),
        "coldRequests": r.cold_requests,
        "warmRequestsPerUnchangedTag": r.warm_per_tag,
        "warmSeconds": r.warm_seconds,
        "warmPeakRssMiB": r.warm_peak_rss_kib.iter().map(|k| mib(*k)).collect::<Vec<_>>(),
        "takeoverSeconds": r.takeover_seconds,
        "takeoverShards": r.takeover_shards,
        "takeoverObjects": r.takeover_objects,
    })
}

fn die(msg: &str) -> ! {
    eprintln!("scale: {msg}\n{USAGE}");
    std::process::exit(2)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn methods(w: &Warm, side: Side) -> String {
    let m = w.requests.methods(side, Class::Hit);
    if m.is_empty() {
        return "0".into();
    }
    m.iter()
        .map(|(method, _)| format!("{method} {:.2}", w.per_tag(side, method)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn counts_line(c: &support::scale::Counts, side: Side) -> String {
    let part = |class| {
        c.methods(side, class)
            .iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} (hits: {}; misses: {}; other: {})",
        c.side(side),
        part(Class::Hit),
        part(Class::Miss),
        part(Class::Other)
    )
}

fn print_table(r: &Report) {
    let c = &r.cold;
    println!(
        "scale: {} ImageMirrors ({} hits, {} misses) over {} source images; controller --concurrency {}",
        r.objects, r.hits, r.misses, r.images, r.concurrency
    );
    println!("  create objects (kube-rs)      {:.1} s", r.create_seconds);
    println!("cold run");
    println!("  time to all Ready             {:.1} s", c.seconds);
    println!(
        "  controller peak RSS (VmHWM)   {:.1} MiB",
        mib(c.peak_rss_kib)
    );
    println!(
        "  CPU controller / rig          {:.1} s / {:.1} s (rig: emulator, proxies, watch)",
        c.controller_cpu_seconds, c.rig_cpu_seconds
    );
    println!("  registry requests             {}", c.requests.total());
    println!(
        "    source                      {}",
        counts_line(&c.requests, Side::Source)
    );
    println!(
        "    destination                 {}",
        counts_line(&c.requests, Side::Destination)
    );
    println!(
        "  reconciles                    {}",
        c.reconciles
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  status writes / event writes  {} / {}",
        c.status_writes, c.event_writes
    );
    for w in &r.warm {
        println!("warm re-sync by {}", w.method);
        println!(
            "  reconciles counted            {} hits, {} misses in {:.1} s",
            w.hit_reconciles, w.miss_reconciles, w.seconds
        );
        println!(
            "  requests per unchanged tag    {:.2} (source: {}; destination: {})",
            w.per_tag_total(),
            methods(w, Side::Source),
            methods(w, Side::Destination)
        );
        println!(
            "  all registry requests         {} (source {}, destination {}; misses {}, other {})",
            w.requests.total(),
            w.requests.side(Side::Source),
            w.requests.side(Side::Destination),
            w.requests.class(Side::Source, Class::Miss)
                + w.requests.class(Side::Destination, Class::Miss),
            w.requests.class(Side::Source, Class::Other)
                + w.requests.class(Side::Destination, Class::Other)
        );
        println!("  status writes                 {}", w.status_writes);
        println!(
            "  controller peak RSS (VmHWM)   {:.1} MiB",
            mib(w.peak_rss_kib)
        );
    }
    if let Some((name, reason, message)) = r.miss_conditions.first() {
        println!("a miss, as its Ready condition says: {name}: {reason}: {message}");
    }
}

fn to_json(r: &Report) -> serde_json::Value {
    let warm: Vec<serde_json::Value> = r
        .warm
        .iter()
        .map(|w| {
            let per = |side| {
                let mut m = serde_json::Map::new();
                for (method, _) in w.requests.methods(side, Class::Hit) {
                    let v = w.per_tag(side, &method);
                    m.insert(method, serde_json::json!(v));
                }
                serde_json::Value::Object(m)
            };
            serde_json::json!({
                "method": w.method,
                "seconds": w.seconds,
                "hitReconciles": w.hit_reconciles,
                "missReconciles": w.miss_reconciles,
                "requestsPerUnchangedTag": w.per_tag_total(),
                "perTagSource": per(Side::Source),
                "perTagDestination": per(Side::Destination),
                "requests": w.requests.to_json(),
                "statusWrites": w.status_writes,
                "peakRssMiB": mib(w.peak_rss_kib),
            })
        })
        .collect();
    serde_json::json!({
        "objects": r.objects,
        "hits": r.hits,
        "misses": r.misses,
        "sourceImages": r.images,
        "concurrency": r.concurrency,
        "createSeconds": r.create_seconds,
        "cold": {
            "secondsToAllReady": r.cold.seconds,
            "peakRssMiB": mib(r.cold.peak_rss_kib),
            "controllerCpuSeconds": r.cold.controller_cpu_seconds,
            "rigCpuSeconds": r.cold.rig_cpu_seconds,
            "requestsTotal": r.cold.requests.total(),
            "requests": r.cold.requests.to_json(),
            "reconciles": r.cold.reconciles,
            "statusWrites": r.cold.status_writes,
            "eventWrites": r.cold.event_writes,
        },
        "warm": warm,
        "missConditions": r.miss_conditions.iter().take(4).map(|(n, reason, m)| serde_json::json!({"name": n, "reason": reason, "message": m})).collect::<Vec<_>>(),
    })
}
