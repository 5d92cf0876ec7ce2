//! Resolve: turn the references of a spec (repositories, Secrets) into what
//! `apply` needs: parsed image references and one [`SystemContext`] per side
//! with credentials, CAs and signature storage. The driver supplies Secrets
//! through [`SecretSource`] (the controller reads the API, `sync` reads the
//! Secret documents of its file), so this step never touches a cluster.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Error, LocalTransports};
use crate::api::v1alpha1::{
    ImageInspectionSpec, ImageMirrorSpec, KeyType, RepositorySpec, SecretKeyRef, SecretRef,
    TrustedRootKind, VerificationSpec,
};
use crate::credentials::AuthFile;
use crate::image::{ImageReference, SystemContext};
use crate::signature::keyless::{IdentityRule, KeylessTrust, TrustedRoot};
use crate::signature::registries_d::normalise_url;
use crate::signature::{ResourceStorage, TrustedKey, TrustedKeys};
use crate::transport;

/// The Secret type that holds registry credentials.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// Its data key.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// The data key of the legacy `kubernetes.io/dockercfg` type.
pub const DOCKER_CFG_KEY: &str = ".dockercfg";

/// A Secret as the reconcilers see it. `Debug` never shows the data.
#[derive(Clone, Default)]
pub struct SecretData {
    pub type_: Option<String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretData")
            .field("type_", &self.type_)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Where Secrets of the object's namespace come from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The namespace Secrets are looked up in (for messages).
    fn namespace(&self) -> &str;
    /// The Secret `name`, or `None` when it does not exist. `Err` is for
    /// failures to ask (the API server is down), not for a missing Secret.
    async fn get(&self, name: &str) -> Result<Option<SecretData>, String>;
    /// The data (`data` and `binaryData`) of the ConfigMap `name` in the
    /// same namespace, or `None` when it does not exist; `Err` as for
    /// [`Self::get`]. Sources without ConfigMaps (`sync`'s documents) have none.
    async fn config_map(&self, _name: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        Ok(None)
    }
}

/// Secrets held in memory (`sync`'s Secret documents, tests).
#[derive(Debug, Default, Clone)]
pub struct StaticSecrets {
    pub namespace: String,
    pub secrets: BTreeMap<String, SecretData>,
}

#[async_trait]
impl SecretSource for StaticSecrets {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    async fn get(&self, name: &str) -> Result<Option<SecretData>, String> {
        Ok(self.secrets.get(name).cloned())
    }
}

/// One side of a copy, ready to open.
#[derive(Debug)]
pub struct Endpoint {
    pub reference: Box<dyn ImageReference>,
    pub ctx: SystemContext,
}

/// An `ImageMirror` spec, resolved.
#[derive(Debug)]
pub struct ResolvedMirror {
    pub source: Endpoint,
    pub destination: Endpoint,
    /// `spec.verification` keys; empty without verification.
    pub keys: TrustedKeys,
}

/// An `ImageInspection` spec, resolved.
#[derive(Debug)]
pub struct ResolvedInspection {
    pub image: Endpoint,
    /// `spec.verification` keys; empty without verification.
    pub keys: TrustedKeys,
}

/// Resolve both sides of a mirror. `base` carries what the driver adds to
/// every side (an auth-file store, a request observer, registries.d).
pub async fn resolve_mirror(
    spec: &ImageMirrorSpec,
    secrets: &dyn SecretSource,
    base: &SystemContext,
    local: &LocalTransports,
) -> Result<ResolvedMirror, Error> {
    let bare = |r: &str| r.trim().trim_start_matches("docker://").to_string();
    if bare(&spec.source.repository) == bare(&spec.destination.repository) {
        return Err(Error::Spec(
            "spec.destination.repository: must differ from spec.source.repository".into(),
        ));
    }
    local.check("spec.source.repository", spec.source.repository.trim())?;
    local.check(
        "spec.destination.repository",
        spec.destination.repository.trim(),
    )?;
    let source = resolve_side(&spec.source, "spec.source", secrets, base, false).await?;
    let destination =
        resolve_side(&spec.destination, "spec.destination", secrets, base, true).await?;
    let keys = resolve_keys(spec.verification.as_ref(), secrets).await?;
    Ok(ResolvedMirror {
        source,
        destination,
        keys,
    })
}

