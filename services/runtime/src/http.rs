//! The HTTP face of every worker: `/metrics` (Prometheus text format), `/healthz` (the process
//! is alive) and `/readyz` (every stage the process runs consumes from its broker and every DICOM
//! receiver it runs listens; the body lists each one's state), for Prometheus scraping and
//! Kubernetes probes.

use crate::metrics;
use axum::{http::StatusCode, response::IntoResponse, routing::get, Router};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Readiness of each stage (or receiver) this process runs, by name.
static STAGES: Mutex<BTreeMap<&'static str, bool>> = Mutex::new(BTreeMap::new());

fn stages() -> std::sync::MutexGuard<'static, BTreeMap<&'static str, bool>> {
    // The map holds plain flags; a panic elsewhere cannot leave it inconsistent.
    STAGES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Declare the stages this process will run, all not ready yet, so that `/readyz` stays 503
/// until every one of them consumes (call before starting them).
pub fn expect_stages(names: &[&'static str]) {
    let mut map = stages();
    for name in names {
        map.entry(name).or_insert(false);
    }
}

/// Mark one stage ready (consuming) or not. [`crate::worker::run_stage`] sets it once its
/// consumer is up and clears it when the consumer goes away or on shutdown; a DICOM receiver
/// registers under its own name, ready while it listens.
pub fn set_stage_ready(stage: &'static str, ready: bool) {
    stages().insert(stage, ready);
}

/// Whether the process is ready: at least one stage registered, all of them ready.
pub fn is_ready() -> bool {
    all_ready(&stages())
}

/// The readiness rule: at least one stage registered and every registered one ready.
fn all_ready(stages: &BTreeMap<&'static str, bool>) -> bool {
    !stages.is_empty() && stages.values().all(|ready| *ready)
}

/// Each registered stage and whether it is ready, by stage name.
pub fn stage_readiness() -> BTreeMap<&'static str, bool> {
    stages().clone()
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

/// `200 ready` or `503 not ready`, then one line per stage: `<stage> ready|not ready`.
async fn readyz() -> impl IntoResponse {
    let map = stage_readiness();
    let ready = all_ready(&map);
    let mut body = String::from(if ready { "ready\n" } else { "not ready\n" });
    for (stage, stage_ready) in &map {
        let state = if *stage_ready { "ready" } else { "not ready" };
        body.push_str(&format!("{stage} {state}\n"));
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
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
