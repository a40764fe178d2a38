//! The worker's HTTP endpoints, read over a real socket as Prometheus and Kubernetes read them.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_runtime::{http, metrics, CancellationToken};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, buf)
}

#[tokio::test]
async fn metrics_endpoint_exposes_the_390s_sla_bucket_and_probes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(http::serve_metrics_on(listener, shutdown.clone()));

    metrics::observe_study("ok", 200.0);
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("spinescreen_study_latency_seconds_bucket{le=\"390\"} 1"),
        "no 390 s bucket in:\n{body}"
    );
    assert!(
        body.contains("spinescreen_studies_over_sla_total 0"),
        "200 s is within the SLA"
    );

    assert_eq!(get(addr, "/healthz").await.0, 200);
    // No stage registered yet: not ready.
    assert_eq!(get(addr, "/readyz").await.0, 503);
    // `all` mode: ready only when every stage of the process consumes.
    http::expect_stages(&["ingest", "inference"]);
    http::set_stage_ready("ingest", true);
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("not ready\ninference not ready\ningest ready\n"),
        "{body}"
    );
    http::set_stage_ready("inference", true);
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("ready\ninference ready\ningest ready\n"),
        "{body}"
    );
    http::set_stage_ready("ingest", false);
    assert_eq!(get(addr, "/readyz").await.0, 503);

    shutdown.cancel();
    server.await.unwrap().unwrap();
}
