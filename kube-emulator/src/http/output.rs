//! Reply encoding: JSON bodies with the right Content-Type, `Warning`
//! headers, Status errors, and the object representations kubectl and
//! kube-rs ask for via `Accept` (full, PartialObjectMetadata, Table).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::object;
use crate::ops::verbs::Target;
use crate::protobuf;
use crate::table::{self, IncludeObject};

/// How objects are represented in a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves.
    Full,
    /// `PartialObjectMetadata[List]`.
    Metadata,
    /// A `meta.k8s.io/v1` Table.
    Table(IncludeObject),
}

impl Representation {
    /// Picks the representation from `Accept` (first supported entry wins).
    pub fn from_accept(accept: &str, include: IncludeObject) -> Self {
        for part in accept.split(',') {
            let params: Vec<&str> = part.split(';').map(str::trim).collect();
            let meta_group = params.contains(&"g=meta.k8s.io");
            if meta_group && params.contains(&"as=Table") {
                return Representation::Table(include);
            }
            if meta_group
                && (params.contains(&"as=PartialObjectMetadata")
                    || params.contains(&"as=PartialObjectMetadataList"))
            {
                return Representation::Metadata;
            }
            if params
                .first()
                .is_some_and(|m| *m == "application/json" || *m == "*/*" || m.is_empty())
                && params.len() == 1
            {
                return Representation::Full;
            }
        }
        Representation::Full
    }
}

/// A JSON reply with Content-Type `ct` and optional `Warning` headers.
pub fn json_reply(code: u16, body: &Value, ct: &str, warnings: &[String]) -> Response {
    let mut r = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/json")),
    );
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            r.headers_mut().append("Warning", v);
        }
    }
    r
}

/// A reply in the encoding `accept` prefers: protobuf for the kinds
/// `crate::protobuf` encodes when asked for first, otherwise JSON with
/// Content-Type `ct`.
pub fn negotiated_reply(
    accept: &str,
    code: u16,
    body: &Value,
    ct: &str,
    warnings: &[String],
) -> Response {
    let encoded = (ct == "application/json" && protobuf::preferred(accept))
        .then(|| protobuf::encode(body))
        .flatten();
    let Some(bytes) = encoded else {
        return json_reply(code, body, ct, warnings);
    };
    // The JSON reply's status and headers, with the protobuf body.
    let mut r = json_reply(code, &Value::Null, protobuf::MEDIA_TYPE, warnings);
    *r.body_mut() = Body::from(bytes);
    r
}

/// A `Status` error reply (JSON).
pub fn error_reply(e: &ApiError) -> Response {
    negotiated_error(e, "")
}

/// A `Status` error reply in the encoding `accept` prefers.
pub fn negotiated_error(e: &ApiError, accept: &str) -> Response {
    let mut r = negotiated_reply(accept, e.code, &e.to_status(), "application/json", &[]);
    if e.code == 429 {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// One object in the requested representation.
pub fn render_object(t: &Target, obj: Value, rep: Representation) -> (Value, &'static str) {
    match rep {
        Representation::Full => (obj, "application/json"),
        Representation::Metadata => (
            object::partial_metadata(&obj),
            "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
        ),
        Representation::Table(inc) => (
            table::render(&t.rt, &t.version, &[obj], None, inc),
            table::CONTENT_TYPE,
        ),
    }
}

/// A list in the requested representation.
pub fn render_list(
    t: &Target,
    items: Vec<Value>,
    rv: u64,
    rep: Representation,
) -> (Value, &'static str) {
    match rep {
        Representation::Full => (
            crate::ops::read::list_body(t, items, rv),
            "application/json",
        ),
        Representation::Metadata => (
            json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": { "resourceVersion": rv.to_string() },
                "items": items.iter().map(object::partial_metadata).collect::<Vec<_>>(),
            }),
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
        ),
        Representation::Table(inc) => (
            table::render(&t.rt, &t.version, &items, Some(rv), inc),
            table::CONTENT_TYPE,
        ),
    }
}
