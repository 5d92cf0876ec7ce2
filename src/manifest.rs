//! Manifests as the registry returned them: the exact bytes plus the MIME
//! type, parsed (with `oci-spec`'s types) only when something must be read
//! from them. Digests are always computed over [`Manifest::bytes`], never over
//! re-serialised JSON.
//!
//! Formats: OCI image manifest and index, Docker schema 2 manifest and
//! manifest list are read and written unchanged. Docker schema 1 is refused
//! with [`ManifestError::Schema1`] (deprecated since 2019 and not
//! content-addressable after re-signing). [`to_docker_v2s2`] is the one
//! conversion, used when a destination holds Docker schema 2 only
//! (`docker-archive:`).

use std::fmt;

use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde_json::Value;

use crate::digest::{self, Digest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_V2S2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_V2S1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_V2S1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Registries (and we) refuse manifests larger than this.
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// Every manifest type we can read, for an HTTP `Accept` header.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_V2S2];

/// What can be wrong with a manifest.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is {0} bytes, over the {MAX_MANIFEST_SIZE}-byte limit")]
    TooLarge(usize),
    #[error(
        "Docker schema 1 manifests are not supported (deprecated); re-push the image with a current client"
    )]
    Schema1,
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedType(String),
    #[error("invalid manifest: {0}")]
    Invalid(String),
    #[error("cannot convert to Docker schema 2: {0}")]
    Conversion(String),
}

/// A manifest exactly as stored: bytes and MIME type.
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifest")
            .field("media_type", &self.media_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// A parsed manifest: one image, or an index of images.
#[derive(Debug, Clone)]
pub enum Parsed {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

impl Manifest {
    /// Wrap bytes as a manifest. `media_type` is what the store said (an HTTP
    /// `Content-Type`, an index descriptor); when it is missing or generic the
    /// type is taken from the document (`mediaType`, else its shape). Checks
    /// the size limit and refuses schema 1.
    pub fn new(bytes: Bytes, media_type: Option<&str>) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let declared = media_type
            .map(|m| m.split(';').next().unwrap_or(m).trim())
            .filter(|m| !m.is_empty() && *m != "application/json" && *m != "text/plain");
        let media_type = match declared {
            Some(m) => m.to_string(),
            None => guess_media_type(&bytes)?,
        };
        if media_type == DOCKER_V2S1 || media_type == DOCKER_V2S1_SIGNED {
            return Err(ManifestError::Schema1);
        }
        Ok(Manifest { bytes, media_type })
    }

    /// The digest of the exact bytes.
    pub fn digest(&self) -> Digest {
        digest::sha256(&self.bytes)
    }

    /// Whether this is an index / manifest list.
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }

    /// Parse into OCI types (Docker schema 2 shares their shape).
    pub fn parse(&self) -> Result<Parsed, ManifestError> {
        let invalid = |e: serde_json::Error| ManifestError::Invalid(e.to_string());
        if self.is_index() {
            Ok(Parsed::Index(Box::new(
                serde_json::from_slice(&self.bytes).map_err(invalid)?,
            )))
        } else if is_image_type(&self.media_type) {
            Ok(Parsed::Image(Box::new(
                serde_json::from_slice(&self.bytes).map_err(invalid)?,
            )))
        } else {
            Err(ManifestError::UnsupportedType(self.media_type.clone()))
        }
    }

    /// Parse as a single-image manifest, refusing an index.
    pub fn image(&self) -> Result<ImageManifest, ManifestError> {
        match self.parse()? {
            Parsed::Image(m) => Ok(*m),
            Parsed::Index(_) => Err(ManifestError::Invalid(
                "expected an image manifest, found an index".into(),
            )),
        }
    }

    /// Parse as an index, refusing a single image.
    pub fn index(&self) -> Result<ImageIndex, ManifestError> {
        match self.parse()? {
            Parsed::Index(m) => Ok(*m),
            Parsed::Image(_) => Err(ManifestError::Invalid(
                "expected an index, found an image manifest".into(),
            )),
        }
    }
}

pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_image_type(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_V2S2
}

/// The type of a manifest that did not come with a usable one.
pub fn guess_media_type(bytes: &[u8]) -> Result<String, ManifestError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    if let Some(m) = v.get("mediaType").and_then(Value::as_str) {
        return Ok(m.to_string());
    }
    match v.get("schemaVersion").and_then(Value::as_i64) {
        Some(1) => Err(ManifestError::Schema1),
        _ if v.get("manifests").is_some() => Ok(OCI_INDEX.into()),
        _ if v.get("config").is_some() => Ok(OCI_MANIFEST.into()),
        _ => Err(ManifestError::Invalid(
            "neither an image manifest nor an index".into(),
        )),
    }
}

/// Every blob a single-image manifest references: config first, then layers.
pub fn blobs(m: &ImageManifest) -> Vec<Descriptor> {
    std::iter::once(m.config().clone())
        .chain(m.layers().iter().cloned())
        .collect()
}

