//! Which transports a reconcile may use. The controller serves tenants: a
//! resource naming `oci:`, `dir:`, `docker-archive:`, `oci-archive:` or `sif:`
//! reaches the controller's own filesystem (it could write under
//! `$HOME/.config/containers/certs.d/` and hijack TLS for every tenant, or
//! read the head of any file into its status). So the controller accepts
//! `docker://` repositories only, unless an admin lists directories local
//! transports may use (`--allow-local-transports-under DIR`).
//! `kubemirror sync -f`, run by a user on their own machine with their own
//! rights, allows every transport, as `copy` and `inspect` do.

use std::path::{Component, Path, PathBuf};

use super::Error;

/// The local transports (everything but `docker`).
const LOCAL: &[&str] = &["oci", "dir", "docker-archive", "oci-archive", "sif"];

/// Where local transports may point.
#[derive(Clone, Debug)]
pub enum LocalTransports {
    /// Anywhere (`kubemirror sync -f`).
    Anywhere,
    /// Only under these directories (canonical paths); none: `docker://` only.
    Under(Vec<PathBuf>),
}

impl Default for LocalTransports {
    /// The controller's default: `docker://` only.
    fn default() -> Self {
        LocalTransports::Under(Vec::new())
    }
}

impl LocalTransports {
    /// Local transports under `dirs`, each made canonical (it must exist).
    pub fn under(dirs: &[PathBuf]) -> Result<Self, String> {
        dirs.iter()
            .map(|d| {
                std::fs::canonicalize(d)
                    .map_err(|e| format!("--allow-local-transports-under {}: {e}", d.display()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(LocalTransports::Under)
    }

    /// Check `input` (a spec's repository or image, transport-qualified or
    /// not) for `field`: `Err` is a spec error that says what to fix.
    pub fn check(&self, field: &str, input: &str) -> Result<(), Error> {
        let Some((transport, within)) = LOCAL
            .iter()
            .find_map(|t| input.strip_prefix(t)?.strip_prefix(':').map(|w| (*t, w)))
        else {
            return Ok(());
        };
        let dirs = match self {
            LocalTransports::Anywhere => return Ok(()),
            LocalTransports::Under(dirs) => dirs,
        };
        if dirs.is_empty() {
            return Err(Error::Spec(format!(
                "{field}: the {transport}: transport is not allowed in the cluster; use a docker:// repository (an administrator can allow local transports under listed directories: --allow-local-transports-under, chart value localTransports.allowedDirs)"
            )));
        }
        // `dir:` and `sif:` take the whole rest as their path; the others stop at the first colon.
        let path = if transport == "dir" || transport == "sif" {
            within
        } else {
            within.split(':').next().unwrap_or_default()
        };
        let allowed = || {
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let refuse = |why: &str| {
            Error::Spec(format!(
                "{field}: {transport}:{path:?} {why}; local transports may only use paths under {}",
                allowed()
            ))
        };
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(refuse("is not an absolute path"));
        }
        if Path::new(within)
            .components()
            .any(|c| c == Component::ParentDir)
        {
            return Err(refuse("contains \"..\""));
        }
        let real = canonical_prefix(p).ok_or_else(|| refuse("cannot be resolved"))?;
        if dirs.iter().any(|d| real.starts_with(d)) {
            Ok(())
        } else {
            Err(refuse("is outside the allowed directories"))
        }
    }
}

/// `p` with its longest existing ancestor made canonical (symbolic links
/// resolved) and the rest appended: where a write to `p` would land.
fn canonical_prefix(p: &Path) -> Option<PathBuf> {
    let mut rest = Vec::new();
    let mut cur = p;
    loop {
        if let Ok(real) = std::fs::canonicalize(cur) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return Some(out);
        }
        rest.push(cur.file_name()?);
        cur = cur.parent()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_only_by_default_and_anything_for_sync() {
        let none = LocalTransports::default();
        assert!(none.check("spec.image", "reg:5000/a:v1").is_ok());
        assert!(none.check("spec.image", "docker://reg:5000/a:v1").is_ok());
        for input in [
            "oci:/tmp/x:v1",
            "dir:/tmp/x",
            "docker-archive:/proc/self/environ",
            "oci-archive:/tmp/a.tar",
            "sif:/etc/shadow",
        ] {
            let e = none.check("spec.image", input).unwrap_err();
            assert!(e.is_spec_error());
            assert!(e.to_string().contains("not allowed in the cluster"), "{e}");
        }
        assert!(
            LocalTransports::Anywhere
                .check("spec.image", "docker-archive:/proc/self/environ")
                .is_ok()
        );
    }

    #[test]
    fn only_under_the_listed_directories() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("allowed");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", allowed.join("escape")).unwrap();
        let policy = LocalTransports::under(std::slice::from_ref(&allowed)).unwrap();
        let a = allowed.display();
        for ok in [
            format!("oci:{a}/sub/layout:v1"),
            format!("oci:{a}/new/layout"),
            format!("dir:{a}/sub"),
            format!("docker-archive:{a}/x.tar:name:tag"),
            format!("sif:{a}/sub/app.sif"),
        ] {
            policy.check("f", &ok).unwrap();
        }
        for (bad, why) in [
            (format!("oci:{a}/../x:v1"), "\"..\""),
            (format!("dir:{a}/x:/../../etc"), "\"..\""),
            (format!("dir:{a}/escape/ssl"), "outside"),
            ("oci:/tmp/elsewhere".to_string(), "outside"),
            ("oci:relative/path".to_string(), "absolute"),
            ("docker-archive:/proc/self/environ".to_string(), "outside"),
            (format!("sif:{a}/../x.sif"), "\"..\""),
            ("sif:/etc/shadow".to_string(), "outside"),
        ] {
            let e = policy.check("f", &bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(LocalTransports::under(&[root.path().join("missing")]).is_err());
    }
}
