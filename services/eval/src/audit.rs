//! The expert audit sheet: a reproducible random sample of studies with the columns the experts
//! fill in, in the experiment's audit vocabulary (Artyukova et al. 2024: 20 random studies every
//! 3–4 weeks in the pilot, 80 in operation).
//!
//! The sample is a partial Fisher–Yates shuffle driven by ChaCha8 seeded with `--seed`; ChaCha's
//! output is value-stable across rand_chacha versions and the index draw is implemented here (not
//! borrowed from `rand`'s unstable distributions), so the same truth file and seed always select
//! the same studies.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Expert columns, left empty in the sheet.
pub const EXPERT_COLUMNS: [&str; 6] = [
    "agree_with_conclusion",
    "agree_with_localisation",
    "interpretation",
    "all_and_only_target_findings",
    "extra_finding",
    "wrong_contour",
];

/// Uniform integer in `0..bound` (`bound > 0`) by rejection: no modulo bias.
fn uniform_below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    let zone = u64::MAX - (u64::MAX % bound);
    loop {
        let v = rng.next_u64();
        if v < zone {
            return v % bound;
        }
    }
}

/// Indices of `min(k, n)` items drawn without replacement from `0..n`, returned in ascending
/// order.
pub fn sample_indices(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let k = k.min(n);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + uniform_below(&mut rng, (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut chosen = idx[..k].to_vec();
    chosen.sort_unstable();
    chosen
}

/// Quote a CSV field when it contains a comma, quote or line break (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row of the sheet: what the service said about a study.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Case folder.
    pub case_id: String,
    /// Study Instance UID from the result (empty if none).
    pub study_instance_uid: String,
    /// `ok`, `technical_defect`, `abstained`.
    pub status: String,
    /// `fracture`, `no fracture`, or the reason code when not analysed.
    pub service_conclusion: String,
    /// Levels with Genant ≥ 2 as `LEVEL:grade`, `;`-separated.
    pub fracture_levels: String,
    /// Largest deformity, 0–1 with 3 decimals, or empty.
    pub max_deformity: String,
}

/// The sheet as CSV text: service columns, then the empty [`EXPERT_COLUMNS`].
pub fn audit_csv(rows: &[AuditRow]) -> String {
    let mut out = String::from(
        "case_id,study_instance_uid,status,service_conclusion,fracture_levels,max_deformity",
    );
    for c in EXPERT_COLUMNS {
        out.push(',');
        out.push_str(c);
    }
    out.push('\n');
    for r in rows {
        let fields = [
            &r.case_id,
            &r.study_instance_uid,
            &r.status,
            &r.service_conclusion,
            &r.fracture_levels,
            &r.max_deformity,
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str(&",".repeat(EXPERT_COLUMNS.len()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_reproducible_distinct_and_seed_dependent() {
        let a = sample_indices(100, 20, 7);
        assert_eq!(a, sample_indices(100, 20, 7));
        assert_eq!(a.len(), 20);
        let mut d = a.clone();
        d.dedup();
        assert_eq!(d.len(), 20);
        assert!(a.iter().all(|i| *i < 100));
        assert_ne!(a, sample_indices(100, 20, 8));
        assert_eq!(sample_indices(5, 20, 1), vec![0, 1, 2, 3, 4]);
        assert!(sample_indices(0, 20, 1).is_empty());
    }

    #[test]
    fn sheet_has_empty_expert_columns() {
        let csv = audit_csv(&[AuditRow {
            case_id: "c1".into(),
            study_instance_uid: "1.2".into(),
            status: "ok".into(),
            service_conclusion: "fracture".into(),
            fracture_levels: "L1:2".into(),
            max_deformity: "0.310".into(),
        }]);
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0]
            .ends_with("interpretation,all_and_only_target_findings,extra_finding,wrong_contour"));
        assert_eq!(lines[1], "c1,1.2,ok,fracture,L1:2,0.310,,,,,,");
        assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
