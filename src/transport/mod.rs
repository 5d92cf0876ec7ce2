//! Transports: one module each, and [`parse_image_name`], the one function that
//! knows them all (containers-transports(5) syntax).
//!
//! | transport | syntax | module |
//! |---|---|---|
//! | registry | `docker://HOST[:PORT]/REPO[:TAG\|@DIGEST]` | [`docker`] |
//! | OCI layout | `oci:PATH[:REF]` | [`oci`] |
//! | directory | `dir:PATH` | [`dir`] |
//! | docker archive | `docker-archive:PATH[:NAME:TAG]` | [`archive::docker`] |
//! | OCI archive | `oci-archive:PATH[:REF]` | [`archive::oci`] |
//! | SIF file (read-only) | `sif:PATH` | [`sif`] |

pub mod archive;
pub mod dir;
pub mod docker;
pub(crate) mod local;
#[cfg(test)]
pub(crate) mod mem;
pub mod oci;
pub mod sif;

use crate::image::{Error, ImageReference, Result};

/// A transport's parser of what follows `NAME:`.
type ParseFn = fn(&str) -> Result<Box<dyn ImageReference>>;

/// The transports, by the name before the colon. Error messages list them
/// from here ([`known_transports`]).
pub const TRANSPORTS: &[(&str, ParseFn)] = &[
    ("docker", docker::parse_reference),
    ("oci", oci::parse_reference),
    ("dir", dir::parse_reference),
    ("docker-archive", archive::docker::parse_reference),
    ("oci-archive", archive::oci::parse_reference),
    ("sif", sif::parse_reference),
];

/// Parse `TRANSPORT:REFERENCE` (`docker://` keeps its slashes).
pub fn parse_image_name(input: &str) -> Result<Box<dyn ImageReference>> {
    let Some((transport, rest)) = input.split_once(':') else {
        return Err(Error::InvalidName {
            input: input.into(),
            reason: "expected TRANSPORT:REFERENCE, e.g. docker://alpine or oci:/path:tag".into(),
        });
    };
    let (_, parse) = TRANSPORTS
        .iter()
        .find(|(name, _)| *name == transport)
        .ok_or_else(|| Error::UnknownTransport(transport.into(), known_transports()))?;
    parse(rest)
}

/// The transports as a user writes them: `docker://, oci:, dir:,
/// docker-archive:, oci-archive: or sif:`.
pub fn known_transports() -> String {
    let names: Vec<String> = TRANSPORTS
        .iter()
        .map(|(name, _)| match *name {
            "docker" => "docker://".to_string(),
            other => format!("{other}:"),
        })
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// Parse a repository as `ImageMirror` specs write it: transport-qualified, or a
/// bare docker reference (`docker://` is the default).
pub fn parse_repository(input: &str) -> Result<Box<dyn ImageReference>> {
    let qualified = TRANSPORTS
        .iter()
        .any(|(name, _)| input.strip_prefix(name).is_some_and(|r| r.starts_with(':')));
    if qualified {
        parse_image_name(input)
    } else {
        parse_image_name(&format!("docker://{input}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_malformed() {
        let e = parse_image_name("foo:bar").unwrap_err();
        assert!(e.to_string().contains("unknown transport \"foo\""), "{e}");
        // Every transport is named, from the one list.
        assert!(
            e.to_string()
                .ends_with("use docker://, oci:, dir:, docker-archive:, oci-archive: or sif:"),
            "{e}"
        );
        let e = parse_image_name("alpine").unwrap_err();
        assert!(
            e.to_string().contains("expected TRANSPORT:REFERENCE"),
            "{e}"
        );
    }

    /// Code outside `transport/` asks references what they can do
    /// (`lists_repository_tags`, `write_lock`, `stores_attachments`, …), never
    /// which transport they are.
    #[test]
    fn no_transport_name_checks_outside_transports() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        assert!(files.len() > 50, "found only {} files", files.len());
        let mut offenders = Vec::new();
        for f in files
            .iter()
            .filter(|f| !f.starts_with(src.join("transport")))
        {
            let text = std::fs::read_to_string(f).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                let squashed: String = code.split_whitespace().collect();
                if squashed.contains("transport()==") || squashed.contains("transport()!=") {
                    offenders.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "ask the reference what it can do instead:\n{}",
            offenders.join("\n")
        );
    }
}
