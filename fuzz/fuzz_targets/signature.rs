//! Signature payloads and messages: simple-signing JSON payloads, OpenPGP
//! messages, sigstore attachment manifests.
#![no_main]
use kubemirror::manifest::Manifest;
use kubemirror::signature::{sigstore, simple};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = simple::Payload::parse(data, "atomic container signature");
    let _ = simple::Payload::parse(data, "cosign container image signature");
    let _ = simple::open(data);
    if let Ok(m) = Manifest::new(bytes::Bytes::copy_from_slice(data), None) {
        let _ = sigstore::signature_layers(&m);
    }
});
