//! Keyless verification cost (issue 14): one cosign keyless signature
//! (Rekor SET, Fulcio chain, signature, identity) and one bundle v0.3
//! (inclusion proof and checkpoint), verified offline against a test
//! Sigstore, in a timed loop. No network: the core has no I/O.
//!
//!   cargo bench --bench keyless_verify            # 500 rounds
//!   cargo bench --bench keyless_verify -- 2000    # more rounds
#[path = "../tests/support/test_sigstore.rs"]
mod test_sigstore;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use kubemirror::signature::keyless::bundle::{Artifact, Bundle, Signer};
use kubemirror::signature::keyless::{IdentityRule, KeylessTrust, TrustedRoot, verify_cosign};
use test_sigstore::{EMAIL, ISSUER, LeafSpec, T0, TestSigstore};

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let n = times.len();
    let total: Duration = times.iter().sum();
    println!(
        "{what}: {n} rounds, median {:.3} ms, mean {:.3} ms, p99 {:.3} ms",
        times[n / 2].as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3 / n as f64,
        times[(n * 99 / 100).min(n - 1)].as_secs_f64() * 1e3
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --benches` runs bench targets without `--bench`: a smoke run.
    let default = if args.iter().any(|a| a == "--bench") {
        500
    } else {
        3
    };
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(default);
    let s = TestSigstore::new();
    let trust = KeylessTrust {
        root: Arc::new(TrustedRoot::from_json(&s.trusted_root_json()).unwrap()),
        identities: vec![IdentityRule::new(Some(ISSUER), None, Some(EMAIL), None).unwrap()],
    };
    let leaf = s.leaf(&LeafSpec::default());
    let payload = br#"{"critical":{"identity":{"docker-reference":"r.example/app"},"image":{"docker-manifest-digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"type":"cosign container image signature"},"optional":null}"#;
    let a = s.cosign_annotations(&leaf, payload, T0 + 60);
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&a["dev.cosignproject.cosign/signature"])
        .unwrap();
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        verify_cosign(payload, &sig, &a, &trust).expect("verifies");
        times.push(t.elapsed());
    }
    report(
        "cosign keyless signature (SET, chain, signature, identity)",
        times,
    );

    let b = serde_json::to_vec(&s.bundle(
        &leaf,
        b"artifact",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        false,
        true,
        true,
    ))
    .unwrap();
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        Bundle::parse(&b)
            .unwrap()
            .verify(Artifact::Bytes(b"artifact"), Signer::Keyless(&trust))
            .expect("verifies");
        times.push(t.elapsed());
    }
    report(
        "bundle v0.3 (parse, SET, inclusion proof, checkpoint, chain, signature)",
        times,
    );
}
