//! containers-policy.json(5): which images may be used, as skopeo decides
//! before copying. `default` applies unless `transports.TRANSPORT.SCOPE`
//! names the image (the most specific scope wins; `""` is the transport's
//! default). Every requirement of the chosen list must accept.
//!
//! Requirements: `insecureAcceptAnything`, `reject`, `signedBy` (`keyType:
//! GPGKeys`, `keyPath` / `keyPaths` / `keyData`, `signedIdentity`) and
//! `sigstoreSigned` (`keyPath` / `keyData`, or keyless: `fulcio` with
//! `caPath` / `caData`, `oidcIssuer`, `subjectEmail`, and
//! `rekorPublicKeyPath` / `rekorPublicKeyData`, the Rekor key a keyless
//! signature's SET must verify with; `signedIdentity`). `signedIdentity`: `matchRepoDigestOrExact` (default),
//! `matchExact`, `matchRepository`, `exactReference`, `exactRepository`,
//! `remapIdentity`. Keys are read when the policy is loaded, so a missing
//! key file is reported at once. As in skopeo 1.9, `signedBy` accepts only
//! signatures made by a primary key of the keyring, not by a subkey.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use super::identity::{Ident, SignedIdentity};
use super::keyless::{IdentityRule, KeylessTrust, TrustedRoot};
use super::registries_d::docker_scopes;
use super::simple::Keyring;
use super::verify::{self, Subject, TrustedKeys};
use super::{SignatureError, sigstore};
use crate::image::{ImageReference, Signature};
use crate::reference::Reference;

/// An image refused by the policy, with a one-line reason.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{image} rejected by policy: {reason}")]
pub struct PolicyError {
    pub image: String,
    pub reason: String,
}

impl From<PolicyError> for crate::image::Error {
    fn from(e: PolicyError) -> Self {
        crate::image::Error::Signature(e.to_string())
    }
}

/// One policy requirement, keys loaded.
#[derive(Debug, Clone)]
pub enum Requirement {
    InsecureAcceptAnything,
    Reject,
    SignedBy {
        keys: Keyring,
        identity: SignedIdentity,
    },
    SigstoreSigned {
        /// A public key, or (`None`) keyless with `keyless`.
        key: Option<sigstore::PublicKey>,
        keyless: Option<std::sync::Arc<KeylessTrust>>,
        identity: SignedIdentity,
    },
}

/// A loaded policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub default: Vec<Requirement>,
    pub transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    default: Vec<RawRequirement>,
    #[serde(default)]
    transports: BTreeMap<String, BTreeMap<String, Vec<RawRequirement>>>,
}

