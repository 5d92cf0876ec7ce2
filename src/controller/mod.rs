//! The Kubernetes controller: `kube::runtime::Controller`s for `ImageMirror`
//! and `ImageInspection` driving the cluster-agnostic reconcilers, plus the
//! HTTP server (`/metrics`, `/healthz`, `/readyz`) and optional leader
//! election on a Lease. [`run`] joins them and returns on shutdown.
//!
//! Per object: Secrets (and `trustedRootRef` ConfigMaps) are read by name
//! from its namespace (they are watched by metadata only, so the data of
//! one no object names never reaches the controller; a change to one it
//! names re-triggers it), status is written by server-side apply of
//! `{apiVersion, kind, status}` under [`FIELD_MANAGER`] and only when it
//! changed beyond timestamps, requeue follows `spec.interval`, and
//! `error_policy` follows the error's kind: spec errors wait for a change,
//! 429s wait for `Retry-After`, transient errors back off per object.

mod cache;
mod context;
mod finalizer;
mod guard;
mod http;
mod inspection;
pub mod leader;
mod memory;
pub mod metrics;
mod mirror;
mod recorder;
mod secrets;
pub mod shard;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use context::{Context, FIELD_MANAGER};
pub use metrics::Metrics;

use crate::api::v1alpha1::{ImageInspection, ImageMirror};
use crate::reconcile::{self, ErrorKind};
use secrets::ApiSecrets;

/// The defaults of the `kubemirror controller` flags, written once: the
/// flags' `default_value`s and [`Config::default`] both name these (and a
/// test in `cli::controller` checks that the flags parse to `Config::default()`).
pub mod defaults {
    pub const METRICS_ADDR: &str = "0.0.0.0:8080";
    pub const HEALTH_ADDR: &str = "0.0.0.0:8081";
    pub const LEASE_NAME: &str = "kubemirror-controller";
    /// Reconciles at once, per kind.
    pub const CONCURRENCY: u16 = 4;
    /// Blobs copied at once per image, and the most transfers at once per
    /// registry host over every copy of the controller.
    pub const JOBS: usize = 4;
    pub const MAX_TAGS: usize = crate::image::DEFAULT_MAX_TAGS;
}

/// How the controller runs (the `kubemirror controller` flags).
#[derive(Debug, Clone)]
pub struct Config {
    pub metrics_addr: SocketAddr,
    pub health_addr: SocketAddr,
    pub leader_elect: bool,
    /// Lease name and namespace (default: the client's namespace).
    pub lease_name: String,
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease, in Events and in the registry
    /// `User-Agent` (default: `$POD_NAME` or hostname, plus a random suffix).
    pub identity: Option<String>,
    /// Lease duration, renew deadline and retry period.
    pub lease_timing: leader::Timing,
    /// Watch one namespace only.
    pub namespace: Option<String>,
    pub concurrency: u16,
    /// Blobs copied at once per image (`--jobs`); also the ceiling of each
    /// registry host's window, shared by every copy of this controller.
    pub jobs: usize,
    /// Where resources may use local transports (default: nowhere).
    pub local_transports: reconcile::LocalTransports,
    /// Tags read at most from one registry tag listing.
    pub max_tags: usize,
    /// `--registries.d`: where simple signatures of images live when an
    /// object names no `signatureLookaside` (sigstore attachments are read
    /// and written in any case).
    pub signature_storage: Option<Arc<crate::signature::RegistriesD>>,
    /// `--policy`: a trust policy every `ImageMirror` copy must satisfy
    /// besides its own `spec.verification`.
    pub policy: Option<Arc<crate::signature::Policy>>,
    /// `--shards`: active-active replicas, each reconciling the shards whose
    /// Leases it holds (named after `lease_name`, timed by `lease_timing`).
    /// `None`: one replica reconciles everything (with or without `leader_elect`).
    pub sharding: Option<shard::ShardConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            metrics_addr: defaults::METRICS_ADDR.parse().expect("valid"),
            health_addr: defaults::HEALTH_ADDR.parse().expect("valid"),
            leader_elect: false,
            lease_name: defaults::LEASE_NAME.into(),
            lease_namespace: None,
            identity: None,
            lease_timing: leader::Timing::default(),
            namespace: None,
            concurrency: defaults::CONCURRENCY,
            jobs: defaults::JOBS,
            local_transports: Default::default(),
            max_tags: defaults::MAX_TAGS,
            signature_storage: None,
            policy: None,
            sharding: None,
        }
    }
}

