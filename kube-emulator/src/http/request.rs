//! Parsing of request paths and query strings.
//!
//! Accepts the URL shapes both clients send, including kube-rs' `…?` and
//! `…?&limit=500` (empty query pairs are skipped).

use percent_encoding::percent_decode_str;

/// Decoded query parameters, in order.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

impl Query {
    /// Parses a raw query string (without `?`).
    pub fn parse(raw: &str) -> Self {
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A non-empty value of `key`.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Whether `key` is `true` or `1`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true") | Some("1"))
    }
}

/// A path addressing resources: `/api/v1` or `/apis/G/V` + `[namespaces/NS/]PLURAL[/NAME[/SUB]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group, `""` for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub plural: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`).
    pub subresource: Option<String>,
}

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`.
    Api,
    /// `/apis`.
    Apis,
    /// `/apis/G`.
    Group(String),
    /// `/api/v1`, `/apis/G/V`.
    GroupVersion(String, String),
    /// `/openapi/v3`.
    OpenApiRoot,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/G/V`.
    OpenApiDoc(String, String),
    /// `/openapi/v2` and anything else unknown.
    NotFound,
    /// A resource or object.
    Resource(ResourcePath),
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let (namespace, rest) = match rest {
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
            return Route::Resource(ResourcePath {
                group: String::new(),
                version: version.into(),
                namespace: None,
                plural: "namespaces".into(),
                name: Some(ns.to_string()),
                subresource: Some(sub.to_string()),
            });
        }
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (p, None, None),
        [p, n] => (p, Some(n.to_string()), None),
        [p, n, s] => (p, Some(n.to_string()), Some(s.to_string())),
        _ => return Route::NotFound,
    };
    Route::Resource(ResourcePath {
        group: group.into(),
        version: version.into(),
        namespace,
        plural: plural.to_string(),
        name,
        subresource: sub,
    })
}

/// Classifies a (percent-decoded per segment) request path.
pub fn route(path: &str) -> Route {
    let decoded: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["api"] => Route::Api,
        ["apis"] => Route::Apis,
        ["apis", g] => Route::Group(g.to_string()),
        ["api", v] => Route::GroupVersion(String::new(), v.to_string()),
        ["apis", g, v] => Route::GroupVersion(g.to_string(), v.to_string()),
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", v] => Route::OpenApiDoc(String::new(), v.to_string()),
        ["openapi", "v3", "apis", g, v] => Route::OpenApiDoc(g.to_string(), v.to_string()),
        ["api", v, rest @ ..] => resource("", v, rest),
        ["apis", g, v, rest @ ..] => resource(g, v, rest),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_with_leading_ampersand() {
        let q = Query::parse("&limit=500&labelSelector=a%3Db+c&watch=1");
        assert_eq!(q.get("limit"), Some("500"));
        assert_eq!(q.get("labelSelector"), Some("a=b c"));
        assert!(q.flag("watch"));
    }

    #[test]
    fn routes() {
        assert_eq!(
            route("/api/v1/namespaces/default/secrets/s"),
            Route::Resource(ResourcePath {
                group: "".into(),
                version: "v1".into(),
                namespace: Some("default".into()),
                plural: "secrets".into(),
                name: Some("s".into()),
                subresource: None
            })
        );
        let Route::Resource(r) = route("/api/v1/namespaces/foo") else {
            panic!()
        };
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("foo"), None)
        );
        let Route::Resource(r) = route("/api/v1/namespaces/foo/status") else {
            panic!()
        };
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let Route::Resource(r) = route("/apis/example.com/v1/namespaces/ns/widgets/w/status")
        else {
            panic!()
        };
        assert_eq!(
            (
                r.namespace.as_deref(),
                r.plural.as_str(),
                r.subresource.as_deref()
            ),
            (Some("ns"), "widgets", Some("status"))
        );
        let Route::Resource(r) = route("/apis/example.com/v1/widgets") else {
            panic!()
        };
        assert_eq!((r.namespace, r.name), (None, None));
        assert_eq!(
            route("/openapi/v3/apis/example.com/v1"),
            Route::OpenApiDoc("example.com".into(), "v1".into())
        );
        assert_eq!(route("/openapi/v2"), Route::NotFound);
    }
}
