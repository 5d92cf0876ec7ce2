//! The HTTP front: one axum fallback handler that records the request,
//! applies injected errors, routes by path and encodes replies.

pub mod output;
pub mod request;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use serde_json::Value;

use crate::context::Inner;
use crate::error::{ApiError, ApiResult};
use crate::hooks::{RecordedRequest, take_injection};
use crate::ops::verbs::{self, Options, PatchKind, Target};
use crate::ops::{FieldValidation, Reply, read};
use crate::selector::Selector;
use crate::table::IncludeObject;
use crate::{discovery, openapi, watch};
use output::{
    Representation, error_reply, json_reply, negotiated_error, negotiated_reply, render_list,
    render_object,
};
use request::{Query, ResourcePath, Route, route};

/// The router serving the whole API.
pub fn router(inner: Arc<Inner>) -> Router {
    Router::new().fallback(handle).with_state(inner)
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(String::from)
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let method = parts.method.clone();
    let content_type = header_str(&parts.headers, header::CONTENT_TYPE);
    tracing::debug!(
        %method,
        %path,
        query = %raw_query,
        content_type = content_type.as_deref().unwrap_or(""),
        accept = header_str(&parts.headers, header::ACCEPT).as_deref().unwrap_or(""),
        "request"
    );
    let user_agent = header_str(&parts.headers, header::USER_AGENT);
    let accept = header_str(&parts.headers, header::ACCEPT);
    let response = serve(&inner, &method, &path, &raw_query, &parts.headers, body).await;
    inner
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(RecordedRequest {
            method: method.to_string(),
            path,
            query: raw_query,
            content_type,
            user_agent,
            accept,
            status: response.status().as_u16(),
        });
    response
}

async fn serve(
    inner: &Arc<Inner>,
    method: &Method,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    if let Some(code) = take_injection(inner, method.as_str(), path) {
        return error_reply(&ApiError::new(
            code,
            ApiError::reason_for(code),
            format!("injected error ({code})"),
        ));
    }
    let bytes = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return error_reply(&ApiError::bad_request(format!("reading body: {e}"))),
    };
    let ctx = RequestCtx {
        method: method.clone(),
        query: Query::parse(raw_query),
        accept: header_str(headers, header::ACCEPT).unwrap_or_default(),
        content_type: header_str(headers, header::CONTENT_TYPE).unwrap_or_default(),
        user_agent: header_str(headers, header::USER_AGENT),
        body: bytes,
    };
    match dispatch(inner, route(path), &ctx) {
        Ok(r) => r,
        Err(e) => negotiated_error(&e, &ctx.accept),
    }
}

struct RequestCtx {
    method: Method,
    query: Query,
    accept: String,
    content_type: String,
    user_agent: Option<String>,
    body: Bytes,
}

fn ok_json(v: &Value) -> ApiResult<Response> {
    Ok(json_reply(200, v, "application/json", &[]))
}

fn dispatch(inner: &Arc<Inner>, route: Route, ctx: &RequestCtx) -> ApiResult<Response> {
    if !matches!(route, Route::Resource(_)) && ctx.method != Method::GET {
        return Err(ApiError::method_not_allowed(ctx.method.as_str()));
    }
    let st = inner.lock();
    match route {
        Route::Version => ok_json(&discovery::version()),
        Route::Health => {
            let mut r = Response::new(Body::from("ok"));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, "text/plain".parse().expect("static"));
            Ok(r)
        }
        Route::Api if discovery::wants_aggregated(&ctx.accept) => Ok(json_reply(
            200,
            &discovery::aggregated(&st.registry, true),
            discovery::AGGREGATED_CONTENT_TYPE,
            &[],
        )),
        Route::Apis if discovery::wants_aggregated(&ctx.accept) => Ok(json_reply(
            200,
            &discovery::aggregated(&st.registry, false),
            discovery::AGGREGATED_CONTENT_TYPE,
            &[],
        )),
        Route::Api => ok_json(&discovery::api_versions(inner.addr)),
        Route::Apis => ok_json(&discovery::api_group_list(&st.registry)),
        Route::Group(g) => discovery::group(&st.registry, &g)
            .ok_or_else(ApiError::page_not_found)
            .and_then(|v| ok_json(&v)),
        Route::GroupVersion(g, v) => discovery::resource_list(&st.registry, &g, &v)
            .ok_or_else(ApiError::page_not_found)
            .and_then(|v| ok_json(&v)),
        Route::OpenApiRoot => ok_json(&openapi::root(&st.registry)),
        Route::OpenApiDoc(g, v) => openapi::document(&st.registry, &g, &v)
            .ok_or_else(ApiError::page_not_found)
            .and_then(|v| ok_json(&v)),
        Route::NotFound => Err(ApiError::page_not_found()),
        Route::Resource(rp) => {
            drop(st);
            resource(inner, rp, ctx)
        }
    }
}

fn target(st: &crate::store::State, rp: ResourcePath) -> ApiResult<Target> {
    let rt = st
        .registry
        .resolve(&rp.group, &rp.version, &rp.plural)
        .ok_or_else(ApiError::page_not_found)?;
    if rp.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::page_not_found());
    }
    match rp.subresource.as_deref() {
        None => {}
        Some("status") if rt.has_status(&rp.version) => {}
        Some("finalize") if rt.plural == "namespaces" => {}
        Some(_) => return Err(ApiError::page_not_found()),
    }
    Ok(Target {
        rt,
        version: rp.version,
        namespace: rp.namespace,
        name: rp.name,
        subresource: rp.subresource,
    })
}

