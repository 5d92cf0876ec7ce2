//! Deletion: finalizers (deletionTimestamp first, removal when the last
//! finalizer goes), and the cascades of Namespaces and CRDs, which delete
//! their contents first and go away once those are gone.

use serde_json::{Value, json};

use super::kinds;
use crate::object;
use crate::store::{EventType, ObjKey, State};

fn is_namespace(k: &ObjKey) -> bool {
    k.group.is_empty() && k.plural == "namespaces"
}

fn is_crd(k: &ObjKey) -> bool {
    k.group == "apiextensions.k8s.io" && k.plural == "customresourcedefinitions"
}

fn crd_target(obj: &Value) -> (String, String) {
    let g = obj
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let p = obj
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    (g, p)
}

fn children(st: &State, key: &ObjKey) -> Vec<ObjKey> {
    if is_namespace(key) {
        st.objects
            .keys()
            .filter(|k| k.namespace == key.name)
            .cloned()
            .collect()
    } else if is_crd(key) {
        let Some(obj) = st.objects.get(key) else {
            return vec![];
        };
        let (g, p) = crd_target(obj);
        st.objects
            .keys()
            .filter(|k| k.group == g && k.plural == p)
            .cloned()
            .collect()
    } else {
        vec![]
    }
}

/// Deletes the object: removes it at once, or (finalizers, contents) marks it
/// deleting. Returns the object to reply with. The key must exist.
/// With `cascade` false (`propagationPolicy: Orphan`) dependents are kept.
pub fn delete_object(st: &mut State, key: &ObjKey, cascade: bool) -> Value {
    let Some(obj) = st.objects.get(key).cloned() else {
        return json!({});
    };
    let container = is_namespace(key) || is_crd(key);
    if !container && object::finalizers(&obj).is_empty() {
        return remove_with(st, key, cascade).unwrap_or(obj);
    }
    let mut last = obj.clone();
    if !object::is_deleting(&obj) {
        let mut marked = obj.clone();
        {
            let meta = object::meta_mut(&mut marked);
            meta.insert("deletionTimestamp".into(), json!(object::now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        if let Some(rt) = st.registry.get(&key.group, &key.plural)
            && kinds::tracks_generation(&rt)
        {
            let g = object::generation(&marked) + 1;
            object::meta_mut(&mut marked).insert("generation".into(), json!(g));
        }
        if is_namespace(key) {
            marked["status"] = json!({ "phase": "Terminating" });
        }
        if is_crd(key) {
            marked["status"] = crate::crd::status(&marked, Some(&obj));
        }
        last = st.commit_put(key.clone(), marked, EventType::Modified, Some(obj));
    }
    if container {
        for child in children(st, key) {
            delete_object(st, &child, true);
        }
        if let Some(gone) = try_finish(st, key) {
            return gone;
        }
    }
    st.objects.get(key).cloned().unwrap_or(last)
}

/// Background garbage collection: deletes objects whose owners are all gone.
fn collect_dependents(st: &mut State, uid: &str) {
    if uid.is_empty() {
        return;
    }
    let owner_uids = |o: &Value| -> Vec<String> {
        o.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| r.get("uid").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let live: std::collections::HashSet<String> = st
        .objects
        .values()
        .map(|o| object::meta_str(o, "uid").to_string())
        .collect();
    let orphans: Vec<ObjKey> = st
        .objects
        .iter()
        .filter(|(_, o)| {
            let owners = owner_uids(o);
            owners.iter().any(|u| u == uid) && owners.iter().all(|u| !live.contains(u))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in orphans {
        delete_object(st, &k, true);
    }
}

/// Removes a deleting object once it has no finalizers and no contents.
fn try_finish(st: &mut State, key: &ObjKey) -> Option<Value> {
    let obj = st.objects.get(key)?;
    if object::is_deleting(obj)
        && object::finalizers(obj).is_empty()
        && children(st, key).is_empty()
    {
        remove_now(st, key)
    } else {
        None
    }
}

/// Removes the object now (DELETED event), then finishes a terminating
/// namespace or CRD that was waiting for it.
pub fn remove_now(st: &mut State, key: &ObjKey) -> Option<Value> {
    remove_with(st, key, true)
}

/// [`remove_now`], with `cascade = false` leaving dependents alone (`Orphan`).
pub fn remove_with(st: &mut State, key: &ObjKey, cascade: bool) -> Option<Value> {
    let gone = st.commit_delete(key)?;
    if cascade {
        collect_dependents(st, object::meta_str(&gone, "uid"));
    }
    if is_crd(key) {
        let (g, p) = crd_target(&gone);
        st.registry.remove(&g, &p);
    }
    if !key.namespace.is_empty() {
        let ns = ObjKey {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: key.namespace.clone(),
        };
        try_finish(st, &ns);
    }
    let crd = ObjKey {
        group: "apiextensions.k8s.io".into(),
        plural: "customresourcedefinitions".into(),
        namespace: String::new(),
        name: format!("{}.{}", key.plural, key.group),
    };
    if !key.group.is_empty() && st.objects.contains_key(&crd) {
        try_finish(st, &crd);
    }
    Some(gone)
}
