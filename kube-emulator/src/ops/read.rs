//! GET of one object and LIST of a collection.

use serde_json::{Value, json};

use super::verbs::Target;
use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::selector::Selector;
use crate::store::State;

/// The object, typed for the requested version.
pub fn get(st: &State, t: &Target) -> ApiResult<Value> {
    let key = t.key()?;
    let mut obj = st
        .objects
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.rt.plural, &t.rt.group, &key.name))?;
    object::set_type(&mut obj, &t.rt.api_version(&t.version), &t.rt.kind);
    Ok(obj)
}

/// The matching objects of the collection, typed, with the list's resourceVersion.
pub fn list(st: &State, t: &Target, sel: &Selector) -> (Vec<Value>, u64) {
    let items = st
        .list(&t.rt.group, &t.rt.plural, t.namespace.as_deref())
        .into_iter()
        .map(|(_, o)| o)
        .filter(|o| sel.matches(o))
        .map(|o| {
            let mut o = o.clone();
            object::set_type(&mut o, &t.rt.api_version(&t.version), &t.rt.kind);
            o
        })
        .collect();
    (items, st.rv)
}

/// A `KindList` body.
pub fn list_body(t: &Target, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": t.rt.list_kind,
        "apiVersion": t.rt.api_version(&t.version),
        "metadata": { "resourceVersion": rv.to_string() },
        "items": items,
    })
}
