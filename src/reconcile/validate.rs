//! Validate once: a spec checked and parsed into what the rest of the
//! reconcile uses ([`ValidMirror`], [`ValidInspection`]): the tag selector,
//! the platforms as the copy engine takes them, the interval. Both drivers
//! take the interval from here (never parsing `spec.interval` again), and
//! later steps read the parsed values instead of computing them anew.
//!
//! A spec field that needs no parsing is read through `spec`; one that does
//! gets a field here, parsed in `new`: adding a field is one edit.

use std::time::Duration;

use super::plan::{self, Selector};
use super::{DEFAULT_INSPECTION_INTERVAL, DEFAULT_MIRROR_INTERVAL, Error, interval};
use crate::api::v1alpha1::{ImageInspectionSpec, ImageMirrorSpec, SignaturePolicy};
use crate::copy::MultiArch;
use crate::manifest::Platform;

/// An `ImageMirror` spec that passed validation, with what was parsed.
#[derive(Debug, Clone)]
pub struct ValidMirror<'a> {
    pub spec: &'a ImageMirrorSpec,
    /// `spec.tags`, parsed (regex, semver ranges).
    pub selector: Selector,
    /// `spec.platforms` as the copy engine takes them (empty: the whole index).
    pub multi_arch: MultiArch,
    /// `spec.interval` or the default, at least [`super::MIN_INTERVAL`].
    pub interval: Duration,
    /// `spec.signatures` or the default.
    pub signatures: SignaturePolicy,
}

impl<'a> ValidMirror<'a> {
    /// Check everything that needs no I/O; a `Spec` error says what to fix.
    pub fn new(spec: &'a ImageMirrorSpec) -> Result<Self, Error> {
        let selector = Selector::new(&spec.tags)?;
        let multi_arch = plan::multi_arch(&spec.platforms)?;
        let interval = interval(spec.interval.as_deref(), DEFAULT_MIRROR_INTERVAL)?;
        require_has_keys(spec)?;
        Ok(ValidMirror {
            spec,
            selector,
            multi_arch,
            interval,
            signatures: spec.signatures.unwrap_or_default(),
        })
    }
}

/// `signatures: Require` means a signature that verifies against
/// `spec.verification` (keys or keyless identities): without them anyone's
/// signature would do, so the spec is refused (the CRD schema cannot say it
/// without CEL).
fn require_has_keys(spec: &ImageMirrorSpec) -> Result<(), Error> {
    let keys = spec
        .verification
        .as_ref()
        .map_or(0, |v| v.keys.len() + v.keyless.len());
    if spec.signatures == Some(SignaturePolicy::Require) && keys == 0 {
        return Err(Error::Spec(
            "spec.verification.keys: required when spec.signatures is Require (list the public keys or keyless identities whose signatures count)".into(),
        ));
    }
    Ok(())
}

/// An `ImageInspection` spec that passed validation, with what was parsed.
#[derive(Debug, Clone)]
pub struct ValidInspection<'a> {
    pub spec: &'a ImageInspectionSpec,
    /// `spec.platform`, parsed.
    pub platform: Option<Platform>,
    /// `spec.interval` or the default, at least [`super::MIN_INTERVAL`].
    pub interval: Duration,
}

impl<'a> ValidInspection<'a> {
    /// Check everything that needs no I/O; a `Spec` error says what to fix.
    pub fn new(spec: &'a ImageInspectionSpec) -> Result<Self, Error> {
        let platform = spec
            .platform
            .as_deref()
            .map(|p| Platform::parse(p).map_err(|e| Error::Spec(format!("spec.platform: {e}"))))
            .transpose()?;
        let interval = interval(spec.interval.as_deref(), DEFAULT_INSPECTION_INTERVAL)?;
        Ok(ValidInspection {
            spec,
            platform,
            interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha1::TagSelector;

    fn mirror_spec() -> ImageMirrorSpec {
        serde_json::from_value(serde_json::json!({
            "source": {"repository": "reg.example/a"},
            "destination": {"repository": "reg.example/b"},
            "tags": {"names": ["v1"]},
        }))
        .unwrap()
    }

    #[test]
    fn a_mirror_is_parsed_once_with_defaults() {
        let spec = mirror_spec();
        let v = ValidMirror::new(&spec).unwrap();
        assert_eq!(v.interval, DEFAULT_MIRROR_INTERVAL);
        assert_eq!(v.multi_arch, MultiArch::All);
        assert_eq!(v.signatures, SignaturePolicy::Copy);
        assert!(!v.selector.needs_tag_list());

        let spec = ImageMirrorSpec {
            interval: Some("1ms".into()),
            platforms: vec!["linux/arm64".into()],
            ..mirror_spec()
        };
        let v = ValidMirror::new(&spec).unwrap();
        assert_eq!(v.interval, super::super::MIN_INTERVAL, "clamped");
        assert!(matches!(v.multi_arch, MultiArch::Platforms(ref p) if p.len() == 1));
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: [(ImageMirrorSpec, &str); 4] = [
            (
                ImageMirrorSpec {
                    interval: Some("soon".into()),
                    ..mirror_spec()
                },
                "spec.interval",
            ),
            (
                ImageMirrorSpec {
                    platforms: vec!["linux/".into()],
                    ..mirror_spec()
                },
                "spec.platforms",
            ),
            (
                ImageMirrorSpec {
                    tags: TagSelector::default(),
                    ..mirror_spec()
                },
                "spec.tags",
            ),
            (
                ImageMirrorSpec {
                    signatures: Some(SignaturePolicy::Require),
                    ..mirror_spec()
                },
                "spec.verification.keys",
            ),
        ];
        for (spec, field) in cases {
            let e = ValidMirror::new(&spec).unwrap_err();
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
        let spec: ImageInspectionSpec = serde_json::from_value(serde_json::json!({
            "image": "reg.example/a:v1", "platform": "nope/", "interval": "30m"
        }))
        .unwrap();
        let e = ValidInspection::new(&spec).unwrap_err();
        assert!(e.to_string().contains("spec.platform"), "{e}");
        let spec = ImageInspectionSpec {
            platform: None,
            ..spec
        };
        let v = ValidInspection::new(&spec).unwrap();
        assert_eq!(v.interval, Duration::from_secs(1800));
    }
}
