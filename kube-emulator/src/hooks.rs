//! Test hooks: reset, history control, watch control, error injection and
//! request recording (with the RBAC attributes of each request).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::context::Inner;
use crate::http::request::{Query, Route, route};

/// A handle on a running emulator's test hooks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hooks {
    pub(crate) inner: Arc<Inner>,
}

/// An error to return instead of serving matching requests.
#[derive(Debug, Clone)]
pub struct Injection {
    /// HTTP method to match (`None`: any).
    pub method: Option<String>,
    /// Substring the request path (without query) must contain.
    pub path_contains: String,
    /// HTTP status code of the injected `Status` reply.
    pub code: u16,
    /// How many more requests to fail.
    pub remaining: usize,
}

/// One request as the emulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method (`GET`, `PATCH`, …).
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string (may be empty).
    pub query: String,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// `User-Agent` header, if any.
    pub user_agent: Option<String>,
    /// `Accept` header, if any (`…;as=PartialObjectMetadata;g=meta.k8s.io`
    /// for a metadata-only list or watch).
    pub accept: Option<String>,
    /// HTTP status of the reply (200 for watches, whose body streams on).
    pub status: u16,
}

/// The RBAC attributes of a resource request, as the authorizer would see them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RbacAttributes {
    /// API group (`""` for core).
    pub api_group: String,
    /// Resource, with `/subresource` appended when there is one (`widgets/status`).
    pub resource: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete` or `deletecollection`.
    pub verb: String,
    /// Namespace of the request, `None` for cluster-wide requests.
    pub namespace: Option<String>,
    /// Object name, if the request names one.
    pub name: Option<String>,
}

impl RecordedRequest {
    /// The RBAC attributes, or `None` for non-resource requests (discovery, OpenAPI, /version).
    pub fn rbac(&self) -> Option<RbacAttributes> {
        let Route::Resource(r) = route(&self.path) else {
            return None;
        };
        let q = Query::parse(&self.query);
        let verb = match (self.method.as_str(), r.name.is_some()) {
            ("GET", true) => "get",
            ("GET", false) if q.flag("watch") => "watch",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => return None,
        };
        let resource = match &r.subresource {
            Some(s) => format!("{}/{s}", r.plural),
            None => r.plural.clone(),
        };
        // A namespace object is addressed by name, not by namespace.
        Some(RbacAttributes {
            api_group: r.group,
            resource,
            verb: verb.into(),
            namespace: r.namespace,
            name: r.name,
        })
    }
}

impl Hooks {
    /// Deletes every object and CRD, re-seeds the default namespaces, clears
    /// the history, injections and recorded requests, and closes all watches.
    /// resourceVersions keep increasing.
    pub fn reset(&self) {
        self.inner.lock().reset();
        self.inner
            .injections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.clear_requests();
        self.inner.close_all_watches();
    }

    /// Drops the whole event history: a watch resuming from any older
    /// resourceVersion then gets the `410 Expired` ERROR event.
    pub fn compact_history(&self) {
        self.inner.lock().compact();
    }

    /// Keeps at most `n` changes for resuming watches (default 10 000).
    pub fn set_history_size(&self, n: usize) {
        self.inner.lock().set_history_size(n);
    }

    /// Sets the interval between BOOKMARK events (default 60 s); applies to new watches.
    pub fn set_bookmark_interval(&self, interval: Duration) {
        *self
            .inner
            .bookmark_interval
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = interval;
    }

    /// Ends every open watch stream (clients see EOF and reconnect).
    pub fn close_watches(&self) {
        self.inner.close_all_watches();
    }

    /// Fails the next `times` requests whose method is `method` (`None`: any)
    /// and whose path contains `path_contains`, with a `Status` of `code`.
    pub fn inject_error(&self, method: Option<&str>, path_contains: &str, code: u16, times: usize) {
        self.inner
            .injections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Injection {
                method: method.map(str::to_uppercase),
                path_contains: path_contains.into(),
                code,
                remaining: times,
            });
    }

    /// All requests answered since start (or the last clear), in the order
    /// their replies were produced.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets recorded requests.
    pub fn clear_requests(&self) {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The distinct `(apiGroup, resource[/subresource], verb)` triples of all recorded
    /// resource requests: what an RBAC Role must grant.
    pub fn rbac_triples(&self) -> BTreeSet<(String, String, String)> {
        self.requests()
            .iter()
            .filter_map(RecordedRequest::rbac)
            .map(|a| (a.api_group, a.resource, a.verb))
            .collect()
    }
}

/// Takes one matching injection, returning its status code.
pub(crate) fn take_injection(inner: &Inner, method: &str, path: &str) -> Option<u16> {
    let mut inj = inner.injections.lock().unwrap_or_else(|e| e.into_inner());
    let i = inj.iter().position(|j| {
        j.remaining > 0
            && j.method.as_deref().is_none_or(|m| m == method)
            && path.contains(&j.path_contains)
    })?;
    inj[i].remaining -= 1;
    let code = inj[i].code;
    if inj[i].remaining == 0 {
        inj.remove(i);
    }
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, query: &str) -> RecordedRequest {
        RecordedRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            content_type: None,
            user_agent: None,
            accept: None,
            status: 200,
        }
    }

    #[test]
    fn rbac_mapping() {
        let a = req("GET", "/apis/example.com/v1/widgets", "&watch=true")
            .rbac()
            .unwrap();
        assert_eq!(
            (a.api_group.as_str(), a.resource.as_str(), a.verb.as_str()),
            ("example.com", "widgets", "watch")
        );
        let a = req(
            "PATCH",
            "/apis/example.com/v1/namespaces/ns/widgets/w/status",
            "",
        )
        .rbac()
        .unwrap();
        assert_eq!(
            (a.resource.as_str(), a.verb.as_str(), a.namespace.as_deref()),
            ("widgets/status", "patch", Some("ns"))
        );
        let a = req("POST", "/api/v1/namespaces/ns/events", "")
            .rbac()
            .unwrap();
        assert_eq!(
            (a.api_group.as_str(), a.resource.as_str(), a.verb.as_str()),
            ("", "events", "create")
        );
        assert!(req("GET", "/apis", "").rbac().is_none());
        assert_eq!(
            req("GET", "/api/v1/namespaces/ns/secrets", "")
                .rbac()
                .unwrap()
                .verb,
            "list"
        );
    }
}
