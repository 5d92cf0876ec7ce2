//! [`docker_tar`]: the seed's `Image.DockerTar` — write one image of any
//! source as a `docker load`-compatible archive. The image for a platform is
//! chosen from an index as [`Image::instance`] does, converted to Docker
//! schema 2 when it is OCI, and written through [`DockerArchiveDestination`]
//! (blobs verified as they are staged, archive renamed into place at the end).

use std::path::Path;

use super::DockerArchiveDestination;
use crate::image::{BlobInfo, Error, Image, ImageDestination, Result};
use crate::manifest::{self, Platform};
use crate::reference::Reference;
use crate::transport::local;

/// Write the image of `image` for `platform` (the host's when `None`) to
/// `path` as a `docker save` archive tagged `tag` (no `RepoTags` when
/// `None`). Fails if `path` exists and is not empty, like `docker-archive:`.
pub async fn docker_tar(
    image: &Image,
    platform: Option<&Platform>,
    path: &Path,
    tag: Option<Reference>,
) -> Result<()> {
    let target = local::absolute(&path.to_string_lossy())?;
    let name = format!("docker-archive:{}", path.display());
    let (m, _) = image.instance(platform).await?;
    let m = manifest::to_docker_v2s2(&m).map_err(|e| Error::manifest(&name, e))?;
    let img = m.image().map_err(|e| Error::manifest(&name, e))?;
    let dst = DockerArchiveDestination::open(target, name, tag.into_iter().collect())?;
    for d in manifest::blobs(&img) {
        let info = BlobInfo::from(&d);
        let blob = image.source().get_blob(&info).await?;
        dst.put_blob(&info, blob).await?;
    }
    dst.put_manifest(&m, None).await?;
    dst.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageSource, SystemContext};
    use crate::transport::archive::tar_index::TarIndex;
    use crate::transport::parse_image_name;

    #[tokio::test]
    async fn writes_a_loadable_archive() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("l");
        // A one-layer OCI image written through the oci: transport.
        let layer = b"not really a tar, but bytes are bytes".to_vec();
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#.to_vec();
        let (ld, cd) = (
            crate::digest::sha256(&layer),
            crate::digest::sha256(&config),
        );
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{ld}","size":{}}}]}}"#,
            manifest::OCI_MANIFEST,
            manifest::OCI_CONFIG,
            config.len(),
            manifest::OCI_LAYER,
            layer.len()
        );
        let r = parse_image_name(&format!("oci:{}:v1", layout.display())).unwrap();
        let dst = r
            .new_image_destination(&SystemContext::default())
            .await
            .unwrap();
        for (d, b) in [(&ld, &layer), (&cd, &config)] {
            let blob = crate::image::Blob {
                stream: futures::StreamExt::boxed(futures::stream::iter([Ok(bytes::Bytes::from(
                    b.clone(),
                ))])),
                size: Some(b.len() as u64),
            };
            dst.put_blob(&BlobInfo::new(d.clone(), Some(b.len() as u64)), blob)
                .await
                .unwrap();
        }
        let man = crate::manifest::Manifest::new(m.into_bytes().into(), None).unwrap();
        dst.put_manifest(&man, None).await.unwrap();
        dst.commit().await.unwrap();

        let src: Box<dyn ImageSource> =
            r.new_image_source(&SystemContext::default()).await.unwrap();
        let out = dir.path().join("saved.tar");
        let tag = crate::reference::parse("app:v1").unwrap();
        docker_tar(&Image::new(src), None, &out, Some(tag))
            .await
            .unwrap();
        let idx = TarIndex::open(&out).await.unwrap();
        let items = idx.read("manifest.json", "m", 1 << 20).await.unwrap();
        let items: serde_json::Value = serde_json::from_slice(&items).unwrap();
        assert_eq!(items[0]["RepoTags"][0], "docker.io/library/app:v1");
        assert_eq!(items[0]["Config"], format!("{}.json", cd.digest()));
        assert_eq!(
            idx.read(&format!("{}.tar", ld.digest()), "l", 1 << 20)
                .await
                .unwrap()
                .as_ref(),
            layer.as_slice()
        );
    }
}