/// A failed reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reconcile(#[from] reconcile::Error),
    #[error("writing status of {object}: {source}")]
    Status {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0} has no namespace")]
    NoNamespace(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Reconcile(e) => e.kind(),
            Error::Status { .. } => ErrorKind::Transient,
            Error::NoNamespace(_) => ErrorKind::Spec,
        }
    }
}

/// Run until `shutdown` is cancelled (or, with leader election, leadership is lost).
pub async fn run(
    client: Client,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let metrics = Arc::new(Metrics::new());
    // One registry context for every reconcile of this controller (and only
    // this one): sessions, 429 cool-off and blob windows per registry host.
    let registry = crate::image::RegistryContext::new();
    let ready = Arc::new(AtomicBool::new(false));
    let http = http::serve(
        config.metrics_addr,
        config.health_addr,
        metrics.clone(),
        ready.clone(),
        shutdown.clone(),
    );
    let identity = config
        .identity
        .clone()
        .unwrap_or_else(leader::default_identity);
    let work = async {
        let result = if let Some(sharding) = &config.sharding {
            let shards = shard::Shards::new(sharding.shards, metrics.clone());
            let namespace = config
                .lease_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_string());
            ready.store(true, Ordering::Relaxed);
            shard::leases::run_sharded(
                Api::namespaced(client.clone(), &namespace),
                config.lease_name.clone(),
                identity.clone(),
                config.lease_timing,
                shards.clone(),
                &shutdown,
                |stop| {
                    controllers(
                        client.clone(),
                        &config,
                        &identity,
                        metrics.clone(),
                        Some(shards),
                        registry.clone(),
                        stop,
                    )
                },
            )
            .await
        } else if config.leader_elect {
            leader::run_as_leader(&client, &config, &identity, &shutdown, &ready, |stop| {
                controllers(
                    client.clone(),
                    &config,
                    &identity,
                    metrics.clone(),
                    None,
                    registry.clone(),
                    stop,
                )
            })
            .await
        } else {
            ready.store(true, Ordering::Relaxed);
            controllers(
                client.clone(),
                &config,
                &identity,
                metrics.clone(),
                None,
                registry.clone(),
                shutdown.clone(),
            )
            .await;
            Ok(())
        };
        // Whatever ended the controllers ends the HTTP server too.
        shutdown.cancel();
        result
    };
    let (http_result, work_result, ()) =
        tokio::join!(http, work, memory::trim_until(shutdown.clone()));
    work_result?;
    http_result.map_err(|e| format!("HTTP server: {e}"))?;
    Ok(())
}

