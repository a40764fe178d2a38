//! The console's HTML: minijinja templates (`services/ledger/templates`, embedded in the binary)
//! and the views they are given. Every value is HTML-escaped on output (station names, reasons
//! and descriptions come from DICOM and are untrusted); the views hold plain text, never markup.

use crate::metrics::{is_scanner_fault, station_label, StationDay};
use crate::monitor::report::{Proportion, ReviewReport};
use crate::monitor::stored::StoredReport;
use crate::query::{StudyRow, Timeline};
use crate::studies::{conclusion, fracture_levels};
use crate::when::utc_text;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use std::sync::OnceLock;

/// Every template, by name.
const TEMPLATES: [(&str, &str); 6] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("list.html", include_str!("../../templates/list.html")),
    ("study.html", include_str!("../../templates/study.html")),
    (
        "stations.html",
        include_str!("../../templates/stations.html"),
    ),
    ("monitor.html", include_str!("../../templates/monitor.html")),
];

fn environment() -> Result<&'static Environment<'static>, String> {
    static ENV: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Escape everything, whatever a template is called.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| format!("template {name}: {e:#}"))?;
        }
        Ok(env)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Render template `name` with `view` (and the page `title`).
pub(super) fn render<V: Serialize>(name: &str, title: &str, view: &V) -> Result<String, String> {
    let env = environment()?;
    let template = env.get_template(name).map_err(|e| format!("{e:#}"))?;
    let page = Value::from(Serde(view));
    let title = Value::from(title);
    template
        .render(minijinja::context! { title => title, ..page })
        .map_err(|e| format!("template {name}: {e:#}"))
}

/// The login form, with an error `message` when not empty.
#[derive(Serialize)]
pub(super) struct LoginView<'a> {
    pub message: &'a str,
}

/// A path segment, percent-encoded except for unreserved characters.
pub(super) fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The study list with its filter.
#[derive(Serialize)]
pub(super) struct ListView {
    since: String,
    status: String,
    station: String,
    count: usize,
    rows: Vec<ListRow>,
}

#[derive(Serialize)]
struct ListRow {
    class: &'static str,
    received: String,
    accession: String,
    station: String,
    status: String,
    conclusion: String,
    seconds: String,
    /// `met`, `missed` or empty.
    sla: &'static str,
    segment: String,
    uid: String,
}

impl ListView {
    pub(super) fn new(since: &str, status: &str, station: &str, rows: &[StudyRow]) -> Self {
        let rows = rows
            .iter()
            .map(|r| {
                let (sla, class) = match r.sla_met {
                    Some(true) => ("met", "sla-met"),
                    Some(false) => ("missed", "sla-missed"),
                    None => ("", ""),
                };
                let class = match r.status.as_deref() {
                    Some("technical_defect" | "abstained") => "defect",
                    _ if r.state == "dead_lettered" => "sla-missed",
                    _ => class,
                };
                ListRow {
                    class,
                    received: utc_text(r.received_at_ms),
                    accession: r.accession_number.clone(),
                    station: r.station_name.clone(),
                    status: r.status_or_state().to_string(),
                    conclusion: conclusion(r, ""),
                    seconds: r
                        .end_to_end_ms
                        .map(|m| format!("{:.0}", m as f64 / 1000.0))
                        .unwrap_or_default(),
                    sla,
                    segment: encode_segment(&r.study_uid),
                    uid: r.study_uid.clone(),
                }
            })
            .collect::<Vec<_>>();
        Self {
            since: since.into(),
            status: status.into(),
            station: station.into(),
            count: rows.len(),
            rows,
        }
    }
}

/// One or more studies (an accession number may name several), each with its timeline.
#[derive(Serialize)]
pub(super) struct StudyView {
    studies: Vec<StudyBlock>,
}

