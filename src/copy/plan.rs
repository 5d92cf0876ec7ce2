//! What a copy will write, decided before any blob moves: which index entries
//! to copy, whether the top-level manifest is written unchanged, filtered to
//! some platforms, or converted for a destination that cannot hold its format.
//! Pure functions over manifests, unit-tested.

use oci_spec::image::{Descriptor, ImageIndex};

use super::MultiArch;
use crate::digest::Digest;
use crate::manifest::{self, Manifest, ManifestError, Platform};

/// The entries of an index to copy.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Copy one entry as a single image: it becomes the top-level manifest.
    Single(Box<Descriptor>),
    /// Copy these entries and write the index (`filtered`: a new index
    /// listing only them; `None`: the original bytes).
    Index {
        entries: Vec<Descriptor>,
        filtered: Option<Manifest>,
    },
    /// Write the index only.
    IndexOnly,
}

/// Choose the entries of `index` that `multi_arch` asks for.
pub fn select(
    index_manifest: &Manifest,
    index: &ImageIndex,
    multi_arch: &MultiArch,
) -> Result<Selection, ManifestError> {
    match multi_arch {
        MultiArch::System => manifest::choose_instance(index, None)
            .cloned()
            .map(|d| Selection::Single(Box::new(d)))
            .ok_or_else(|| {
                ManifestError::Invalid(format!(
                    "choosing an image from the index: {}; use --all or --platform",
                    Platform::host().not_in_index(&index_manifest.media_type)
                ))
            }),
        MultiArch::All => Ok(Selection::Index {
            entries: index.manifests().clone(),
            filtered: None,
        }),
        MultiArch::IndexOnly => Ok(Selection::IndexOnly),
        MultiArch::Platforms(wanted) => {
            let mut entries: Vec<Descriptor> = Vec::new();
            for want in wanted {
                let found: Vec<&Descriptor> = index
                    .manifests()
                    .iter()
                    .filter(|d| Platform::of(d).is_some_and(|p| want.matches(&p)))
                    .collect();
                if found.is_empty() {
                    return Err(ManifestError::Invalid(format!(
                        "platform {want} is not in the index"
                    )));
                }
                for d in found {
                    if !entries.iter().any(|e| e.digest() == d.digest()) {
                        entries.push(d.clone());
                    }
                }
            }
            // Keep the index's own order.
            let order: Vec<&Digest> = index.manifests().iter().map(|d| d.digest()).collect();
            entries.sort_by_key(|e| order.iter().position(|d| *d == e.digest()));
            let filtered = if entries.len() == index.manifests().len() {
                None
            } else {
                Some(filtered_index(index_manifest, &entries)?)
            };
            Ok(Selection::Index { entries, filtered })
        }
    }
}

/// A copy of the index document listing only `entries` (other fields kept).
fn filtered_index(original: &Manifest, entries: &[Descriptor]) -> Result<Manifest, ManifestError> {
    let mut v: serde_json::Value = serde_json::from_slice(&original.bytes)
        .map_err(|e| ManifestError::Invalid(e.to_string()))?;
    let keep: Vec<String> = entries.iter().map(|e| e.digest().to_string()).collect();
    if let Some(list) = v.get_mut("manifests").and_then(|m| m.as_array_mut()) {
        list.retain(|d| {
            d.get("digest")
                .and_then(|x| x.as_str())
                .is_some_and(|x| keep.iter().any(|k| k == x))
        });
    }
    let bytes = serde_json::to_vec_pretty(&v).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    Ok(Manifest {
        bytes: bytes.into(),
        media_type: original.media_type.clone(),
    })
}

/// The manifest to write for a single image at a destination that stores
/// `supported` types (empty: any). Unchanged when possible; otherwise
/// converted: to OCI for destinations that hold OCI (`oci:`, `oci-archive:`),
/// to Docker schema 2 for those that hold only that (`docker-archive:`).
/// Conversion changes the digest, so signatures cannot follow.
pub fn for_destination(m: &Manifest, supported: &[&str]) -> Result<Manifest, ManifestError> {
    if supported.is_empty() || supported.contains(&m.media_type.as_str()) {
        return Ok(m.clone());
    }
    if supported.contains(&manifest::OCI_MANIFEST) {
        return manifest::to_oci(m);
    }
    if supported.contains(&manifest::DOCKER_V2S2) {
        return manifest::to_docker_v2s2(m);
    }
    Err(ManifestError::Conversion(format!(
        "the destination stores only {} and {} cannot be converted",
        supported.join(", "),
        m.media_type
    )))
}

