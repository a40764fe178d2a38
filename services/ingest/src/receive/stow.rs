//! DICOMweb STOW-RS (PS3.18 §10.5): `POST /studies` and `POST /studies/{study}` with a
//! `multipart/related; type="application/dicom"` body (RFC 2387), one Part 10 instance per part.
//!
//! Requests must carry `Authorization: Bearer <token>` when a token is configured (RFC 6750).
//! Each request is one reception per study, complete when the request has been read: the
//! response is sent after the instances are stored and the ingest job is published. The response
//! is the Store Instances Response Module in DICOM JSON (PS3.18 §10.5.3, Annex F): Referenced
//! SOP Sequence for stored instances, Failed SOP Sequence with a Failure Reason for the others;
//! status 200 when all were stored, 202 when some were, 409 when none was.

use super::{instance_ids, Keeping, Receptions};
use crate::config::{IngestConfig, IngestLimits};
use crate::error::IngestError;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Map, Value};
use spinescreen_runtime::{Broker, CancellationToken, StudyStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Failure Reason: processing failure (PS3.7 C.4.2.1.4 general statuses).
const FAILURE_PROCESSING: u16 = 0x0110;
/// Failure Reason: out of resources (storage failed).
const FAILURE_OUT_OF_RESOURCES: u16 = 0xA700;
/// Failure Reason: the instance does not belong to the study of the request URL.
const FAILURE_STUDY_MISMATCH: u16 = 0xA900;
/// Failure Reason: cannot understand (not a DICOM Part 10 instance).
const FAILURE_CANNOT_UNDERSTAND: u16 = 0xC000;

#[derive(Clone)]
struct StowState {
    store: StudyStore,
    broker: Arc<dyn Broker>,
    bearer_token: Option<Arc<str>>,
    limits: IngestLimits,
    max_request_bytes: usize,
    request_timeout: Duration,
}

/// The STOW-RS routes, for embedding in another axum server or for tests.
///
/// The bearer token and the `Content-Length` are checked before the body is read; a body is
/// read up to `stow.max_request_bytes` within `stow.request_timeout_s`.
pub fn stow_router(config: &IngestConfig, store: StudyStore, broker: Arc<dyn Broker>) -> Router {
    let state = StowState {
        store,
        broker,
        bearer_token: config.stow.bearer_token.clone().map(Arc::from),
        limits: config.limits.clone(),
        max_request_bytes: usize::try_from(config.stow.max_request_bytes).unwrap_or(usize::MAX),
        request_timeout: Duration::from_secs(config.stow.request_timeout_s.max(1)),
    };
    Router::new()
        .route("/studies", post(store_any))
        .route("/studies/{study}", post(store_in_study))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Listen on `<stow.bind_address>:<stow.port>` until `shutdown` is cancelled.
pub async fn run_stow(
    config: &IngestConfig,
    store: StudyStore,
    broker: Arc<dyn Broker>,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let listener = TcpListener::bind((config.stow.bind_address.as_str(), config.stow.port))
        .await
        .map_err(|e| {
            IngestError::Receive(format!(
                "cannot listen on {}:{}: {e}",
                config.stow.bind_address, config.stow.port
            ))
        })?;
    run_stow_on(listener, config, store, broker, shutdown).await
}

/// [`run_stow`] on a listener the caller bound. In-flight requests finish before it returns.
///
/// HTTP/1.1 only. At most `stow.max_connections` connections are served at once (more are
/// closed on accept); a connection that does not complete a request's headers within
/// `stow.header_timeout_s` — a new connection, or a keep-alive one between requests — is
/// closed.
pub async fn run_stow_on(
    listener: TcpListener,
    config: &IngestConfig,
    store: StudyStore,
    broker: Arc<dyn Broker>,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    tracing::info!(address = ?listener.local_addr().ok(), "STOW-RS listening");
    let router = stow_router(config, store, broker);
    let header_timeout = Duration::from_secs(config.stow.header_timeout_s.max(1));
    let max_connections = config.stow.max_connections.max(1);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    if connections.len() >= max_connections {
                        tracing::warn!(%peer, limit = max_connections, "STOW-RS: too many connections; closed on accept");
                        drop(socket);
                        continue;
                    }
                    let service = TowerToHyperService::new(router.clone());
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        let mut builder = hyper::server::conn::http1::Builder::new();
                        builder
                            .timer(TokioTimer::new())
                            .header_read_timeout(header_timeout);
                        let conn = builder.serve_connection(TokioIo::new(socket), service);
                        tokio::pin!(conn);
                        let served = tokio::select! {
                            r = conn.as_mut() => r,
                            _ = shutdown.cancelled() => {
                                conn.as_mut().graceful_shutdown();
                                conn.await
                            }
                        };
                        if let Err(e) = served {
                            tracing::debug!(%peer, error = %e, "STOW-RS connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "STOW-RS: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn store_any(State(state): State<StowState>, headers: HeaderMap, body: Body) -> Response {
    receive(state, headers, body, None).await
}

async fn store_in_study(
    State(state): State<StowState>,
    Path(study): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(state, headers, body, Some(study)).await
}

/// Authenticate, then read the body within the size and time limits, then handle it.
async fn receive(
    state: StowState,
    headers: HeaderMap,
    body: Body,
    study: Option<String>,
) -> Response {
    if !authorized(&state, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Bearer"),
                (header::CONNECTION, "close"),
            ],
            "a valid bearer token is required",
        )
            .into_response();
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_request_bytes as u64) {
        return too_large(state.max_request_bytes);
    }
    let body = match tokio::time::timeout(
        state.request_timeout,
        axum::body::to_bytes(body, state.max_request_bytes),
    )
    .await
    {
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                "the request body did not arrive in time",
            )
                .into_response()
        }
        Ok(Err(_)) => return too_large(state.max_request_bytes),
        Ok(Ok(b)) => b,
    };
    handle(state, headers, body, study).await
}

fn too_large(limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONNECTION, "close")],
        format!("the request body is over the limit of {limit} bytes"),
    )
        .into_response()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(state: &StowState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.bearer_token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes()))
}