#[derive(Serialize)]
struct StudyBlock {
    uid: String,
    segment: String,
    fields: Vec<Field>,
    findings: Vec<FindingRow>,
    /// Preview and SR links shown (a store is configured and the study is done).
    objects: bool,
    events: Vec<EventRow>,
}

#[derive(Serialize)]
struct Field {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
struct FindingRow {
    level: String,
    grade: i16,
    deformity: String,
    kind: String,
}

#[derive(Serialize)]
struct EventRow {
    at: String,
    stage: String,
    kind: String,
    attempt: i32,
    detail: String,
}

impl StudyView {
    pub(super) fn new(found: &[Timeline], with_store: bool) -> Self {
        let studies = found
            .iter()
            .map(|t| {
                let s = &t.study;
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
                ]
                .into_iter()
                .map(|(name, value)| Field {
                    name,
                    value: value.trim().to_string(),
                })
                .collect();
                StudyBlock {
                    uid: s.study_uid.clone(),
                    segment: encode_segment(&s.study_uid),
                    fields,
                    findings: t
                        .findings
                        .iter()
                        .map(|f| FindingRow {
                            level: f.level.clone(),
                            grade: f.genant_grade,
                            deformity: format!("{:.0} %", f.deformity * 100.0),
                            kind: f.deformity_type.clone(),
                        })
                        .collect(),
                    objects: with_store && s.state == "done",
                    events: t
                        .events
                        .iter()
                        .map(|e| EventRow {
                            at: utc_text(Some(e.at_ms)),
                            stage: e.stage.clone(),
                            kind: e.kind.clone(),
                            attempt: e.attempt,
                            detail: [e.destination.as_deref(), e.reason.as_deref()]
                                .into_iter()
                                .flatten()
                                .collect::<Vec<_>>()
                                .join(" "),
                        })
                        .collect(),
                }
            })
            .collect();
        Self { studies }
    }
}

/// Studies, defects and scanner faults per station today.
#[derive(Serialize)]
pub(super) struct StationsView {
    stations: Vec<StationRow>,
}

#[derive(Serialize)]
struct StationRow {
    /// The station name, percent-encoded for the list's query string.
    query: String,
    label: String,
    studies: i64,
    defects: i64,
    rate: String,
    faults: i64,
    rings: i64,
    reasons: String,
}

impl StationsView {
    pub(super) fn new(day: &StationDay) -> Self {
        let stations = day
            .studies
            .iter()
            .map(|(station, n)| {
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
                StationRow {
                    query: encode_segment(station),
                    label: station_label(station).to_string(),
                    studies: *n,
                    defects,
                    rate: if *n > 0 {
                        format!("{:.0} %", 100.0 * defects as f64 / *n as f64)
                    } else {
                        String::new()
                    },
                    faults,
                    rings,
                    reasons: mine
                        .iter()
                        .map(|d| format!("{} × {}", d.2, d.1))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })
            .collect();
        Self { stations }
    }
}

/// The monitoring page: one review report in full, and the list of recorded ones.
#[derive(Serialize)]
pub(super) struct MonitorView {
    report: Option<ReportView>,
    reports: Vec<ReportSummary>,
}

#[derive(Serialize)]
struct ReportView {
    id: i64,
    recorded: String,
    source: String,
    studies: usize,
    period: String,
    measures: Vec<Measure>,
    processing: String,
    interpretation: Vec<Count>,
    by_reason: Vec<Share>,
    by_station: Vec<StationShare>,
}

/// One proportion of the report, formatted.
#[derive(Serialize)]
struct Measure {
    id: &'static str,
    name: &'static str,
    value: String,
    count: String,
    ci: String,
    verdict: &'static str,
    /// `may_proceed`, `needs_work`, `unfit` or empty.
    verdict_class: &'static str,
}

#[derive(Serialize)]
struct Count {
    name: String,
    studies: usize,
}

#[derive(Serialize)]
struct Share {
    name: String,
    studies: usize,
    share: String,
}

#[derive(Serialize)]
struct StationShare {
    name: String,
    studies: usize,
    not_analysed: usize,
    share: String,
}

#[derive(Serialize)]
struct ReportSummary {
    id: i64,
    recorded: String,
    source: String,
    studies: usize,
    conclusion: String,
    localisation: String,
    sla: String,
}

fn two(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into())
}

