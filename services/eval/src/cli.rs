//! `spinescreen eval`: the calibration test as one command.
//!
//! The binary owns the analysis (embedded pipeline); this module owns everything around it:
//! reading truth, running or reading each case with a progress bar, scoring, and writing
//! `report.md`, `report.json`, `roc.png` and `audit.csv` into `--out`.

use crate::audit::{audit_csv, sample_indices, AuditRow};
use crate::plot::draw_roc;
use crate::report::{CaseOutcome, EvalReport};
use crate::truth::{parse_truth_csv, TruthCase};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use spinescreen_proto::StudyResult;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `spinescreen eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Folder with one sub-folder of DICOM files per case: `<DIR>/<case_id>/`.
    #[arg(long, value_name = "DIR", required_unless_present = "results")]
    pub studies: Option<PathBuf>,
    /// Reference standard: `case_id,positive[,grades]` (see the eval crate's `truth` module).
    #[arg(long, value_name = "CSV")]
    pub truth: PathBuf,
    /// Report folder (created): report.md, report.json, roc.png, audit.csv, results/.
    #[arg(long, value_name = "REPORT_DIR")]
    pub out: PathBuf,
    /// Read existing `<DIR>/<case_id>/result.json` instead of analysing (takes precedence over
    /// --studies).
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
    /// Studies drawn for the expert audit sheet (20 in the pilot, 80 in operation).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub audit: usize,
    /// Seed of the audit draw (same seed and truth → same studies).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Processing time recorded in a stored result: `end_to_end`, else the sum of stage timings.
fn stored_time_s(r: &StudyResult) -> Option<f64> {
    if let Some(ms) = r.timings_ms.get("end_to_end") {
        return Some(*ms as f64 / 1000.0);
    }
    (!r.timings_ms.is_empty()).then(|| r.timings_ms.values().sum::<u64>() as f64 / 1000.0)
}

fn read_result(dir: &Path, case: &TruthCase) -> Result<StudyResult, String> {
    let path = dir.join(&case.case_id).join("result.json");
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Run the calibration test. Each case of `--truth` is analysed from `--studies/<case_id>` with
/// `analyze` (its result is also saved to `--out/results/<case_id>/result.json`), or read from
/// `--results/<case_id>/result.json`. A failed analysis or unreadable result is recorded as an
/// `error` outcome, not a failure of the run. Errors: unreadable or invalid truth.csv, an
/// unwritable report folder.
pub fn run(
    args: &EvalArgs,
    analyze: &dyn Fn(&Path) -> anyhow::Result<StudyResult>,
) -> anyhow::Result<EvalReport> {
    let text = std::fs::read_to_string(&args.truth)
        .with_context(|| format!("reading {}", args.truth.display()))?;
    let truth = parse_truth_csv(&text)?;
    if args.results.is_none() && args.studies.is_none() {
        anyhow::bail!("give --studies DIR (analyse) or --results DIR (read result.json files)");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let bar = ProgressBar::new(truth.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed_precise}, eta {eta}]")
    {
        bar.set_style(style);
    }
    let mut cases = Vec::with_capacity(truth.len());
    for case in &truth {
        bar.set_message(case.case_id.clone());
        let outcome = if let Some(dir) = &args.results {
            let r = read_result(dir, case);
            let t = r.as_ref().ok().and_then(stored_time_s);
            CaseOutcome::new(case, r, t)
        } else {
            let studies = args.studies.as_deref().unwrap_or(Path::new("."));
            let start = Instant::now();
            let r = analyze(&studies.join(&case.case_id)).map_err(|e| format!("{e:#}"));
            let t = start.elapsed().as_secs_f64();
            if let Ok(result) = &r {
                let dir = args.out.join("results").join(&case.case_id);
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                std::fs::write(dir.join("result.json"), serde_json::to_vec_pretty(result)?)
                    .with_context(|| format!("writing {}", dir.display()))?;
            }
            CaseOutcome::new(case, r, Some(t))
        };
        cases.push(outcome);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let chosen = sample_indices(cases.len(), args.audit, args.seed);
    let audit_rows: Vec<AuditRow> = chosen.iter().map(|i| audit_row(&cases[*i])).collect();
    let audit_ids = audit_rows.iter().map(|r| r.case_id.clone()).collect();
    let report = EvalReport::build(&truth, cases, audit_ids, args.seed);

    let write = |name: &str, bytes: &[u8]| {
        let p = args.out.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    };
    write("report.json", &serde_json::to_vec_pretty(&report)?)?;
    write("report.md", report.to_markdown().as_bytes())?;
    write("audit.csv", audit_csv(&audit_rows).as_bytes())?;
    let png = draw_roc(
        &report.metrics.roc_curve,
        report.metrics.operating_point,
        report.metrics.roc_auc.value,
    )
    .to_png()
    .context("encoding roc.png")?;
    write("roc.png", &png)?;
    Ok(report)
}

fn audit_row(c: &CaseOutcome) -> AuditRow {
    let conclusion = match c.called_positive {
        Some(true) => "fracture".to_string(),
        Some(false) => "no fracture".to_string(),
        None => c
            .reason
            .as_deref()
            .and_then(|r| r.split(':').next())
            .unwrap_or(&c.status)
            .to_string(),
    };
    AuditRow {
        case_id: c.case_id.clone(),
        study_instance_uid: c.study_instance_uid.clone(),
        status: c.status.clone(),
        service_conclusion: conclusion,
        fracture_levels: c.fracture_levels.join(";"),
        max_deformity: c.max_deformity.map_or(String::new(), |d| format!("{d:.3}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EvalArgs,
    }

    #[test]
    fn command_line_defaults_and_requirements() {
        let cli = Cli::try_parse_from(["eval", "--studies", "s", "--truth", "t.csv", "--out", "o"])
            .unwrap();
        assert_eq!(cli.args.audit, 20);
        assert_eq!(cli.args.seed, 1);
        assert_eq!(cli.args.studies.as_deref(), Some(Path::new("s")));
        let cli = Cli::try_parse_from([
            "eval",
            "--results",
            "r",
            "--truth",
            "t.csv",
            "--out",
            "o",
            "--audit",
            "80",
            "--seed",
            "9",
        ])
        .unwrap();
        assert_eq!((cli.args.audit, cli.args.seed), (80, 9));
        assert!(Cli::try_parse_from(["eval", "--truth", "t.csv", "--out", "o"]).is_err());
        assert!(Cli::try_parse_from(["eval", "--studies", "s", "--out", "o"]).is_err());
    }
}
