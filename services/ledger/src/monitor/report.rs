//! `spinescreen monitor report --reviews FILE`: the filled worksheet in, the experiment's
//! figures out — agreement with the conclusion and with the localisation (Wilson 95 % intervals
//! and verdict bands from `spinescreen-eval`), the experts' interpretation grades, studies not
//! analysed by reason and by station, processing time mean ± SD and the share within the SLA.

use super::worksheet::{parse_csv, parse_yes_no};
use serde::{Deserialize, Serialize};
use spinescreen_eval::stats::{mean_sd, wilson_interval, Interval};
use spinescreen_eval::verdict::{verdict, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `k` of `n`, with its Wilson 95 % interval and the experiment's verdict band. Read back from
/// JSON (a stored report), only the counts are taken; the rest is computed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Counts")]
pub struct Proportion {
    /// Cases that count as agreeing.
    pub successes: usize,
    /// Cases counted.
    pub n: usize,
    /// `successes / n`; `None` when `n = 0`.
    pub value: Option<f64>,
    /// Wilson 95 % interval; `None` when `n = 0`.
    pub ci95: Option<Interval>,
    /// The experiment's verdict band; `None` when `n = 0`.
    pub verdict: Option<Verdict>,
}

/// The counts a [`Proportion`] is computed from.
#[derive(Deserialize)]
struct Counts {
    successes: usize,
    n: usize,
}

impl From<Counts> for Proportion {
    fn from(c: Counts) -> Self {
        Self::new(c.successes, c.n)
    }
}

impl Proportion {
    /// `successes` of `n`.
    pub fn new(successes: usize, n: usize) -> Self {
        let value = (n > 0).then(|| successes as f64 / n as f64);
        Self {
            successes,
            n,
            value,
            ci95: wilson_interval(successes, n),
            verdict: value.map(verdict),
        }
    }

    fn text(&self, with_verdict: bool) -> String {
        match (self.value, self.ci95) {
            (Some(v), Some(ci)) => {
                let mut s = format!(
                    "{:.2} ({} of {}; 95 % CI {:.2}–{:.2})",
                    v, self.successes, self.n, ci.lower, ci.upper
                );
                if let (true, Some(verdict)) = (with_verdict, self.verdict) {
                    let _ = write!(s, " — {}", verdict.describe());
                }
                s
            }
            _ => "n/a (nothing reviewed)".into(),
        }
    }
}

/// Studies not analysed at one station, of all studies of that station in the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationDefects {
    /// Studies not analysed (technical defect or abstention).
    pub not_analysed: usize,
    /// All studies of the station in the sample.
    pub studies: usize,
}

/// The review's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewReport {
    /// Rows of the worksheet.
    pub studies: usize,
    /// The earliest and the latest `received_at_utc` of the worksheet's studies, when given.
    #[serde(default)]
    pub received: Option<(String, String)>,
    /// Experts agreeing with the service's conclusion, of studies reviewed on that point.
    pub conclusion_agreement: Proportion,
    /// Experts agreeing with the localisation, of studies reviewed on that point.
    pub localisation_agreement: Proportion,
    /// Counts of the `interpretation` column (fully correct / partly correct / wrong).
    pub interpretation: BTreeMap<String, usize>,
    /// Studies the service did not analyse (technical defect or abstention), of all studies.
    pub not_analysed: Proportion,
    /// Not analysed, by reason code.
    pub not_analysed_by_reason: BTreeMap<String, usize>,
    /// Not analysed, by station.
    pub not_analysed_by_station: BTreeMap<String, StationDefects>,
    /// Processing time (first instance received → delivered), seconds: mean and SD.
    pub processing_s_mean_sd: Option<(f64, f64)>,
    /// Studies with a processing time.
    pub processing_n: usize,
    /// Studies back within the SLA (390 s), of studies with an SLA verdict.
    pub sla: Proportion,
}

