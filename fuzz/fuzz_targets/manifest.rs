//! Manifests and indexes (OCI, Docker schema 2, schema 1): type detection,
//! parsing, conversion, platform selection and copy planning.
#![no_main]
use kubemirror::copy::{MultiArch, plan};
use kubemirror::manifest::{self, Manifest, Parsed, Platform};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let declared = [None, Some(manifest::OCI_INDEX), Some(manifest::DOCKER_V2S2)];
    for t in declared {
        let Ok(m) = Manifest::new(bytes::Bytes::copy_from_slice(data), t) else { continue };
        assert_eq!(m.digest(), kubemirror::digest::sha256(data));
        match m.parse() {
            Ok(Parsed::Image(_)) => {
                if let Ok(d) = manifest::to_docker_v2s2(&m) {
                    assert!(d.image().is_ok(), "a converted manifest parses");
                }
            }
            Ok(Parsed::Index(i)) => {
                let _ = manifest::choose_instance(&i, None);
                for ma in [MultiArch::All, MultiArch::System, MultiArch::Platforms(vec![Platform::host()])] {
                    let _ = plan::select(&m, &i, &ma);
                }
            }
            Err(_) => {}
        }
    }
});
