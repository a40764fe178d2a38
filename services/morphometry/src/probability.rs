//! The study's fracture score: a number in 0–1 that orders studies for ROC analysis and crosses
//! 0.5 exactly where the experiment's target (a compression deformity of 25 %, Genant grade 2)
//! begins.

use crate::grade::MODERATE;

/// Scale of the logistic, in deformity points: 3 points ≈ the inter-expert 90th-percentile
/// disagreement on a vertebra's height loss (Pisov et al., MICCAI 2020), so one such disagreement
/// moves a confident score from 0.5 to 0.73.
pub const LOGISTIC_SCALE: f64 = 0.03;

/// Score of one vertebra with deformity `deformity` (0–1) found with detection confidence
/// `confidence` (0–1):
///
/// `p = 0.5 + c · (σ((d − 0.25) / s) − 0.5)`, with σ the logistic function, `s` =
/// [`LOGISTIC_SCALE`] and `c` the confidence clamped to 0–1 (not-finite → 0).
///
/// Properties relied upon: `p = 0.5` exactly at `d = 0.25` whatever the confidence; `p` is
/// strictly increasing in `d` when `c > 0`; `|p − 0.5|` is increasing in `c` (low confidence
/// pulls the score toward the undecided 0.5). A not-finite deformity scores 0.5.
pub fn fracture_probability(deformity: f64, confidence: f64) -> f64 {
    if !deformity.is_finite() {
        return 0.5;
    }
    let c = if confidence.is_finite() {
        confidence.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let z = (deformity - MODERATE) / LOGISTIC_SCALE;
    let sigma = 1.0 / (1.0 + (-z).exp());
    0.5 + c * (sigma - 0.5)
}

/// Study score: the highest vertebra score over graded vertebrae `(deformity, confidence)`, so it
/// is monotone in each vertebra's deformity and, through the most deformed vertebra, in the
/// largest deformity. `None` when nothing was graded.
pub fn study_fracture_probability(graded: &[(f64, f64)]) -> Option<f64> {
    graded
        .iter()
        .map(|(d, c)| fracture_probability(*d, *c))
        .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_half_at_25_percent() {
        for c in [0.0, 0.3, 1.0] {
            assert_eq!(fracture_probability(0.25, c), 0.5);
        }
    }

    #[test]
    fn monotone_in_deformity() {
        let mut last = -1.0;
        for i in 0..=100 {
            let p = fracture_probability(i as f64 / 100.0, 0.9);
            assert!(p > last, "not increasing at {i}");
            assert!((0.0..=1.0).contains(&p));
            last = p;
        }
        assert!(fracture_probability(0.40, 1.0) > 0.99);
        assert!(fracture_probability(0.10, 1.0) < 0.01);
    }

    #[test]
    fn low_confidence_pulls_toward_one_half() {
        let mut last_pos = 0.0;
        let mut last_neg = 1.0;
        for i in 0..=10 {
            let c = i as f64 / 10.0;
            let pos = fracture_probability(0.35, c);
            let neg = fracture_probability(0.15, c);
            assert!(pos >= last_pos && neg <= last_neg);
            last_pos = pos;
            last_neg = neg;
        }
        assert_eq!(fracture_probability(0.9, 0.0), 0.5);
        assert_eq!(fracture_probability(0.9, f64::NAN), 0.5);
    }

    #[test]
    fn study_score_is_the_highest_vertebra_score() {
        assert_eq!(study_fracture_probability(&[]), None);
        let p = study_fracture_probability(&[(0.1, 1.0), (0.3, 0.8), (0.05, 0.2)]).unwrap();
        assert_eq!(p, fracture_probability(0.3, 0.8));
        assert!(p > 0.5);
        let q = study_fracture_probability(&[(0.1, 1.0), (0.25, 1.0)]).unwrap();
        assert_eq!(q, 0.5);
    }
}