/// Compute the report from the worksheet's CSV text. Columns are found by name, so the experts
/// may reorder or add columns; `agree_with_conclusion` and `status` must be present.
pub fn review_report(text: &str) -> anyhow::Result<ReviewReport> {
    let rows = parse_csv(text).map_err(|e| anyhow::anyhow!("reviews: {e}"))?;
    let (head, body) = rows
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("reviews: the file is empty"))?;
    let col = |name: &str| head.iter().position(|h| h.trim() == name);
    let need = |name: &str| col(name).ok_or_else(|| anyhow::anyhow!("reviews: no {name:?} column"));
    let (agree, status) = (need("agree_with_conclusion")?, need("status")?);
    let (local, interp) = (col("agree_with_localisation"), col("interpretation"));
    let (reason, station) = (col("reason_code"), col("station_name"));
    let (secs, sla) = (col("processing_s"), col("sla_met"));
    let received_col = col("received_at_utc");
    let cell = |row: &Vec<String>, i: Option<usize>| -> String {
        i.and_then(|i| row.get(i))
            .map(|c| c.trim().to_string())
            .unwrap_or_default()
    };
    let mut conclusion = (0, 0);
    let mut localisation = (0, 0);
    let mut interpretation = BTreeMap::new();
    let mut not_analysed = 0;
    let mut by_reason = BTreeMap::new();
    let mut by_station: BTreeMap<String, StationDefects> = BTreeMap::new();
    let mut times = vec![];
    let mut within = (0, 0);
    let mut received: Option<(String, String)> = None;
    for row in body {
        let at = cell(row, received_col);
        if !at.is_empty() {
            received = Some(match received {
                Some((first, last)) => (first.min(at.clone()), last.max(at)),
                None => (at.clone(), at),
            });
        }
        if let Some(yes) = parse_yes_no(&cell(row, Some(agree))) {
            conclusion.0 += usize::from(yes);
            conclusion.1 += 1;
        }
        if let Some(yes) = parse_yes_no(&cell(row, local)) {
            localisation.0 += usize::from(yes);
            localisation.1 += 1;
        }
        let grade = cell(row, interp).to_lowercase();
        if !grade.is_empty() {
            *interpretation.entry(grade).or_insert(0) += 1;
        }
        let station_name = match cell(row, station) {
            s if s.is_empty() => "unknown".to_string(),
            s => s,
        };
        let entry = by_station.entry(station_name).or_insert(StationDefects {
            not_analysed: 0,
            studies: 0,
        });
        entry.studies += 1;
        let st = cell(row, Some(status));
        if !st.is_empty() && st != "ok" {
            not_analysed += 1;
            entry.not_analysed += 1;
            let code = match cell(row, reason) {
                r if r.is_empty() => st.clone(),
                r => r,
            };
            *by_reason.entry(code).or_insert(0) += 1;
        }
        if let Ok(s) = cell(row, secs).parse::<f64>() {
            times.push(s);
        }
        if let Some(met) = parse_yes_no(&cell(row, sla)) {
            within.0 += usize::from(met);
            within.1 += 1;
        }
    }
    Ok(ReviewReport {
        studies: body.len(),
        received,
        conclusion_agreement: Proportion::new(conclusion.0, conclusion.1),
        localisation_agreement: Proportion::new(localisation.0, localisation.1),
        interpretation,
        not_analysed: Proportion::new(not_analysed, body.len()),
        not_analysed_by_reason: by_reason,
        not_analysed_by_station: by_station,
        processing_s_mean_sd: mean_sd(&times),
        processing_n: times.len(),
        sla: Proportion::new(within.0, within.1),
    })
}