fn error(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain")],
        text.to_string(),
    )
        .into_response()
}

/// The `boundary` of a `multipart/related` content type whose `type` (if given) is
/// `application/dicom`.
fn dicom_multipart_boundary(content_type: &str) -> Result<String, &'static str> {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/related") {
        return Err("Content-Type must be multipart/related; type=\"application/dicom\"");
    }
    let mut boundary = None;
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "boundary" => boundary = Some(v.to_string()),
            "type" if !v.eq_ignore_ascii_case("application/dicom") => {
                return Err("only type=\"application/dicom\" is supported");
            }
            _ => {}
        }
    }
    boundary
        .filter(|b| !b.is_empty())
        .ok_or("multipart boundary missing")
}

/// One body part.
struct Part {
    content_type: Option<String>,
    body: Bytes,
}

/// Split a multipart body (RFC 2046 §5.1.1) into parts, without copying their contents.
fn split_parts(body: &Bytes, boundary: &str) -> Result<Vec<Part>, &'static str> {
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let next_finder = memchr::memmem::Finder::new(next_delimiter.as_bytes());
    let mut at = finder
        .find(body)
        .ok_or("no multipart boundary in the body")?
        + delimiter.len();
    let mut parts = vec![];
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Skip transport padding and the CRLF after the delimiter.
        let line_end = memchr::memmem::find(rest, b"\r\n").ok_or("truncated multipart body")?;
        let headers_start = at + line_end + 2;
        let headers_end = memchr::memmem::find(&body[headers_start..], b"\r\n\r\n")
            .map(|i| headers_start + i)
            .or_else(|| {
                body[headers_start..]
                    .starts_with(b"\r\n")
                    .then_some(headers_start - 2)
            })
            .ok_or("part without a header section")?;
        let content_start = headers_end + 4;
        let content_end = next_finder
            .find(&body[content_start..])
            .map(|i| content_start + i)
            .ok_or("part without a closing boundary")?;
        let header_text =
            String::from_utf8_lossy(&body[headers_start..headers_end.max(headers_start)]);
        let content_type = header_text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        });
        parts.push(Part {
            content_type,
            body: body.slice(content_start..content_end),
        });
        at = content_end + next_delimiter.len();
    }
}

