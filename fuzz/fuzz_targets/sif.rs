//! SIF files (`sif:`): the global header and descriptor table, the definition
//! file, and the squashfs partition read by backhand into a layer tar, over
//! arbitrary bytes. Every input ends in an image or a one-line error.
#![no_main]
use kubemirror::image::{Image, SystemContext};
use kubemirror::transport::parse_image_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.sif");
    std::fs::write(&path, data).expect("write");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let r = parse_image_name(&format!("sif:{}", path.display())).expect("sif: parses");
        match r.new_image_source(&SystemContext::default()).await {
            Ok(src) => {
                let _ = Image::new(src).inspect(None).await;
            }
            Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
        }
    });
});
