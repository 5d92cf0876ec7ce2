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

pub mod archive;
pub mod dir;
pub mod docker;
pub(crate) mod local;
pub mod oci;

use crate::image::{Error, ImageReference, Result};

/// A transport's parser of what follows `NAME:`.
type ParseFn = fn(&str) -> Result<Box<dyn ImageReference>>;

/// The transports, by the name before the colon.
const TRANSPORTS: &[(&str, ParseFn)] = &[
    ("docker", docker::parse_reference),
    ("oci", oci::parse_reference),
    ("dir", dir::parse_reference),
    ("docker-archive", archive::docker::parse_reference),
    ("oci-archive", archive::oci::parse_reference),
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
        .ok_or_else(|| Error::UnknownTransport(transport.into()))?;
    parse(rest)
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
        let e = parse_image_name("alpine").unwrap_err();
        assert!(
            e.to_string().contains("expected TRANSPORT:REFERENCE"),
            "{e}"
        );
    }
}