/// Both controllers, until `shutdown` (graceful: in-flight reconciles finish).
/// Dropping the future drops in-flight reconciles: their copies stop before
/// their next write and never tag an incomplete image. With `shards`, each
/// watches and reconciles only the shards held (and labels unlabelled objects).
async fn controllers(
    client: Client,
    config: &Config,
    identity: &str,
    metrics: Arc<Metrics>,
    shards: Option<Arc<shard::Shards>>,
    registry: Arc<crate::image::RegistryContext>,
    shutdown: CancellationToken,
) {
    let reporter = Reporter {
        controller: "kubemirror".into(),
        instance: Some(identity.to_string()),
    };
    let env = reconcile::Env {
        base: crate::image::SystemContext {
            registry,
            observer: Some(Arc::new(metrics::MetricsObserver(metrics.clone()))),
            fail_fast_when_rate_limited: true,
            user_agent: Some(format!(
                "kubemirror/{} (controller {identity})",
                env!("CARGO_PKG_VERSION")
            )),
            tag_listing: crate::image::TagListing {
                max_tags: config.max_tags,
                keep: None,
            },
            signature_storage: config
                .signature_storage
                .clone()
                .map(|d| d as Arc<dyn crate::image::SignatureStorageConfig>),
            ..Default::default()
        },
        local_transports: config.local_transports.clone(),
        dry_run: false,
        apply: reconcile::ApplyOptions {
            jobs: config.jobs.max(1),
            policy: config.policy.clone(),
            ..Default::default()
        },
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        recorder::Recorder::new(client.clone(), reporter),
        metrics,
        env,
    ));
    let cfg = controller::Config::default().concurrency(config.concurrency);
    let ns = config.namespace.as_deref();

    let mirrors = build(
        api::<ImageMirror>(&client, ns),
        Named::new(&client, ns),
        cfg.clone(),
        shards.clone(),
        shutdown.clone(),
    )
    .run(
        {
            let shards = shards.clone();
            move |o, c| gated(shards.clone(), o, c, mirror::reconcile)
        },
        error_policy,
        ctx.clone(),
    )
    .for_each(log_result);
    let inspections = build(
        api::<ImageInspection>(&client, ns),
        Named::new(&client, ns),
        cfg,
        shards.clone(),
        shutdown.clone(),
    )
    .run(
        {
            let shards = shards.clone();
            move |o, c| gated(shards.clone(), o, c, inspection::reconcile)
        },
        error_policy,
        ctx,
    )
    .for_each(log_result);
    let labelling = async {
        if let Some(shards) = &shards {
            tokio::join!(
                shard::watch::label_unlabelled(
                    api::<PartialObjectMeta<ImageMirror>>(&client, ns),
                    client.clone(),
                    shards.clone(),
                    FIELD_MANAGER,
                    shutdown.clone(),
                ),
                shard::watch::label_unlabelled(
                    api::<PartialObjectMeta<ImageInspection>>(&client, ns),
                    client.clone(),
                    shards.clone(),
                    FIELD_MANAGER,
                    shutdown.clone(),
                ),
            );
        }
    };
    tracing::info!(
        namespace = ns.unwrap_or("(all)"),
        sharded = shards.is_some(),
        "controllers started"
    );
    tokio::join!(mirrors, inspections, labelling);
    tracing::info!("controllers stopped");
}

