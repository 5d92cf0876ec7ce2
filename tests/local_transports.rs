//! The local transports (`oci:`, `dir:`, `docker-archive:`, `oci-archive:`)
//! against the real skopeo: skopeo writes each format and we read it; we
//! write each format through the image traits and skopeo reads it; bad
//! inputs give one-line errors that name the path. Fixtures come from
//! `mkimage.py`. A small copy loop stands in for the copy engine.
mod support;

use std::path::Path;

use futures::TryStreamExt;
use kubemirror::digest::{self, Digest, VerifyingStream};
use kubemirror::image::{BlobInfo, Error, ImageDestination, ImageSource, ReuseHint, SystemContext};
use kubemirror::manifest::{self, Manifest, Parsed};
use kubemirror::transport::parse_image_name;

async fn open_source(name: &str) -> Result<Box<dyn ImageSource>, Error> {
    parse_image_name(name)?
        .new_image_source(&SystemContext::default())
        .await
}

async fn open_dest(name: &str) -> Result<Box<dyn ImageDestination>, Error> {
    parse_image_name(name)?
        .new_image_destination(&SystemContext::default())
        .await
}

/// Read a blob and check it against its digest and size.
async fn read_verified(src: &dyn ImageSource, info: &BlobInfo) -> Result<Vec<u8>, Error> {
    let blob = src.get_blob(info).await?;
    let chunks: Vec<bytes::Bytes> =
        VerifyingStream::new(blob.stream, info.digest.clone(), info.size)
            .try_collect()
            .await?;
    Ok(chunks.concat())
}

/// Copy the blobs of one image manifest.
async fn copy_blobs(
    src: &dyn ImageSource,
    dst: &dyn ImageDestination,
    m: &Manifest,
) -> Result<(), Error> {
    for d in manifest::blobs(&m.image().map_err(|e| Error::manifest("test", e))?) {
        let info = BlobInfo::from(&d);
        if dst
            .try_reusing_blob(&info, &ReuseHint::default())
            .await?
            .is_none()
        {
            let blob = src.get_blob(&info).await?;
            dst.put_blob(&info, blob).await?;
        }
    }
    Ok(())
}

/// A minimal copy: every instance of an index, signatures, commit. Converts
/// to Docker schema 2 for destinations that need it. Returns the digest of
/// the top-level manifest written.
async fn copy(src_name: &str, dst_name: &str) -> Result<Digest, Error> {
    let src = open_source(src_name).await?;
    let dst = open_dest(dst_name).await?;
    let mut top = src.get_manifest(None).await?;
    match top.parse().map_err(|e| Error::manifest(src_name, e))? {
        Parsed::Index(index) => {
            for d in index.manifests() {
                let m = src.get_manifest(Some(d.digest())).await?;
                copy_blobs(src.as_ref(), dst.as_ref(), &m).await?;
                dst.put_manifest(&m, Some(d.digest())).await?;
                let sigs = src.get_signatures(Some(d.digest())).await?;
                if !sigs.is_empty() {
                    dst.put_signatures(&sigs, d.digest()).await?;
                }
            }
        }
        Parsed::Image(_) => {
            copy_blobs(src.as_ref(), dst.as_ref(), &top).await?;
            let types = dst.supported_manifest_types();
            if !types.is_empty() && !types.contains(&top.media_type.as_str()) {
                top = manifest::to_docker_v2s2(&top).map_err(|e| Error::manifest(dst_name, e))?;
            }
        }
    }
    let sigs = src.get_signatures(None).await?;
    if !sigs.is_empty() {
        dst.put_signatures(&sigs, &top.digest()).await?;
    }
    dst.put_manifest(&top, None).await?;
    dst.commit().await?;
    Ok(top.digest())
}

/// Read an image (or index) completely, verifying every manifest and blob;
/// returns the top-level manifest.
async fn read_all(name: &str) -> Result<Manifest, Error> {
    let src = open_source(name).await?;
    let top = src.get_manifest(None).await?;
    let images = match top.parse().map_err(|e| Error::manifest(name, e))? {
        Parsed::Index(index) => {
            let mut v = Vec::new();
            for d in index.manifests() {
                let m = src.get_manifest(Some(d.digest())).await?;
                assert_eq!(m.digest(), *d.digest());
                v.push(m);
            }
            v
        }
        Parsed::Image(_) => vec![top.clone()],
    };
    for m in images {
        for d in manifest::blobs(&m.image().unwrap()) {
            read_verified(src.as_ref(), &BlobInfo::from(&d)).await?;
        }
    }
    Ok(top)
}

fn skopeo_ok(args: &[&str]) -> String {
    let out = support::run(support::skopeo().args(args));
    String::from_utf8(out.stdout).unwrap()
}

fn skopeo_raw(name: &str) -> Vec<u8> {
    support::run(support::skopeo().args(["inspect", "--raw", name])).stdout
}

