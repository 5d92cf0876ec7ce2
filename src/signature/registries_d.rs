//! containers-registries.d(5): where signatures of images on a registry live.
//! A directory of `*.yaml` files, merged; each may hold `default-docker:` (at
//! most one across all files) and `docker: {NAMESPACE: {...}}` (each
//! namespace in at most one file), with the keys `lookaside`,
//! `lookaside-staging` (the old names `sigstore` / `sigstore-staging` too)
//! and `use-sigstore-attachments`.
//!
//! Lookup as containers/image does: the image's full reference, then its
//! repository and each parent namespace up to the host, then `*.domain`
//! wildcards, then `default-docker`; each setting is taken from the first of
//! these that sets it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::SignatureError;
use crate::image::{SignatureStorage, SignatureStorageConfig};
use crate::reference::{self, Reference};

/// One namespace's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Namespace {
    pub lookaside: Option<String>,
    pub lookaside_staging: Option<String>,
    /// Old name of `lookaside`.
    pub sigstore: Option<String>,
    /// Old name of `lookaside-staging`.
    pub sigstore_staging: Option<String>,
    pub use_sigstore_attachments: Option<bool>,
}

impl Namespace {
    /// The base URL to read from (`write` = false) or to write to.
    fn top_level(&self, write: bool) -> Option<&str> {
        let staging = [&self.lookaside_staging, &self.sigstore_staging];
        let read = [&self.lookaside, &self.sigstore];
        let candidates: Vec<&Option<String>> = if write {
            staging.into_iter().chain(read).collect()
        } else {
            read.into_iter().collect()
        };
        candidates.into_iter().flatten().map(String::as_str).next()
    }

    fn check(&self, file: &Path, scope: &str) -> Result<(), SignatureError> {
        for (key, v) in [
            ("lookaside", &self.lookaside),
            ("lookaside-staging", &self.lookaside_staging),
            ("sigstore", &self.sigstore),
            ("sigstore-staging", &self.sigstore_staging),
        ] {
            if let Some(v) = v {
                normalise_url(v).map_err(|m| {
                    SignatureError::config(file.display(), format!("{scope}: {key}: {m}"))
                })?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    default_docker: Option<Namespace>,
    #[serde(default)]
    docker: BTreeMap<String, Namespace>,
}

/// A parsed registries.d directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesD {
    pub default_docker: Option<Namespace>,
    pub docker: BTreeMap<String, Namespace>,
}

/// A lookaside base as a URL string: `file://`, `http://`, `https://`; an
/// absolute path is taken as `file://`.
pub fn normalise_url(v: &str) -> Result<String, String> {
    if v.starts_with('/') {
        return Ok(format!("file://{v}"));
    }
    let u = url::Url::parse(v).map_err(|e| format!("invalid URL {v:?}: {e}"))?;
    match u.scheme() {
        "file" | "http" | "https" => Ok(v.to_string()),
        s => Err(format!(
            "unsupported scheme {s:?} in {v:?}: use file://, http:// or https://"
        )),
    }
}

impl RegistriesD {
    /// Where skopeo looks when `--registries.d` is not given:
    /// `$HOME/.config/containers/registries.d` if it exists, else
    /// `/etc/containers/registries.d`.
    pub fn default_dir() -> std::path::PathBuf {
        if let Some(home) = std::env::var_os("HOME") {
            let user = Path::new(&home).join(".config/containers/registries.d");
            if user.exists() {
                return user;
            }
        }
        "/etc/containers/registries.d".into()
    }

    /// Load every `*.yaml` file of `dir` (sorted by name). A missing
    /// directory is an empty configuration, as in containers/image.
    pub fn load(dir: &Path) -> Result<Self, SignatureError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(SignatureError::config(dir.display(), e.to_string())),
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml") && p.is_file())
            .collect();
        paths.sort();
        let mut out = RegistriesD::default();
        let mut default_from: Option<std::path::PathBuf> = None;
        let mut ns_from: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| SignatureError::config(path.display(), e.to_string()))?;
            let file = Self::parse_file(&path, &text)?;
            if let Some(d) = file.default_docker {
                if let Some(prev) = &default_from {
                    return Err(SignatureError::config(
                        path.display(),
                        format!("default-docker is already set in {}", prev.display()),
                    ));
                }
                default_from = Some(path.clone());
                out.default_docker = Some(d);
            }
            for (scope, ns) in file.docker {
                if let Some(prev) = ns_from.get(&scope) {
                    return Err(SignatureError::config(
                        path.display(),
                        format!(
                            "docker: {scope:?} is already configured in {}",
                            prev.display()
                        ),
                    ));
                }
                ns_from.insert(scope.clone(), path.clone());
                out.docker.insert(scope, ns);
            }
        }
        Ok(out)
    }

    /// Parse one file's text (for tests and single-file configurations).
    pub fn parse(name: &str, text: &str) -> Result<Self, SignatureError> {
        let f = Self::parse_file(Path::new(name), text)?;
        Ok(RegistriesD {
            default_docker: f.default_docker,
            docker: f.docker,
        })
    }

    fn parse_file(path: &Path, text: &str) -> Result<File, SignatureError> {
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_yaml::from_str::<Option<File>>(text)
                .map_err(|e| SignatureError::config(path.display(), e.to_string()))?
                .unwrap_or_default()
        };
        if let Some(d) = &file.default_docker {
            d.check(path, "default-docker")?;
        }
        for (scope, ns) in &file.docker {
            if scope.is_empty() || scope.contains("://") {
                return Err(SignatureError::config(
                    path.display(),
                    format!("docker: invalid namespace {scope:?}: want HOST[/PATH] or *.DOMAIN"),
                ));
            }
            ns.check(path, &format!("docker: {scope}"))?;
        }
        Ok(file)
    }

    /// The first setting found for `image`, in lookup order.
    fn first<T>(&self, image: &Reference, get: impl Fn(&Namespace) -> Option<T>) -> Option<T> {
        docker_scopes(image)
            .iter()
            .filter_map(|s| self.docker.get(s))
            .chain(self.default_docker.as_ref())
            .find_map(get)
    }

    /// Base URL to read simple signatures of `image` from.
    pub fn lookaside(&self, image: &Reference) -> Option<String> {
        self.first(image, |n| n.top_level(false).map(str::to_string))
            .and_then(|u| normalise_url(&u).ok())
    }

    /// Base URL to write simple signatures of `image` to.
    pub fn lookaside_staging(&self, image: &Reference) -> Option<String> {
        self.first(image, |n| n.top_level(true).map(str::to_string))
            .and_then(|u| normalise_url(&u).ok())
    }

    /// Whether sigstore attachments are read and written for `image`.
    pub fn use_sigstore_attachments(&self, image: &Reference) -> bool {
        self.first(image, |n| n.use_sigstore_attachments)
            .unwrap_or(false)
    }
}

