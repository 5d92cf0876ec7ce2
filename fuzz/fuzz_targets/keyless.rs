//! Keyless Sigstore inputs: Sigstore bundles (v0.1–v0.3), trusted roots,
//! Fulcio certificates (Fulcio's extensions, SAN), PEM certificate lists,
//! cosign's `dev.sigstore.cosign/bundle` annotation, embedded SCT lists
//! (TLS-encoded, and in a certificate), checkpoints and inclusion proofs (through bundle verification against the embedded
//! public-good root).
#![no_main]
use std::collections::BTreeMap;
use std::sync::Arc;

use kubemirror::signature::keyless::bundle::{Artifact, Bundle, Signer};
use kubemirror::signature::keyless::{
    self, IdentityRule, KeylessTrust, TrustedRoot, cert, keys, sct,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = TrustedRoot::from_json(data);
    let _ = cert::parse_leaf(data);
    let _ = sct::parse_list(data);
    let _ = sct::embedded(data);
    let _ = sct::verify(data, data, &TrustedRoot::public_good().ctlogs);
    let _ = keys::pem_certificates(data, 4);
    let _ = keys::VerifyKey::from_pem_or_der(data);
    let trust = KeylessTrust {
        root: Arc::new(TrustedRoot::public_good().clone()),
        identities: vec![IdentityRule::new(None, Some(""), None, Some("")).unwrap()],
    };
    if let Ok(b) = Bundle::parse(data) {
        let _ = b.verify(Artifact::Sha256(&[0u8; 32]), Signer::Keyless(&trust));
        let _ = b.verify(Artifact::Bytes(data), Signer::Keyless(&trust));
    }
    let text = String::from_utf8_lossy(data).into_owned();
    let mut annotations = BTreeMap::new();
    annotations.insert(keyless::ANNOTATION_BUNDLE.to_string(), text.clone());
    annotations.insert(keyless::ANNOTATION_CERTIFICATE.to_string(), text);
    let _ = keyless::verify_cosign(data, data, &annotations, &trust);
});