/// Layout with `v1` (2 layers) and `multi` (an amd64 + arm64 index),
/// written once per build directory (mkimage is deterministic) and shared by
/// every test: tests only read it (those that corrupt blobs copy it first).
fn fixture() -> String {
    static FIXTURE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
            let p = base.join("local-transports-fixture-1");
            if !p.join("index.json").exists() {
                // Written aside and renamed, so a concurrent run never sees half of it.
                let tmp = base.join(format!("local-transports-fixture.{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&tmp);
                support::mkimage(
                    &tmp,
                    &["--tag", "v1", "--layers", "2", "--layer-size", "2K"],
                );
                support::mkimage(
                    &tmp,
                    &[
                        "--tag",
                        "multi",
                        "--layers",
                        "1",
                        "--layer-size",
                        "1K",
                        "--platforms",
                        "linux/amd64,linux/arm64",
                        "--seed",
                        "3",
                    ],
                );
                let _ = std::fs::rename(&tmp, &p);
                let _ = std::fs::remove_dir_all(&tmp);
            }
            p.display().to_string()
        })
        .clone()
}

// ---------------------------------------------------------------- oci:

#[tokio::test]
async fn oci_reads_mkimage_and_skopeo_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let top = read_all(&format!("oci:{fx}:v1")).await.unwrap();
    assert_eq!(top.media_type, manifest::OCI_MANIFEST);
    assert_eq!(top.bytes.as_ref(), skopeo_raw(&format!("oci:{fx}:v1")));
    let multi = read_all(&format!("oci:{fx}:multi")).await.unwrap();
    assert!(multi.is_index());
    assert_eq!(multi.bytes.as_ref(), skopeo_raw(&format!("oci:{fx}:multi")));

    // A layout skopeo wrote (unnamed entry: read without REF).
    let theirs = tmp.path().join("theirs");
    skopeo_ok(&[
        "copy",
        &format!("oci:{fx}:v1"),
        &format!("oci:{}", theirs.display()),
    ]);
    let m = read_all(&format!("oci:{}", theirs.display()))
        .await
        .unwrap();
    assert_eq!(m.bytes, top.bytes);

    let r = parse_image_name(&format!("oci:{fx}")).unwrap();
    let tags = r.list_tags(&SystemContext::default()).await.unwrap();
    assert_eq!(tags, ["v1", "multi"]);
}

#[tokio::test]
async fn oci_write_is_read_by_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let out = tmp.path().join("out").display().to_string();
    let d1 = copy(&format!("oci:{fx}:v1"), &format!("oci:{out}:v1"))
        .await
        .unwrap();
    let d2 = copy(&format!("oci:{fx}:multi"), &format!("oci:{out}:multi"))
        .await
        .unwrap();
    assert_eq!(
        skopeo_raw(&format!("oci:{out}:v1")),
        std::fs::read(format!("{fx}/blobs/sha256/{}", d1.digest())).unwrap()
    );
    assert_eq!(digest::sha256(&skopeo_raw(&format!("oci:{out}:multi"))), d2);
    // skopeo copies ours (all platforms) and lands on the same digests.
    let chk = tmp.path().join("chk").display().to_string();
    skopeo_ok(&[
        "copy",
        "--all",
        &format!("oci:{out}:multi"),
        &format!("oci:{chk}:m"),
    ]);
    skopeo_ok(&["copy", &format!("oci:{out}:v1"), &format!("oci:{chk}:v1")]);
    assert_eq!(digest::sha256(&skopeo_raw(&format!("oci:{chk}:m"))), d2);
    assert_eq!(digest::sha256(&skopeo_raw(&format!("oci:{chk}:v1"))), d1);
    let inspect = skopeo_ok(&["inspect", &format!("oci:{out}:v1")]);
    assert!(inspect.contains(&d1.to_string()), "{inspect}");

    // Re-writing a ref replaces its entry; other refs stay; with_tag works.
    copy(&format!("oci:{fx}:multi"), &format!("oci:{out}:v1"))
        .await
        .unwrap();
    let r = parse_image_name(&format!("oci:{out}:v1")).unwrap();
    let tags = r.list_tags(&SystemContext::default()).await.unwrap();
    assert_eq!(tags, ["v1", "multi"]);
    let again = r.with_tag("multi").unwrap();
    let src = again
        .new_image_source(&SystemContext::default())
        .await
        .unwrap();
    assert_eq!(src.get_manifest(None).await.unwrap().digest(), d2);
    // Any manifest blob of the layout is reachable by digest.
    let src = open_source(&format!("oci:{out}:v1")).await.unwrap();
    assert_eq!(src.get_manifest(Some(&d1)).await.unwrap().digest(), d1);
    // The oci-layout file is skopeo's, byte for byte.
    assert_eq!(
        std::fs::read(format!("{out}/oci-layout")).unwrap(),
        std::fs::read(format!("{chk}/oci-layout")).unwrap()
    );
}

// ---------------------------------------------------------------- dir:

#[tokio::test]
async fn dir_reads_what_skopeo_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let single = tmp.path().join("single").display().to_string();
    let all = tmp.path().join("all").display().to_string();
    skopeo_ok(&["copy", &format!("oci:{fx}:v1"), &format!("dir:{single}")]);
    skopeo_ok(&[
        "copy",
        "--all",
        &format!("oci:{fx}:multi"),
        &format!("dir:{all}"),
    ]);
    let m = read_all(&format!("dir:{single}")).await.unwrap();
    assert_eq!(
        m.bytes.as_ref(),
        std::fs::read(format!("{single}/manifest.json")).unwrap()
    );
    let m = read_all(&format!("dir:{all}")).await.unwrap();
    assert!(m.is_index());
    assert_eq!(
        m.bytes.as_ref(),
        std::fs::read(format!("{all}/manifest.json")).unwrap()
    );
    let src = open_source(&format!("dir:{all}")).await.unwrap();
    assert!(src.get_signatures(None).await.unwrap().is_empty());
}

fn dir_listing(p: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn dir_write_matches_skopeo_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    for (tag, all) in [("v1", false), ("multi", true)] {
        let ours = tmp.path().join(format!("ours-{tag}")).display().to_string();
        let theirs = tmp
            .path()
            .join(format!("theirs-{tag}"))
            .display()
            .to_string();
        copy(&format!("oci:{fx}:{tag}"), &format!("dir:{ours}"))
            .await
            .unwrap();
        let mut args = vec!["copy"];
        if all {
            args.push("--all");
        }
        let (s, d) = (format!("oci:{fx}:{tag}"), format!("dir:{theirs}"));
        args.extend([s.as_str(), d.as_str()]);
        skopeo_ok(&args);
        let (a, b) = (dir_listing(&ours), dir_listing(&theirs));
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b));
        assert_eq!(a, b, "dir:{ours} differs from skopeo's dir:{theirs}");
        // skopeo reads ours back.
        let chk = tmp.path().join(format!("chk-{tag}")).display().to_string();
        skopeo_ok(&[
            "copy",
            "--all",
            &format!("dir:{ours}"),
            &format!("oci:{chk}:x"),
        ]);
        assert_eq!(
            skopeo_raw(&format!("oci:{chk}:x")),
            std::fs::read(format!("{ours}/manifest.json")).unwrap()
        );
    }
}

#[tokio::test]
async fn dir_signatures_round_trip_and_rewrite_cleans_up() {
    use kubemirror::image::Signature;
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let out = tmp.path().join("sig").display().to_string();
    let src = open_source(&format!("oci:{fx}:v1")).await.unwrap();
    let top = src.get_manifest(None).await.unwrap();
    let sigs = vec![
        Signature::SimpleSigning(bytes::Bytes::from_static(b"\xa3\x01openpgp")),
        Signature::Sigstore {
            media_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
            payload: bytes::Bytes::from_static(b"{\"critical\":{}}"),
            annotations: [(
                "dev.cosignproject.cosign/signature".to_string(),
                "MEUC".to_string(),
            )]
            .into(),
        },
    ];
    let dst = open_dest(&format!("dir:{out}")).await.unwrap();
    assert!(dst.supports_signatures());
    copy_blobs(src.as_ref(), dst.as_ref(), &top).await.unwrap();
    dst.put_signatures(&sigs, &top.digest()).await.unwrap();
    dst.put_manifest(&top, None).await.unwrap();
    dst.commit().await.unwrap();
    assert_eq!(
        std::fs::read(format!("{out}/signature-1")).unwrap(),
        b"\xa3\x01openpgp"
    );
    assert!(
        std::fs::read(format!("{out}/signature-2"))
            .unwrap()
            .starts_with(b"\0sigstore-json\n")
    );
    let back = open_source(&format!("dir:{out}")).await.unwrap();
    assert_eq!(back.get_signatures(None).await.unwrap(), sigs);
    assert_eq!(
        back.get_signatures(Some(&top.digest())).await.unwrap(),
        sigs
    );
    // skopeo parses both signature files and writes them back byte for byte
    // (so our sigstore-json encoding is containers/image's).
    let chk = tmp.path().join("sig-chk").display().to_string();
    skopeo_ok(&["copy", &format!("dir:{out}"), &format!("dir:{chk}")]);
    for f in ["signature-1", "signature-2"] {
        assert_eq!(
            std::fs::read(format!("{chk}/{f}")).unwrap(),
            std::fs::read(format!("{out}/{f}")).unwrap(),
            "{f}"
        );
    }

    // Writing another image into the same directory leaves only that image.
    copy(&format!("oci:{fx}:multi"), &format!("dir:{out}"))
        .await
        .unwrap();
    let theirs = tmp.path().join("theirs").display().to_string();
    skopeo_ok(&[
        "copy",
        "--all",
        &format!("oci:{fx}:multi"),
        &format!("dir:{theirs}"),
    ]);
    assert_eq!(dir_listing(&out), dir_listing(&theirs));
}