/// One reconcile, guarded against panics ([`guard::guarded`]) and, when
/// sharded, run only while this replica holds the object's shard (the shard
/// its label names): not started otherwise, cancelled if the shard is given
/// up or lost meanwhile.
async fn gated<K, F, Fut>(
    shards: Option<Arc<shard::Shards>>,
    obj: Arc<K>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<kube::runtime::controller::Action, Error>
where
    K: guard::Guarded,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<kube::runtime::controller::Action, Error>>,
{
    let Some(shards) = shards else {
        return guard::guarded(obj, ctx, reconcile).await;
    };
    let Some(s) = shard::labelled_shard(obj.as_ref(), shards.shards) else {
        return Ok(kube::runtime::controller::Action::await_change());
    };
    shards
        .gate(s, guard::guarded(obj, ctx, reconcile))
        .await
        .unwrap_or(Ok(kube::runtime::controller::Action::await_change()))
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Annotating an object with a new value of this key makes it reconcile
/// now, as `flux reconcile` does with `reconcile.fluxcd.io/requestedAt`:
/// `kubectl annotate imagemirror NAME reconcile.kubemirror.dev/requestedAt="$(date +%s)" --overwrite`.
pub const REQUESTED_AT: &str = "reconcile.kubemirror.dev/requestedAt";

/// What a reconcile is for: the spec (`metadata.generation`) and an explicit
/// request ([`REQUESTED_AT`]). Status writes — the controller's own — and
/// re-lists after a watch restart change neither, so they start no reconcile.
/// When sharded, also the holding of the object's shard: a shard taken again
/// reconciles its objects again (their requeues were dropped with it).
fn spec_or_request<K: kube::Resource>(obj: &K, shards: Option<&shard::Shards>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    obj.meta().generation.hash(&mut h);
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(REQUESTED_AT))
        .hash(&mut h);
    if let Some(shards) = shards {
        let s = shard::labelled_shard(obj, shards.shards);
        (s, s.map(|s| shards.epoch(s))).hash(&mut h);
    }
    Some(h.finish())
}

/// The Secrets and ConfigMaps objects of kind `K` name, watched by
/// metadata only, and which objects name which.
struct Named<K> {
    secrets: Api<PartialObjectMeta<Secret>>,
    config_maps: Api<PartialObjectMeta<ConfigMap>>,
    names_secret: fn(&K, &str) -> bool,
    names_config_map: fn(&K, &str) -> bool,
}

impl<K> Named<K>
where
    K: kube::core::object::HasSpec,
    K::Spec: Serialize,
{
    /// Secrets and ConfigMaps of `ns` (or all namespaces), and the names
    /// found in a spec by [`secrets::secret_names`] and
    /// [`secrets::config_map_names`].
    fn new(client: &Client, ns: Option<&str>) -> Self {
        Named {
            secrets: api(client, ns),
            config_maps: api(client, ns),
            names_secret: |o, secret| secrets::secret_names(o.spec()).iter().any(|n| n == secret),
            names_config_map: |o, name| {
                secrets::config_map_names(o.spec())
                    .iter()
                    .any(|n| n == name)
            },
        }
    }
}

/// A controller for `K` that reconciles when its spec changes or a
/// reconcile is requested (not on status writes), on requeues (`interval`,
/// backoff), and when a Secret or ConfigMap an object names changes.
fn build<K>(
    api: Api<K>,
    named: Named<K>,
    cfg: controller::Config,
    shards: Option<Arc<shard::Shards>>,
    shutdown: CancellationToken,
) -> Controller<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let events = match &shards {
        Some(shards) => shard::watch::sharded(api, shards).boxed(),
        None => watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed(),
    };
    // Only what reconciles read enters the cache (`cache::slim`).
    let events = events.modify(cache::slim::<K>).reflect(writer);
    let trigger = cache::applied_after_init(events, store.clone()).predicate_filter(
        move |o: &K| spec_or_request(o, shards.as_deref()),
        // Long enough that an object quiet for its whole interval is
        // still known (an evicted one would reconcile once more).
        PredicateConfig::default().ttl(std::time::Duration::from_secs(7 * 24 * 3600)),
    );
    // Secrets and ConfigMaps are watched by metadata only (a
    // PartialObjectMetadata watch, no cache: each event maps to the objects
    // naming it): the controller never receives the data of Secrets or
    // ConfigMaps no object names, and holds no copy of the cluster's
    // ConfigMaps (issue 19's memory goal); a reconcile reads the ones its
    // object names, by name.
    let Named {
        secrets,
        config_maps,
        names_secret,
        names_config_map,
    } = named;
    let cm_store = store.clone();
    let naming = move |store: &reflector::Store<K>,
                       ns: Option<String>,
                       name: &str,
                       names: fn(&K, &str) -> bool| {
        store
            .state()
            .into_iter()
            .filter(|o| o.namespace() == ns && names(o, name))
            .map(|o| ObjectRef::from_obj(&*o))
            .collect::<Vec<_>>()
    };
    Controller::for_stream(trigger, store.clone())
        .with_config(cfg)
        .watches(
            secrets,
            watcher::Config::default(),
            move |secret: PartialObjectMeta<Secret>| {
                naming(&store, secret.namespace(), &secret.name_any(), names_secret)
            },
        )
        .watches(
            config_maps,
            watcher::Config::default(),
            move |cm: PartialObjectMeta<ConfigMap>| {
                naming(&cm_store, cm.namespace(), &cm.name_any(), names_config_map)
            },
        )
        .graceful_shutdown_on(shutdown.cancelled_owned())
}

fn error_policy<K: kube::Resource<DynamicType = ()>>(
    obj: Arc<K>,
    e: &Error,
    ctx: Arc<Context>,
) -> kube::runtime::controller::Action {
    let key = object_key(obj.as_ref());
    tracing::warn!(object = %key, error = %reconcile::one_line(e), "reconcile failed");
    ctx.error_action(&key, e)
}

async fn log_result<K: kube::Resource, E: std::error::Error + 'static>(
    r: Result<(ObjectRef<K>, kube::runtime::controller::Action), E>,
) where
    K::DynamicType: std::fmt::Debug,
{
    match r {
        Ok((o, _)) => tracing::debug!(object = %o, "reconciled"),
        Err(e) => tracing::debug!(error = %reconcile::one_line(&e), "reconcile error"),
    }
}

/// `Kind/namespace/name`, for backoff keys and logs.
pub fn object_key<K: kube::Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

