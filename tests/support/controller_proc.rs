//! The kubemirror controller as a separate process (the binary under test),
//! so that a test can kill it (SIGKILL, as a crashed or evicted pod) or stop
//! it (SIGTERM), and run several replicas side by side.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct ControllerProc {
    child: Child,
    pub identity: String,
    pub log: PathBuf,
    pub health_port: u16,
}

impl ControllerProc {
    /// Start `kubemirror controller --identity IDENTITY ARGS...` against the
    /// cluster in `kubeconfig`; its log goes to `dir/IDENTITY.log` (appended,
    /// so a restarted replica keeps one log).
    pub fn start(kubeconfig: &Path, dir: &Path, identity: &str, args: &[&str]) -> ControllerProc {
        let (metrics, health) = (free_port(), free_port());
        let log = dir.join(format!("{identity}.log"));
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kubemirror"))
            .args(["controller", "--identity", identity])
            .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
            .arg(format!("--health-addr=127.0.0.1:{health}"))
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", dir)
            .env("RUST_LOG", "info,kubemirror=debug")
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start kubemirror controller");
        ControllerProc {
            child,
            identity: identity.into(),
            log,
            health_port: health,
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

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ControllerProc {
    fn drop(&mut self) {
        self.kill();
    }
}
