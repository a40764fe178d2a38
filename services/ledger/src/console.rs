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
//! - `GET /api/studies`, `GET /api/studies/{key}` — the same as JSON (cookie or
//!   `Authorization: Bearer <token>`).
//!
//! Every page but the login needs the token. It only reads; nothing on it changes a study.
//! Serve it inside the hospital network only: it shows accession numbers (never patient names,
//! IDs or birth dates, which the ledger does not hold).

use crate::db::Ledger;
use crate::metrics::{is_scanner_fault, station_day, station_label};
use crate::query::{find, list, timeline, ListFilter, StudyRow, Timeline};
use crate::studies::{conclusion, fracture_levels};
use crate::when::{parse_time, utc_text};
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
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

fn login_form(message: &str) -> Html<String> {
    page(
        "spinescreen console: log in",
        &format!(
            "<h1>spinescreen console</h1>\n{message}<form method=\"post\" action=\"/login\">\
             <label>token <input type=\"password\" name=\"token\" id=\"token\" \
             autocomplete=\"current-password\" autofocus></label> \
             <button id=\"login\">log in</button></form>\n"
        ),
    )
}

async fn page_login() -> Html<String> {
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
        return (
            StatusCode::UNAUTHORIZED,
            login_form("<p class=\"bad\" id=\"error\">wrong token</p>\n"),
        )
            .into_response();
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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A path segment, percent-encoded except for unreserved characters.
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}\
         td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}}\
         .bad{{color:#b00}}tr.sla-met{{background:#e8f5e9}}tr.sla-missed{{background:#ffebee}}\
         tr.defect{{background:#fff8e1}}nav form{{display:inline}}\
         img#preview{{max-width:100%;border:1px solid #ccc}}</style></head><body>\n{body}\
         </body></html>\n",
        escape(title)
    ))
}

/// Links on every page behind the login.
const NAV: &str = "<nav><a href=\"/\">studies</a> · <a href=\"/stations\">stations</a> · \
    <form method=\"post\" action=\"/logout\"><button>log out</button></form></nav>\n";

async fn page_list(
    State(console): State<Arc<Console>>,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, Failure> {
    let rows = rows(&console, &q).await?;
    let v = |o: &Option<String>| escape(o.as_deref().unwrap_or(""));
    let mut body = format!(
        "{NAV}<h1>Studies</h1>\n<form method=\"get\" action=\"/\" id=\"filter\">since \
         <input name=\"since\" value=\"{}\" placeholder=\"24h\"> status <input name=\"status\" \
         value=\"{}\" placeholder=\"technical_defect\"> station <input name=\"station\" \
         value=\"{}\"> <button>filter</button></form>\n<p id=\"count\">{} studies</p>\n\
         <table id=\"studies\">\
         <tr><th>received (UTC)</th><th>accession</th><th>station</th><th>status</th>\
         <th>conclusion</th><th>time, s</th><th>SLA</th><th>study</th></tr>\n",
        v(&q.since),
        v(&q.status),
        v(&q.station),
        rows.len()
    );
    for r in &rows {
        let (sla, class) = match r.sla_met {
            Some(true) => ("met", "sla-met"),
            Some(false) => ("<span class=\"bad\">missed</span>", "sla-missed"),
            None => ("", ""),
        };
        let class = match r.status.as_deref() {
            Some("technical_defect" | "abstained") => "defect",
            _ if r.state == "dead_lettered" => "sla-missed",
            _ => class,
        };
        body.push_str(&format!(
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{sla}</td>\
             <td><a href=\"/studies/{}\">{}</a></td></tr>\n",
            escape(&utc_text(r.received_at_ms)),
            escape(&r.accession_number),
            escape(&r.station_name),
            escape(r.status_or_state()),
            escape(&conclusion(r, "")),
            r.end_to_end_ms
                .map(|m| format!("{:.0}", m as f64 / 1000.0))
                .unwrap_or_default(),
            encode_segment(&r.study_uid),
            escape(&r.study_uid),
        ));
    }
    body.push_str("</table>\n");
    Ok(page("spinescreen studies", &body))
}

async fn page_study(
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
) -> Result<Html<String>, Failure> {
    let found = timelines(&console, &key).await?;
    let mut body = String::from(NAV);
    for t in &found {
        let s = &t.study;
        body.push_str(&format!(
            "<h1>Study {}</h1>\n<table class=\"study\">\n",
            escape(&s.study_uid)
        ));
        let fields = [
            ("accession", s.accession_number.clone()),
            (
                "scanner",
                format!("{} ({} {})", s.station_name, s.manufacturer, s.model),
            ),
            (
                "series",
                format!("#{} {}", s.series_number, s.series_description),
            ),
            ("received (UTC)", utc_text(s.received_at_ms)),
            ("finished (UTC)", utc_text(s.finished_at_ms)),
            ("status", s.status_or_state().to_string()),
            (
                "reason",
                format!(
                    "{} {}",
                    s.reason_code.as_deref().unwrap_or(""),
                    s.reason_text.as_deref().unwrap_or("")
                ),
            ),
            ("conclusion", conclusion(s, &fracture_levels(t))),
            (
                "end to end, s",
                s.end_to_end_ms
                    .map(|m| format!("{:.1}", m as f64 / 1000.0))
                    .unwrap_or_default(),
            ),
            ("delivery", s.delivery.clone().unwrap_or_default()),
        ];
        for (name, value) in fields {
            body.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>\n",
                escape(name),
                escape(value.trim())
            ));
        }
        body.push_str("</table>\n");
        if !t.findings.is_empty() {
            body.push_str(
                "<h2>Findings</h2>\n<table class=\"findings\"><tr><th>level</th>\
                 <th>Genant grade</th><th>deformity</th><th>type</th></tr>\n",
            );
            for f in &t.findings {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{:.0} %</td><td>{}</td></tr>\n",
                    escape(&f.level),
                    f.genant_grade,
                    f.deformity * 100.0,
                    escape(&f.deformity_type)
                ));
            }
            body.push_str("</table>\n");
        }
        if console.store.is_some() && s.state == "done" {
            let seg = encode_segment(&s.study_uid);
            body.push_str(&format!(
                "<h2>Preview</h2>\n<p><img id=\"preview\" src=\"/studies/{seg}/preview.png\" \
                 alt=\"preview of study {}\"></p>\n<p><a id=\"sr\" \
                 href=\"/studies/{seg}/sr.dcm\" download>download the structured report \
                 (sr.dcm)</a></p>\n",
                escape(&s.study_uid)
            ));
        }
        body.push_str(
            "<h2>Timeline</h2>\n<table class=\"timeline\">\
                       <tr><th>UTC</th><th>stage</th><th>event</th><th>attempt</th>\
                       <th>detail</th></tr>\n",
        );
        for e in &t.events {
            let detail = [e.destination.as_deref(), e.reason.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&utc_text(Some(e.at_ms))),
                escape(&e.stage),
                escape(&e.kind),
                e.attempt,
                escape(&detail)
            ));
        }
        body.push_str("</table>\n");
    }
    Ok(page(&format!("spinescreen study {key}"), &body))
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
    let mut body = format!(
        "{NAV}<h1>Stations today (since 00:00 UTC)</h1>\n<table id=\"stations\"><tr>\
         <th>station</th><th>studies</th><th>not analysed</th><th>rate</th>\
         <th>scanner faults</th><th>ring artefacts</th><th>reasons</th></tr>\n"
    );
    for (station, n) in &day.studies {
        let mine: Vec<&(String, String, i64)> =
            day.defects.iter().filter(|d| &d.0 == station).collect();
        let defects: i64 = mine.iter().map(|d| d.2).sum();
        let faults: i64 = mine
            .iter()
            .filter(|d| is_scanner_fault(&d.1))
            .map(|d| d.2)
            .sum();
        let rings: i64 = mine
            .iter()
            .filter(|d| d.1 == spinescreen_proto::ReasonCode::RING_ARTIFACTS)
            .map(|d| d.2)
            .sum();
        let reasons = mine
            .iter()
            .map(|d| format!("{} × {}", d.2, d.1))
            .collect::<Vec<_>>()
            .join(", ");
        let rate = if *n > 0 {
            format!("{:.0} %", 100.0 * defects as f64 / *n as f64)
        } else {
            String::new()
        };
        let class = if faults > 0 { " class=\"defect\"" } else { "" };
        body.push_str(&format!(
            "<tr{class}><td><a href=\"/?since=1d&amp;station={}\">{}</a></td><td>{n}</td>\
             <td>{defects}</td><td>{rate}</td><td>{faults}</td><td>{rings}</td><td>{}</td></tr>\n",
            escape(&form_encode(station)),
            escape(station_label(station)),
            escape(&reasons)
        ));
    }
    body.push_str("</table>\n");
    Ok(page("spinescreen stations", &body))
}

/// A query-string value, percent-encoded except for unreserved characters.
fn form_encode(s: &str) -> String {
    encode_segment(s)
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
