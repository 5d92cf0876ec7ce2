//! The HTTP endpoints: `/metrics` (Prometheus text), `/healthz` (the process
//! serves), `/readyz` (the controller is set up: leader, or standing by).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

/// Serve `/metrics` on `metrics_addr` and the probes on `health_addr` (one
/// server when they are equal) until `shutdown`.
pub async fn serve(
    metrics_addr: SocketAddr,
    health_addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = AppState { metrics, ready };
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    let metrics_routes = Router::new().route("/metrics", get(metrics_handler));
    if metrics_addr == health_addr {
        let app = probes.merge(metrics_routes).with_state(state);
        return serve_one(metrics_addr, app, shutdown).await;
    }
    let m = serve_one(
        metrics_addr,
        metrics_routes.with_state(state.clone()),
        shutdown.clone(),
    );
    let h = serve_one(health_addr, probes.with_state(state), shutdown);
    let (a, b) = tokio::join!(m, h);
    a.and(b)
}

async fn serve_one(
    addr: SocketAddr,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving HTTP");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}
