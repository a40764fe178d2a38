//! The operator console: a read-only web page over the ledger (`spinescreen console`).
//!
//! - `GET /login`, `POST /login` (form field `token`), `POST /logout` — token login, failed
//!   tries limited per client address (429 beyond them); a session cookie (HttpOnly,
//!   SameSite=Strict) carries a random session id that expires (`auth.rs`);
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

mod auth;
mod pages;

pub use auth::LoginPolicy;

use crate::db::Ledger;
use crate::metrics::station_day;
use crate::monitor::stored::{latest_reports, report_by_id};
use crate::query::{find, list, timeline, ListFilter, StudyRow, Timeline};
use crate::when::parse_time;
use auth::{Attempt, Gate};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pages::{render, ListView, LoginView, MonitorView, StationsView, StudyView};
use serde::Deserialize;
use spinescreen_proto::StudyUid;
use spinescreen_runtime::events::now_unix_ms;
use spinescreen_runtime::storage::StorageError;
use spinescreen_runtime::StudyStore;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
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
/// (previews, SRs); the login gate (token digest, failures per address, sessions).
pub struct Console {
    url: String,
    schema: String,
    ledger: Mutex<Option<Arc<Ledger>>>,
    store: Option<StudyStore>,
    gate: Gate,
}

impl Console {
    /// A console over the ledger at `url` / `schema` (connected on first use), reading previews
    /// and SRs from `store`, opened with `token`, with the default [`LoginPolicy`].
    pub fn new(url: String, schema: String, store: Option<StudyStore>, token: &str) -> Arc<Self> {
        Self::with_policy(url, schema, store, token, LoginPolicy::default())
    }

    /// As [`Console::new`], with `policy` for failed logins and sessions.
    pub fn with_policy(
        url: String,
        schema: String,
        store: Option<StudyStore>,
        token: &str,
        policy: LoginPolicy,
    ) -> Arc<Self> {
        Arc::new(Self {
            url,
            schema,
            ledger: Mutex::new(None),
            store,
            gate: Gate::new(token, policy),
        })
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

/// The session ids in the request's cookies (a browser may send a stale one beside the live).
fn session_ids(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v)
}

/// The TCP peer's address (unspecified when the server was started without it).
fn client_address(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
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

/// 429 with `Retry-After`.
fn too_many(retry_after_s: u64, body: Response) -> Response {
    let mut r = body;
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    r
}

async fn require_login(
    State(console): State<Arc<Console>>,
    request: Request,
    next: Next,
) -> Response {
    let now = Instant::now();
    if session_ids(request.headers()).any(|id| console.gate.session_live(id, now)) {
        return next.run(request).await;
    }
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    if let Some(token) = bearer {
        let client = client_address(&request);
        match console.gate.attempt(client, &token, now) {
            Attempt::Accepted => return next.run(request).await,
            Attempt::Limited(s) => {
                tracing::warn!(%client, "console: a bearer token refused, too many failures");
                return too_many(s, "too many failed logins; try again later".into_response());
            }
            Attempt::Refused => tracing::warn!(%client, "console: a wrong bearer token"),
        }
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

/// Largest login form read.
const LOGIN_BODY_LIMIT: usize = 8 * 1024;

async fn login(State(console): State<Arc<Console>>, request: Request) -> Response {
    let client = client_address(&request);
    let Ok(body) = axum::body::to_bytes(request.into_body(), LOGIN_BODY_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the login form is too large").into_response();
    };
    let body = String::from_utf8_lossy(&body);
    let given = form_field(&body, "token").unwrap_or_default();
    let now = Instant::now();
    match console.gate.attempt(client, &given, now) {
        Attempt::Accepted => {}
        Attempt::Refused => {
            tracing::warn!(%client, "console: a login with a wrong token");
            let mut r = login_form("wrong token");
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            return r;
        }
        Attempt::Limited(s) => {
            tracing::warn!(%client, "console: a login refused, too many failures");
            return too_many(
                s,
                login_form(&format!(
                    "too many failed logins from your address: try again in {s} s"
                )),
            );
        }
    }
    let id = console.gate.open_session(now);
    let mut response = Redirect::to("/").into_response();
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict",
        console.gate.session_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn logout(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    for id in session_ids(&headers) {
        console.gate.close_session(id);
    }
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

/// Serve the console on `listener` until `shutdown` (client addresses known to the login's
/// rate limit).
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Arc<Console>,
    shutdown: spinescreen_runtime::CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        router(console).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await?;
    Ok(())
}
