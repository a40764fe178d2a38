//! The operator console: a read-only web page over the ledger (`spinescreen console`).
//!
//! - `GET /login`, `POST /login` (form field `token`), `POST /logout` — token login; a session
//!   cookie (HttpOnly, SameSite=Strict) carries a digest of the token, never the token;
//! - `GET /` — the study list, filtered like `studies list` (`?since=24h&status=…&station=…`),
//!   rows coloured by SLA;
//! - `GET /studies/{key}` — one study (UID or accession number): record, findings, preview
//!   image, SR download and timeline;
//! - `GET /studies/{uid}/preview.png`, `GET /studies/{uid}/sr.dcm` — from the object store;
//! - `GET /stations` — studies, defects and scanner faults per station today;
//! - `GET /monitor`, `GET /monitor/{id}` — the latest recorded review report (or one by number)
//!   and the list of recorded ones (`monitor report --record`);
//! - `GET /api/studies`, `GET /api/studies/{key}` — the same as JSON (cookie or
//!   `Authorization: Bearer <token>`).
//!
//! Every page but the login needs the token. It only reads; nothing on it changes a study.
//! Pages are minijinja templates with every value escaped (`pages.rs`). Serve it inside the
//! hospital network only: it shows accession numbers (never patient names, IDs or birth dates,
//! which the ledger does not hold).

mod pages;

use crate::db::Ledger;
use crate::metrics::station_day;
use crate::monitor::stored::{latest_reports, report_by_id};
use crate::query::{find, list, timeline, ListFilter, StudyRow, Timeline};
use crate::when::parse_time;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pages::{render, ListView, LoginView, MonitorView, StationsView, StudyView};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use spinescreen_proto::StudyUid;
use spinescreen_runtime::events::now_unix_ms;
use spinescreen_runtime::storage::StorageError;
use spinescreen_runtime::StudyStore;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Rows on one page of the list.
const PAGE: i64 = 200;
/// Recorded review reports listed on the monitoring page.
const REPORTS: i64 = 24;
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "spinescreen_console";
/// Environment variable holding the console's login token.
pub const TOKEN_ENV: &str = "SPINESCREEN_CONSOLE_TOKEN";

/// Shared by every request: one ledger connection, made again when lost; the object store
/// (previews, SRs); the login token's digests.
pub struct Console {
    url: String,
    schema: String,
    ledger: Mutex<Option<Arc<Ledger>>>,
    store: Option<StudyStore>,
    token_digest: [u8; 32],
    session: String,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Equal-length byte strings compared in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Console {
    /// A console over the ledger at `url` / `schema` (connected on first use), reading previews
    /// and SRs from `store`, opened with `token`. Sessions last as long as the process: the
    /// cookie is a digest of the token and a salt drawn at start.
    pub fn new(url: String, schema: String, store: Option<StudyStore>, token: &str) -> Arc<Self> {
        let salt = uuid::Uuid::new_v4();
        let session = hex::encode(sha256(&[salt.as_bytes().as_slice(), token.as_bytes()]));
        Arc::new(Self {
            url,
            schema,
            ledger: Mutex::new(None),
            store,
            token_digest: sha256(&[token.as_bytes()]),
            session,
        })
    }

    fn token_ok(&self, given: &str) -> bool {
        same(&sha256(&[given.as_bytes()]), &self.token_digest)
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| self.token_ok(t.trim()));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .any(|(k, v)| k == SESSION_COOKIE && same(v.as_bytes(), self.session.as_bytes()));
        bearer || cookie
    }

    async fn ledger(&self) -> anyhow::Result<Arc<Ledger>> {
        let mut held = self.ledger.lock().await;
        if let Some(l) = held.as_ref().filter(|l| !l.is_closed()) {
            return Ok(l.clone());
        }
        let l = Arc::new(Ledger::connect(&self.url, &self.schema).await?);
        *held = Some(l.clone());
        Ok(l)
    }
}