/// The index type to write at a destination that stores `supported` types,
/// for an index of type `current`: unchanged when stored, else the OCI index.
pub fn index_type_for_destination(
    current: &str,
    supported: &[&str],
) -> Result<&'static str, ManifestError> {
    if supported.is_empty() || supported.contains(&current) {
        return Ok(if current == manifest::DOCKER_LIST {
            manifest::DOCKER_LIST
        } else {
            manifest::OCI_INDEX
        });
    }
    if supported.contains(&manifest::OCI_INDEX) {
        return Ok(manifest::OCI_INDEX);
    }
    if supported.contains(&manifest::DOCKER_LIST) {
        return Ok(manifest::DOCKER_LIST);
    }
    Err(ManifestError::Conversion(format!(
        "the destination cannot store an index of type {current}"
    )))
}

/// The manifest types to write: the destination's, narrowed to `format`'s
/// (`--format`); empty means any. Fails when nothing is left.
pub fn narrow_to_format(
    supported: &[&'static str],
    format: Option<ManifestFormat>,
) -> Result<Vec<&'static str>, String> {
    let Some(format) = format else {
        return Ok(supported.to_vec());
    };
    let wanted = format.types();
    if supported.is_empty() {
        return Ok(wanted.to_vec());
    }
    let both: Vec<&'static str> = wanted
        .iter()
        .copied()
        .filter(|t| supported.contains(t))
        .collect();
    if both.is_empty() {
        return Err(format!(
            "--format {}: the destination stores only {}",
            format.name(),
            supported.join(", ")
        ));
    }
    Ok(both)
}

/// A manifest format a copy may be asked to write (skopeo's `--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// `oci`: OCI image manifests and indexes.
    Oci,
    /// `v2s2`: Docker schema 2 manifests and manifest lists.
    DockerV2S2,
}

impl ManifestFormat {
    fn types(self) -> [&'static str; 2] {
        match self {
            ManifestFormat::Oci => [manifest::OCI_MANIFEST, manifest::OCI_INDEX],
            ManifestFormat::DockerV2S2 => [manifest::DOCKER_V2S2, manifest::DOCKER_LIST],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ManifestFormat::Oci => "oci",
            ManifestFormat::DockerV2S2 => "v2s2",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn index() -> (Manifest, ImageIndex) {
        let d = |n: char, arch: &str| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":1,"platform":{{"os":"linux","architecture":"{arch}"}}}}"#,
                n.to_string().repeat(64)
            )
        };
        let s = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{},{}]}}"#,
            d('a', "amd64"),
            d('b', "arm64"),
            d('c', "s390x")
        );
        let m = Manifest::new(Bytes::from(s), None).unwrap();
        let i = m.index().unwrap();
        (m, i)
    }

    #[test]
    fn all_keeps_the_original_bytes() {
        let (m, i) = index();
        match select(&m, &i, &MultiArch::All).unwrap() {
            Selection::Index { entries, filtered } => {
                assert_eq!(entries.len(), 3);
                assert!(filtered.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn platforms_filter_in_index_order() {
        let (m, i) = index();
        let want = vec![
            Platform::parse("linux/s390x").unwrap(),
            Platform::parse("linux/amd64").unwrap(),
        ];
        match select(&m, &i, &MultiArch::Platforms(want)).unwrap() {
            Selection::Index { entries, filtered } => {
                let archs: Vec<String> = entries
                    .iter()
                    .map(|e| Platform::of(e).unwrap().architecture)
                    .collect();
                assert_eq!(archs, ["amd64", "s390x"]);
                let f = filtered.unwrap().index().unwrap();
                assert_eq!(f.manifests().len(), 2);
            }
            other => panic!("{other:?}"),
        }
        let err = select(
            &m,
            &i,
            &MultiArch::Platforms(vec![Platform::parse("linux/mips").unwrap()]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("linux/mips is not in the index"));
    }

    #[test]
    fn conversion_only_when_needed() {
        let (m, _) = index();
        assert_eq!(for_destination(&m, &[]).unwrap(), m);
        assert!(for_destination(&m, &[manifest::DOCKER_V2S2]).is_err());
    }
}