/// Server-side apply of `{apiVersion, kind, status}` to `/status`.
/// The two status types, as far as the drivers' shared steps need them.
pub trait ObjectStatus: Serialize + Clone + Default {
    fn observed_generation(&self) -> Option<i64>;
    fn set_observed_generation(&mut self, generation: Option<i64>);
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
}

impl ObjectStatus for crate::api::v1alpha1::ImageMirrorStatus {
    fn observed_generation(&self) -> Option<i64> {
        self.observed_generation
    }
    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

impl ObjectStatus for crate::api::v1alpha1::ImageInspectionStatus {
    fn observed_generation(&self) -> Option<i64> {
        self.observed_generation
    }
    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

/// One reconcile of one object, past the steps both drivers share.
pub struct Round<K, S> {
    /// `Kind/namespace/name`, for backoff and logs.
    pub key: String,
    pub name: String,
    pub api: Api<K>,
    pub generation: Option<i64>,
    /// The status to build on (already marked `Reconciling` on a new generation).
    pub current: Option<S>,
    /// Secrets of the object's namespace.
    pub secrets: ApiSecrets,
}

impl<K, S> Round<K, S>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    S: ObjectStatus,
{
    /// The first steps of a reconcile: `None` when there is nothing to do
    /// (being deleted, or `suspended`); else the object's API and Secrets,
    /// and its status marked `Reconciling` if its generation is new.
    pub async fn begin(
        obj: &K,
        status: Option<S>,
        suspended: bool,
        ctx: &Context,
    ) -> Result<Option<Self>, Error> {
        let key = object_key(obj);
        let ns = obj
            .meta()
            .namespace
            .clone()
            .ok_or_else(|| Error::NoNamespace(key.clone()))?;
        if obj.meta().deletion_timestamp.is_some() {
            return Ok(None);
        }
        let name = obj.meta().name.clone().unwrap_or_default();
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
        if suspended {
            // Say so (Ready=False, reason Suspended) once; resuming changes
            // the spec, so it reconciles at once.
            let mut st = status.clone().unwrap_or_default();
            st.set_observed_generation(obj.meta().generation);
            reconcile::status::suspended(st.conditions_mut(), obj.meta().generation, &now());
            if reconcile::status::differs(status.as_ref(), &st) {
                write_status(&api, &name, &st).await?;
            }
            return Ok(None);
        }
        let generation = obj.meta().generation;
        let current = mark_progressing(&api, &name, status, generation).await?;
        Ok(Some(Round {
            key,
            name,
            api,
            generation,
            current,
            secrets: ApiSecrets {
                api: Api::namespaced(ctx.client.clone(), &ns),
                config_maps: Api::namespaced(ctx.client.clone(), &ns),
                namespace: ns,
            },
        }))
    }

    /// Write `new`: always after a reconcile that `reached` the registries
    /// (it moves lastSyncTime: the object is known current as of now), else
    /// only when something changed, so an outage does not rewrite every
    /// object on each retry.
    pub async fn write(&self, new: &S, reached: bool) -> Result<(), Error> {
        if reached || reconcile::status::differs(self.current.as_ref(), new) {
            write_status(&self.api, &self.name, new).await?;
        }
        Ok(())
    }
}

/// On a generation not yet observed, mark the object `Reconciling` (and
/// `Ready` unknown) before the work starts; returns the status to build on.
async fn mark_progressing<K, S>(
    api: &Api<K>,
    name: &str,
    current: Option<S>,
    generation: Option<i64>,
) -> Result<Option<S>, Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: ObjectStatus,
{
    if current.as_ref().and_then(|s| s.observed_generation()) == generation {
        return Ok(current);
    }
    let mut st = current.unwrap_or_default();
    let observed = st.observed_generation();
    reconcile::status::progressing(st.conditions_mut(), observed, generation, &now());
    write_status(api, name, &st).await?;
    Ok(Some(st))
}

async fn write_status<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &kube::api::PatchParams::apply(FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&body),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Status {
        object: format!("{}/{name}", K::kind(&())),
        source,
    })
}

/// Now, as status timestamps hold it.
pub fn now() -> crate::api::v1alpha1::Time {
    crate::api::v1alpha1::Time(jiff::Timestamp::now())
}