fn percent(k: usize, n: usize) -> String {
    format!("{:.1} %", 100.0 * k as f64 / n.max(1) as f64)
}

fn measure(id: &'static str, name: &'static str, p: &Proportion, banded: bool) -> Measure {
    let verdict = p.verdict.filter(|_| banded);
    Measure {
        id,
        name,
        value: two(p.value),
        count: format!("{} of {}", p.successes, p.n),
        ci: p
            .ci95
            .map(|ci| format!("{:.2}–{:.2}", ci.lower, ci.upper))
            .unwrap_or_default(),
        verdict: verdict.map(|v| v.describe()).unwrap_or(""),
        verdict_class: match verdict {
            Some(spinescreen_eval::verdict::Verdict::MayProceed) => "may_proceed",
            Some(spinescreen_eval::verdict::Verdict::NeedsWork) => "needs_work",
            Some(spinescreen_eval::verdict::Verdict::Unfit) => "unfit",
            None => "",
        },
    }
}

impl ReportView {
    fn new(stored: &StoredReport) -> Self {
        let r: &ReviewReport = &stored.report;
        Self {
            id: stored.id,
            recorded: utc_text(Some(stored.recorded_at_ms)),
            source: stored.source.clone(),
            studies: r.studies,
            period: r
                .received
                .as_ref()
                .map(|(first, last)| format!("{first} – {last}"))
                .unwrap_or_default(),
            measures: vec![
                measure(
                    "conclusion",
                    "agreement with the conclusion",
                    &r.conclusion_agreement,
                    true,
                ),
                measure(
                    "localisation",
                    "agreement with the localisation",
                    &r.localisation_agreement,
                    true,
                ),
                measure(
                    "not-analysed",
                    "not analysed (technical defects, abstentions)",
                    &r.not_analysed,
                    false,
                ),
                measure("sla", "within the 390 s SLA", &r.sla, false),
            ],
            processing: match r.processing_s_mean_sd {
                Some((mean, sd)) => format!("{mean:.1} ± {sd:.1} s (n = {})", r.processing_n),
                None => "n/a".into(),
            },
            interpretation: r
                .interpretation
                .iter()
                .map(|(name, n)| Count {
                    name: name.clone(),
                    studies: *n,
                })
                .collect(),
            by_reason: r
                .not_analysed_by_reason
                .iter()
                .map(|(name, n)| Share {
                    name: name.clone(),
                    studies: *n,
                    share: percent(*n, r.studies),
                })
                .collect(),
            by_station: r
                .not_analysed_by_station
                .iter()
                .map(|(name, d)| StationShare {
                    name: name.clone(),
                    studies: d.studies,
                    not_analysed: d.not_analysed,
                    share: percent(d.not_analysed, d.studies),
                })
                .collect(),
        }
    }
}