/// The report as Markdown.
pub fn render_markdown(r: &ReviewReport) -> String {
    let mut out = String::from("# Quality review\n\n");
    match &r.received {
        Some((first, last)) => {
            let _ = writeln!(
                out,
                "Studies reviewed: {} (received {first} – {last} UTC)\n",
                r.studies
            );
        }
        None => {
            let _ = writeln!(out, "Studies reviewed: {}\n", r.studies);
        }
    }
    let _ = writeln!(
        out,
        "- Agreement with the conclusion: {}",
        r.conclusion_agreement.text(true)
    );
    let _ = writeln!(
        out,
        "- Agreement with the localisation: {}",
        r.localisation_agreement.text(true)
    );
    if !r.interpretation.is_empty() {
        let grades: Vec<String> = r
            .interpretation
            .iter()
            .map(|(g, n)| format!("{g} {n}"))
            .collect();
        let _ = writeln!(out, "- Interpretation: {}", grades.join(", "));
    }
    let _ = writeln!(
        out,
        "- Not analysed (technical defects and abstentions): {}",
        r.not_analysed.text(false)
    );
    match r.processing_s_mean_sd {
        Some((mean, sd)) => {
            let _ = writeln!(
                out,
                "- Processing time: {mean:.0} ± {sd:.0} s (mean ± SD, n = {})",
                r.processing_n
            );
        }
        None => {
            let _ = writeln!(out, "- Processing time: n/a");
        }
    }
    let _ = writeln!(out, "- Within the 390 s SLA: {}", r.sla.text(false));
    if !r.not_analysed_by_reason.is_empty() {
        let _ = writeln!(
            out,
            "\n## Not analysed, by reason\n\n| reason | studies | share |\n|---|---|---|"
        );
        for (reason, n) in &r.not_analysed_by_reason {
            let _ = writeln!(
                out,
                "| {reason} | {n} | {:.1} % |",
                100.0 * *n as f64 / r.studies.max(1) as f64
            );
        }
    }
    let _ = writeln!(
        out,
        "\n## By station\n\n| station | studies | not analysed | share |\n|---|---|---|---|"
    );
    for (station, d) in &r.not_analysed_by_station {
        let _ = writeln!(
            out,
            "| {station} | {} | {} | {:.1} % |",
            d.studies,
            d.not_analysed,
            100.0 * d.not_analysed as f64 / d.studies.max(1) as f64
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::worksheet::{header, to_csv};

    /// A worksheet as the experts return it: 20 studies, 16 agreeing with the conclusion,
    /// localisation reviewed on 10 with 9 agreeing, two defects at CT-3, one at CT-1.
    fn worksheet() -> String {
        let columns = header();
        let at = |name: &str| columns.iter().position(|c| *c == name).unwrap();
        let mut rows = vec![];
        for i in 0..20 {
            let mut row = vec![String::new(); columns.len()];
            row[at("study_uid")] = format!("1.2.{i}");
            row[at("station_name")] = if i < 10 { "CT-3" } else { "CT-1" }.into();
            row[at("received_at_utc")] = format!("2026-11-{:02} 10:00:00", 20 - i);
            row[at("status")] = "ok".into();
            row[at("processing_s")] = format!("{}", 40 + i);
            row[at("sla_met")] = if i == 19 { "no" } else { "yes" }.into();
            row[at("agree_with_conclusion")] = if i < 16 { "yes" } else { "no" }.into();
            if i < 10 {
                row[at("agree_with_localisation")] = if i < 9 { "yes" } else { "no" }.into();
            }
            row[at("interpretation")] = if i < 16 { "fully correct" } else { "wrong" }.into();
            rows.push(row);
        }
        for (i, station, code) in [
            (0, "CT-3", "RING_ARTIFACTS"),
            (1, "CT-3", "RING_ARTIFACTS"),
            (12, "CT-1", "DECODE_FAILURE"),
        ] {
            rows[i][at("station_name")] = station.into();
            rows[i][at("status")] = "technical_defect".into();
            rows[i][at("reason_code")] = code.into();
        }
        to_csv(&rows)
    }

    #[test]
    fn agreement_with_wilson_intervals_and_verdicts_on_a_known_worksheet() {
        let r = review_report(&worksheet()).unwrap();
        assert_eq!(r.studies, 20);
        let c = &r.conclusion_agreement;
        assert_eq!((c.successes, c.n), (16, 20));
        assert!((c.value.unwrap() - 0.80).abs() < 1e-12);
        // Wilson 95 % for 16/20, by hand: centre 0.75167, half-width 0.16768.
        let ci = c.ci95.unwrap();
        assert!((ci.lower - 0.5840).abs() < 1e-3, "{ci:?}");
        assert!((ci.upper - 0.9193).abs() < 1e-3, "{ci:?}");
        assert_eq!(c.verdict, Some(Verdict::NeedsWork));
        let l = &r.localisation_agreement;
        assert_eq!((l.successes, l.n), (9, 10));
        assert_eq!(l.verdict, Some(Verdict::MayProceed));
        assert_eq!(r.interpretation["fully correct"], 16);
        assert_eq!((r.not_analysed.successes, r.not_analysed.n), (3, 20));
        assert_eq!(r.not_analysed_by_reason["RING_ARTIFACTS"], 2);
        assert_eq!(
            r.not_analysed_by_station["CT-3"],
            StationDefects {
                not_analysed: 2,
                studies: 10
            }
        );
        assert_eq!(
            r.not_analysed_by_station["CT-1"],
            StationDefects {
                not_analysed: 1,
                studies: 10
            }
        );
        // 40..=59 s: mean 49.5, SD √35 = 5.916.
        let (mean, sd) = r.processing_s_mean_sd.unwrap();
        assert!((mean - 49.5).abs() < 1e-9 && (sd - 35f64.sqrt()).abs() < 1e-9);
        assert_eq!((r.sla.successes, r.sla.n), (19, 20));
        let md = render_markdown(&r);
        assert!(
            md.contains("0.80 (16 of 20; 95 % CI 0.58–0.92) — needs work"),
            "{md}"
        );
        assert!(md.contains("| CT-3 | 10 | 2 | 20.0 % |"), "{md}");
        assert!(
            md.contains("(received 2026-11-01 10:00:00 – 2026-11-20 10:00:00 UTC)"),
            "{md}"
        );
    }

    #[test]
    fn a_report_read_back_from_its_json_is_the_same_report() {
        let r = review_report(&worksheet()).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        let back: ReviewReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        // Only the counts are read: intervals and verdicts are computed again.
        let v: ReviewReport = serde_json::from_str(
            r#"{"studies": 1, "conclusion_agreement": {"successes": 1, "n": 1},
                "localisation_agreement": {"successes": 0, "n": 0}, "interpretation": {},
                "not_analysed": {"successes": 0, "n": 1}, "not_analysed_by_reason": {},
                "not_analysed_by_station": {}, "processing_s_mean_sd": null,
                "processing_n": 0, "sla": {"successes": 1, "n": 1}}"#,
        )
        .unwrap();
        assert_eq!(v.conclusion_agreement, Proportion::new(1, 1));
        assert_eq!(v.received, None);
    }

    #[test]
    fn a_worksheet_without_the_review_columns_is_refused() {
        assert!(review_report("study_uid,status\n1.2,ok\n").is_err());
        assert!(review_report("").is_err());
        let empty = review_report("status,agree_with_conclusion\nok,\n").unwrap();
        assert_eq!(empty.conclusion_agreement.value, None);
        assert!(render_markdown(&empty).contains("n/a"));
    }
}

/// One study's review, as `monitor report --record` stores it in the ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudyReview {
    /// Study Instance UID.
    pub study_uid: String,
    /// Station Name of the scanner that sent it.
    pub station_name: String,
    /// Whether the reviewer agreed with the conclusion (`None`: not reviewed).
    pub agree_conclusion: Option<bool>,
    /// Whether the reviewer agreed with the localisation (`None`: not reviewed).
    pub agree_localisation: Option<bool>,
    /// The reviewer's interpretation, as written in the worksheet.
    pub interpretation: String,
}