// ---------------------------------------------------------------- errors

fn one_line(e: &Error) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "multi-line error: {s}");
    s
}

/// Staging directories and temporary files start with '.'; none may be left.
fn assert_no_temporary_files(dir: &str) {
    let stray: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.starts_with('.').then_some(n)
        })
        .collect();
    assert!(stray.is_empty(), "left in {dir}: {stray:?}");
}

fn copy_tree(from: &Path, to: &Path) {
    support::run(std::process::Command::new("cp").arg("-r").arg(from).arg(to));
}

#[tokio::test]
async fn oci_and_dir_bad_inputs_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let t = tmp.path().display().to_string();

    // Missing paths.
    let e = open_source(&format!("oci:{t}/nope:v1"))
        .await
        .err()
        .unwrap();
    assert_eq!(
        one_line(&e),
        format!("{t}/nope/index.json: index.json (not an OCI layout?) not found")
    );
    let e = open_source(&format!("dir:{t}/nope")).await.err().unwrap();
    assert_eq!(one_line(&e), format!("{t}/nope: directory not found"));
    let e = open_source(&format!("oci:{fx}:v9")).await.err().unwrap();
    assert!(
        one_line(&e).contains("an image named \"v9\" in index.json not found"),
        "{e}"
    );
    let e = open_source(&format!("oci:{fx}")).await.err().unwrap();
    assert!(one_line(&e).contains("more than one image"), "{e}");

    // A layer whose bytes do not match its digest: the copy fails naming the
    // blob, and the destination layout gets no index entry.
    let bad = tmp.path().join("bad");
    copy_tree(Path::new(&fx), &bad);
    let src = open_source(&format!("oci:{}:v1", bad.display()))
        .await
        .unwrap();
    let m = src.get_manifest(None).await.unwrap().image().unwrap();
    let layer = m.layers()[0].digest().clone();
    let layer_file = bad.join("blobs/sha256").join(layer.digest());
    let mut data = std::fs::read(&layer_file).unwrap();
    data[100] ^= 0xff;
    std::fs::write(&layer_file, &data).unwrap();
    let out = format!("{t}/out");
    copy(&format!("oci:{fx}:multi"), &format!("oci:{out}:keep"))
        .await
        .unwrap();
    let e = copy(
        &format!("oci:{}:v1", bad.display()),
        &format!("oci:{out}:v1"),
    )
    .await
    .unwrap_err();
    let s = one_line(&e);
    assert!(
        s.contains("digest mismatch") && s.contains(layer.digest()),
        "{s}"
    );
    assert!(s.contains(&format!("{out}/blobs/sha256/")), "{s}");
    assert!(
        !Path::new(&out)
            .join("blobs/sha256")
            .join(layer.digest())
            .exists()
    );
    let r = parse_image_name(&format!("oci:{out}")).unwrap();
    assert_eq!(
        r.list_tags(&SystemContext::default()).await.unwrap(),
        ["keep"]
    );
    // Same into dir: no manifest.json appears.
    let e = copy(
        &format!("oci:{}:v1", bad.display()),
        &format!("dir:{t}/baddir"),
    )
    .await
    .unwrap_err();
    assert!(one_line(&e).contains("digest mismatch"), "{e}");
    assert!(!Path::new(&format!("{t}/baddir/manifest.json")).exists());

    // A manifest blob that does not match its digest.
    let d = src.manifest_digest().await.unwrap();
    std::fs::write(
        bad.join("blobs/sha256").join(d.digest()),
        b"{\"schemaVersion\":2}",
    )
    .unwrap();
    let e = src.get_manifest(None).await.unwrap_err();
    assert!(
        one_line(&e).contains(&format!("manifest {d}: digest mismatch")),
        "{e}"
    );

    // An index entry that points nowhere.
    std::fs::remove_file(bad.join("blobs/sha256").join(d.digest())).unwrap();
    let e = src.get_manifest(None).await.unwrap_err();
    assert_eq!(
        one_line(&e),
        format!(
            "{}/blobs/sha256/{}: manifest {d} (referenced by oci:{}:v1) not found",
            bad.display(),
            d.digest(),
            bad.display()
        )
    );

    // A manifest over 4 MiB.
    let big = tmp.path().join("big");
    std::fs::create_dir(&big).unwrap();
    std::fs::write(big.join("manifest.json"), vec![b' '; 5 << 20]).unwrap();
    let src = open_source(&format!("dir:{}", big.display()))
        .await
        .unwrap();
    let e = src.get_manifest(None).await.unwrap_err();
    assert!(one_line(&e).contains("over the 4194304-byte limit"), "{e}");

    // dir: refuses to overwrite a directory it did not write.
    let e = open_dest(&format!("dir:{}", big.display()))
        .await
        .err()
        .unwrap();
    assert!(one_line(&e).contains("refusing to overwrite"), "{e}");
    assert!(big.join("manifest.json").exists());
}

