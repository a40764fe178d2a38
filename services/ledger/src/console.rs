//! The operator console: a read-only web page over the ledger (`spinescreen console`).
//!
//! - `GET /` — the study list, filtered like `studies list` (`?since=24h&status=…&station=…`);
//! - `GET /studies/{key}` — one study (UID or accession number) with its timeline;
//! - `GET /api/studies`, `GET /api/studies/{key}` — the same as JSON.
//!
//! It only reads; nothing on it changes a study. Serve it inside the hospital network only: it
//! shows accession numbers (never patient names, IDs or birth dates, which the ledger does not
//! hold).

use crate::db::Ledger;
use crate::query::{find, list, timeline, ListFilter, StudyRow, Timeline};
use crate::studies::{conclusion, fracture_levels};
use crate::when::{parse_time, utc_text};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use spinescreen_runtime::events::now_unix_ms;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Rows on one page of the list.
const PAGE: i64 = 200;

/// Shared by every request: one ledger connection, made again when lost.
pub struct Console {
    url: String,
    schema: String,
    ledger: Mutex<Option<Arc<Ledger>>>,
}

impl Console {
    /// A console over the ledger at `url` / `schema` (connected on first use).
    pub fn new(url: String, schema: String) -> Arc<Self> {
        Arc::new(Self {
            url,
            schema,
            ledger: Mutex::new(None),
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

/// The console's routes.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(page_list))
        .route("/studies/{key}", get(page_study))
        .route("/api/studies", get(api_list))
        .route("/api/studies/{key}", get(api_study))
        .with_state(console)
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
         .bad{{color:#b00}}</style></head><body>\n{body}</body></html>\n",
        escape(title)
    ))
}

async fn page_list(
    State(console): State<Arc<Console>>,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, Failure> {
    let rows = rows(&console, &q).await?;
    let v = |o: &Option<String>| escape(o.as_deref().unwrap_or(""));
    let mut body = format!(
        "<h1>Studies</h1>\n<form method=\"get\" action=\"/\">since <input name=\"since\" \
         value=\"{}\" placeholder=\"24h\"> status <input name=\"status\" value=\"{}\" \
         placeholder=\"technical_defect\"> station <input name=\"station\" value=\"{}\"> \
         <button>filter</button></form>\n<p>{} studies</p>\n<table id=\"studies\">\
         <tr><th>received (UTC)</th><th>accession</th><th>station</th><th>status</th>\
         <th>conclusion</th><th>time, s</th><th>SLA</th><th>study</th></tr>\n",
        v(&q.since),
        v(&q.status),
        v(&q.station),
        rows.len()
    );
    for r in &rows {
        let sla = match r.sla_met {
            Some(true) => "met",
            Some(false) => "<span class=\"bad\">missed</span>",
            None => "",
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{sla}</td>\
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
    let mut body = String::from("<p><a href=\"/\">all studies</a></p>\n");
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
        body.push_str(
            "</table>\n<h2>Timeline</h2>\n<table class=\"timeline\">\
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
