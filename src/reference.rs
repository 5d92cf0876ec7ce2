//! Docker image references (`[HOST[:PORT]/]REPO[:TAG][@DIGEST]`) as
//! `oci-spec`'s [`Reference`], normalised the way containers/image does:
//! `alpine` → `docker.io/library/alpine:latest`. This module adds what
//! `oci-spec` leaves out: the API endpoint of Docker Hub
//! (`registry-1.docker.io`), errors that name the input and the part that is
//! wrong, and the "tag only" / "digest only" views the transports need.
//!
//! Why the grammar is checked by hand here: `oci-spec`'s parser compiles one
//! very large regular expression on first use, which costs about 100 ms in a
//! release build — more than a whole no-op copy between two registries. The
//! checks below are distribution/reference's grammar, component by component
//! (a unit test holds them to `oci-spec`'s parser on a corpus of inputs), and
//! the result is built with `oci-spec`'s own constructors.

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
    let err = |reason: &str| ReferenceError {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    if input.is_empty() {
        return Err(err("empty reference"));
    }
    let (rest, digest) = match input.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (input, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag
        && !is_valid_tag(t)
    {
        return Err(err("invalid tag: want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
    }
    if let Some(d) = digest {
        crate::digest::parse(d).map_err(|e| err(&e.to_string()))?;
    }
    if name.is_empty() {
        return Err(err("repository name must have at least one component"));
    }
    let components: Vec<&str> = name.split('/').collect();
    let (domain, path) = match components.as_slice() {
        [first, rest @ ..]
            if !rest.is_empty()
                && (first.contains('.') || first.contains(':') || *first == "localhost") =>
        {
            (Some(*first), rest)
        }
        all => (None, all),
    };
    // The grammar also lets a first component that is a valid path component
    // through (`re_g.example.com/a`); it still names the registry.
    if let Some(d) = domain
        && !is_valid_domain(d)
        && !is_valid_path_component(d)
    {
        return Err(err("invalid registry host: want HOST[:PORT]"));
    }
    for c in path {
        if c.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("repository name must be lowercase"));
        }
        if !is_valid_path_component(c) {
            return Err(err(
                "invalid repository name: components are [a-z0-9] separated by '.', '_', '__' or dashes",
            ));
        }
    }
    let mut registry = domain.unwrap_or(DOCKER_HUB).to_string();
    if registry == "index.docker.io" {
        registry = DOCKER_HUB.into();
    }
    let mut repository = path.join("/");
    if registry == DOCKER_HUB && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    if repository.len() > 255 {
        return Err(err("repository name must not be more than 255 characters"));
    }
    Ok(match (tag, digest) {
        (Some(t), Some(d)) => {
            Reference::with_tag_and_digest(registry, repository, t.into(), d.into())
        }
        (None, Some(d)) => Reference::with_digest(registry, repository, d.into()),
        (t, None) => Reference::with_tag(registry, repository, t.unwrap_or("latest").into()),
    })
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn is_valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]`: DNS labels (letters, digits, inner dashes) joined by dots,
/// or a bracketed IPv6 address; the port is digits.
fn is_valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if host.is_empty() {
        return d.starts_with('[');
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    })
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
    fn agrees_with_oci_spec_parser() {
        let d = format!("sha256:{}", "a".repeat(64));
        let inputs = [
            "alpine".to_string(),
            "library/alpine:3".into(),
            "a/b/c:v1".into(),
            "127.0.0.1:5000/a/b".into(),
            "localhost:5000/x".into(),
            "localhost/x".into(),
            "reg.example.com/ns/app:1.2.3-rc_1".into(),
            format!("reg.example.com/ns/app@{d}"),
            format!("reg.example.com/ns/app:v1@{d}"),
            "a__b/c-d/e.f--g:x".into(),
            "a___b".into(),
            "a-.b".into(),
            "-a".into(),
            "a/".into(),
            "/a".into(),
            "a//b".into(),
            "a:".into(),
            "a:-t".into(),
            "a:@".into(),
            "host:port/a".into(),
            "reg.example.com:5000".into(),
            "reg.example.com:5000:tag".into(),
            "re_g.example.com/a".into(),
            "-reg.example.com/a".into(),
            "index.docker.io/foo/bar".into(),
            "docker.io/nginx".into(),
            format!("a:{}", "t".repeat(128)),
            format!("a:{}", "t".repeat(129)),
        ];
        for i in &inputs {
            let ours = parse(i).map(|r| r.to_string()).ok();
            let theirs = Reference::try_from(i.as_str()).map(|r| r.to_string()).ok();
            assert_eq!(ours, theirs, "input {i:?}");
        }
        // A deliberate superset: bracketed IPv6 registry hosts, as Docker accepts.
        assert_eq!(
            parse("[::1]:5000/foo/bar:t").unwrap().registry(),
            "[::1]:5000"
        );
    }

    #[test]
    fn tags() {
        assert!(is_valid_tag("v1.2-rc_3"));
        assert!(!is_valid_tag(".hidden"));
        assert!(!is_valid_tag(""));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }
}