static HOST_OVERRIDE: std::sync::OnceLock<Platform> = std::sync::OnceLock::new();

/// A platform `os/arch[/variant]`, as in `--platform` and `spec.platforms`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(format!(
                "invalid platform {s:?}: want os/arch[/variant], e.g. linux/arm64"
            )),
        }
    }

    /// The platform of an index entry, if it declares one.
    pub fn of(d: &Descriptor) -> Option<Self> {
        d.platform().as_ref().map(|p| Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone().filter(|v| !v.is_empty()),
        })
    }

    /// The platform this binary runs on, in Go's names, unless the command
    /// line overrode it ([`Platform::override_host`]).
    pub fn host() -> Self {
        if let Some(p) = HOST_OVERRIDE.get() {
            return p.clone();
        }
        Self::native()
    }

    /// Choose images as if on `os`/`arch`/`variant` (skopeo's global
    /// `--override-os`, `--override-arch`, `--override-variant`); each `None`
    /// keeps this machine's. Takes effect once, for the whole process.
    pub fn override_host(os: Option<String>, arch: Option<String>, variant: Option<String>) {
        let native = Self::native();
        let _ = HOST_OVERRIDE.set(Platform {
            os: os.unwrap_or(native.os),
            architecture: arch.unwrap_or(native.architecture),
            variant: variant.filter(|v| !v.is_empty()),
        });
    }

    /// skopeo's words when an index has no image for this platform:
    /// `no image found in image index for architecture amd64, variant "", OS linux`
    /// (`manifest list` for a Docker list).
    pub fn not_in_index(&self, index_media_type: &str) -> String {
        let kind = if index_media_type == DOCKER_LIST {
            "manifest list"
        } else {
            "image index"
        };
        format!(
            "no image found in {kind} for architecture {}, variant \"{}\", OS {}",
            self.architecture,
            self.variant.as_deref().unwrap_or(""),
            self.os
        )
    }

    fn native() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Whether an index entry for `other` satisfies a request for `self`: os and
    /// architecture equal, and the variant equal when `self` names one.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The index entry to use for `want` (the host platform when `None`), as
/// containers/image chooses: exact variant first, then any variant.
pub fn choose_instance<'a>(
    index: &'a ImageIndex,
    want: Option<&Platform>,
) -> Option<&'a Descriptor> {
    let host = Platform::host();
    let want = want.unwrap_or(&host);
    let candidates = || {
        index
            .manifests()
            .iter()
            .filter(|d| is_image_type(d.media_type().as_ref()) || d.platform().is_some())
    };
    candidates()
        .find(|d| Platform::of(d).is_some_and(|p| p == *want))
        .or_else(|| candidates().find(|d| Platform::of(d).is_some_and(|p| want.matches(&p))))
}

/// Rewrite an OCI image manifest as Docker schema 2 (same config and layer
/// blobs, Docker media types; OCI-only fields dropped). A Docker schema 2
/// manifest is returned as is. Fails for zstd or other layers Docker schema 2
/// cannot name, and for indexes.
pub fn to_docker_v2s2(m: &Manifest) -> Result<Manifest, ManifestError> {
    let layer_type = |t: &str| match t {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(DOCKER_LAYER_GZIP),
        OCI_LAYER | DOCKER_LAYER => Some(DOCKER_LAYER),
        _ => None,
    };
    let target = Conversion {
        from: OCI_MANIFEST,
        to: DOCKER_V2S2,
        config: DOCKER_CONFIG,
        layer_type: &layer_type,
        drop_fields: &["annotations", "subject", "artifactType"],
        pretty: true,
    };
    target.apply(m)
}

/// Rewrite a Docker schema 2 manifest as an OCI image manifest (same config
/// and layer blobs, OCI media types), as containers/image does for
/// destinations that hold OCI only. An OCI manifest is returned as is. Fails
/// for indexes (see [`rewrite_index`]).
pub fn to_oci(m: &Manifest) -> Result<Manifest, ManifestError> {
    let layer_type = |t: &str| match t {
        DOCKER_LAYER_GZIP | OCI_LAYER_GZIP => Some(OCI_LAYER_GZIP),
        DOCKER_LAYER | OCI_LAYER => Some(OCI_LAYER),
        DOCKER_FOREIGN_LAYER_GZIP => {
            Some("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
        }
        _ => None,
    };
    let target = Conversion {
        from: DOCKER_V2S2,
        to: OCI_MANIFEST,
        config: OCI_CONFIG,
        layer_type: &layer_type,
        drop_fields: &[],
        pretty: false,
    };
    target.apply(m)
}

/// One single-image format conversion: media types of the manifest, its
/// config and each layer; fields the target format does not have.
struct Conversion<'a> {
    from: &'static str,
    to: &'static str,
    config: &'static str,
    layer_type: &'a dyn Fn(&str) -> Option<&'static str>,
    drop_fields: &'static [&'static str],
    pretty: bool,
}