// ---------------------------------------------------------------- docker-archive:

fn archive_member(tar: &str, name: &str) -> Vec<u8> {
    support::run(std::process::Command::new("tar").args(["xOf", tar, name])).stdout
}

#[tokio::test]
async fn docker_archive_reads_what_skopeo_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let theirs = tmp.path().join("theirs.tar").display().to_string();
    skopeo_ok(&[
        "copy",
        &format!("oci:{fx}:v1"),
        &format!("docker-archive:{theirs}:foo/bar:v1"),
    ]);
    for sel in ["", ":foo/bar:v1", ":docker.io/foo/bar:v1", ":@0"] {
        let m = read_all(&format!("docker-archive:{theirs}{sel}"))
            .await
            .unwrap();
        assert_eq!(m.media_type, manifest::DOCKER_V2S2);
        let img = m.image().unwrap();
        // skopeo stored the layers uncompressed: typed as such, digests = diffIDs.
        assert!(
            img.layers()
                .iter()
                .all(|l| l.media_type().to_string() == manifest::DOCKER_LAYER)
        );
        let cfg = std::fs::read(format!(
            "{fx}/blobs/sha256/{}",
            img.config().digest().digest()
        ))
        .unwrap();
        assert_eq!(digest::sha256(&cfg), *img.config().digest());
    }
    let src = open_source(&format!("docker-archive:{theirs}"))
        .await
        .unwrap();
    assert_eq!(
        src.intended_docker_reference().unwrap().to_string(),
        "docker.io/foo/bar:v1"
    );
    let r = parse_image_name(&format!("docker-archive:{theirs}")).unwrap();
    assert_eq!(
        r.list_tags(&SystemContext::default()).await.unwrap(),
        ["docker.io/foo/bar:v1"]
    );
    let e = open_source(&format!("docker-archive:{theirs}:foo/bar:v2"))
        .await
        .err()
        .unwrap();
    assert!(
        one_line(&e).contains("an image tagged docker.io/foo/bar:v2 not found"),
        "{e}"
    );
}

#[tokio::test]
async fn docker_archive_write_is_read_by_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let t = tmp.path().display().to_string();
    let (ours, theirs) = (format!("{t}/ours.tar"), format!("{t}/theirs.tar"));
    copy(
        &format!("oci:{fx}:v1"),
        &format!("docker-archive:{ours}:foo/bar:v1"),
    )
    .await
    .unwrap();
    skopeo_ok(&[
        "copy",
        &format!("oci:{fx}:v1"),
        &format!("docker-archive:{theirs}:foo/bar:v1"),
    ]);

    // skopeo sees the same image in both archives (it decompresses layers).
    assert_eq!(
        skopeo_raw(&format!("docker-archive:{ours}")),
        skopeo_raw(&format!("docker-archive:{theirs}"))
    );
    let inspect = skopeo_ok(&["inspect", &format!("docker-archive:{ours}")]);
    let raw_digest = digest::sha256(&skopeo_raw(&format!("docker-archive:{ours}")));
    assert!(inspect.contains(&raw_digest.to_string()), "{inspect}");
    let ours_items: serde_json::Value =
        serde_json::from_slice(&archive_member(&ours, "manifest.json")).unwrap();
    let theirs_items: serde_json::Value =
        serde_json::from_slice(&archive_member(&theirs, "manifest.json")).unwrap();
    assert_eq!(ours_items[0]["RepoTags"], theirs_items[0]["RepoTags"]);
    assert_eq!(ours_items[0]["Config"], theirs_items[0]["Config"]);
    skopeo_ok(&[
        "copy",
        &format!("docker-archive:{ours}"),
        &format!("oci:{t}/chk:ours"),
    ]);
    skopeo_ok(&[
        "copy",
        &format!("docker-archive:{theirs}"),
        &format!("oci:{t}/chk:theirs"),
    ]);
    assert_eq!(
        skopeo_raw(&format!("oci:{t}/chk:ours")),
        skopeo_raw(&format!("oci:{t}/chk:theirs"))
    );

    // We read ours back: layers as stored (gzip), same digests as the source.
    let back = read_all(&format!("docker-archive:{ours}:foo/bar:v1"))
        .await
        .unwrap()
        .image()
        .unwrap();
    let orig = open_source(&format!("oci:{fx}:v1"))
        .await
        .unwrap()
        .get_manifest(None)
        .await
        .unwrap()
        .image()
        .unwrap();
    assert_eq!(back.config().digest(), orig.config().digest());
    let digests = |m: &oci_spec::image::ImageManifest| {
        m.layers()
            .iter()
            .map(|l| (l.digest().clone(), l.size()))
            .collect::<Vec<_>>()
    };
    assert_eq!(digests(&back), digests(&orig));
    assert!(
        back.layers()
            .iter()
            .all(|l| l.media_type().to_string() == manifest::DOCKER_LAYER_GZIP)
    );

    // Like skopeo: no modifying an existing archive; no index; no staging left.
    let e = open_dest(&format!("docker-archive:{ours}:foo/bar:v2"))
        .await
        .err()
        .unwrap();
    assert!(
        one_line(&e).contains("doesn't support modifying existing images"),
        "{e}"
    );
    let e = copy(
        &format!("oci:{fx}:multi"),
        &format!("docker-archive:{t}/multi.tar"),
    )
    .await
    .unwrap_err();
    assert!(one_line(&e).contains("not an index"), "{e}");
    assert!(!Path::new(&format!("{t}/multi.tar")).exists());
    let dst = open_dest(&format!("docker-archive:{t}/x.tar"))
        .await
        .unwrap();
    assert!(!dst.supports_index());
    assert_eq!(dst.supported_manifest_types(), [manifest::DOCKER_V2S2]);
    drop(dst);
    assert_no_temporary_files(&t);
}

