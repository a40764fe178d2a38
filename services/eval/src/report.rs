//! From per-study outcomes to the calibration report (`report.json`, `report.md`).

use crate::stats::{delong, mean_sd, roc_curve, wilson_interval, BinaryCounts, Interval};
use crate::truth::TruthCase;
use crate::verdict::{verdict, Verdict};
use serde::Serialize;
use spinescreen_proto::{GenantGrade, ServiceInfo, StudyResult, StudyStatus};
use std::fmt::Write as _;

/// How studies without an answer are counted (also printed in the report).
pub const COUNTING_RULE: &str = "Every case in truth.csv counts. A study the service did not \
answer (technical defect, abstention, or an error while analysing or reading it) counts as a wrong \
call: a false negative when truth is positive, a false positive when negative, and it scores 0.5 \
(undecided) on the ROC curve. The `analysed_only` figures repeat the metrics over studies with \
status ok.";

/// What happened to one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseOutcome {
    /// Case folder.
    pub case_id: String,
    /// Reference standard.
    pub truth_positive: bool,
    /// `ok`, `technical_defect`, `abstained`, or `error` (no result could be had).
    pub status: String,
    /// `CODE: text` when not ok.
    pub reason: Option<String>,
    /// The service's call (`has_fracture`), `None` when not analysed.
    pub called_positive: Option<bool>,
    /// `fracture_probability`, `None` when not analysed.
    pub score: Option<f64>,
    /// Largest deformity.
    pub max_deformity: Option<f64>,
    /// Levels the service graded ≥ 2, as `LEVEL:grade`.
    pub fracture_levels: Vec<String>,
    /// Wall time of the analysis (or the result's end-to-end/stage timings), seconds.
    pub processing_s: Option<f64>,
    /// Study Instance UID reported.
    pub study_instance_uid: String,
    /// The result itself (not serialized: report.json stays small).
    #[serde(skip)]
    pub result: Option<StudyResult>,
}

impl CaseOutcome {
    /// Outcome of a case from its result (or the error that prevented one).
    pub fn new(
        truth: &TruthCase,
        result: Result<StudyResult, String>,
        processing_s: Option<f64>,
    ) -> Self {
        match result {
            Err(e) => Self {
                case_id: truth.case_id.clone(),
                truth_positive: truth.positive,
                status: "error".into(),
                reason: Some(e),
                called_positive: None,
                score: None,
                max_deformity: None,
                fracture_levels: vec![],
                processing_s,
                study_instance_uid: String::new(),
                result: None,
            },
            Ok(r) => {
                let ok = r.status == StudyStatus::Ok;
                Self {
                    case_id: truth.case_id.clone(),
                    truth_positive: truth.positive,
                    status: r.status.as_str().into(),
                    reason: r.reason.as_ref().map(|x| format!("{}: {}", x.code, x.text)),
                    called_positive: if ok {
                        Some(r.has_fracture == Some(true))
                    } else {
                        None
                    },
                    score: if ok {
                        Some(r.fracture_probability.unwrap_or(0.5))
                    } else {
                        None
                    },
                    max_deformity: r.max_deformity,
                    fracture_levels: r
                        .vertebrae
                        .iter()
                        .filter(|v| v.genant_grade >= GenantGrade::Moderate)
                        .map(|v| format!("{}:{}", v.label, v.genant_grade as u8))
                        .collect(),
                    processing_s,
                    study_instance_uid: r.study_instance_uid.clone(),
                    result: Some(r),
                }
            }
        }
    }

    /// Whether the service answered.
    pub fn analysed(&self) -> bool {
        self.status == "ok"
    }
}

/// One metric with its interval and verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    /// Point estimate, `None` when undefined (no positives, say).
    pub value: Option<f64>,
    /// Numerator of a proportion.
    pub numerator: Option<usize>,
    /// Denominator of a proportion.
    pub denominator: Option<usize>,
    /// 95 % interval.
    pub ci95: Option<Interval>,
    /// `wilson` or `delong`.
    pub ci_method: &'static str,
    /// The experiment's verdict on the point estimate.
    pub verdict: Option<Verdict>,
}

impl Metric {
    fn proportion((x, n): (usize, usize)) -> Self {
        let value = (n > 0).then(|| x as f64 / n as f64);
        Self {
            value,
            numerator: Some(x),
            denominator: Some(n),
            ci95: wilson_interval(x, n),
            ci_method: "wilson",
            verdict: value.map(verdict),
        }
    }