impl Conversion<'_> {
    fn apply(&self, m: &Manifest) -> Result<Manifest, ManifestError> {
        if m.media_type == self.to {
            return Ok(m.clone());
        }
        if m.media_type != self.from {
            return Err(ManifestError::Conversion(format!(
                "{} cannot be converted to {}",
                m.media_type, self.to
            )));
        }
        let mut v: Value =
            serde_json::from_slice(&m.bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        let obj = v
            .as_object_mut()
            .ok_or_else(|| ManifestError::Invalid("not a JSON object".into()))?;
        obj.insert("mediaType".into(), self.to.into());
        for f in self.drop_fields {
            obj.remove(*f);
        }
        if let Some(c) = obj.get_mut("config").and_then(Value::as_object_mut) {
            c.insert("mediaType".into(), self.config.into());
            for f in self.drop_fields {
                c.remove(*f);
            }
        }
        for l in obj
            .get_mut("layers")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let l = l
                .as_object_mut()
                .ok_or_else(|| ManifestError::Invalid("layer is not an object".into()))?;
            let t = l
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let new = (self.layer_type)(t).ok_or_else(|| {
                ManifestError::Conversion(format!(
                    "layer type {t} has no equivalent in {}",
                    self.to
                ))
            })?;
            l.insert("mediaType".into(), new.into());
            for f in self.drop_fields {
                l.remove(*f);
            }
        }
        let bytes = if self.pretty {
            serde_json::to_vec_pretty(&v)
        } else {
            serde_json::to_vec(&v)
        }
        .map_err(|e| ManifestError::Invalid(e.to_string()))?;
        Ok(Manifest {
            bytes: bytes.into(),
            media_type: self.to.into(),
        })
    }
}

/// An index rewritten for converted entries: `media_type` becomes the index's
/// type, and each entry whose digest is a key of `converted` points at the
/// converted manifest instead (digest, size, media type).
pub fn rewrite_index(
    index: &Manifest,
    media_type: &str,
    converted: &[(Digest, Manifest)],
) -> Result<Manifest, ManifestError> {
    let mut v: Value =
        serde_json::from_slice(&index.bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| ManifestError::Invalid("not a JSON object".into()))?;
    obj.insert("mediaType".into(), media_type.into());
    if let Some(list) = obj.get_mut("manifests").and_then(Value::as_array_mut) {
        for d in list.iter_mut().filter_map(Value::as_object_mut) {
            let old = d
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some((_, m)) = converted.iter().find(|(o, _)| o.as_ref() == old) {
                d.insert("digest".into(), m.digest().to_string().into());
                d.insert("size".into(), m.bytes.len().into());
                d.insert("mediaType".into(), m.media_type.clone().into());
            }
        }
    }
    let bytes = serde_json::to_vec(&v).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    Ok(Manifest {
        bytes: bytes.into(),
        media_type: media_type.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OCI: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
      "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
      "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}"#;

    #[test]
    fn keeps_bytes_and_guesses_type() {
        let m = Manifest::new(Bytes::from_static(OCI.as_bytes()), None).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.digest(), digest::sha256(OCI.as_bytes()));
        let m =
            Manifest::new(Bytes::from_static(OCI.as_bytes()), Some("application/json")).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(blobs(&m.image().unwrap()).len(), 2);
    }

    #[test]
    fn refuses_large_and_schema1() {
        let big = Bytes::from(vec![b' '; MAX_MANIFEST_SIZE + 1]);
        assert_eq!(
            Manifest::new(big, None),
            Err(ManifestError::TooLarge(MAX_MANIFEST_SIZE + 1))
        );
        let s1 = Bytes::from_static(br#"{"schemaVersion":1,"name":"x"}"#);
        assert_eq!(Manifest::new(s1, None), Err(ManifestError::Schema1));
    }

    #[test]
    fn converts_oci_to_docker() {
        let m = Manifest::new(Bytes::from_static(OCI.as_bytes()), None).unwrap();
        let d = to_docker_v2s2(&m).unwrap();
        assert_eq!(d.media_type, DOCKER_V2S2);
        let img = d.image().unwrap();
        assert_eq!(img.config().media_type().as_ref(), DOCKER_CONFIG);
        assert_eq!(img.layers()[0].media_type().as_ref(), DOCKER_LAYER_GZIP);
    }

    #[test]
    fn converts_docker_to_oci() {
        let m = Manifest::new(Bytes::from_static(OCI.as_bytes()), None).unwrap();
        let d = to_docker_v2s2(&m).unwrap();
        let o = to_oci(&d).unwrap();
        assert_eq!(o.media_type, OCI_MANIFEST);
        let img = o.image().unwrap();
        assert_eq!(img.config().media_type().as_ref(), OCI_CONFIG);
        assert_eq!(img.layers()[0].media_type().as_ref(), OCI_LAYER_GZIP);
    }

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/").is_err());
        let any = Platform::parse("linux/arm64").unwrap();
        assert!(any.matches(&p));
        assert!(!p.matches(&any));
    }
}
