//! `ImageInspectInfo`: what `kubemirror inspect` prints and
//! `ImageInspection.status` holds, with skopeo's JSON field names and
//! null/empty conventions (skopeo 1.9: `Labels`, `Env` and a layer's
//! `Annotations` are `null` when absent; `Name` and `Variant` are omitted
//! when empty).

use std::collections::BTreeMap;

use oci_spec::image::ImageManifest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::ManifestError;

/// One layer as skopeo's `LayersData` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectLayer {
    #[serde(rename = "MIMEType")]
    pub mime_type: String,
    #[serde(rename = "Digest")]
    pub digest: String,
    #[serde(rename = "Size")]
    pub size: i64,
    #[serde(rename = "Annotations")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The inspect output (skopeo's `inspectOutput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImageInspectInfo {
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "Tag", default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    #[serde(rename = "Digest")]
    pub digest: String,
    #[serde(rename = "RepoTags")]
    pub repo_tags: Vec<String>,
    #[serde(rename = "Created")]
    pub created: Option<String>,
    #[serde(rename = "DockerVersion")]
    pub docker_version: String,
    #[serde(rename = "Labels")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Architecture")]
    pub architecture: String,
    #[serde(rename = "Variant", default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(rename = "Os")]
    pub os: String,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
    #[serde(rename = "LayersData")]
    pub layers_data: Vec<InspectLayer>,
    #[serde(rename = "Env")]
    pub env: Option<Vec<String>>,
}

/// The image config fields inspect reads (OCI and Docker configs share them).
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    created: Option<String>,
    docker_version: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
    os: Option<String>,
    config: Option<RunConfig>,
}

#[derive(Debug, Default, Deserialize)]
struct RunConfig {
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Env")]
    env: Option<Vec<String>>,
}

/// Build the inspect output from a single-image manifest, its digest and its
/// config blob. `Name`, `Tag` and `RepoTags` are the caller's to fill.
pub fn build(
    manifest: &ImageManifest,
    manifest_digest: &str,
    config: &[u8],
) -> Result<ImageInspectInfo, ManifestError> {
    let cfg: ConfigFile = if config.is_empty() {
        ConfigFile::default()
    } else {
        serde_json::from_slice(config)
            .map_err(|e| ManifestError::Invalid(format!("image config: {e}")))?
    };
    let (labels, env) = cfg
        .config
        .map(|c| (c.labels, c.env))
        .unwrap_or((None, None));
    let layers_data: Vec<InspectLayer> = manifest
        .layers()
        .iter()
        .map(|l| InspectLayer {
            mime_type: l.media_type().to_string(),
            digest: l.digest().to_string(),
            size: l.size() as i64,
            annotations: l
                .annotations()
                .as_ref()
                .filter(|a| !a.is_empty())
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        })
        .collect();
    Ok(ImageInspectInfo {
        digest: manifest_digest.to_string(),
        created: cfg.created.map(|c| normalise_time(&c)),
        docker_version: cfg.docker_version.unwrap_or_default(),
        labels: labels.filter(|l| !l.is_empty()),
        architecture: cfg.architecture.unwrap_or_default(),
        variant: cfg.variant.unwrap_or_default(),
        os: cfg.os.unwrap_or_default(),
        layers: layers_data.iter().map(|l| l.digest.clone()).collect(),
        layers_data,
        env,
        ..Default::default()
    })
}

/// Go's `time.Time` JSON output for the config's `created` (RFC 3339 with
/// nanoseconds trimmed of trailing zeros), so our output equals skopeo's.
fn normalise_time(s: &str) -> String {
    match s.parse::<jiff::Timestamp>() {
        Ok(t) => {
            // Go prints UTC times with `Z` and drops trailing fractional zeros.
            let mut out = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
            let nanos = t.subsec_nanosecond();
            if nanos != 0 {
                let frac = format!("{nanos:09}");
                out.push('.');
                out.push_str(frac.trim_end_matches('0'));
            }
            if s.ends_with('Z') || s.ends_with('z') {
                out.push('Z');
                out
            } else {
                // Keep an explicit offset as written.
                s.to_string()
            }
        }
        Err(_) => s.to_string(),
    }
}

/// A JSON value as skopeo prints it: 4-space indentation, trailing newline.
pub fn to_pretty_json(v: &impl Serialize) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if v.serialize(&mut ser).is_err() {
        return format!("{}\n", Value::Null);
    }
    out.push(b'\n');
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_like_go() {
        assert_eq!(
            normalise_time("2024-01-02T03:04:05.120000000Z"),
            "2024-01-02T03:04:05.12Z"
        );
        assert_eq!(
            normalise_time("2024-01-02T03:04:05Z"),
            "2024-01-02T03:04:05Z"
        );
    }

    #[test]
    fn builds_from_config() {
        let m: ImageManifest = serde_json::from_str(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
          "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
          "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}"#).unwrap();
        let cfg = br#"{"created":"2024-01-02T03:04:05Z","architecture":"arm64","variant":"v8","os":"linux","config":{"Env":["A=1"],"Labels":{"x":"y"}}}"#;
        let i = build(&m, "sha256:abc", cfg).unwrap();
        assert_eq!(i.architecture, "arm64");
        assert_eq!(i.variant, "v8");
        assert_eq!(i.env, Some(vec!["A=1".to_string()]));
        assert_eq!(i.layers.len(), 1);
        let j = serde_json::to_value(&i).unwrap();
        assert!(j.get("Name").is_none());
        assert_eq!(j["LayersData"][0]["Annotations"], Value::Null);
    }
}