    fn auc(positives: &[f64], negatives: &[f64]) -> Self {
        let d = delong(positives, negatives);
        let value = d
            .map(|d| d.auc)
            .or_else(|| crate::stats::auc(positives, negatives));
        Self {
            value,
            numerator: None,
            denominator: None,
            ci95: d.map(|d| d.ci95),
            ci_method: "delong",
            verdict: value.map(verdict),
        }
    }
}

/// Sensitivity, specificity, accuracy and AUC over a set of cases.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Cases counted.
    pub n: usize,
    /// 2×2 counts.
    pub counts: BinaryCounts,
    /// TP / (TP + FN).
    pub sensitivity: Metric,
    /// TN / (TN + FP).
    pub specificity: Metric,
    /// (TP + TN) / n.
    pub accuracy: Metric,
    /// Area under the ROC curve of `fracture_probability`.
    pub roc_auc: Metric,
    /// Empirical ROC curve, (1 − specificity, sensitivity) points.
    pub roc_curve: Vec<(f64, f64)>,
    /// The service's binary call as a point on the ROC plane.
    pub operating_point: Option<(f64, f64)>,
}

/// `cases` scored under [`COUNTING_RULE`]; `analysed_only` keeps only answered studies.
pub fn metrics(cases: &[CaseOutcome], analysed_only: bool) -> Metrics {
    let mut counts = BinaryCounts::default();
    let (mut pos, mut neg) = (vec![], vec![]);
    for c in cases.iter().filter(|c| !analysed_only || c.analysed()) {
        let called = c.called_positive.unwrap_or(!c.truth_positive);
        counts.add(c.truth_positive, called);
        let score = c.score.unwrap_or(0.5);
        if c.truth_positive {
            pos.push(score);
        } else {
            neg.push(score);
        }
    }
    let sens = Metric::proportion(counts.sensitivity());
    let spec = Metric::proportion(counts.specificity());
    let operating_point = match (sens.value, spec.value) {
        (Some(se), Some(sp)) => Some((1.0 - sp, se)),
        _ => None,
    };
    Metrics {
        n: counts.total(),
        counts,
        sensitivity: sens,
        specificity: spec,
        accuracy: Metric::proportion(counts.accuracy()),
        roc_auc: Metric::auc(&pos, &neg),
        roc_curve: roc_curve(&pos, &neg),
        operating_point,
    }
}

/// Processing time per study.
#[derive(Debug, Clone, Serialize)]
pub struct TimeSummary {
    /// Studies with a time.
    pub n: usize,
    /// Mean, s.
    pub mean_s: f64,
    /// Sample SD, s.
    pub sd_s: f64,
    /// Shortest, s.
    pub min_s: f64,
    /// Longest, s.
    pub max_s: f64,
}

