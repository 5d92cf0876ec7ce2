//! The record of what a mirror wrote, as a destination registry sends it
//! back: bounded, validated, never a panic.
#![no_main]
use kubemirror::record::{MAX_RECORD_TAGS, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Record::parse(data, "ns/m") {
        assert_eq!(r.mirror, "ns/m");
        assert!(r.tags.len() <= MAX_RECORD_TAGS);
        // What parses round-trips.
        assert_eq!(Record::parse(&r.to_bytes(), "ns/m").unwrap(), r);
    }
});