/// Which fields besides name and namespace a field selector may use.
fn extra_fields(t: &Target) -> fn(&str) -> bool {
    use crate::registry::Builtin;
    match t.rt.builtin {
        Some(Builtin::CoreEvent | Builtin::Event) => |_| true,
        Some(Builtin::Secret) => |f| f == "type",
        Some(Builtin::Namespace) => |f| f == "status.phase",
        _ => |_| false,
    }
}

fn parse_body(ctx: &RequestCtx) -> ApiResult<Value> {
    let ct = ctx.content_type.split(';').next().unwrap_or("").trim();
    if crate::protobuf::is_protobuf(ct) {
        return crate::protobuf::decode(&ctx.body);
    }
    if ct.contains("protobuf") {
        return Err(ApiError::unsupported_media_type(ct));
    }
    if ctx.body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    if ct.ends_with("yaml") {
        return serde_yaml::from_slice::<Value>(&ctx.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(&ctx.body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

/// A write verb's reply: body (JSON, or protobuf if asked for), status code
/// and `Warning` headers.
fn reply(ctx: &RequestCtx, r: Reply) -> ApiResult<Response> {
    Ok(negotiated_reply(
        &ctx.accept,
        r.code,
        &r.body,
        "application/json",
        &r.warnings,
    ))
}

fn options(ctx: &RequestCtx) -> Options {
    let field_manager = ctx.query.non_empty("fieldManager").map(String::from);
    let manager = field_manager.clone().unwrap_or_else(|| {
        ctx.user_agent
            .as_deref()
            .map(|ua| ua.split('/').next().unwrap_or("").to_string())
            .unwrap_or_default()
    });
    Options {
        field_manager,
        manager,
        dry_run: ctx.query.get("dryRun") == Some("All"),
        validation: FieldValidation::parse(ctx.query.get("fieldValidation")),
        force: ctx.query.flag("force"),
    }
}

fn resource(inner: &Arc<Inner>, rp: ResourcePath, ctx: &RequestCtx) -> ApiResult<Response> {
    let mut st = inner.lock();
    let t = target(&st, rp)?;
    let q = &ctx.query;
    match ctx.method {
        Method::GET => {
            let rep = Representation::from_accept(
                &ctx.accept,
                IncludeObject::parse(q.get("includeObject")),
            );
            if t.name.is_some() {
                let obj = read::get(&st, &t)?;
                let (body, ct) = render_object(&t, obj, rep);
                return Ok(negotiated_reply(&ctx.accept, 200, &body, ct, &[]));
            }
            let sel = Selector::parse(
                q.non_empty("labelSelector"),
                q.non_empty("fieldSelector"),
                extra_fields(&t),
            )?;
            if q.flag("watch") {
                let rv = match q.non_empty("resourceVersion") {
                    Some(s) => Some(s.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid resource version: {s}"))
                    })?),
                    None => None,
                };
                let spec = watch::WatchSpec {
                    target: t,
                    selector: sel,
                    resource_version: rv,
                    send_initial_events: q.flag("sendInitialEvents"),
                    bookmarks: q.flag("allowWatchBookmarks"),
                    timeout: q
                        .non_empty("timeoutSeconds")
                        .and_then(|s| s.parse().ok())
                        .map(Duration::from_secs),
                    representation: rep,
                };
                return Ok(watch::start(inner.clone(), &st, spec));
            }
            // `limit` pages full and metadata lists (kube-rs asks for 500 at
            // a time); tables (kubectl get) come whole, which is legal.
            let limit = q
                .non_empty("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|l| *l > 0 && !matches!(rep, Representation::Table(_)));
            let (items, rv, next) = match limit {
                Some(limit) => read::list_page(&st, &t, &sel, limit, q.non_empty("continue"))?,
                None => {
                    let (items, rv) = read::list(&st, &t, &sel);
                    (items, rv, None)
                }
            };
            drop(st);
            let (mut body, ct) = render_list(&t, items, rv, rep);
            if let Some(next) = next {
                body["metadata"]["continue"] = serde_json::Value::String(next);
            }
            Ok(negotiated_reply(&ctx.accept, 200, &body, ct, &[]))
        }
        Method::POST => {
            let body = parse_body(ctx)?;
            reply(ctx, verbs::create(&mut st, &t, &options(ctx), body)?)
        }
        Method::PUT => {
            let body = parse_body(ctx)?;
            reply(ctx, verbs::replace(&mut st, &t, &options(ctx), body)?)
        }
        Method::PATCH => {
            let ct = ctx.content_type.split(';').next().unwrap_or("").trim();
            let kind = match ct {
                "application/json-patch+json" => PatchKind::Json,
                "application/merge-patch+json" => PatchKind::Merge,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchKind::Apply,
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let body = if kind == PatchKind::Apply {
                serde_yaml::from_slice::<Value>(&ctx.body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
            } else {
                serde_json::from_slice(&ctx.body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
            };
            reply(ctx, verbs::patch(&mut st, &t, &options(ctx), kind, body)?)
        }
        Method::DELETE => {
            let body = parse_body(ctx)?;
            let dry_run = q.get("dryRun") == Some("All");
            if t.name.is_some() {
                reply(ctx, verbs::delete(&mut st, &t, dry_run, &body)?)
            } else {
                let sel = Selector::parse(
                    q.non_empty("labelSelector"),
                    q.non_empty("fieldSelector"),
                    extra_fields(&t),
                )?;
                reply(ctx, verbs::delete_collection(&mut st, &t, &sel, dry_run)?)
            }
        }
        _ => Err(ApiError::method_not_allowed(ctx.method.as_str())),
    }
}