fn referenced(class: &str, instance: &str, failure: Option<u16>) -> Value {
    let mut item = Map::new();
    item.insert("00081150".into(), json!({"vr": "UI", "Value": [class]}));
    item.insert("00081155".into(), json!({"vr": "UI", "Value": [instance]}));
    if let Some(reason) = failure {
        item.insert("00081197".into(), json!({"vr": "US", "Value": [reason]}));
    }
    Value::Object(item)
}

async fn handle(
    state: StowState,
    headers: HeaderMap,
    body: Bytes,
    study: Option<String>,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = match dicom_multipart_boundary(content_type) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, e),
    };
    let parts = match split_parts(&body, &boundary) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let mut receptions = Receptions::new(Keeping::Bundles);
    let mut stored = vec![];
    let mut failed = vec![];
    for part in parts {
        let is_dicom_type = part.content_type.as_deref().is_none_or(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/dicom")
        });
        let ids = instance_ids(&part.body, &state.limits);
        let class = ids.sop_class_uid.clone().unwrap_or_default();
        if let Some(why) = &ids.rejected {
            tracing::warn!(reason = %why, "STOW-RS: instance refused");
        }
        let Some(sop) = ids.sop_instance_uid.clone().filter(|_| is_dicom_type) else {
            failed.push(referenced(&class, "", Some(FAILURE_CANNOT_UNDERSTAND)));
            continue;
        };
        if let Some(expected) = &study {
            if ids.study_uid.as_deref() != Some(expected.as_str()) {
                failed.push(referenced(&class, &sop, Some(FAILURE_STUDY_MISMATCH)));
                continue;
            }
        }
        match receptions.store(&state.store, part.body, &ids).await {
            Ok(_) => stored.push(referenced(&class, &sop, None)),
            Err(e) => {
                tracing::error!(error = %e, "STOW-RS: could not store an instance");
                failed.push(referenced(&class, &sop, Some(FAILURE_OUT_OF_RESOURCES)));
            }
        }
    }
    if let Err(e) = receptions
        .complete(&state.store, state.broker.as_ref())
        .await
    {
        tracing::error!(error = %e, "STOW-RS: could not publish the ingest job");
        for item in stored.drain(..) {
            let mut item = item;
            if let Value::Object(m) = &mut item {
                m.insert(
                    "00081197".into(),
                    json!({"vr": "US", "Value": [FAILURE_PROCESSING]}),
                );
            }
            failed.push(item);
        }
    }
    let status = match (stored.is_empty(), failed.is_empty()) {
        (false, true) => StatusCode::OK,
        (false, false) => StatusCode::ACCEPTED,
        (true, _) => StatusCode::CONFLICT,
    };
    let mut response = Map::new();
    if !stored.is_empty() {
        response.insert("00081199".into(), json!({"vr": "SQ", "Value": stored}));
    }
    if !failed.is_empty() {
        response.insert("00081198".into(), json!({"vr": "SQ", "Value": failed}));
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/dicom+json")],
        Value::Object(response).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_is_read_and_other_types_refused() {
        assert_eq!(
            dicom_multipart_boundary("multipart/related; type=\"application/dicom\"; boundary=abc")
                .unwrap(),
            "abc"
        );
        assert_eq!(
            dicom_multipart_boundary("Multipart/Related; boundary=\"x y\"").unwrap(),
            "x y"
        );
        assert!(dicom_multipart_boundary(
            "multipart/related; type=\"application/dicom+xml\"; boundary=a"
        )
        .is_err());
        assert!(dicom_multipart_boundary("application/dicom").is_err());
        assert!(dicom_multipart_boundary("multipart/related; type=application/dicom").is_err());
    }

    #[test]
    fn parts_are_split_at_the_boundary_only() {
        let body = Bytes::from_static(
            b"preamble\r\n--b1\r\nContent-Type: application/dicom\r\n\r\nDICM--b1 not a boundary\r\n--b1\r\n\r\nsecond\r\n--b1--\r\n",
        );
        let parts = split_parts(&body, "b1").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[0].body[..], b"DICM--b1 not a boundary");
        assert_eq!(parts[0].content_type.as_deref(), Some("application/dicom"));
        assert_eq!(&parts[1].body[..], b"second");
        assert!(split_parts(&Bytes::from_static(b"--b1\r\n\r\nunterminated"), "b1").is_err());
    }

    #[test]
    fn token_comparison_needs_the_exact_token() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
    }
}