#[derive(Deserialize)]
#[serde(tag = "type", deny_unknown_fields, rename_all = "camelCase")]
enum RawRequirement {
    InsecureAcceptAnything,
    Reject,
    #[serde(rename_all = "camelCase")]
    SignedBy {
        key_type: String,
        key_path: Option<String>,
        key_paths: Option<Vec<String>>,
        key_data: Option<String>,
        signed_identity: Option<RawIdentity>,
    },
    #[serde(rename_all = "camelCase")]
    SigstoreSigned {
        key_path: Option<String>,
        key_data: Option<String>,
        fulcio: Option<RawFulcio>,
        rekor_public_key_path: Option<String>,
        rekor_public_key_data: Option<String>,
        signed_identity: Option<RawIdentity>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFulcio {
    ca_path: Option<String>,
    ca_data: Option<String>,
    oidc_issuer: String,
    subject_email: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", deny_unknown_fields, rename_all = "camelCase")]
enum RawIdentity {
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    #[serde(rename_all = "camelCase")]
    ExactReference {
        docker_reference: String,
    },
    #[serde(rename_all = "camelCase")]
    ExactRepository {
        docker_repository: String,
    },
    #[serde(rename_all = "camelCase")]
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

impl RawIdentity {
    fn load(self) -> Result<SignedIdentity, String> {
        Ok(match self {
            RawIdentity::MatchExact => SignedIdentity::MatchExact,
            RawIdentity::MatchRepoDigestOrExact => SignedIdentity::MatchRepoDigestOrExact,
            RawIdentity::MatchRepository => SignedIdentity::MatchRepository,
            RawIdentity::ExactReference { docker_reference } => {
                let i =
                    Ident::parse(&docker_reference).map_err(|e| format!("exactReference: {e}"))?;
                if i.is_name_only() {
                    return Err(format!(
                        "exactReference: {docker_reference:?} has neither tag nor digest"
                    ));
                }
                SignedIdentity::ExactReference(i)
            }
            RawIdentity::ExactRepository { docker_repository } => {
                let i = Ident::parse(&docker_repository)
                    .map_err(|e| format!("exactRepository: {e}"))?;
                SignedIdentity::ExactRepository(i.name)
            }
            RawIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            },
        })
    }
}

fn read_key(path: &str) -> Result<Vec<u8>, String> {
    if !Path::new(path).is_absolute() {
        return Err(format!("keyPath {path:?} must be an absolute path"));
    }
    std::fs::read(path).map_err(|e| format!("keyPath {path}: {e}"))
}

impl RawRequirement {
    fn load(self) -> Result<Requirement, String> {
        Ok(match self {
            RawRequirement::InsecureAcceptAnything => Requirement::InsecureAcceptAnything,
            RawRequirement::Reject => Requirement::Reject,
            RawRequirement::SignedBy {
                key_type,
                key_path,
                key_paths,
                key_data,
                signed_identity,
            } => {
                if key_type != "GPGKeys" {
                    return Err(format!(
                        "signedBy: unsupported keyType {key_type:?}: want GPGKeys"
                    ));
                }
                let n = [key_path.is_some(), key_paths.is_some(), key_data.is_some()]
                    .iter()
                    .filter(|b| **b)
                    .count();
                if n != 1 {
                    return Err(
                        "signedBy: exactly one of keyPath, keyPaths and keyData is required".into(),
                    );
                }
                let mut blobs = Vec::new();
                if let Some(p) = key_path {
                    blobs.push(read_key(&p)?);
                }
                for p in key_paths.unwrap_or_default() {
                    blobs.push(read_key(&p)?);
                }
                if let Some(d) = key_data {
                    blobs.push(
                        B64.decode(d.trim())
                            .map_err(|e| format!("signedBy: keyData is not base64: {e}"))?,
                    );
                }
                let mut keys = Keyring::default();
                for b in blobs {
                    keys.add(&b).map_err(|e| format!("signedBy: {e}"))?;
                }
                Requirement::SignedBy {
                    keys,
                    identity: signed_identity
                        .map(RawIdentity::load)
                        .transpose()?
                        .unwrap_or_default(),
                }
            }
            RawRequirement::SigstoreSigned {
                key_path,
                key_data,
                fulcio,
                rekor_public_key_path,
                rekor_public_key_data,
                signed_identity,
            } => {
                let identity = signed_identity
                    .map(RawIdentity::load)
                    .transpose()?
                    .unwrap_or_default();
                let data = |path: Option<String>, data: Option<String>, what: &str| {
                    Ok::<_, String>(match (path, data) {
                        (Some(p), None) => Some(read_key(&p)?),
                        (None, Some(d)) => Some(B64.decode(d.trim()).map_err(|e| {
                            format!("sigstoreSigned: {what}Data is not base64: {e}")
                        })?),
                        (None, None) => None,
                        _ => {
                            return Err(format!(
                                "sigstoreSigned: only one of {what}Path and {what}Data may be given"
                            ));
                        }
                    })
                };
                let key = data(key_path, key_data, "key")?;
                let rekor = data(
                    rekor_public_key_path,
                    rekor_public_key_data,
                    "rekorPublicKey",
                )?;
                match (key, fulcio) {
                    (Some(key), None) => Requirement::SigstoreSigned {
                        key: Some(
                            sigstore::PublicKey::from_bytes(&key)
                                .map_err(|e| format!("sigstoreSigned: {e}"))?,
                        ),
                        keyless: None,
                        identity,
                    },
                    (None, Some(f)) => {
                        let ca = data(f.ca_path, f.ca_data, "fulcio.ca")?.ok_or(
                            "sigstoreSigned: fulcio needs caPath or caData (the Fulcio CA certificates, PEM)",
                        )?;
                        let rekor = rekor.ok_or(
                            "sigstoreSigned: fulcio needs rekorPublicKeyPath or rekorPublicKeyData (keyless signatures are verified with their Rekor entry)",
                        )?;
                        let root = TrustedRoot::from_parts(&ca, &[rekor])
                            .map_err(|e| format!("sigstoreSigned: {e}"))?;
                        let rule = IdentityRule::new(
                            Some(&f.oidc_issuer),
                            None,
                            Some(&f.subject_email),
                            None,
                        )
                        .map_err(|e| format!("sigstoreSigned.fulcio: {e}"))?;
                        Requirement::SigstoreSigned {
                            key: None,
                            keyless: Some(std::sync::Arc::new(KeylessTrust {
                                root: std::sync::Arc::new(root),
                                identities: vec![rule],
                            })),
                            identity,
                        }
                    }
                    _ => {
                        return Err(
                            "sigstoreSigned: exactly one of keyPath, keyData and fulcio is required"
                                .into(),
                        );
                    }
                }
            }
        })
    }
}

fn load_list(
    list: Vec<RawRequirement>,
    path: &str,
    at: &str,
) -> Result<Vec<Requirement>, SignatureError> {
    if list.is_empty() {
        return Err(SignatureError::config(
            path,
            format!("{at}: empty list of requirements (use [{{\"type\":\"reject\"}}] to refuse)"),
        ));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.load()
                .map_err(|m| SignatureError::config(path, format!("{at}[{i}]: {m}")))
        })
        .collect()
}

/// Where skopeo looks for the policy when `--policy` is not given:
/// `$HOME/.config/containers/policy.json` if it exists, else
/// `/etc/containers/policy.json`.
pub fn default_path() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("HOME") {
        let user = Path::new(&home).join(".config/containers/policy.json");
        if user.exists() {
            return user;
        }
    }
    "/etc/containers/policy.json".into()
}

impl Policy {
    /// Load the policy from [`default_path`]; `None` when there is none
    /// (skopeo then refuses to run; the caller decides).
    pub fn load_default() -> Result<Option<Self>, SignatureError> {
        let p = default_path();
        if !p.exists() {
            return Ok(None);
        }
        Self::load(&p).map(Some)
    }

