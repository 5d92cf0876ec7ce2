//! Image names and references: transport syntax, docker references, digests, platforms.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(r) = kubemirror::reference::parse(s) {
            // A parsed reference prints back to something that parses to itself.
            let again = kubemirror::reference::parse(&r.to_string()).expect("round trip");
            assert_eq!(again, r);
        }
        let _ = kubemirror::transport::parse_image_name(s);
        let _ = kubemirror::transport::parse_repository(s);
        let _ = kubemirror::digest::parse(s);
        let _ = kubemirror::manifest::Platform::parse(s);
    }
});