impl MonitorView {
    /// `shown` in full (none: no report recorded), and the list `recorded`.
    pub(super) fn new(shown: Option<&StoredReport>, recorded: &[StoredReport]) -> Self {
        Self {
            report: shown.map(ReportView::new),
            reports: recorded
                .iter()
                .map(|s| ReportSummary {
                    id: s.id,
                    recorded: utc_text(Some(s.recorded_at_ms)),
                    source: s.source.clone(),
                    studies: s.report.studies,
                    conclusion: two(s.report.conclusion_agreement.value),
                    localisation: two(s.report.localisation_agreement.value),
                    sla: two(s.report.sla.value),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::report::review_report;

    fn row(station: &str) -> StudyRow {
        let text = |s: &str| s.to_string();
        StudyRow {
            study_uid: text("1.2.3"),
            job_id: None,
            incoming_prefix: None,
            accession_number: text("A&1"),
            station_name: text(station),
            manufacturer: String::new(),
            model: String::new(),
            series_uid: String::new(),
            series_number: String::new(),
            series_description: String::new(),
            received_at_ms: Some(0),
            finished_at_ms: None,
            state: text("done"),
            status: Some(text("technical_defect")),
            reason_code: Some(text("RING_ARTIFACTS")),
            reason_text: Some(text("rings \"here\"")),
            has_fracture: None,
            fracture_probability: None,
            max_deformity: None,
            bone_density_level: None,
            bone_density_hu: None,
            bone_density_category: None,
            bone_density_band: None,
            end_to_end_ms: Some(1000),
            sla_met: Some(true),
            delivery: None,
            result_key: None,
        }
    }

    #[test]
    fn every_template_compiles() {
        let env = environment().unwrap();
        for (name, _) in TEMPLATES {
            env.get_template(name).unwrap();
        }
    }

    #[test]
    fn untrusted_text_is_escaped_on_every_page() {
        let evil = "<script>alert(1)</script>";
        let list = render("list.html", "t", &ListView::new(evil, "", "", &[row(evil)])).unwrap();
        assert!(!list.contains("<script>"), "{list}");
        assert!(list.contains("&lt;script&gt;alert(1)&lt;"), "{list}");
        assert!(list.contains("value=\"&lt;script&gt;"), "{list}");
        assert!(list.contains("<td>A&amp;1</td>"), "{list}");
        let day = StationDay {
            studies: vec![(evil.into(), 2)],
            defects: vec![(evil.into(), "RING_ARTIFACTS".into(), 1)],
        };
        let stations = render("stations.html", "t", &StationsView::new(&day)).unwrap();
        assert!(!stations.contains("<script>"), "{stations}");
        assert!(stations.contains("station=%3Cscript%3E"), "{stations}");
        let title = render("login.html", evil, &LoginView { message: evil }).unwrap();
        assert!(!title.contains("<script>"), "{title}");
    }

    #[test]
    fn the_monitoring_page_shows_a_reports_figures() {
        let csv = "station_name,status,reason_code,agree_with_conclusion,\
                   agree_with_localisation,processing_s,sla_met,received_at_utc\n\
                   <b>CT</b>,ok,,yes,yes,40,yes,2026-11-02 08:00:00\n\
                   <b>CT</b>,technical_defect,RING_ARTIFACTS,yes,,50,yes,2026-11-01 09:00:00\n\
                   CT-1,ok,,no,no,60,no,2026-11-03 10:00:00\n";
        let stored = StoredReport {
            id: 7,
            recorded_at_ms: 86_400_000,
            source: "worksheet.csv".into(),
            report: review_report(csv).unwrap(),
        };
        let page = render(
            "monitor.html",
            "t",
            &MonitorView::new(Some(&stored), std::slice::from_ref(&stored)),
        )
        .unwrap();
        for expected in [
            "Review 7: recorded 1970-01-02 00:00:00 (UTC)",
            "received 2026-11-01 09:00:00 – 2026-11-03 10:00:00 (UTC)",
            "<td>0.67</td><td>2 of 3</td>",
            "<td>0.50</td><td>1 of 2</td>",
            "unfit (≤ 0.60)",
            "50.0 ± 10.0 s (n = 3)",
            "<td>RING_ARTIFACTS</td><td>1</td><td>33.3 %</td>",
            "<td>&lt;b&gt;CT&lt;&#x2f;b&gt;</td><td>2</td><td>1</td><td>50.0 %</td>",
            "<a href=\"/monitor/7\">7</a>",
        ] {
            assert!(page.contains(expected), "{expected:?} in {page}");
        }
        let empty = render("monitor.html", "t", &MonitorView::new(None, &[])).unwrap();
        assert!(empty.contains("id=\"no-report\""), "{empty}");
    }
}
