//! The kubemirror controller as a separate process (the binary under test),
//! so that a test can kill it (SIGKILL, as a crashed or evicted pod) or stop
//! it (SIGTERM), run several replicas side by side, and read its peak memory,
//! CPU time and metrics.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct ControllerProc {
    child: Child,
    pub identity: String,
    pub log: PathBuf,
    pub metrics_addr: SocketAddr,
    pub health_addr: SocketAddr,
}

impl ControllerProc {
    /// The binary built for these tests, against the cluster in `kubeconfig`,
    /// logging to `dir/IDENTITY.log` (appended: a restarted replica keeps one log).
    pub fn start(kubeconfig: &Path, dir: &Path, identity: &str, args: &[&str]) -> ControllerProc {
        let log = dir.join(format!("{identity}.log"));
        Self::spawn(
            Path::new(env!("CARGO_BIN_EXE_kubemirror")),
            kubeconfig,
            log,
            identity,
            args,
        )
    }

    /// [`ControllerProc::start`] trusting the CA certificate `ca` as a system
    /// CA (`SSL_CERT_FILE`), as a cluster trusts a registry's CA in its image:
    /// the examples set no CA of their own.
    pub fn start_trusting(
        kubeconfig: &Path,
        dir: &Path,
        identity: &str,
        args: &[&str],
        ca: &Path,
    ) -> ControllerProc {
        let log = dir.join(format!("{identity}.log"));
        Self::spawn_env(
            Path::new(env!("CARGO_BIN_EXE_kubemirror")),
            kubeconfig,
            log,
            identity,
            args,
            &[("SSL_CERT_FILE", ca)],
        )
    }

    /// `BIN controller --identity IDENTITY --metrics-addr … --health-addr … ARGS…`
    /// with `KUBECONFIG` set and no auth files from this machine; stderr to `log`.
    pub fn spawn(
        bin: &Path,
        kubeconfig: &Path,
        log: PathBuf,
        identity: &str,
        args: &[&str],
    ) -> ControllerProc {
        Self::spawn_env(bin, kubeconfig, log, identity, args, &[])
    }

    fn spawn_env(
        bin: &Path,
        kubeconfig: &Path,
        log: PathBuf,
        identity: &str,
        args: &[&str],
        env: &[(&str, &Path)],
    ) -> ControllerProc {
        let addr = || -> SocketAddr { format!("127.0.0.1:{}", free_port()).parse().unwrap() };
        let (metrics_addr, health_addr) = (addr(), addr());
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let home = log.parent().unwrap_or(Path::new("/tmp")).to_path_buf();
        let child = Command::new(bin)
            .args(["controller", "--identity", identity])
            .arg(format!("--metrics-addr={metrics_addr}"))
            .arg(format!("--health-addr={health_addr}"))
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", home)
            .env("RUST_LOG", "info")
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        ControllerProc {
            child,
            identity: identity.into(),
            log,
            metrics_addr,
            health_addr,
        }
    }

    /// SIGKILL: no cleanup, no Lease release, in-flight requests cut.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `secs` for it to exit.
    pub fn terminate(&mut self, secs: u64) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait(secs)
            .unwrap_or_else(|| panic!("{} did not exit within {secs}s", self.identity))
    }

    /// Wait up to `secs` for the process to exit by itself.
    pub fn wait(&mut self, secs: u64) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of `/proc/PID/status` in KiB (`VmHWM`: peak RSS; `VmRSS`).
    pub fn proc_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the controller is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// Panics with the controller's log if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the controller exited ({status}):\n{}", self.log_text());
        }
    }

    /// `kubemirror_reconciles_total{kind="ImageMirror"}` by result (empty
    /// while the metrics server is not up yet).
    pub async fn reconciles(&mut self) -> BTreeMap<String, u64> {
        self.assert_running();
        let url = format!("http://{}/metrics", self.metrics_addr);
        let Ok(resp) = http().get(url).send().await else {
            return BTreeMap::new();
        };
        let text = resp.text().await.unwrap_or_default();
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("kubemirror_reconciles_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            if !labels.contains("kind=\"ImageMirror\"") {
                continue;
            }
            let result = labels
                .split(',')
                .find_map(|l| l.strip_prefix("result=\""))
                .map(|r| r.trim_end_matches('"').to_string())
                .unwrap_or_default();
            out.insert(result, value.trim().parse::<f64>().unwrap_or(0.0) as u64);
        }
        out
    }

    /// Poll the metrics (every 50 ms) until at least `ok` reconciles ended
    /// `ok` and `failed` ended `tags_failed`; panics at `deadline`.
    pub async fn wait_reconciles(
        &mut self,
        ok: u64,
        failed: u64,
        deadline: Duration,
    ) -> BTreeMap<String, u64> {
        let until = Instant::now() + deadline;
        loop {
            let r = self.reconciles().await;
            let get = |k: &str| r.get(k).copied().unwrap_or(0);
            if get("ok") >= ok && get("tags_failed") >= failed {
                return r;
            }
            assert!(
                Instant::now() < until,
                "waited {deadline:?} for {ok} ok / {failed} failed reconciles; have {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// User + system CPU seconds the controller used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.pid().to_string())
    }

    /// Stop it (SIGKILL); returns its peak RSS in KiB and the CPU seconds it used.
    pub fn stop(mut self) -> (u64, f64) {
        self.assert_running();
        let peak = self.proc_kib("VmHWM");
        let cpu = self.cpu_seconds();
        self.kill();
        (peak, cpu)
    }
}

impl Drop for ControllerProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// utime + stime of `/proc/PID/stat` (`self` for this process), at USER_HZ = 100.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (in parentheses, which may hold
    // spaces): utime and stime are the 12th and 13th of them.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}