    /// Read and load a policy file.
    pub fn load(path: &Path) -> Result<Self, SignatureError> {
        let text = std::fs::read(path)
            .map_err(|e| SignatureError::config(path.display(), e.to_string()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parse policy JSON; `name` is used in messages.
    pub fn parse(name: &str, json: &[u8]) -> Result<Self, SignatureError> {
        let raw: RawPolicy = serde_json::from_slice(json)
            .map_err(|e| SignatureError::config(name, e.to_string()))?;
        let default = load_list(raw.default, name, "default")?;
        let mut transports = BTreeMap::new();
        for (t, scopes) in raw.transports {
            let mut out = BTreeMap::new();
            for (scope, list) in scopes {
                let at = format!("transports.{t}[{scope:?}]");
                out.insert(scope, load_list(list, name, &at)?);
            }
            transports.insert(t, out);
        }
        Ok(Policy {
            default,
            transports,
        })
    }

    /// A policy accepting anything (skopeo's `--insecure-policy`).
    pub fn insecure_accept_anything() -> Self {
        Policy {
            default: vec![Requirement::InsecureAcceptAnything],
            transports: BTreeMap::new(),
        }
    }

    /// The requirements for an image of `transport` whose scopes (most
    /// specific first) are `scopes`.
    pub fn requirements_for(&self, transport: &str, scopes: &[String]) -> &[Requirement] {
        if let Some(t) = self.transports.get(transport) {
            for s in scopes {
                if let Some(r) = t.get(s) {
                    return r;
                }
            }
            if let Some(r) = t.get("") {
                return r;
            }
        }
        &self.default
    }

    /// Judge a registry image known as `image`, whose manifest is exactly
    /// `manifest`, carrying `signatures`.
    pub fn evaluate(
        &self,
        image: &Reference,
        manifest: &[u8],
        signatures: &[Signature],
    ) -> Result<(), PolicyError> {
        let reqs = self.requirements_for("docker", &docker_scopes(image));
        check(reqs, &image.to_string(), Some(image), manifest, signatures)
    }

    /// The requirements that apply to `image` (any transport).
    pub fn requirements_for_image(&self, image: &dyn ImageReference) -> &[Requirement] {
        let transport = image.transport();
        let scopes = match (image.docker_reference(), transport) {
            (Some(r), "docker") => docker_scopes(&r),
            _ => path_scopes(transport, &image.to_string()),
        };
        self.requirements_for(transport, &scopes)
    }

    /// Whether judging `image` needs its signatures (false when every
    /// requirement is `insecureAcceptAnything`), so callers can skip reading them.
    pub fn needs_signatures(&self, image: &dyn ImageReference) -> bool {
        !self
            .requirements_for_image(image)
            .iter()
            .all(|r| matches!(r, Requirement::InsecureAcceptAnything))
    }

    /// Whether a requirement for `image` trusts keyless Sigstore
    /// signatures (`sigstoreSigned` with `fulcio`): then the Sigstore
    /// bundles attached to the image as OCI referrers are signatures too
    /// (read them with [`super::referrers::read_bundles`]).
    pub fn wants_bundles(&self, image: &dyn ImageReference) -> bool {
        self.requirements_for_image(image).iter().any(|r| {
            matches!(
                r,
                Requirement::SigstoreSigned {
                    keyless: Some(_),
                    ..
                }
            )
        })
    }

    /// Judge any transport's image (the copy engine's call, before writing).
    pub fn evaluate_image(
        &self,
        image: &dyn ImageReference,
        manifest: &[u8],
        signatures: &[Signature],
    ) -> Result<(), PolicyError> {
        let docker_ref = image.docker_reference();
        let reqs = self.requirements_for_image(image);
        check(
            reqs,
            &image.to_string(),
            docker_ref.as_ref(),
            manifest,
            signatures,
        )
    }
}

/// Scopes of a path-based reference (`dir:/a/b`, `oci:/a/b:tag`): the
/// reference, the path, then each parent directory.
fn path_scopes(transport: &str, display: &str) -> Vec<String> {
    let rest = display
        .strip_prefix(transport)
        .and_then(|r| r.strip_prefix(':'))
        .unwrap_or(display)
        .to_string();
    let mut out = vec![rest.clone()];
    let mut path = match transport {
        "dir" => rest,
        _ => match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => rest[..i].to_string(),
            _ => rest,
        },
    };
    if out[0] != path {
        out.push(path.clone());
    }
    while let Some(i) = path.rfind('/') {
        if i == 0 {
            break;
        }
        path.truncate(i);
        out.push(path.clone());
    }
    out
}

fn check(
    reqs: &[Requirement],
    image: &str,
    reference: Option<&Reference>,
    manifest: &[u8],
    signatures: &[Signature],
) -> Result<(), PolicyError> {
    let reject = |reason: String| PolicyError {
        image: image.to_string(),
        reason,
    };
    let digest = crate::digest::sha256(manifest);
    let subject = Subject {
        reference,
        manifest_digest: &digest,
        manifest: Some(manifest),
    };
    for req in reqs {
        let (keys, identity, want_sigstore) = match req {
            Requirement::InsecureAcceptAnything => continue,
            Requirement::Reject => {
                return Err(reject("the policy rejects this image".into()));
            }
            Requirement::SignedBy { keys, identity } => (
                TrustedKeys {
                    gpg: vec![keys.clone()],
                    sigstore: vec![],
                    primary_keys_only: true,
                    keyless: None,
                },
                identity,
                false,
            ),
            Requirement::SigstoreSigned {
                key,
                keyless,
                identity,
            } => (
                TrustedKeys {
                    gpg: vec![],
                    sigstore: key.iter().cloned().collect(),
                    primary_keys_only: true,
                    keyless: keyless.clone(),
                },
                identity,
                true,
            ),
        };
        let relevant: Vec<_> = signatures
            .iter()
            .filter(|s| matches!(s, Signature::Sigstore { .. }) == want_sigstore)
            .collect();
        if relevant.is_empty() {
            let kind = if want_sigstore {
                "sigstore"
            } else {
                "simple signing"
            };
            return Err(reject(format!(
                "a {kind} signature was required, but no {kind} signature exists"
            )));
        }
        let reports: Vec<_> = relevant
            .iter()
            .map(|s| verify::examine(s, &keys, &subject, Some(identity)))
            .collect();
        if !verify::any_verified(&reports) {
            // Prefer the reason of a signature a trusted key did make.
            let reason = reports
                .iter()
                .find(|r| !r.reason.starts_with("no signature signed by a trusted key"))
                .or(reports.first())
                .map(|r| r.reason.clone())
                .unwrap_or_default();
            return Err(reject(reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_choice_most_specific_first() {
        let p = Policy::parse(
            "p.json",
            br#"{"default":[{"type":"reject"}],
                 "transports":{"docker":{
                    "":[{"type":"insecureAcceptAnything"}],
                    "r.io/team":[{"type":"reject"}],
                    "r.io/team/app:v1":[{"type":"insecureAcceptAnything"}],
                    "*.corp":[{"type":"reject"}]}}}"#,
        )
        .unwrap();
        let m = b"{}";
        let ok = |s: &str| p.evaluate(&crate::reference::parse(s).unwrap(), m, &[]);
        assert!(ok("r.io/team/app:v1").is_ok());
        let e = ok("r.io/team/app:v2").unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.io/team/app:v2 rejected by policy: the policy rejects this image"
        );
        assert!(ok("r.io/other:v2").is_ok());
        assert!(ok("x.y.corp/a:1").is_err());
        assert!(matches!(
            p.requirements_for("dir", &["/x".into()]),
            [Requirement::Reject]
        ));
    }

    #[test]
    fn malformed_policies_are_clear() {
        let e = Policy::parse("p.json", b"{}").unwrap_err();
        assert!(e.to_string().contains("missing field `default`"), "{e}");
        let e = Policy::parse("p.json", br#"{"default":[]}"#).unwrap_err();
        assert!(e.to_string().contains("default: empty list"), "{e}");
        let e =
            Policy::parse("p.json", br#"{"default":[{"type":"acceptEverything"}]}"#).unwrap_err();
        assert!(
            e.to_string().contains("unknown variant `acceptEverything`"),
            "{e}"
        );
        let e = Policy::parse(
            "p.json",
            br#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/nonexistent/k.gpg"}]}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("p.json: default[0]: keyPath /nonexistent/k.gpg:"),
            "{e}"
        );
        let e = Policy::parse(
            "p.json",
            br#"{"default":[{"type":"signedBy","keyType":"X509Certificates","keyData":""}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unsupported keyType"), "{e}");
        let e = Policy::parse(
            "p.json",
            br#"{"default":[{"type":"sigstoreSigned","keyData":"AAAA"}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("ECDSA P-256"), "{e}");
        let e = Policy::parse(
            "p.json",
            br#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"a.io":[{"type":"signedBy","keyType":"GPGKeys","keyData":"AAAA","signedIdentity":{"type":"exactReference","dockerReference":"a.io/b"}}]}}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("transports.docker[\"a.io\"][0]"),
            "{e}"
        );
    }

    #[test]
    fn path_scopes_walk_parents() {
        assert_eq!(path_scopes("dir", "dir:/a/b/c"), ["/a/b/c", "/a/b", "/a"]);
        assert_eq!(path_scopes("oci", "oci:/a/b:t"), ["/a/b:t", "/a/b", "/a"]);
    }

    #[test]
    fn signed_by_without_signatures_is_rejected() {
        let p = Policy {
            default: vec![Requirement::SigstoreSigned {
                key: Some(sigstore::test_support::public_key(1)),
                keyless: None,
                identity: SignedIdentity::MatchRepository,
            }],
            transports: BTreeMap::new(),
        };
        let e = p
            .evaluate(&crate::reference::parse("a.io/b:1").unwrap(), b"{}", &[])
            .unwrap_err();
        assert!(e.reason.contains("no sigstore signature exists"), "{e}");
    }
}