impl SignatureStorageConfig for RegistriesD {
    fn storage_for(&self, image: &Reference) -> SignatureStorage {
        SignatureStorage {
            lookaside: self.lookaside(image),
            lookaside_staging: self.lookaside_staging(image),
            use_sigstore_attachments: self.use_sigstore_attachments(image),
        }
    }
}

/// The same storage for every image (an `ImageMirror`'s `signatureLookaside`,
/// with sigstore attachments on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticStorage(pub SignatureStorage);

impl SignatureStorageConfig for StaticStorage {
    fn storage_for(&self, _image: &Reference) -> SignatureStorage {
        self.0.clone()
    }
}

/// Signature storage of one side of an `ImageMirror` / `ImageInspection`:
/// sigstore attachments always on (cosign keeps them in the image's own
/// repository, so no configuration is needed to find them); simple
/// signatures in the spec's `signatureLookaside` if set, else where the
/// driver's registries.d (`--registries.d`) says.
#[derive(Clone, Default)]
pub struct ResourceStorage {
    /// The driver's registries.d, if any.
    pub base: Option<std::sync::Arc<dyn SignatureStorageConfig>>,
    /// The spec's `signatureLookaside`, normalised.
    pub lookaside: Option<String>,
    /// True for a mirror's destination: `lookaside` is where to write.
    pub write: bool,
}

impl SignatureStorageConfig for ResourceStorage {
    fn storage_for(&self, image: &Reference) -> SignatureStorage {
        let mut s = self
            .base
            .as_ref()
            .map(|b| b.storage_for(image))
            .unwrap_or_default();
        s.use_sigstore_attachments = true;
        if let Some(url) = &self.lookaside {
            if self.write {
                s.lookaside_staging = Some(url.clone());
            } else {
                s.lookaside = Some(url.clone());
            }
        }
        s
    }
}