/// Resolve an inspection's image.
pub async fn resolve_inspection(
    spec: &ImageInspectionSpec,
    secrets: &dyn SecretSource,
    base: &SystemContext,
    local: &LocalTransports,
) -> Result<ResolvedInspection, Error> {
    local.check("spec.image", spec.image.trim())?;
    let ctx = side_context(
        base,
        spec.tls_verify,
        spec.credentials_secret_ref.as_ref(),
        spec.ca_secret_ref.as_ref(),
        spec.signature_lookaside.as_deref(),
        false,
        "spec",
        secrets,
    )
    .await?;
    let reference = transport::parse_repository(spec.image.trim())
        .map_err(|e| Error::Spec(format!("spec.image: {e}")))?;
    let keys = resolve_keys(spec.verification.as_ref(), secrets).await?;
    Ok(ResolvedInspection {
        image: Endpoint { reference, ctx },
        keys,
    })
}

async fn resolve_side(
    spec: &RepositorySpec,
    field: &str,
    secrets: &dyn SecretSource,
    base: &SystemContext,
    write: bool,
) -> Result<Endpoint, Error> {
    let repo = spec.repository.trim();
    if names_tag_or_digest(repo) {
        return Err(Error::Spec(format!(
            "{field}.repository: {repo:?} names a tag or digest; give the repository alone and choose tags with spec.tags"
        )));
    }
    let ctx = side_context(
        base,
        spec.tls_verify,
        spec.credentials_secret_ref.as_ref(),
        spec.ca_secret_ref.as_ref(),
        spec.signature_lookaside.as_deref(),
        write,
        field,
        secrets,
    )
    .await?;
    let reference = transport::parse_repository(repo)
        .map_err(|e| Error::Spec(format!("{field}.repository: {e}")))?;
    Ok(Endpoint { reference, ctx })
}

/// Whether a docker repository string carries `:tag` or `@digest`.
fn names_tag_or_digest(repo: &str) -> bool {
    let r = repo.strip_prefix("docker://").unwrap_or(repo);
    if r.contains('@') {
        return true;
    }
    // A colon after the last slash is a tag (one before it is a port).
    let last = r.rsplit('/').next().unwrap_or(r);
    r.contains('/') && last.contains(':')
}

#[allow(clippy::too_many_arguments)]
async fn side_context(
    base: &SystemContext,
    tls_verify: Option<bool>,
    credentials: Option<&SecretRef>,
    ca: Option<&SecretKeyRef>,
    lookaside: Option<&str>,
    write: bool,
    field: &str,
    secrets: &dyn SecretSource,
) -> Result<SystemContext, Error> {
    let mut ctx = base.clone();
    if tls_verify.is_some() {
        ctx.tls_verify = tls_verify;
    }
    if let Some(r) = credentials {
        let field = format!("{field}.credentialsSecretRef");
        let secret = fetch(secrets, &field, &r.name).await?;
        let bytes = secret
            .data
            .get(DOCKER_CONFIG_JSON_KEY)
            .or_else(|| secret.data.get(DOCKER_CFG_KEY))
            .ok_or_else(|| Error::InvalidSecret {
                field: field.clone(),
                name: r.name.clone(),
                message: format!(
                    "want a {DOCKER_CONFIG_JSON_TYPE} Secret with a {DOCKER_CONFIG_JSON_KEY} key (kubectl create secret docker-registry)"
                ),
            })?;
        // Errors name a position in the document, never its content.
        let store = AuthFile::from_dockerconfigjson(bytes).map_err(|e| Error::InvalidSecret {
            field,
            name: r.name.clone(),
            message: e.to_string(),
        })?;
        ctx.credentials = None;
        ctx.credential_store = Some(Arc::new(store));
    }
    if let Some(r) = ca {
        let pem = fetch_key(secrets, &format!("{field}.caSecretRef"), r).await?;
        ctx.extra_ca_pem.push(pem);
    }
    let lookaside = lookaside
        .map(|u| {
            normalise_url(u.trim())
                .map_err(|m| Error::Spec(format!("{field}.signatureLookaside: {m}")))
        })
        .transpose()?;
    ctx.signature_storage = Some(Arc::new(ResourceStorage {
        base: base.signature_storage.clone(),
        lookaside,
        write,
    }));
    Ok(ctx)
}