// ---------------------------------------------------------------- oci-archive:

#[tokio::test]
async fn oci_archive_round_trips_with_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let t = tmp.path().display().to_string();
    let (ours, theirs) = (format!("{t}/ours.tar"), format!("{t}/theirs.tar"));
    skopeo_ok(&[
        "copy",
        "--all",
        &format!("oci:{fx}:multi"),
        &format!("oci-archive:{theirs}:m"),
    ]);
    let m = read_all(&format!("oci-archive:{theirs}:m")).await.unwrap();
    assert_eq!(m.bytes.as_ref(), skopeo_raw(&format!("oci:{fx}:multi")));
    let m1 = read_all(&format!("oci-archive:{theirs}")).await.unwrap();
    assert_eq!(m1, m);

    let d = copy(&format!("oci:{fx}:multi"), &format!("oci-archive:{ours}:m"))
        .await
        .unwrap();
    assert_eq!(
        digest::sha256(&skopeo_raw(&format!("oci-archive:{ours}:m"))),
        d
    );
    skopeo_ok(&[
        "copy",
        "--all",
        &format!("oci-archive:{ours}:m"),
        &format!("oci:{t}/chk:m"),
    ]);
    assert_eq!(digest::sha256(&skopeo_raw(&format!("oci:{t}/chk:m"))), d);
    let r = parse_image_name(&format!("oci-archive:{ours}")).unwrap();
    assert_eq!(r.list_tags(&SystemContext::default()).await.unwrap(), ["m"]);
    // Writing again replaces the archive (as containers/image does).
    let d1 = copy(&format!("oci:{fx}:v1"), &format!("oci-archive:{ours}:v1"))
        .await
        .unwrap();
    assert_eq!(
        r.list_tags(&SystemContext::default()).await.unwrap(),
        ["v1"]
    );
    assert_eq!(
        digest::sha256(&skopeo_raw(&format!("oci-archive:{ours}:v1"))),
        d1
    );
}

#[tokio::test]
async fn archives_bad_inputs_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let t = tmp.path().display().to_string();

    for transport in ["docker-archive", "oci-archive"] {
        let e = open_source(&format!("{transport}:{t}/nope.tar"))
            .await
            .err()
            .unwrap();
        assert_eq!(one_line(&e), format!("{t}/nope.tar: archive not found"));

        // Truncated archives.
        let good = format!("{t}/{transport}-good.tar");
        copy(&format!("oci:{fx}:v1"), &format!("{transport}:{good}"))
            .await
            .unwrap();
        let data = std::fs::read(&good).unwrap();
        let cut = format!("{t}/{transport}-cut.tar");
        std::fs::write(&cut, &data[..data.len() / 2 + 7]).unwrap();
        let e = open_source(&format!("{transport}:{cut}"))
            .await
            .err()
            .unwrap();
        let s = one_line(&e);
        assert!(s.starts_with(&cut) && s.contains("truncated"), "{s}");

        // A corrupt layer: the copy fails naming the blob, nothing at PATH,
        // no staging directory left.
        let bad = tmp.path().join(format!("bad-{transport}"));
        copy_tree(Path::new(&fx), &bad);
        let src = open_source(&format!("oci:{}:v1", bad.display()))
            .await
            .unwrap();
        let layer = src
            .get_manifest(None)
            .await
            .unwrap()
            .image()
            .unwrap()
            .layers()[1]
            .digest()
            .clone();
        let f = bad.join("blobs/sha256").join(layer.digest());
        let mut data = std::fs::read(&f).unwrap();
        data[50] ^= 1;
        std::fs::write(&f, data).unwrap();
        let out = format!("{t}/{transport}-failed.tar");
        let e = copy(
            &format!("oci:{}:v1", bad.display()),
            &format!("{transport}:{out}"),
        )
        .await
        .unwrap_err();
        assert!(one_line(&e).contains("digest mismatch"), "{e}");
        assert!(!Path::new(&out).exists());
    }
    assert_no_temporary_files(&t);

    // A layer in a docker archive whose bytes do not match the config's diffID.
    let src_tar = format!("{t}/skopeo.tar");
    skopeo_ok(&[
        "copy",
        &format!("oci:{fx}:v1"),
        &format!("docker-archive:{src_tar}"),
    ]);
    let mut data = std::fs::read(&src_tar).unwrap();
    // The first member is a layer (skopeo writes layers first); flip a byte of its data.
    data[512 + 600] ^= 0xff;
    std::fs::write(&src_tar, &data).unwrap();
    let e = read_all(&format!("docker-archive:{src_tar}"))
        .await
        .unwrap_err();
    assert!(one_line(&e).contains("digest mismatch"), "{e}");
}

