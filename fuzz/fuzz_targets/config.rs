//! Configuration files users and Secrets hand us: auth.json / docker
//! config.json / .dockerconfigjson, registries.d YAML, policy.json.
#![no_main]
use kubemirror::credentials::AuthFile;
use kubemirror::image::CredentialStore;
use kubemirror::signature::{Policy, RegistriesD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = AuthFile::parse(data, "fuzz") {
        // Lookups never run helpers from fuzzed input: only plain entries are read.
        let _ = f.is_empty();
    }
    if let Ok(f) = AuthFile::from_dockerconfigjson(data) {
        let _ = f.lookup("docker.io");
        let _ = f.lookup("127.0.0.1:5000");
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = RegistriesD::parse("fuzz.yaml", s);
    }
    let _ = Policy::parse("fuzz.json", data);
});