/// The console's routes: the login open, everything else behind it.
pub fn router(console: Arc<Console>) -> Router {
    let guarded = Router::new()
        .route("/", get(page_list))
        .route("/studies/{key}", get(page_study))
        .route("/studies/{key}/preview.png", get(preview))
        .route("/studies/{key}/sr.dcm", get(structured_report))
        .route("/stations", get(page_stations))
        .route("/monitor", get(page_monitor))
        .route("/monitor/{id}", get(page_monitor_report))
        .route("/api/studies", get(api_list))
        .route("/api/studies/{key}", get(api_study))
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            require_login,
        ));
    Router::new()
        .route("/login", get(page_login).post(login))
        .route("/logout", post(logout))
        .merge(guarded)
        .with_state(console)
}

async fn require_login(
    State(console): State<Arc<Console>>,
    request: Request,
    next: Next,
) -> Response {
    if console.authorised(request.headers()) {
        return next.run(request).await;
    }
    if request.uri().path().starts_with("/api/") {
        return (
            StatusCode::UNAUTHORIZED,
            "log in: Authorization: Bearer <token>",
        )
            .into_response();
    }
    Redirect::to("/login").into_response()
}

fn html(name: &str, title: &str, view: &impl serde::Serialize) -> Result<Html<String>, Failure> {
    render(name, title, view).map(Html).map_err(|e| {
        tracing::error!(error = %e, "console: a page failed to render");
        Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be rendered".into(),
        )
    })
}

fn login_form(message: &str) -> Response {
    html(
        "login.html",
        "spinescreen console: log in",
        &LoginView { message },
    )
    .into_response()
}

async fn page_login() -> Response {
    login_form("")
}

/// Decode one `application/x-www-form-urlencoded` value (`+` is a space, `%XX` a byte).
fn form_decode(s: &str) -> String {
    fn hex_digit(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).copied().and_then(hex_digit),
                b.get(i + 2).copied().and_then(hex_digit),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `name` in a form body.
fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| form_decode(k) == name)
        .map(|(_, v)| form_decode(v))
}

async fn login(State(console): State<Arc<Console>>, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body);
    let given = form_field(&body, "token").unwrap_or_default();
    if !console.token_ok(&given) {
        tracing::warn!("console: a login with a wrong token");
        let mut r = login_form("wrong token");
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    }
    let mut response = Redirect::to("/").into_response();
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        console.session
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "spinescreen_console=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
        ),
    );
    response
}

/// Query parameters of the list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    since: Option<String>,
    status: Option<String>,
    station: Option<String>,
}

struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn unavailable(e: anyhow::Error) -> Failure {
    tracing::warn!(error = %format!("{e:#}"), "console: ledger unavailable");
    Failure(
        StatusCode::SERVICE_UNAVAILABLE,
        "the ledger is unavailable".into(),
    )
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.trim().is_empty())
}

async fn rows(console: &Console, q: &ListQuery) -> Result<Vec<StudyRow>, Failure> {
    let since_ms = match non_empty(&q.since) {
        Some(s) => Some(
            parse_time(&s, now_unix_ms())
                .map_err(|e| Failure(StatusCode::BAD_REQUEST, e.to_string()))?,
        ),
        None => None,
    };
    let filter = ListFilter {
        since_ms,
        until_ms: None,
        status: non_empty(&q.status),
        station: non_empty(&q.station),
        limit: PAGE,
    };
    let ledger = console.ledger().await.map_err(unavailable)?;
    list(&ledger, &filter).await.map_err(unavailable)
}

async fn timelines(console: &Console, key: &str) -> Result<Vec<Timeline>, Failure> {
    let ledger = console.ledger().await.map_err(unavailable)?;
    let found = find(&ledger, key).await.map_err(unavailable)?;
    if found.is_empty() {
        return Err(Failure(
            StatusCode::NOT_FOUND,
            format!("no study with UID or accession number {key:?}"),
        ));
    }
    let mut out = vec![];
    for s in found {
        out.push(timeline(&ledger, s).await.map_err(unavailable)?);
    }
    Ok(out)
}

