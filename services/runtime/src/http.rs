//! The HTTP face of every worker: `/metrics` (Prometheus text format), `/healthz` (the process
//! is alive) and `/readyz` (the process consumes from its broker), for Prometheus scraping and
//! Kubernetes probes.

use crate::metrics;
use axum::{http::StatusCode, response::IntoResponse, routing::get, Router};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;

static READY: AtomicBool = AtomicBool::new(false);

/// Mark the process ready (consuming) or not; `/readyz` answers 200 only when ready.
/// [`crate::worker::run_stage`] sets it once its consumer is up and clears it on shutdown.
pub fn set_ready(ready: bool) {
    READY.store(ready, Ordering::SeqCst);
}

/// Whether the process is marked ready.
pub fn is_ready() -> bool {
    READY.load(Ordering::SeqCst)
}

/// The routes: `GET /metrics`, `GET /healthz`, `GET /readyz`.
pub fn router() -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
}

async fn metrics_handler() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(),
    )
}

async fn readyz() -> impl IntoResponse {
    if is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Bind `addr` and serve [`router`] until `shutdown` is cancelled.
pub async fn serve_metrics(addr: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("bind metrics endpoint {addr}: {e}"))?;
    serve_metrics_on(listener, shutdown).await
}

/// Serve [`router`] on an already bound listener (bind port 0 to let the OS choose) until
/// `shutdown` is cancelled.
pub async fn serve_metrics_on(
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    metrics::register_all();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    }
    axum::serve(listener, router())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