// ---------------------------------------------------------------- incremental

#[tokio::test]
async fn destinations_report_what_they_hold_and_survive_abandoned_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let t = tmp.path().display().to_string();
    for dst in [
        format!("oci:{t}/o:v1"),
        format!("dir:{t}/d"),
        format!("oci-archive:{t}/a.tar:v1"),
    ] {
        let fresh = open_dest(&dst).await.unwrap();
        assert_eq!(
            fresh.existing_manifest_digest().await.unwrap(),
            None,
            "{dst}"
        );
        drop(fresh);
        let d = copy(&format!("oci:{fx}:v1"), &dst).await.unwrap();
        // What the copy engine does for a no-op copy: open, ask, drop.
        let again = open_dest(&dst).await.unwrap();
        assert_eq!(
            again.existing_manifest_digest().await.unwrap(),
            Some(d.clone()),
            "{dst}"
        );
        drop(again);
        // A copy of another image that is abandoned before commit leaves the
        // old image intact and complete.
        let src = open_source(&format!("oci:{fx}:multi")).await.unwrap();
        let idx = src.get_manifest(None).await.unwrap().index().unwrap();
        let child = src
            .get_manifest(Some(idx.manifests()[0].digest()))
            .await
            .unwrap();
        let abandoned = open_dest(&dst).await.unwrap();
        copy_blobs(src.as_ref(), abandoned.as_ref(), &child)
            .await
            .unwrap();
        abandoned.put_manifest(&child, None).await.unwrap();
        drop(abandoned);
        let m = read_all(&dst).await.unwrap();
        assert_eq!(m.digest(), d, "{dst}");
        skopeo_ok(&["inspect", &dst]);
    }
    // dir: after a commit, only the new image's files remain.
    copy(&format!("oci:{fx}:multi"), &format!("dir:{t}/d"))
        .await
        .unwrap();
    skopeo_ok(&[
        "copy",
        "--all",
        &format!("oci:{fx}:multi"),
        &format!("dir:{t}/theirs"),
    ]);
    assert_eq!(
        dir_listing(&format!("{t}/d")),
        dir_listing(&format!("{t}/theirs"))
    );
}

// ---------------------------------------------------------------- through the copy engine

fn km(args: &[&str]) -> String {
    let (ok, out, err) = support::kubemirror_run(args);
    assert!(ok, "kubemirror {args:?} failed: {err}");
    out
}

#[test]
fn kubemirror_copy_between_local_transports_matches_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let t = tmp.path().display().to_string();
    // dir: with --all, byte for byte what skopeo writes.
    km(&[
        "copy",
        "--all",
        &format!("oci:{fx}:multi"),
        &format!("dir:{t}/ours"),
    ]);
    skopeo_ok(&[
        "copy",
        "--all",
        &format!("oci:{fx}:multi"),
        &format!("dir:{t}/theirs"),
    ]);
    assert_eq!(
        dir_listing(&format!("{t}/ours")),
        dir_listing(&format!("{t}/theirs"))
    );
    // A second copy finds everything in place.
    let report = km(&[
        "copy",
        "--all",
        "--report",
        &format!("oci:{fx}:multi"),
        &format!("dir:{t}/ours"),
    ]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["upToDate"], true, "{report}");
    // oci: → docker-archive: (converted to Docker schema 2) → oci-archive: → oci:.
    km(&[
        "copy",
        &format!("oci:{fx}:v1"),
        &format!("docker-archive:{t}/a.tar:app:v1"),
    ]);
    km(&[
        "copy",
        &format!("docker-archive:{t}/a.tar:app:v1"),
        &format!("oci-archive:{t}/b.tar:v1"),
    ]);
    km(&[
        "copy",
        &format!("oci-archive:{t}/b.tar:v1"),
        &format!("dir:{t}/d"),
    ]);
    skopeo_ok(&["inspect", &format!("docker-archive:{t}/a.tar")]);
    let ours = km(&["inspect", &format!("dir:{t}/d")]);
    let theirs = skopeo_ok(&["inspect", &format!("oci:{fx}:v1")]);
    let layers = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["Layers"].clone();
    assert_eq!(layers(&ours), layers(&theirs), "layers changed on the way");
    let tags = km(&["list-tags", &format!("oci-archive:{t}/b.tar")]);
    assert!(tags.contains("\"v1\""), "{tags}");
}