async fn api_list(
    State(console): State<Arc<Console>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<StudyRow>>, Failure> {
    Ok(Json(rows(&console, &q).await?))
}

async fn api_study(
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
) -> Result<Json<Vec<Timeline>>, Failure> {
    Ok(Json(timelines(&console, &key).await?))
}

/// The list's filter value `v`, or empty.
fn filter_text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

async fn page_list(
    State(console): State<Arc<Console>>,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, Failure> {
    let rows = rows(&console, &q).await?;
    let view = ListView::new(
        filter_text(&q.since),
        filter_text(&q.status),
        filter_text(&q.station),
        &rows,
    );
    html("list.html", "spinescreen studies", &view)
}

async fn page_study(
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
) -> Result<Html<String>, Failure> {
    let found = timelines(&console, &key).await?;
    let view = StudyView::new(&found, console.store.is_some());
    html("study.html", &format!("spinescreen study {key}"), &view)
}

/// An object of a study from the store, by Study Instance UID.
async fn study_object(
    console: &Console,
    key: &str,
    object: fn(&StudyUid) -> String,
    content_type: &'static str,
    disposition: Option<&'static str>,
) -> Result<Response, Failure> {
    let uid = StudyUid::new(key)
        .map_err(|_| Failure(StatusCode::NOT_FOUND, format!("no study {key:?}")))?;
    let store = console.store.as_ref().ok_or_else(|| {
        Failure(
            StatusCode::NOT_FOUND,
            "the console was started without an object store".into(),
        )
    })?;
    match store.get(&object(&uid)).await {
        Ok(bytes) => {
            let mut r = (StatusCode::OK, bytes).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Some(d) = disposition {
                r.headers_mut()
                    .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(d));
            }
            Ok(r)
        }
        Err(StorageError::NotFound(_)) => Err(Failure(
            StatusCode::NOT_FOUND,
            format!("study {uid}: not in the store (yet)"),
        )),
        Err(e) => Err(unavailable(e.into())),
    }
}

async fn preview(
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
) -> Result<Response, Failure> {
    study_object(
        &console,
        &key,
        |u| u.keys().preview_png(),
        "image/png",
        None,
    )
    .await
}

async fn structured_report(
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
) -> Result<Response, Failure> {
    study_object(
        &console,
        &key,
        |u| u.keys().structured_report(),
        "application/dicom",
        Some("attachment; filename=\"sr.dcm\""),
    )
    .await
}

async fn page_stations(State(console): State<Arc<Console>>) -> Result<Html<String>, Failure> {
    let ledger = console.ledger().await.map_err(unavailable)?;
    let day = station_day(&ledger, now_unix_ms())
        .await
        .map_err(unavailable)?;
    html(
        "stations.html",
        "spinescreen stations",
        &StationsView::new(&day),
    )
}

async fn page_monitor(State(console): State<Arc<Console>>) -> Result<Html<String>, Failure> {
    let ledger = console.ledger().await.map_err(unavailable)?;
    let recorded = latest_reports(&ledger, REPORTS)
        .await
        .map_err(unavailable)?;
    html(
        "monitor.html",
        "spinescreen monitoring",
        &MonitorView::new(recorded.first(), &recorded),
    )
}

async fn page_monitor_report(
    State(console): State<Arc<Console>>,
    Path(id): Path<String>,
) -> Result<Html<String>, Failure> {
    let missing = || Failure(StatusCode::NOT_FOUND, format!("no review report {id:?}"));
    let number: i64 = id.parse().map_err(|_| missing())?;
    let ledger = console.ledger().await.map_err(unavailable)?;
    let shown = report_by_id(&ledger, number)
        .await
        .map_err(unavailable)?
        .ok_or_else(missing)?;
    let recorded = latest_reports(&ledger, REPORTS)
        .await
        .map_err(unavailable)?;
    html(
        "monitor.html",
        &format!("spinescreen review {number}"),
        &MonitorView::new(Some(&shown), &recorded),
    )
}

/// Serve the console on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Arc<Console>,
    shutdown: spinescreen_runtime::CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, router(console))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