/// The policy / registries.d scopes of a docker reference, most specific
/// first: the full reference (with tag or digest), the repository, each
/// parent namespace, the host (with port), then `*.domain` wildcards.
pub fn docker_scopes(r: &Reference) -> Vec<String> {
    let mut out = Vec::new();
    let full = super::identity::Ident::from(r);
    if !full.is_name_only() {
        out.push(full.to_string());
    }
    let mut name = reference::name(r);
    loop {
        out.push(name.clone());
        match name.rfind('/') {
            Some(i) => name.truncate(i),
            None => break,
        }
    }
    if let Some(i) = name.find(':') {
        name.truncate(i);
    }
    while let Some(i) = name.find('.') {
        name = name[i + 1..].to_string();
        out.push(format!("*.{name}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        reference::parse(s).unwrap()
    }

    #[test]
    fn scopes_most_specific_first() {
        assert_eq!(
            docker_scopes(&r("reg.example.com:5000/ns/app:v1")),
            [
                "reg.example.com:5000/ns/app:v1",
                "reg.example.com:5000/ns/app",
                "reg.example.com:5000/ns",
                "reg.example.com:5000",
                "*.example.com",
                "*.com"
            ]
        );
        assert_eq!(docker_scopes(&r("busybox"))[1], "docker.io/library/busybox");
    }

    const CONF: &str = r#"
default-docker:
  sigstore-staging: file:///var/lib/sigs
  use-sigstore-attachments: false
docker:
  reg.example.com:
    lookaside: https://sigs.example.com/reg
    use-sigstore-attachments: true
  reg.example.com/team/app:
    lookaside: file:///srv/app-sigs
    lookaside-staging: /srv/staging
  "*.corp":
    sigstore: http://corp-sigs/
"#;

    #[test]
    fn longest_namespace_wins_per_setting() {
        let c = RegistriesD::parse("a.yaml", CONF).unwrap();
        let app = r("reg.example.com/team/app:1");
        assert_eq!(c.lookaside(&app).as_deref(), Some("file:///srv/app-sigs"));
        assert_eq!(
            c.lookaside_staging(&app).as_deref(),
            Some("file:///srv/staging")
        );
        // The app section does not say: the host section does.
        assert!(c.use_sigstore_attachments(&app));
        let other = r("reg.example.com/other:1");
        assert_eq!(
            c.lookaside(&other).as_deref(),
            Some("https://sigs.example.com/reg")
        );
        // Writing: the host section has no staging; its lookaside comes first.
        assert_eq!(
            c.lookaside_staging(&other).as_deref(),
            Some("https://sigs.example.com/reg")
        );
        let corp = r("a.b.corp/x:1");
        assert_eq!(c.lookaside(&corp).as_deref(), Some("http://corp-sigs/"));
        let hub = r("busybox");
        assert_eq!(c.lookaside(&hub), None);
        assert_eq!(
            c.lookaside_staging(&hub).as_deref(),
            Some("file:///var/lib/sigs")
        );
        assert!(!c.use_sigstore_attachments(&hub));
        let s = c.storage_for(&app);
        assert_eq!(s.lookaside.as_deref(), Some("file:///srv/app-sigs"));
    }

    #[test]
    fn resources_always_read_attachments_and_prefer_the_spec_lookaside() {
        let base = RegistriesD::parse(
            "a.yaml",
            "default-docker:\n  lookaside: file:///d\n  lookaside-staging: file:///s\n",
        )
        .unwrap();
        let img = r("reg.io/x:1");
        let none = ResourceStorage::default().storage_for(&img);
        assert!(none.use_sigstore_attachments);
        assert_eq!(none.lookaside, None);
        let read = ResourceStorage {
            base: Some(std::sync::Arc::new(base.clone())),
            lookaside: None,
            write: false,
        }
        .storage_for(&img);
        assert!(read.use_sigstore_attachments);
        assert_eq!(read.lookaside.as_deref(), Some("file:///d"));
        let write = ResourceStorage {
            base: Some(std::sync::Arc::new(base)),
            lookaside: Some("file:///spec".into()),
            write: true,
        }
        .storage_for(&img);
        assert_eq!(write.lookaside_staging.as_deref(), Some("file:///spec"));
        assert_eq!(write.lookaside.as_deref(), Some("file:///d"));
    }

    #[test]
    fn malformed_files_say_where_and_what() {
        let e = RegistriesD::parse("bad.yaml", "docker: [1, 2]").unwrap_err();
        assert!(e.to_string().starts_with("bad.yaml: docker"), "{e}");
        let e = RegistriesD::parse("bad.yaml", "docker:\n  r.io:\n    lookside: file:///x\n")
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `lookside`"), "{e}");
        let e = RegistriesD::parse("bad.yaml", "docker:\n  r.io:\n    lookaside: ftp://x/\n")
            .unwrap_err();
        assert!(e.to_string().contains("unsupported scheme \"ftp\""), "{e}");
        let e = RegistriesD::parse("bad.yaml", "default-docker:\n  lookaside: 'not a url'\n")
            .unwrap_err();
        assert!(e.to_string().contains("invalid URL"), "{e}");
        assert_eq!(
            RegistriesD::parse("e.yaml", "").unwrap(),
            RegistriesD::default()
        );
    }

    #[test]
    fn directory_merge_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "docker:\n  r.io:\n    lookaside: file:///a\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            "default-docker:\n  lookaside: file:///d\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.yml"), "garbage: [").unwrap();
        let c = RegistriesD::load(dir.path()).unwrap();
        assert_eq!(c.lookaside(&r("r.io/x:1")).as_deref(), Some("file:///a"));
        assert_eq!(c.lookaside(&r("q.io/x:1")).as_deref(), Some("file:///d"));

        std::fs::write(
            dir.path().join("c.yaml"),
            "docker:\n  r.io:\n    lookaside: file:///c\n",
        )
        .unwrap();
        let e = RegistriesD::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("already configured in"), "{e}");
        std::fs::remove_file(dir.path().join("c.yaml")).unwrap();
        std::fs::write(dir.path().join("d.yaml"), "default-docker: {}\n").unwrap();
        let e = RegistriesD::load(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("default-docker is already set"),
            "{e}"
        );

        let missing = RegistriesD::load(&dir.path().join("nope")).unwrap();
        assert_eq!(missing, RegistriesD::default());
    }
}
