//! The in-memory object store: objects, the global resourceVersion counter,
//! the bounded event history and the broadcast that feeds watches.
//!
//! Contract: every change is committed under the state lock with a fresh
//! resourceVersion and broadcast *while the lock is held*, so watchers see
//! changes in resourceVersion order and a watch that subscribes under the lock
//! misses nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::object;
use crate::registry::Registry;

/// Identifies a stored object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace, `""` for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed (carries the final state).
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// Which object.
    pub key: ObjKey,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for deletes: its final state, with `rv`).
    pub object: Value,
    /// The object before the change (for selector transitions).
    pub old: Option<Value>,
}

/// Default number of changes kept for watches resuming from an older RV.
pub const DEFAULT_HISTORY: usize = 10_000;

/// Everything guarded by the state lock.
#[derive(Debug)]
pub struct State {
    /// The last resourceVersion handed out.
    pub rv: u64,
    /// Stored objects.
    pub objects: BTreeMap<ObjKey, Value>,
    /// Served types.
    pub registry: Registry,
    history: VecDeque<Arc<Change>>,
    history_size: usize,
    /// Changes with `rv <= compacted_rv` are no longer in the history.
    compacted_rv: u64,
    tx: broadcast::Sender<Arc<Change>>,
}

impl State {
    /// A fresh store with the seeded namespaces.
    pub fn new(tx: broadcast::Sender<Arc<Change>>) -> Self {
        let mut s = State {
            rv: 0,
            objects: BTreeMap::new(),
            registry: Registry::builtins(),
            history: VecDeque::new(),
            history_size: DEFAULT_HISTORY,
            compacted_rv: 0,
            tx,
        };
        s.seed();
        s
    }

    /// Drops every object and CRD, re-seeds the namespaces. The counter keeps going.
    pub fn reset(&mut self) {
        self.objects.clear();
        self.registry = Registry::builtins();
        self.seed();
        // Every earlier resourceVersion is now too old: watchers re-list.
        self.compact();
    }

    fn seed(&mut self) {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "labels": { "kubernetes.io/metadata.name": ns },
                },
                "spec": { "finalizers": ["kubernetes"] },
                "status": { "phase": "Active" },
            });
            let key = ObjKey {
                group: String::new(),
                plural: "namespaces".into(),
                namespace: String::new(),
                name: ns.into(),
            };
            let mut obj = obj;
            crate::ops::stamp_new(&mut obj);
            self.commit_put(key, obj, EventType::Added, None);
        }
    }

    /// Sets the history size, trimming at once.
    pub fn set_history_size(&mut self, n: usize) {
        self.history_size = n;
        self.trim();
    }

    /// Forgets all history: watches from any RV older than now get 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
    }

    /// The oldest RV a watch may resume from.
    pub fn compacted_rv(&self) -> u64 {
        self.compacted_rv
    }

    /// Retained changes with `rv > after`, oldest first.
    pub fn changes_since(&self, after: u64) -> Vec<Arc<Change>> {
        self.history
            .iter()
            .filter(|c| c.rv > after)
            .cloned()
            .collect()
    }

    /// Subscribes to future changes (call under the lock).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    fn trim(&mut self) {
        while self.history.len() > self.history_size {
            if let Some(c) = self.history.pop_front() {
                self.compacted_rv = c.rv;
            }
        }
    }

    /// Stores `obj` under a new resourceVersion and emits `kind`. Returns the stored object.
    pub fn commit_put(
        &mut self,
        key: ObjKey,
        mut obj: Value,
        kind: EventType,
        old: Option<Value>,
    ) -> Value {
        self.rv += 1;
        object::meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.objects.insert(key.clone(), obj.clone());
        self.emit(Change {
            rv: self.rv,
            key,
            kind,
            object: obj.clone(),
            old,
        });
        obj
    }

    /// Removes the object under a new resourceVersion and emits DELETED. Returns its final state.
    pub fn commit_delete(&mut self, key: &ObjKey) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        object::meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.emit(Change {
            rv: self.rv,
            key: key.clone(),
            kind: EventType::Deleted,
            object: obj.clone(),
            old: None,
        });
        Some(obj)
    }

    fn emit(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        self.trim();
        // No receivers is fine.
        let _ = self.tx.send(change);
    }

    /// Objects of a type, optionally in one namespace, in key order (a range
    /// of the ordered map: the cost follows the type's objects, not the store's).
    pub fn list(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Vec<(&ObjKey, &Value)> {
        self.list_after(group, plural, namespace, None).collect()
    }

    /// As [`State::list`], starting after `after` (namespace, name).
    pub fn list_after<'a>(
        &'a self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> + 'a {
        use std::ops::Bound;
        let (group, plural) = (group.to_string(), plural.to_string());
        let namespace = namespace.map(str::to_string);
        let key = |ns: &str, name: &str| ObjKey {
            group: group.clone(),
            plural: plural.clone(),
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        let start = match after {
            Some((ns, name)) => Bound::Excluded(key(ns, name)),
            None => Bound::Included(key(namespace.as_deref().unwrap_or(""), "")),
        };
        self.objects
            .range((start, Bound::Unbounded))
            .take_while(move |(k, _)| {
                k.group == group
                    && k.plural == plural
                    && namespace.as_ref().is_none_or(|ns| k.namespace == *ns)
            })
    }
}