async fn resolve_keys(
    v: Option<&VerificationSpec>,
    secrets: &dyn SecretSource,
) -> Result<TrustedKeys, Error> {
    let mut out = TrustedKeys::default();
    let keys = v.map(|v| v.keys.as_slice()).unwrap_or_default();
    for (i, k) in keys.iter().enumerate() {
        let field = format!("spec.verification.keys[{i}].secretRef");
        let data = fetch_key(secrets, &field, &k.secret_ref).await?;
        let type_ = match k.type_ {
            KeyType::Sigstore => "Sigstore",
            KeyType::Gpg => "GPG",
        };
        let key = TrustedKey::parse(type_, &data).map_err(|e| Error::InvalidSecret {
            field,
            name: k.secret_ref.name.clone(),
            message: format!(
                "key {:?} is not a {type_} public key: {e}",
                k.secret_ref.key
            ),
        })?;
        out.push(key);
    }
    if let Some(v) = v {
        out.keyless = resolve_keyless(v, secrets).await?.map(Arc::new);
        if v.keys.is_empty() && v.keyless.is_empty() {
            return Err(Error::Spec(
                "spec.verification: list keys, keyless identities, or both".into(),
            ));
        }
    }
    Ok(out)
}

/// `spec.verification.keyless` and its trust root (`trustedRootRef`, else
/// Sigstore's public-good root, embedded).
async fn resolve_keyless(
    v: &VerificationSpec,
    secrets: &dyn SecretSource,
) -> Result<Option<KeylessTrust>, Error> {
    if v.keyless.is_empty() {
        if v.trusted_root_ref.is_some() {
            return Err(Error::Spec(
                "spec.verification.trustedRootRef: only used with spec.verification.keyless (list the identities to trust)".into(),
            ));
        }
        return Ok(None);
    }
    let mut identities = Vec::new();
    for (i, k) in v.keyless.iter().enumerate() {
        let rule = IdentityRule::new(
            k.issuer.as_deref(),
            k.issuer_reg_exp.as_deref(),
            k.subject.as_deref(),
            k.subject_reg_exp.as_deref(),
        )
        .map_err(|m| Error::Spec(format!("spec.verification.keyless[{i}]: {m}")))?;
        identities.push(rule);
    }
    let root = match &v.trusted_root_ref {
        None => TrustedRoot::public_good().clone(),
        Some(r) => {
            let field = "spec.verification.trustedRootRef".to_string();
            let data = match r.kind {
                TrustedRootKind::Secret => {
                    fetch_key(
                        secrets,
                        &field,
                        &SecretKeyRef {
                            name: r.name.clone(),
                            key: r.key.clone(),
                        },
                    )
                    .await?
                }
                TrustedRootKind::ConfigMap => {
                    fetch_config_map_key(secrets, &field, &r.name, &r.key).await?
                }
            };
            let message = |e| format!("key {:?} is not a Sigstore trusted_root.json: {e}", r.key);
            TrustedRoot::from_json(&data).map_err(|e| match r.kind {
                TrustedRootKind::Secret => Error::InvalidSecret {
                    field: field.clone(),
                    name: r.name.clone(),
                    message: message(e),
                },
                TrustedRootKind::ConfigMap => Error::InvalidConfigMap {
                    field: field.clone(),
                    name: r.name.clone(),
                    message: message(e),
                },
            })?
        }
    };
    Ok(Some(KeylessTrust {
        root: Arc::new(root),
        identities,
    }))
}

async fn fetch(secrets: &dyn SecretSource, field: &str, name: &str) -> Result<SecretData, Error> {
    match secrets.get(name).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(Error::SecretNotFound {
            field: field.to_string(),
            name: name.to_string(),
            namespace: secrets.namespace().to_string(),
        }),
        Err(message) => Err(Error::SecretLookup {
            name: name.to_string(),
            message,
        }),
    }
}

/// The key `key` of the ConfigMap `name` (a `trusted_root.json` is public:
/// it may be held in a ConfigMap).
async fn fetch_config_map_key(
    secrets: &dyn SecretSource,
    field: &str,
    name: &str,
    key: &str,
) -> Result<Vec<u8>, Error> {
    let mut data = match secrets.config_map(name).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Err(Error::ConfigMapNotFound {
                field: field.to_string(),
                name: name.to_string(),
                namespace: secrets.namespace().to_string(),
            });
        }
        Err(message) => {
            return Err(Error::ConfigMapLookup {
                name: name.to_string(),
                message,
            });
        }
    };
    data.remove(key).ok_or_else(|| Error::InvalidConfigMap {
        field: field.to_string(),
        name: name.to_string(),
        message: format!(
            "no key {key:?} (keys: {})",
            data.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    })
}