/// The reviewed rows of a filled worksheet (a row with neither agreement filled in is not
/// reviewed and left out). `study_uid` and `agree_with_conclusion` columns are required.
pub fn study_reviews(text: &str) -> anyhow::Result<Vec<StudyReview>> {
    let rows = parse_csv(text).map_err(|e| anyhow::anyhow!("reviews: {e}"))?;
    let (head, body) = rows
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("reviews: the file is empty"))?;
    let col = |name: &str| head.iter().position(|h| h.trim() == name);
    let need = |name: &str| col(name).ok_or_else(|| anyhow::anyhow!("reviews: no {name:?} column"));
    let (uid, agree) = (need("study_uid")?, need("agree_with_conclusion")?);
    let (local, interp, station) = (
        col("agree_with_localisation"),
        col("interpretation"),
        col("station_name"),
    );
    let cell = |row: &Vec<String>, i: Option<usize>| -> String {
        i.and_then(|i| row.get(i))
            .map(|c| c.trim().to_string())
            .unwrap_or_default()
    };
    Ok(body
        .iter()
        .filter_map(|row| {
            let review = StudyReview {
                study_uid: cell(row, Some(uid)),
                station_name: cell(row, station),
                agree_conclusion: parse_yes_no(&cell(row, Some(agree))),
                agree_localisation: parse_yes_no(&cell(row, local)),
                interpretation: cell(row, interp).to_lowercase(),
            };
            let reviewed = review.agree_conclusion.is_some() || review.agree_localisation.is_some();
            (reviewed && !review.study_uid.is_empty()).then_some(review)
        })
        .collect())
}

/// Store `reviews` in the ledger as reviewed at `now_unix_ms` (a study reviewed again keeps the
/// latest review); returns how many were stored.
pub async fn record_reviews(
    ledger: &mut crate::Ledger,
    reviews: &[StudyReview],
    now_unix_ms: u64,
) -> anyhow::Result<usize> {
    let at = crate::db::ms(now_unix_ms);
    let tx = ledger.client_mut().transaction().await?;
    for r in reviews {
        tx.execute(
            "INSERT INTO reviews (study_uid, station_name, reviewed_at_ms, agree_conclusion,
                                  agree_localisation, interpretation)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (study_uid) DO UPDATE SET
                 station_name = EXCLUDED.station_name,
                 reviewed_at_ms = EXCLUDED.reviewed_at_ms,
                 agree_conclusion = EXCLUDED.agree_conclusion,
                 agree_localisation = EXCLUDED.agree_localisation,
                 interpretation = EXCLUDED.interpretation",
            &[
                &r.study_uid,
                &r.station_name,
                &at,
                &r.agree_conclusion,
                &r.agree_localisation,
                &r.interpretation,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(reviews.len())
}
