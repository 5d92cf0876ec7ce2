//! Tar archives: `docker-archive:` (plain, or compressed with gzip, xz or
//! zstd) and `oci-archive:` sources over arbitrary
//! bytes (index the tar, read manifest.json / index.json, the config).
#![no_main]
use kubemirror::image::{Image, SystemContext};
use kubemirror::transport::parse_image_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.tar");
    std::fs::write(&path, data).expect("write");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        for t in ["docker-archive", "oci-archive"] {
            let Ok(r) = parse_image_name(&format!("{t}:{}", path.display())) else { continue };
            let Ok(src) = r.new_image_source(&SystemContext::default()).await else { continue };
            let image = Image::new(src);
            let _ = image.inspect(None).await;
        }
    });
});
