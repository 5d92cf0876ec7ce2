//! A referrers index (the OCI 1.1 referrers API's answer, or a referrers
//! tag) as a source or destination registry sends it, before a copy acts on
//! it: bounded, validated, never a panic.
#![no_main]
use kubemirror::copy::referrers::{MAX_MERGED, listed_digests};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(digests) = listed_digests(data) {
        assert!(digests.len() <= MAX_MERGED);
        // Listed once each.
        let unique: std::collections::HashSet<_> = digests.iter().collect();
        assert_eq!(unique.len(), digests.len());
    }
});
