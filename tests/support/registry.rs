//! A real CNCF Distribution registry (`docker-registry`) on a loopback port,
//! stopped when dropped. Plain HTTP, TLS (a throwaway CA and a leaf for
//! 127.0.0.1), and htpasswd Basic auth over TLS, as `../shared/bench/registry.sh`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, run};

/// How to start a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    pub tls: bool,
    /// htpasswd Basic auth (implies TLS: Distribution refuses Basic over plain HTTP).
    pub basic_auth: Option<(String, String)>,
    /// Extra YAML appended to the config (e.g. an `auth: token` section).
    pub extra_config: String,
    /// Require TLS client certificates signed by this CA (PEM); the readiness
    /// probe presents `(cert, key)`. Implies TLS.
    pub client_auth: Option<ClientAuth>,
    /// Refuse manifest deletes (405), as Distribution does by default.
    pub delete_disabled: bool,
}

/// Client-certificate authentication for [`RegistryOptions::client_auth`].
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A running registry.
pub struct Registry {
    pub host: String,
    pub dir: tempfile::TempDir,
    child: Child,
    pub tls: bool,
    probe_cert: Option<ClientAuth>,
}

impl Registry {
    pub fn plain() -> Self {
        Self::start(RegistryOptions::default())
    }

    pub fn tls() -> Self {
        Self::start(RegistryOptions {
            tls: true,
            ..Default::default()
        })
    }

    pub fn basic_auth(user: &str, pass: &str) -> Self {
        Self::start(RegistryOptions {
            tls: true,
            basic_auth: Some((user.into(), pass.into())),
            ..Default::default()
        })
    }

    pub fn start(opts: RegistryOptions) -> Self {
        assert!(
            Command::new("docker-registry")
                .arg("--version")
                .output()
                .is_ok(),
            "docker-registry is not installed (apt-get install -y docker-registry; scripts/test does this)"
        );
        let dir = tempfile::tempdir().unwrap();
        let tls = opts.tls || opts.basic_auth.is_some() || opts.client_auth.is_some();
        let mut extra = String::new();
        if tls {
            make_tls(dir.path());
            extra += &format!(
                "  tls:\n    certificate: {0}/ca/cert.pem\n    key: {0}/ca/key.pem\n",
                dir.path().display()
            );
            if let Some(c) = &opts.client_auth {
                extra += &format!("    clientcas:\n      - {}\n", c.ca.display());
            }
        }
        if let Some((u, p)) = &opts.basic_auth {
            let out = run(Command::new("htpasswd").args(["-Bbn", u, p]));
            std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
            extra += &format!(
                "auth:\n  htpasswd:\n    realm: kubemirror-test\n    path: {}/htpasswd\n",
                dir.path().display()
            );
        }
        extra += &opts.extra_config;
        // Ports can be taken between free_port() and bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}/data\n  delete:\n    enabled: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.path().display(),
                !opts.delete_disabled
            );
            let cfg = dir.path().join("config.yml");
            std::fs::write(&cfg, config).unwrap();
            let log = std::fs::File::create(dir.path().join("log")).unwrap();
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve")
                .arg(&cfg)
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            // docker-registry reads REGISTRY_* variables as configuration.
            for (k, _) in std::env::vars() {
                if k.starts_with("REGISTRY_") {
                    cmd.env_remove(k);
                }
            }
            let mut child = cmd.spawn().expect("spawn docker-registry");
            let host = format!("127.0.0.1:{port}");
            if wait_ready(&mut child, &base_url(tls, &host), opts.client_auth.as_ref()) {
                return Registry {
                    host,
                    dir,
                    child,
                    tls,
                    probe_cert: opts.client_auth.clone(),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start; see its log in {}",
            dir.path().display()
        );
    }

    pub fn base_url(&self) -> String {
        base_url(self.tls, &self.host)
    }

    /// The CA folder (holds only `ca.crt`): for `--cert-dir` flags.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    /// skopeo/kubemirror TLS flags for this registry on side `side`
    /// (`src`, `dest`, or `""` for inspect/list-tags).
    pub fn tls_flags(&self, side: &str) -> Vec<String> {
        let prefix = if side.is_empty() {
            String::new()
        } else {
            format!("{side}-")
        };
        if self.tls {
            vec![format!("--{prefix}cert-dir={}", self.cert_dir().display())]
        } else {
            vec![format!("--{prefix}tls-verify=false")]
        }
    }

    /// `docker://HOST/repo`.
    pub fn image(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{repo_and_tag}", self.host)
    }

    /// Stop and start the same registry (same storage, same port).
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Kill the registry process (connections refused until [`Registry::start_again`]).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start the stopped registry again, with the same storage and port.
    pub fn start_again(&mut self) {
        let cfg = self.dir.path().join("config.yml");
        let log = std::fs::File::options()
            .append(true)
            .open(self.dir.path().join("log"))
            .unwrap();
        self.child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let url = self.base_url();
        assert!(
            wait_ready(&mut self.child, &url, self.probe_cert.as_ref()),
            "registry did not come back"
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base_url(tls: bool, host: &str) -> String {
    format!("{}://{host}", if tls { "https" } else { "http" })
}

/// Poll `/v2/` until it answers (200 or 401); false if the registry exits or
/// does not answer within 15 s.
fn wait_ready(child: &mut Child, base: &str, client: Option<&ClientAuth>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let mut curl = Command::new("curl");
        if let Some(c) = client {
            curl.arg("--cert").arg(&c.cert).arg("--key").arg(&c.key);
        }
        let out = curl
            .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{base}/v2/"))
            .output();
        if let Ok(o) = out {
            let code = String::from_utf8_lossy(&o.stdout);
            if code == "200" || code == "401" {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A CA in `dir/tls/ca.crt` and a leaf for 127.0.0.1/localhost in `dir/ca/`.
fn make_tls(dir: &Path) {
    let tls = dir.join("tls");
    let ca = dir.join("ca");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::create_dir_all(&ca).unwrap();
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=kubemirror test CA",
        "-keyout",
        &s(ca.join("ca.key")),
        "-out",
        &s(tls.join("ca.crt")),
    ]));
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &s(ca.join("key.pem")),
        "-out",
        &s(ca.join("leaf.csr")),
    ]));
    std::fs::write(
        ca.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &s(ca.join("leaf.csr")),
        "-CA",
        &s(tls.join("ca.crt")),
        "-CAkey",
        &s(ca.join("ca.key")),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &s(ca.join("leaf.ext")),
        "-out",
        &s(ca.join("cert.pem")),
    ]));
}
