//! skopeo-sync(1)'s YAML source file (`sync --src yaml FILE …`):
//!
//! ```yaml
//! registry.example.com:
//!   images:                      # repository → tags or digests; [] = every tag
//!     busybox: []
//!     redis: ["1.0", "sha256:0123…"]
//!   images-by-tag-regex:         # repository → regular expression over its tags
//!     nginx: ^1\.13\.[12]-alpine-perl$
//!   credentials: {username: john, password: secret}
//!   tls-verify: false
//!   cert-dir: /home/john/certs
//! ```
//!
//! Parsed with serde (order kept as written, so registries and repositories
//! are synced in file order; skopeo's Go maps give a random order). Unlike
//! skopeo, an unknown key is an error naming it (skopeo ignores it, so a
//! typo or a newer skopeo's key such as `images-by-semver` would silently
//! sync nothing), and the file's size and entry counts are capped.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde_yaml::Value;

/// A YAML mapping's entries in file order (serde_yaml's `Mapping` keeps it).
pub type Ordered<T> = Vec<(String, T)>;

/// Largest YAML source file read.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// Most images (tags and digests listed, plus repositories) a file may name.
pub const MAX_ENTRIES: usize = 100_000;

/// One registry's entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistrySync {
    #[serde(default, deserialize_with = "ordered")]
    pub images: Ordered<Vec<String>>,
    #[serde(default, rename = "images-by-tag-regex", deserialize_with = "ordered")]
    pub images_by_tag_regex: Ordered<String>,
    #[serde(default)]
    pub credentials: Option<Credentials>,
    #[serde(default, rename = "tls-verify")]
    pub tls_verify: Option<bool>,
    #[serde(default, rename = "cert-dir")]
    pub cert_dir: Option<String>,
}

/// `credentials:` of a registry.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A mapping's key as a string (YAML may read `1.0:` as a number).
fn key_string(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn ordered_from<T: DeserializeOwned>(v: Value) -> Result<Ordered<T>, String> {
    let m = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        other => return Err(format!("want a mapping, found {}", kind(&other))),
    };
    m.into_iter()
        .map(|(k, v)| {
            let key = key_string(&k).ok_or("a key that is not a string")?;
            let v = serde_yaml::from_value(v).map_err(|e| format!("{key}: {e}"))?;
            Ok((key, v))
        })
        .collect()
}

fn ordered<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Ordered<T>, D::Error> {
    ordered_from(Value::deserialize(d)?).map_err(D::Error::custom)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Parse the file's text: registries in file order.
pub fn parse(text: &str) -> Result<Ordered<RegistrySync>, String> {
    let v: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let parsed: Ordered<RegistrySync> = ordered_from(v)?;
    let entries: usize = parsed
        .iter()
        .map(|(_, r)| {
            r.images.len()
                + r.images.iter().map(|(_, t)| t.len()).sum::<usize>()
                + r.images_by_tag_regex.len()
        })
        .sum();
    if entries > MAX_ENTRIES {
        return Err(format!(
            "names {entries} repositories and tags; at most {MAX_ENTRIES} are read: split the file"
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skopeo_man_page_example() {
        let text = r#"
docker.io:
    images:
        busybox: []
        redis:
            - "1.0"
            - "2.0"
            - "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    images-by-tag-regex:
        nginx: ^1\.13\.[12]-alpine-perl$
    credentials:
        username: john
        password: this is a secret
    tls-verify: true
    cert-dir: /home/john/certs
quay.io:
    tls-verify: false
    images:
        coreos/etcd:
            - latest
"#;
        let r = parse(text).unwrap();
        let names: Vec<&str> = r.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["docker.io", "quay.io"]);
        let d = &r[0].1;
        assert_eq!(d.images[0], ("busybox".to_string(), vec![]));
        assert_eq!(d.images[1].0, "redis");
        assert_eq!(d.images[1].1.len(), 3);
        assert_eq!(
            d.images_by_tag_regex[0],
            (
                "nginx".to_string(),
                r"^1\.13\.[12]-alpine-perl$".to_string()
            )
        );
        assert_eq!(d.credentials.as_ref().unwrap().username, "john");
        assert!(!format!("{d:?}").contains("secret"));
        assert_eq!(d.tls_verify, Some(true));
        assert_eq!(r[1].1.tls_verify, Some(false));
        assert_eq!(r[1].1.cert_dir, None);
    }

    #[test]
    fn unknown_keys_and_bad_shapes_are_errors() {
        let e = parse("r:\n  images-by-semver:\n    a: '>=1'\n").unwrap_err();
        assert!(e.contains("images-by-semver"), "{e}");
        let e = parse("r:\n  images: [a, b]\n").unwrap_err();
        assert!(e.contains("r: want a mapping, found a list"), "{e}");
        assert!(parse("").unwrap().is_empty());
        assert!(parse("- a\n").is_err());
    }
}