impl TimeSummary {
    fn of(cases: &[CaseOutcome]) -> Option<Self> {
        let t: Vec<f64> = cases.iter().filter_map(|c| c.processing_s).collect();
        let (mean_s, sd_s) = mean_sd(&t)?;
        Some(Self {
            n: t.len(),
            mean_s,
            sd_s,
            min_s: t.iter().copied().fold(f64::INFINITY, f64::min),
            max_s: t.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// "mean±SD" as in the experiment's Table 1 ("50±29"): whole seconds from 10 s up, one
    /// decimal below.
    pub fn table1(&self) -> String {
        if self.mean_s >= 10.0 {
            format!("{:.0}±{:.0}", self.mean_s, self.sd_s)
        } else {
            format!("{:.1}±{:.1}", self.mean_s, self.sd_s)
        }
    }
}

/// Per-vertebra Genant grades: truth (rows) × service (columns).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GenantConfusion {
    /// Cases with grade truth that the service analysed.
    pub cases: usize,
    /// `matrix[truth][service]` over vertebrae the service reported.
    pub matrix: [[usize; 4]; 4],
    /// Vertebrae listed in truth (any grade) that the service did not report, by truth grade.
    pub not_reported: [usize; 4],
    /// Vertebrae in the matrix.
    pub vertebrae: usize,
    /// Share of matrix vertebrae on the diagonal.
    pub exact_agreement: Option<f64>,
}

/// The Genant confusion matrix over cases whose truth has grades. A level the service reported
/// but truth does not list counts as truth grade 0 (see [`crate::truth`]); a listed level the
/// service did not report — or any listed level of a study it did not analyse — counts under
/// `not_reported`.
pub fn genant_confusion(truth: &[TruthCase], cases: &[CaseOutcome]) -> Option<GenantConfusion> {
    let mut g = GenantConfusion::default();
    let mut any = false;
    for (t, c) in truth.iter().zip(cases) {
        let Some(grades) = &t.grades else { continue };
        any = true;
        let reported = c.result.as_ref().filter(|_| c.analysed());
        let vertebrae = reported.map(|r| r.vertebrae.as_slice()).unwrap_or(&[]);
        if reported.is_some() {
            g.cases += 1;
        }
        for v in vertebrae {
            let tg = grades.get(&v.label).copied().unwrap_or(GenantGrade::Normal) as usize;
            g.matrix[tg][v.genant_grade as usize] += 1;
            g.vertebrae += 1;
        }
        for (level, grade) in grades {
            if !vertebrae.iter().any(|v| v.label == *level) {
                g.not_reported[*grade as usize] += 1;
            }
        }
    }
    if !any {
        return None;
    }
    let diag: usize = (0..4).map(|i| g.matrix[i][i]).sum();
    g.exact_agreement = (g.vertebrae > 0).then(|| diag as f64 / g.vertebrae as f64);
    Some(g)
}

/// `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The service evaluated (from the first result that names it).
    pub service: Option<ServiceInfo>,
    /// Cases in truth.csv.
    pub cases_total: usize,
    /// Truth-positive cases.
    pub cases_positive: usize,
    /// Truth-negative cases.
    pub cases_negative: usize,
    /// Studies returned as technical defects.
    pub technical_defects: usize,
    /// Studies the service abstained on.
    pub abstentions: usize,
    /// Cases with no result at all (analysis error, missing or unreadable result.json).
    pub errors: usize,
    /// How unanswered studies count.
    pub counting_rule: &'static str,
    /// All cases under the counting rule (the experiment's figures).
    pub metrics: Metrics,
    /// Answered studies only.
    pub analysed_only: Metrics,
    /// Processing time per study.
    pub processing_time: Option<TimeSummary>,
    /// Per-vertebra Genant confusion matrix, when truth has grades.
    pub genant_confusion: Option<GenantConfusion>,
    /// Cases drawn for the expert audit (audit.csv), in truth order.
    pub audit_cases: Vec<String>,
    /// Seed of the audit draw.
    pub audit_seed: u64,
    /// Every case.
    pub cases: Vec<CaseOutcome>,
}

impl EvalReport {
    /// Assemble the report (audit selection is made by the caller).
    pub fn build(
        truth: &[TruthCase],
        cases: Vec<CaseOutcome>,
        audit_cases: Vec<String>,
        audit_seed: u64,
    ) -> Self {
        let count = |s: &str| cases.iter().filter(|c| c.status == s).count();
        Self {
            service: cases
                .iter()
                .filter_map(|c| c.result.as_ref())
                .map(|r| r.service.clone())
                .find(|s| !s.name.is_empty()),
            cases_total: cases.len(),
            cases_positive: cases.iter().filter(|c| c.truth_positive).count(),
            cases_negative: cases.iter().filter(|c| !c.truth_positive).count(),
            technical_defects: count("technical_defect"),
            abstentions: count("abstained"),
            errors: count("error"),
            counting_rule: COUNTING_RULE,
            metrics: metrics(&cases, false),
            analysed_only: metrics(&cases, true),
            processing_time: TimeSummary::of(&cases),
            genant_confusion: genant_confusion(truth, &cases),
            audit_cases,
            audit_seed,
            cases,
        }
    }