#[test]
fn docker_schema2_into_oci_is_converted_so_skopeo_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let t = tmp.path().display().to_string();
    km(&[
        "copy",
        &format!("oci:{fx}:v1"),
        &format!("docker-archive:{t}/a.tar:app:v1"),
    ]);
    let raw = km(&["inspect", "--raw", &format!("docker-archive:{t}/a.tar")]);
    assert!(raw.contains(kubemirror::manifest::DOCKER_V2S2), "{raw}");
    km(&[
        "copy",
        &format!("docker-archive:{t}/a.tar"),
        &format!("oci:{t}/layout:v1"),
    ]);
    let theirs = skopeo_ok(&["inspect", "--raw", &format!("oci:{t}/layout:v1")]);
    assert!(
        theirs.contains(kubemirror::manifest::OCI_MANIFEST),
        "{theirs}"
    );
    let ours = km(&["inspect", &format!("oci:{t}/layout:v1")]);
    let src = skopeo_ok(&["inspect", &format!("oci:{fx}:v1")]);
    let layers = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["Layers"].clone();
    assert_eq!(
        layers(&ours),
        layers(&src),
        "same layer blobs after two conversions"
    );
}

#[test]
fn the_system_platform_of_a_signed_index_carries_its_own_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let t = tmp.path().display().to_string();
    let (home, fpr) = support::gpg_key(tmp.path(), "");
    support::run(
        support::skopeo()
            .env("GNUPGHOME", &home)
            .args([
                "copy",
                "--all",
                "--sign-by",
                &fpr,
                "--sign-identity",
                "docker.io/library/app:m",
            ])
            .arg(format!("oci:{fx}:multi"))
            .arg(format!("dir:{t}/signed")),
    );
    // The default copies this machine's platform as a single image.
    km(&["copy", &format!("dir:{t}/signed"), &format!("dir:{t}/one")]);
    let one = std::fs::read(format!("{t}/one/signature-1")).expect("the copied image is signed");
    let index_sig = std::fs::read(format!("{t}/signed/signature-1")).unwrap();
    assert_ne!(
        one, index_sig,
        "the index's signature must not be put on one platform"
    );
    let manifest = std::fs::read(format!("{t}/one/manifest.json")).unwrap();
    let hex = kubemirror::digest::sha256(&manifest).digest().to_string();
    let instance_sig = std::fs::read(format!("{t}/signed/{hex}.signature-1")).unwrap();
    assert_eq!(one, instance_sig);
}

// ---------------------------------------------------------------- skopeo's signatures

#[tokio::test]
async fn dir_reads_and_copies_skopeo_gpg_signatures() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture();
    let t = tmp.path().display().to_string();
    let (home, fpr) = support::gpg_key(tmp.path(), "");
    let signed = format!("{t}/signed");
    support::run(support::skopeo().env("GNUPGHOME", &home).args([
        "copy",
        "--all",
        "--sign-by",
        &fpr,
        "--sign-identity",
        "docker.io/library/app:m",
        &format!("oci:{fx}:multi"),
        &format!("dir:{signed}"),
    ]));
    // skopeo signed the index and each instance: signature-1 and <hex>.signature-1.
    let src = open_source(&format!("dir:{signed}")).await.unwrap();
    let top = src.get_signatures(None).await.unwrap();
    assert_eq!(top.len(), 1);
    assert!(
        matches!(&top[0], kubemirror::image::Signature::SimpleSigning(b) if b.as_ref() == std::fs::read(format!("{signed}/signature-1")).unwrap())
    );
    let index = src.get_manifest(None).await.unwrap().index().unwrap();
    for d in index.manifests() {
        assert_eq!(
            src.get_signatures(Some(d.digest())).await.unwrap().len(),
            1,
            "{}",
            d.digest()
        );
    }
    // Our copy reproduces skopeo's directory, signatures included...
    copy(&format!("dir:{signed}"), &format!("dir:{t}/ours"))
        .await
        .unwrap();
    assert_eq!(dir_listing(&format!("{t}/ours")), dir_listing(&signed));
    // ...and so does the copy engine.
    km(&[
        "copy",
        "--all",
        &format!("dir:{signed}"),
        &format!("dir:{t}/engine"),
    ]);
    assert_eq!(dir_listing(&format!("{t}/engine")), dir_listing(&signed));
    // skopeo verifies what we wrote against a signedBy policy.
    let pubkey = format!("{t}/pub.gpg");
    support::run(
        std::process::Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--output", &pubkey, "--export", &fpr]),
    );
    let policy = format!("{t}/policy.json");
    std::fs::write(&policy, format!(r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{pubkey}","signedIdentity":{{"type":"exactReference","dockerReference":"docker.io/library/app:m"}}}}]}}"#)).unwrap();
    support::run(std::process::Command::new("skopeo").args([
        "--policy",
        &policy,
        "copy",
        &format!("dir:{t}/ours"),
        &format!("dir:{t}/verified"),
    ]));
}
