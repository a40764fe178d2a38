//! `spinescreen studies list | show | retry`: the ledger for operators.

use crate::query::{StudyRow, Timeline};
use crate::when::utc_text;
use spinescreen_proto::{Job, Stage};
use spinescreen_runtime::{Broker, StudyStore};
use std::fmt::Write as _;

/// `fracture L1:2 T12:3`, `no fracture`, or the reason code of a study not analysed.
pub fn conclusion(row: &StudyRow, levels: &str) -> String {
    match (row.state.as_str(), row.status.as_deref(), row.has_fracture) {
        ("done", Some("ok"), Some(true)) if !levels.is_empty() => format!("fracture {levels}"),
        ("done", Some("ok"), Some(true)) => "fracture".into(),
        ("done", Some("ok"), _) => "no fracture".into(),
        _ => row.reason_code.clone().unwrap_or_default(),
    }
}

/// The list as a fixed-width table.
pub fn render_list(rows: &[StudyRow]) -> String {
    let mut out = format!(
        "{:<19}  {:<16}  {:<12}  {:<16}  {:<22}  {:>6}  {:<3}  {}\n",
        "RECEIVED (UTC)",
        "ACCESSION",
        "STATION",
        "STATUS",
        "CONCLUSION",
        "TIME_S",
        "SLA",
        "STUDY UID"
    );
    for r in rows {
        // Time and SLA belong to a finished run, not to a retry still in progress.
        let done = r.state == "done";
        let secs = r
            .end_to_end_ms
            .filter(|_| done)
            .map(|m| format!("{:.0}", m as f64 / 1000.0))
            .unwrap_or_default();
        let sla = match r.sla_met.filter(|_| done) {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        let _ = writeln!(
            out,
            "{:<19}  {:<16}  {:<12}  {:<16}  {:<22}  {:>6}  {:<3}  {}",
            utc_text(r.received_at_ms),
            r.accession_number,
            r.station_name,
            r.status_or_state(),
            conclusion(r, ""),
            secs,
            sla,
            r.study_uid
        );
    }
    let _ = writeln!(out, "{} studies", rows.len());
    out
}

/// Levels graded Genant ≥ 2 as `L1:2 T12:3`.
pub fn fracture_levels(t: &Timeline) -> String {
    t.findings
        .iter()
        .filter(|f| f.genant_grade >= 2)
        .map(|f| format!("{}:{}", f.level, f.genant_grade))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One study: what it is, what was concluded, how long each stage took, and its timeline.
pub fn render_timeline(t: &Timeline) -> String {
    let s = &t.study;
    let mut out = String::new();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let _ = writeln!(out, "study          {}", s.study_uid);
    let _ = writeln!(out, "accession      {}", s.accession_number);
    let _ = writeln!(
        out,
        "scanner        {} ({} {})",
        s.station_name, s.manufacturer, s.model
    );
    let _ = writeln!(
        out,
        "series         {} #{} {}",
        s.series_uid, s.series_number, s.series_description
    );
    let _ = writeln!(out, "received       {}", utc_text(s.received_at_ms));
    let _ = writeln!(out, "finished       {}", utc_text(s.finished_at_ms));
    let _ = writeln!(out, "status         {}", s.status_or_state());
    if s.reason_code.is_some() || s.reason_text.is_some() {
        let _ = writeln!(
            out,
            "reason         {} {}",
            opt(&s.reason_code),
            opt(&s.reason_text)
        );
    }
    let _ = writeln!(out, "conclusion     {}", conclusion(s, &fracture_levels(t)));
    if let Some(p) = s.fracture_probability {
        let _ = writeln!(out, "probability    {p:.2}");
    }
    if let (Some(level), Some(hu)) = (&s.bone_density_level, s.bone_density_hu) {
        let _ = writeln!(
            out,
            "bone density   {level} {hu:.0} HU: {} (ISCD), {} (Pickhardt)",
            opt(&s.bone_density_category),
            opt(&s.bone_density_band)
        );
    }
    if let Some(e2e) = s.end_to_end_ms {
        let met = if s.sla_met == Some(true) {
            "met"
        } else {
            "MISSED"
        };
        let _ = writeln!(
            out,
            "end to end     {:.1} s (SLA 390 s {met})",
            e2e as f64 / 1000.0
        );
    }
    let _ = writeln!(out, "delivery       {}", opt(&s.delivery));
    if !t.findings.is_empty() {
        let _ = writeln!(out, "\nvertebrae");
        for f in &t.findings {
            let _ = writeln!(
                out,
                "  {:<4} Genant {}  {:>5.1} %  {}",
                f.level,
                f.genant_grade,
                f.deformity * 100.0,
                f.deformity_type
            );
        }
    }
    if !t.stage_times.is_empty() {
        let _ = writeln!(out, "\nstage times (ms)");
        for (stage, took) in &t.stage_times {
            let _ = writeln!(out, "  {stage:<12} {took}");
        }
    }
    if !t.deliveries.is_empty() {
        let _ = writeln!(out, "\ndeliveries");
        for d in &t.deliveries {
            let _ = writeln!(
                out,
                "  {}  {} instances  {}",
                d.destination,
                d.instances,
                utc_text(Some(d.last_at_ms))
            );
        }
    }
    let _ = writeln!(out, "\ntimeline (UTC)");
    for e in &t.events {
        let mut line = format!(
            "  {}  {:<11} {:<15} attempt {}",
            utc_text(Some(e.at_ms)),
            e.stage,
            e.kind,
            e.attempt
        );
        if let Some(d) = &e.destination {
            let _ = write!(line, "  {d}");
        }
        if let Some(r) = &e.reason {
            let _ = write!(line, "  {r}");
        }
        let _ = writeln!(out, "{line}  [job {}]", e.job_id);
    }
    out
}

/// `studies retry`: run `study` again from its received files, as a new reception (new job id,
/// SLA clock from now). Fails when the ledger has no reception for it or its files are gone.
pub async fn retry(
    study: &StudyRow,
    broker: &dyn Broker,
    store: &StudyStore,
    now_unix_ms: u64,
) -> anyhow::Result<Job> {
    let prefix = study
        .incoming_prefix
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the ledger has no reception for study {}; nothing to run again",
                study.study_uid
            )
        })?;
    let files = store.list(&prefix).await?;
    anyhow::ensure!(
        !files.is_empty(),
        "the received files of study {} ({prefix}) are no longer in the store",
        study.study_uid
    );
    let job = Job::ingest(uuid::Uuid::new_v4().to_string(), prefix, now_unix_ms);
    spinescreen_runtime::broker::submit(broker, Stage::Ingest, &job).await?;
    Ok(job)
}
