//! Docker image references (`[HOST[:PORT]/]REPO[:TAG][@DIGEST]`), parsed and
//! normalised with `oci-spec`'s [`Reference`] the way containers/image does:
//! `alpine` → `docker.io/library/alpine:latest`. This module adds what
//! `oci-spec` leaves out: the API endpoint of Docker Hub
//! (`registry-1.docker.io`), a clear error that names the input, and the
//! "tag only" / "digest only" views the transports need.

pub use oci_spec::distribution::Reference;

/// Docker Hub's canonical name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API is served.
pub const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";

/// A reference that could not be parsed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("invalid reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

/// Parse and normalise a docker reference (no transport prefix). A reference
/// with neither tag nor digest gets `latest`.
pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
    let err = |reason: String| ReferenceError {
        input: input.to_string(),
        reason,
    };
    if input.is_empty() {
        return Err(err("empty reference".into()));
    }
    if input.chars().any(|c| c.is_ascii_uppercase()) {
        // oci-spec's regex rejects these with a generic message; say what to fix.
        let name_part = input.split(['@', ':']).next().unwrap_or(input);
        let host_has_upper = name_part.split('/').count() > 1
            && name_part
                .split('/')
                .next()
                .is_some_and(|h| h.contains('.') || h.contains(':'));
        let repo_upper = name_part
            .split('/')
            .skip(if host_has_upper { 1 } else { 0 })
            .any(|c| c.chars().any(|ch| ch.is_ascii_uppercase()));
        if repo_upper {
            return Err(err("repository name must be lowercase".into()));
        }
    }
    let r = Reference::try_from(input).map_err(|e| err(e.to_string()))?;
    if let Some(d) = r.digest() {
        crate::digest::parse(d).map_err(|e| err(e.to_string()))?;
    }
    Ok(r)
}

/// The host (and port) to send registry API requests to.
pub fn endpoint(r: &Reference) -> &str {
    match r.registry() {
        DOCKER_HUB | "index.docker.io" => DOCKER_HUB_ENDPOINT,
        other => other,
    }
}

/// `host/repo` without tag or digest.
pub fn name(r: &Reference) -> String {
    format!("{}/{}", r.registry(), r.repository())
}

/// The same repository with a tag instead of whatever it had.
pub fn with_tag(r: &Reference, tag: &str) -> Reference {
    Reference::with_tag(r.registry().into(), r.repository().into(), tag.into())
}

/// The same repository with a digest instead of whatever it had.
pub fn with_digest(r: &Reference, digest: &str) -> Reference {
    Reference::with_digest(r.registry().into(), r.repository().into(), digest.into())
}

/// Whether `s` is a valid tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn is_valid_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_normalisation() {
        let r = parse("alpine").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(endpoint(&r), "registry-1.docker.io");
        let r = parse("index.docker.io/foo/bar:1").unwrap();
        assert_eq!(r.to_string(), "docker.io/foo/bar:1");
    }

    #[test]
    fn ports_tags_digests() {
        let d = "sha256:".to_string() + &"0".repeat(64);
        let r = parse(&format!("127.0.0.1:5000/a/b:v1@{d}")).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), Some(d.as_str()));
        assert_eq!(endpoint(&r), "127.0.0.1:5000");
        let r = parse("localhost/x").unwrap();
        assert_eq!(r.registry(), "localhost");
    }

    #[test]
    fn errors_name_the_input() {
        let e = parse("x::y").unwrap_err();
        assert!(
            e.to_string().starts_with("invalid reference \"x::y\":"),
            "{e}"
        );
        assert!(
            parse("Upper/case")
                .unwrap_err()
                .reason
                .contains("lowercase")
        );
        assert!(parse("a@sha256:abc").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn tags() {
        assert!(is_valid_tag("v1.2-rc_3"));
        assert!(!is_valid_tag(".hidden"));
        assert!(!is_valid_tag(""));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }
}