async fn fetch_key(
    secrets: &dyn SecretSource,
    field: &str,
    r: &SecretKeyRef,
) -> Result<Vec<u8>, Error> {
    let mut s = fetch(secrets, field, &r.name).await?;
    s.data.remove(&r.key).ok_or_else(|| Error::InvalidSecret {
        field: field.to_string(),
        name: r.name.clone(),
        message: format!(
            "no key {:?} (keys: {})",
            r.key,
            s.data.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha1::TagSelector;

    fn spec(src: &str, dst: &str) -> ImageMirrorSpec {
        ImageMirrorSpec {
            source: RepositorySpec {
                repository: src.into(),
                credentials_secret_ref: Some(SecretRef {
                    name: "pull".into(),
                }),
                tls_verify: Some(false),
                ca_secret_ref: None,
                signature_lookaside: None,
            },
            destination: RepositorySpec {
                repository: dst.into(),
                credentials_secret_ref: None,
                tls_verify: None,
                ca_secret_ref: None,
                signature_lookaside: None,
            },
            tags: TagSelector {
                names: Some(vec!["v1".into()]),
                ..Default::default()
            },
            platforms: vec![],
            signatures: None,
            verification: None,
            interval: None,
            suspend: None,
            prune: None,
            prune_limit: None,
            drift_policy: None,
            deletion_policy: None,
        }
    }

    fn secrets(with_pull: bool) -> StaticSecrets {
        let mut s = StaticSecrets {
            namespace: "team".into(),
            ..Default::default()
        };
        if with_pull {
            s.secrets.insert(
                "pull".into(),
                SecretData {
                    type_: Some(DOCKER_CONFIG_JSON_TYPE.into()),
                    data: [(
                        DOCKER_CONFIG_JSON_KEY.to_string(),
                        br#"{"auths":{"reg.example:5000":{"auth":"dTpw"}}}"#.to_vec(),
                    )]
                    .into(),
                },
            );
        }
        s
    }

    #[tokio::test]
    async fn missing_secret_names_field_secret_and_namespace() {
        let e = resolve_mirror(
            &spec("reg.example:5000/a", "reg.example:5000/b"),
            &secrets(false),
            &Default::default(),
            &Default::default(),
        )
        .await
        .unwrap_err();
        assert!(e.is_spec_error());
        assert_eq!(e.reason(), "SecretNotFound");
        let m = e.to_string();
        assert!(
            m.contains("\"pull\"")
                && m.contains("spec.source.credentialsSecretRef")
                && m.contains("\"team\""),
            "{m}"
        );
    }

    #[tokio::test]
    async fn credentials_come_from_the_secret() {
        let ctx = side_context(
            &SystemContext::default(),
            Some(false),
            Some(&SecretRef {
                name: "pull".into(),
            }),
            None,
            None,
            false,
            "spec.source",
            &secrets(true),
        )
        .await
        .unwrap();
        let store = ctx.credential_store.as_ref().unwrap();
        let auth = store.lookup("reg.example:5000").unwrap().unwrap();
        assert!(format!("{auth:?}").contains("<redacted>"));
        assert_eq!(ctx.tls_verify, Some(false));
        assert!(store.lookup("other.example").unwrap().is_none());
    }

    #[tokio::test]
    async fn bad_repositories_are_spec_errors() {
        for (src, what) in [
            ("reg.example:5000/a:v1", "names a tag"),
            ("reg.example/a@sha256:00", "names a tag"),
            ("docker://reg.example:5000/b", "must differ"),
        ] {
            let e = resolve_mirror(
                &spec(src, "reg.example:5000/b"),
                &secrets(true),
                &Default::default(),
                &Default::default(),
            )
            .await
            .unwrap_err();
            assert!(e.is_spec_error(), "{e}");
            assert!(e.to_string().contains(what), "{src}: {e}");
        }
        assert!(!names_tag_or_digest("reg.example:5000/a"));
        assert!(!names_tag_or_digest("alpine"));
        assert!(names_tag_or_digest("docker://reg/a:v1"));
    }
}
