//! Watch streams: one compact JSON event per line, flushed as it happens.
//!
//! Start-up runs under the state lock (initial events, history replay,
//! subscription), so no change is missed or duplicated. A watch from a
//! resourceVersion older than the retained history gets HTTP 200 plus one
//! `ERROR` event with a `410 Expired` Status, then EOF (kube-rs re-lists on it).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::context::Inner;
use crate::error::ApiError;
use crate::http::output::{Representation, render_object};
use crate::object;
use crate::ops::verbs::Target;
use crate::selector::Selector;
use crate::store::{Change, EventType, State};

/// Parameters of one watch request.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// What is watched (namespace optional).
    pub target: Target,
    /// Label and field selector.
    pub selector: Selector,
    /// `resourceVersion` (None or 0: start with the current state).
    pub resource_version: Option<u64>,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// Object representation.
    pub representation: Representation,
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

impl WatchSpec {
    fn relevant(&self, c: &Change) -> bool {
        c.key.group == self.target.rt.group
            && c.key.plural == self.target.rt.plural
            && self
                .target
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == c.key.namespace)
    }

    fn event(&self, kind: &str, obj: &Value) -> Value {
        let mut o = obj.clone();
        object::set_type(
            &mut o,
            &self.target.rt.api_version(&self.target.version),
            &self.target.rt.kind,
        );
        let (o, _) = render_object(&self.target, o, self.representation);
        json!({ "type": kind, "object": o })
    }

    /// The event a change becomes for this watch, if any (selector transitions
    /// turn MODIFIED into ADDED or DELETED).
    fn convert(&self, c: &Change) -> Option<Value> {
        if !self.relevant(c) {
            return None;
        }
        let now = self.selector.matches(&c.object);
        let before = c.old.as_ref().is_some_and(|o| self.selector.matches(o));
        let kind = match c.kind {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => now.then_some("DELETED"),
            EventType::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }?;
        Some(self.event(kind, &c.object))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut meta = json!({ "resourceVersion": rv.to_string() });
        if initial_end {
            meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let (kind, api_version) = match self.representation {
            Representation::Metadata => (
                "PartialObjectMetadata".to_string(),
                "meta.k8s.io/v1".to_string(),
            ),
            _ => (
                self.target.rt.kind.clone(),
                self.target.rt.api_version(&self.target.version),
            ),
        };
        json!({ "type": "BOOKMARK", "object": { "kind": kind, "apiVersion": api_version, "metadata": meta } })
    }
}

/// Starts a watch. Must be called with the state lock held (`st`).
pub fn start(inner: Arc<Inner>, st: &State, spec: WatchSpec) -> Response {
    let mut initial: Vec<Bytes> = vec![];
    let mut expired = false;
    let from = match spec
        .resource_version
        .filter(|rv| *rv != 0 && !spec.send_initial_events)
    {
        Some(rv) if rv < st.compacted_rv() => {
            let e = ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                st.compacted_rv()
            ));
            initial.push(line(&json!({ "type": "ERROR", "object": e.to_status() })));
            expired = true;
            rv
        }
        Some(rv) => {
            initial.extend(
                st.changes_since(rv)
                    .iter()
                    .filter_map(|c| spec.convert(c))
                    .map(|e| line(&e)),
            );
            st.rv.max(rv)
        }
        None => {
            for (_, o) in st.list(
                &spec.target.rt.group,
                &spec.target.rt.plural,
                spec.target.namespace.as_deref(),
            ) {
                if spec.selector.matches(o) {
                    initial.push(line(&spec.event("ADDED", o)));
                }
            }
            if spec.send_initial_events {
                initial.push(line(&spec.bookmark(st.rv, true)));
            }
            st.rv
        }
    };
    let rx = st.subscribe();
    let (tx, out) = mpsc::channel::<Bytes>(256);
    tokio::spawn(run(inner, spec, rx, tx, initial, expired, from));
    let body = futures::stream::unfold(out, |mut out| async move {
        out.recv().await.map(|b| (Ok::<_, Infallible>(b), out))
    });
    let mut r = Response::new(Body::from_stream(body));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn run(
    inner: Arc<Inner>,
    spec: WatchSpec,
    mut rx: broadcast::Receiver<Arc<Change>>,
    tx: mpsc::Sender<Bytes>,
    initial: Vec<Bytes>,
    expired: bool,
    mut last_rv: u64,
) {
    let mut close = inner.close_watches.subscribe();
    close.borrow_and_update();
    for b in initial {
        if tx.send(b).await.is_err() {
            return;
        }
    }
    if expired {
        return;
    }
    let deadline = tokio::time::Instant::now() + spec.timeout.unwrap_or(Duration::from_secs(1800));
    let period = inner.bookmark_interval();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(c) => {
                    if c.rv <= last_rv {
                        continue;
                    }
                    last_rv = c.rv;
                    if let Some(e) = spec.convert(&c)
                        && tx.send(line(&e)).await.is_err()
                    {
                        return;
                    }
                }
                // Lagging or closed: end the stream; the client resumes from its last RV.
                Err(_) => return,
            },
            _ = ticker.tick(), if spec.bookmarks => {
                if tx.send(line(&spec.bookmark(last_rv, false))).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline) => return,
            _ = close.changed() => return,
            _ = tx.closed() => return,
        }
    }
}
