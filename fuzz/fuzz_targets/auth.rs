//! Registry wire parsing: `WWW-Authenticate` challenges and `Link` headers.
#![no_main]
use kubemirror::transport::docker::{auth, catalog};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = auth::parse_challenge(s);
        let _ = catalog::next_link(s);
    }
});
