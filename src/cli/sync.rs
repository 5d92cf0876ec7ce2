//! `kubemirror sync -f FILE`: reconcile the `ImageMirror` / `ImageInspection`
//! documents of a file once, without a cluster, with the same reconcile code
//! the controller runs, and print the documents back with `status` filled in.
//!
//! - Documents are reconciled in file order, so an `ImageInspection` after an
//!   `ImageMirror` sees what the mirror wrote.
//! - `v1 Secret` documents in the file serve the `*SecretRef`s of the other
//!   documents (same namespace); they are not printed back (they hold
//!   credentials).
//! - Registry credentials not given by a Secret come from `--authfile`, else
//!   `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//!   `~/.docker/config.json` (skopeo's order).
//! - A document that already has a `status` (the output of an earlier run)
//!   keeps its condition transition times.
//! - Exit status 1 when any reconciled document is not `Ready`.
//! - `--dry-run` prints, per `ImageMirror`, the tags it would copy and the
//!   prune plan, and writes nothing (see `sync_dry_run.rs`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine;
use serde::de::DeserializeOwned;
use serde_yaml::Value;
use tracing::Instrument;

use super::{CliResult, GlobalArgs};

#[path = "sync_dry_run.rs"]
mod dry_run;
use crate::api::v1alpha1::{CONDITION_READY, Condition, ImageInspection, ImageMirror, Time};
use crate::credentials::AuthFiles;
use crate::image::SystemContext;
use crate::reconcile::{self, Env, SecretData, StaticSecrets, status};

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// File with ImageMirror / ImageInspection documents (YAML, `-` for stdin)
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Path of the authentication file (containers-auth.json(5) / docker config.json)
    #[arg(long, env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// Print what each ImageMirror would copy and prune; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: SyncArgs, g: &GlobalArgs) -> CliResult {
    let text = read_input(&args.file)?;
    let docs = parse_documents(&text).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let mut base = base_context(args.authfile.as_deref())?;
    let (storage, policy) = g.resource_signatures()?;
    base.signature_storage = storage.map(|d| d as Arc<dyn crate::image::SignatureStorageConfig>);
    base.registry = g.registry.clone();
    let env = Env {
        base,
        // A user's own machine: every transport, as `copy` (see README).
        local_transports: reconcile::LocalTransports::Anywhere,
        dry_run: args.dry_run,
        apply: reconcile::ApplyOptions {
            policy,
            ..Default::default()
        },
    };
    let result = sync_documents(docs, &env).await?;
    print!("{}", result.yaml);
    for line in &result.not_ready {
        eprintln!("{line}");
    }
    Ok(if result.not_ready.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What one `sync` run produced.
#[derive(Debug, Default)]
pub struct SyncResult {
    /// The documents (Secrets left out), with status, as one YAML stream.
    pub yaml: String,
    /// One line per reconciled document that is not Ready: `kind/name: reason: message`.
    pub not_ready: Vec<String>,
}

fn read_input(path: &Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("reading stdin: {e}"))?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
    }
}

/// Split a YAML stream into its (non-empty) documents.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for (i, d) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(d).map_err(|e| format!("document {}: {e}", i + 1))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// Credentials for sides without a Secret: the auth file chain.
fn base_context(authfile: Option<&Path>) -> Result<SystemContext, String> {
    let files = AuthFiles::load(authfile).map_err(|e| e.to_string())?;
    Ok(SystemContext {
        credential_store: Some(Arc::new(files)),
        ..Default::default()
    })
}