    /// `report.md`.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let service = self
            .service
            .as_ref()
            .map(|x| format!("{} {}", x.name, x.version))
            .unwrap_or_else(|| "service".into());
        let _ = writeln!(s, "# Calibration report: {service}\n");
        let _ = writeln!(
            s,
            "Cases: {} ({} positive, {} negative) · technical defects: {} · abstentions: {} · \
             errors: {}\n",
            self.cases_total,
            self.cases_positive,
            self.cases_negative,
            self.technical_defects,
            self.abstentions,
            self.errors
        );
        let m = &self.metrics;
        let f2 = |x: &Metric| x.value.map_or("n/a".into(), |v| format!("{v:.2}"));
        let time = self
            .processing_time
            .as_ref()
            .map_or("n/a".into(), |t| t.table1());
        let _ = writeln!(s, "## Table 1\n");
        let _ = writeln!(
            s,
            "| Service | n | Sensitivity | Specificity | Accuracy | ROC AUC | Time per study, s |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        let _ = writeln!(
            s,
            "| {service} | {} | {} | {} | {} | {} | {time} |\n",
            m.n,
            f2(&m.sensitivity),
            f2(&m.specificity),
            f2(&m.accuracy),
            f2(&m.roc_auc)
        );
        let _ = writeln!(s, "## Metrics with 95 % confidence intervals\n");
        metric_table(&mut s, m);
        if let Some((fpr, tpr)) = m.operating_point {
            let _ = writeln!(
                s,
                "\nOperating point (the service's call, Genant grade ≥ 2 anywhere): \
                 1 − specificity = {fpr:.3}, sensitivity = {tpr:.3} (red disc in roc.png). \
                 2×2: TP {}, FP {}, TN {}, FN {}.",
                m.counts.true_positive,
                m.counts.false_positive,
                m.counts.true_negative,
                m.counts.false_negative
            );
        }
        let _ = writeln!(s, "\n**Counting rule.** {}\n", self.counting_rule);
        let _ = writeln!(
            s,
            "Verdicts: ≤ 0.60 unfit; 0.61–0.80 needs work; ≥ 0.81 may proceed to clinical \
             validation (point estimate rounded half up to two decimals, so 0.605 → 0.61). \
             Intervals: Wilson score for proportions, DeLong (1988) for the AUC; DeLong's \
             variance is 0 when positives and negatives are fully separated.\n"
        );
        if self.analysed_only.n != m.n {
            let _ = writeln!(
                s,
                "## Answered studies only (n = {})\n",
                self.analysed_only.n
            );
            metric_table(&mut s, &self.analysed_only);
            s.push('\n');
        }
        if let Some(t) = &self.processing_time {
            let _ = writeln!(
                s,
                "## Processing time\n\n{} ± {} s per study (mean ± SD, n = {}; range {:.2}–{:.2} s).\n",
                fmt_s(t.mean_s),
                fmt_s(t.sd_s),
                t.n,
                t.min_s,
                t.max_s
            );
        }
        if let Some(g) = &self.genant_confusion {
            let _ = writeln!(
                s,
                "## Per-vertebra Genant grades ({} cases, {} vertebrae)\n",
                g.cases, g.vertebrae
            );
            let _ = writeln!(s, "| truth \\ service | 0 | 1 | 2 | 3 | not reported |");
            let _ = writeln!(s, "|---|---|---|---|---|---|");
            for (i, row) in g.matrix.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "| {i} | {} | {} | {} | {} | {} |",
                    row[0], row[1], row[2], row[3], g.not_reported[i]
                );
            }
            if let Some(a) = g.exact_agreement {
                let _ = writeln!(s, "\nExact grade agreement: {:.1} %.", a * 100.0);
            }
            s.push('\n');
        }
        let unanswered: Vec<&CaseOutcome> = self.cases.iter().filter(|c| !c.analysed()).collect();
        if !unanswered.is_empty() {
            let _ = writeln!(s, "## Studies without an answer\n");
            let _ = writeln!(s, "| case | truth | status | reason |\n|---|---|---|---|");
            for c in unanswered {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    c.case_id,
                    if c.truth_positive {
                        "positive"
                    } else {
                        "negative"
                    },
                    c.status,
                    c.reason.as_deref().unwrap_or("").replace('|', "/")
                );
            }
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "## Files\n\n- `roc.png`: ROC curve of `fracture_probability` (x = 1 − specificity, \
             y = sensitivity; dashed diagonal = chance; red disc = operating point).\n\
             - `audit.csv`: {} studies drawn at random (seed {}) for the expert audit; experts \
             fill agree_with_conclusion and agree_with_localisation (yes/no), interpretation \
             (fully/partly/wrong), all_and_only_target_findings, extra_finding and wrong_contour \
             (yes/no).\n\
             - `report.json`: every figure above and the outcome of each case.",
            self.audit_cases.len(),
            self.audit_seed
        );
        s
    }
}

fn fmt_s(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn metric_table(s: &mut String, m: &Metrics) {
    let _ = writeln!(s, "| Metric | Value | 95 % CI | Method | Verdict |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (name, x) in [
        ("Sensitivity", &m.sensitivity),
        ("Specificity", &m.specificity),
        ("Accuracy", &m.accuracy),
        ("ROC AUC", &m.roc_auc),
    ] {
        let value = match (x.value, x.numerator, x.denominator) {
            (Some(v), Some(a), Some(b)) => format!("{v:.2} ({a}/{b})"),
            (Some(v), _, _) => format!("{v:.3}"),
            _ => "n/a".into(),
        };
        let ci = x
            .ci95
            .map_or("n/a".into(), |c| format!("{:.2}–{:.2}", c.lower, c.upper));
        let verdict = x.verdict.map_or("n/a", |v| v.describe());
        let _ = writeln!(
            s,
            "| {name} | {value} | {ci} | {} | {verdict} |",
            x.ci_method
        );
    }
}
