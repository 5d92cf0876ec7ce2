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

/// One page of a LIST with `limit` (and `continue` from the page before):
/// the items, the list's resourceVersion, and the token of the next page.
///
/// Every page of one list reports the first page's resourceVersion (kept in
/// the token), so a watch started from it replays every change made while
/// the pages were read: nothing is missed (a change may be seen twice). A
/// token older than the retained history is `410 Expired`, as the real
/// server's compacted continue tokens are.
pub fn list_page(
    st: &State,
    t: &Target,
    sel: &Selector,
    limit: usize,
    token: Option<&str>,
) -> ApiResult<(Vec<Value>, u64, Option<String>)> {
    let bad = || ApiError::bad_request("continue key is not valid: malformed token".to_string());
    let (rv, after) = match token {
        None => (st.rv, None),
        Some(tok) => {
            let (rv, key) = tok.split_once(':').ok_or_else(bad)?;
            let rv: u64 = rv.parse().map_err(|_| bad())?;
            let (ns, name) = key.split_once('/').ok_or_else(bad)?;
            if rv < st.compacted_rv() {
                return Err(ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ));
            }
            (rv, Some((ns.to_string(), name.to_string())))
        }
    };
    let limit = limit.max(1);
    let mut items = Vec::new();
    let mut next = None;
    let mut last: Option<&crate::store::ObjKey> = None;
    let after = after.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
    for (k, o) in st.list_after(&t.rt.group, &t.rt.plural, t.namespace.as_deref(), after) {
        if !sel.matches(o) {
            continue;
        }
        if items.len() == limit {
            // The next page starts after the last item returned.
            next = last.map(|l| format!("{rv}:{}/{}", l.namespace, l.name));
            break;
        }
        let mut o = o.clone();
        object::set_type(&mut o, &t.rt.api_version(&t.version), &t.rt.kind);
        items.push(o);
        last = Some(k);
    }
    Ok((items, rv, next))
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