/// Reconcile every document once, in order.
pub async fn sync_documents(docs: Vec<Value>, env: &Env) -> Result<SyncResult, String> {
    // Secrets first, per namespace.
    let mut secrets: BTreeMap<String, StaticSecrets> = BTreeMap::new();
    for d in &docs {
        if kind_of(d) == ("v1", "Secret") {
            let (ns, name, data) = secret_of(d)?;
            secrets
                .entry(ns.clone())
                .or_insert_with(|| StaticSecrets {
                    namespace: ns,
                    ..Default::default()
                })
                .secrets
                .insert(name, data);
        }
    }
    let mut out = SyncResult::default();
    for (i, mut d) in docs.into_iter().enumerate() {
        let (api_version, kind) = kind_of(&d);
        let (api_version, kind) = (api_version.to_string(), kind.to_string());
        let ns = namespace_of(&d);
        let secrets = secrets.get(&ns).cloned().unwrap_or(StaticSecrets {
            namespace: ns,
            ..Default::default()
        });
        let now = Time(jiff::Timestamp::now());
        let conditions = match (api_version.as_str(), kind.as_str()) {
            ("v1", "Secret") => continue,
            ("kubemirror.dev/v1alpha1", "ImageMirror") => {
                let m: ImageMirror = typed(&d, i)?;
                let id = format!(
                    "{}/{}",
                    secrets.namespace,
                    m.metadata.name.as_deref().unwrap_or_default()
                );
                if m.spec.suspend == Some(true) {
                    let mut st = m.status.clone().unwrap_or_default();
                    status::suspended(
                        &mut st.conditions,
                        Some(m.metadata.generation.unwrap_or(1)),
                        &now,
                    );
                    set_status(&mut d, &st)?;
                    None
                } else if env.dry_run {
                    let input = reconcile::MirrorInput {
                        id: &id,
                        status: m.status.as_ref(),
                    };
                    let outcome = reconcile::reconcile_mirror(&m.spec, input, &secrets, env).await;
                    out.yaml.push_str(&dry_run::plan_text(&id, &outcome));
                    if outcome.is_err() {
                        out.not_ready
                            .push(format!("imagemirror/{id}: the plan failed"));
                    }
                    continue;
                } else {
                    let input = reconcile::MirrorInput {
                        id: &id,
                        status: m.status.as_ref(),
                    };
                    let name = m.metadata.name.as_deref().unwrap_or_default();
                    let span = reconcile::span(&kind, &secrets.namespace, name);
                    let outcome = reconcile::reconcile_mirror(&m.spec, input, &secrets, env)
                        .instrument(span)
                        .await;
                    let st = status::mirror_status(
                        m.status.as_ref(),
                        Some(m.metadata.generation.unwrap_or(1)),
                        &outcome,
                        &m.spec.destination.repository,
                        &now,
                    );
                    set_status(&mut d, &st)?;
                    Some(st.conditions)
                }
            }
            ("kubemirror.dev/v1alpha1", "ImageInspection") => {
                let m: ImageInspection = typed(&d, i)?;
                if env.dry_run {
                    continue;
                }
                if m.spec.suspend == Some(true) {
                    None
                } else {
                    let name = m.metadata.name.as_deref().unwrap_or_default();
                    let span = reconcile::span(&kind, &secrets.namespace, name);
                    let outcome = reconcile::reconcile_inspection(&m.spec, &secrets, env)
                        .instrument(span)
                        .await;
                    let st = status::inspection_status(
                        m.status.as_ref(),
                        Some(m.metadata.generation.unwrap_or(1)),
                        &outcome,
                        &now,
                    );
                    set_status(&mut d, &st)?;
                    Some(st.conditions)
                }
            }
            (a, k) => {
                return Err(format!(
                    "document {}: unsupported kind {k:?} (apiVersion {a:?}): want kubemirror.dev/v1alpha1 ImageMirror or ImageInspection, or v1 Secret",
                    i + 1
                ));
            }
        };
        if let Some(conds) = conditions
            && let Some(line) = not_ready_line(&kind, &d, &conds)
        {
            out.not_ready.push(line);
        }
        out.yaml.push_str("---\n");
        out.yaml
            .push_str(&serde_yaml::to_string(&d).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn not_ready_line(kind: &str, d: &Value, conds: &[Condition]) -> Option<String> {
    let ready = status::condition(conds, CONDITION_READY);
    if ready.is_some_and(|c| c.status == "True") {
        return None;
    }
    let name = d["metadata"]["name"].as_str().unwrap_or("");
    let (reason, msg) = ready
        .map(|c| (c.reason.as_str(), c.message.as_str()))
        .unwrap_or(("Unknown", "no Ready condition"));
    Some(format!("{}/{name}: {reason}: {msg}", kind.to_lowercase()))
}

fn kind_of(d: &Value) -> (&str, &str) {
    (
        d["apiVersion"].as_str().unwrap_or_default(),
        d["kind"].as_str().unwrap_or_default(),
    )
}

fn namespace_of(d: &Value) -> String {
    d["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string()
}

fn typed<T: DeserializeOwned>(d: &Value, i: usize) -> Result<T, String> {
    serde_yaml::from_value(d.clone()).map_err(|e| {
        let name = d["metadata"]["name"].as_str().unwrap_or("?");
        format!("document {} ({name}): {e}", i + 1)
    })
}

fn set_status<S: serde::Serialize>(d: &mut Value, st: &S) -> Result<(), String> {
    let v = serde_yaml::to_value(st).map_err(|e| e.to_string())?;
    if let Value::Mapping(m) = d {
        m.insert(Value::from("status"), v);
    }
    Ok(())
}

/// A Secret document's namespace, name and data (`data` base64, `stringData` plain).
fn secret_of(d: &Value) -> Result<(String, String, SecretData), String> {
    let name = d["metadata"]["name"]
        .as_str()
        .ok_or("a Secret document without metadata.name")?
        .to_string();
    let mut data = BTreeMap::new();
    if let Value::Mapping(m) = &d["data"] {
        for (k, v) in m {
            let k = k.as_str().unwrap_or_default().to_string();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default().trim())
                .map_err(|_| format!("Secret {name:?}: data.{k} is not base64"))?;
            data.insert(k, bytes);
        }
    }
    if let Value::Mapping(m) = &d["stringData"] {
        for (k, v) in m {
            let k = k.as_str().unwrap_or_default().to_string();
            data.insert(k, v.as_str().unwrap_or_default().as_bytes().to_vec());
        }
    }
    Ok((
        namespace_of(d),
        name,
        SecretData {
            type_: d["type"].as_str().map(str::to_string),
            data,
        },
    ))
}
