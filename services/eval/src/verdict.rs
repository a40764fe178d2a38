//! The experiment's verdict bands for a diagnostic metric (sensitivity, specificity, accuracy,
//! ROC AUC): ≤ 0.60 unfit; 0.61–0.80 needs work; ≥ 0.81 may proceed to clinical validation
//! (Artyukova et al., Digital Diagnostics 2024;5(3):505–518).
//!
//! # Values between the published bands
//! The bands are written to two decimals, as the experiment reports every metric. A value is
//! therefore rounded to two decimals (half up: 0.605 → 0.61) before the bands are applied, so
//! every value falls in exactly one band:
//!
//! | value | rounds to | verdict |
//! |---|---|---|
//! | < 0.605 | ≤ 0.60 | unfit |
//! | 0.605 … < 0.805 | 0.61 … 0.80 | needs work |
//! | ≥ 0.805 | ≥ 0.81 | may proceed to clinical validation |
//!
//! The verdict is read from the point estimate; the 95 % interval is reported beside it.

use serde::Serialize;

/// Verdict for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// ≤ 0.60.
    Unfit,
    /// 0.61–0.80.
    NeedsWork,
    /// ≥ 0.81.
    MayProceed,
}

impl Verdict {
    /// Wording for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Unfit => "unfit (≤ 0.60)",
            Verdict::NeedsWork => "needs work (0.61–0.80)",
            Verdict::MayProceed => "may proceed to clinical validation (≥ 0.81)",
        }
    }
}

/// Verdict of a metric value (see the module documentation for the rounding rule).
pub fn verdict(value: f64) -> Verdict {
    // Hundredths, half up; the 1e-9 absorbs binary representation (0.605 is 0.60499999…).
    let hundredths = (value * 100.0 + 1e-9 + 0.5).floor();
    if hundredths <= 60.0 {
        Verdict::Unfit
    } else if hundredths <= 80.0 {
        Verdict::NeedsWork
    } else {
        Verdict::MayProceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_band_edges() {
        assert_eq!(verdict(0.0), Verdict::Unfit);
        assert_eq!(verdict(0.60), Verdict::Unfit);
        assert_eq!(verdict(0.61), Verdict::NeedsWork);
        assert_eq!(verdict(0.80), Verdict::NeedsWork);
        assert_eq!(verdict(0.81), Verdict::MayProceed);
        assert_eq!(verdict(1.0), Verdict::MayProceed);
    }

    #[test]
    fn values_between_bands_round_half_up() {
        assert_eq!(verdict(0.6049), Verdict::Unfit);
        assert_eq!(verdict(0.605), Verdict::NeedsWork);
        assert_eq!(verdict(0.8049), Verdict::NeedsWork);
        assert_eq!(verdict(0.805), Verdict::MayProceed);
        // Table 1 of the experiment: service 2 specificity 0.87, sensitivity 0.86.
        assert_eq!(verdict(0.87), Verdict::MayProceed);
    }
}
