//! Genant semiquantitative grading (Genant, Wu, van Kuijk & Nevitt, JBMR 1993;8:1137–48) and the
//! confidence of a grade near its decisive boundary.
//!
//! # Boundary semantics
//! Each grade's interval is closed below and open above:
//!
//! | grade | deformity `d` |
//! |---|---|
//! | 0 normal | `d < 0.20` |
//! | 1 mild | `0.20 ≤ d < 0.25` |
//! | 2 moderate | `0.25 ≤ d < 0.40` |
//! | 3 severe | `d ≥ 0.40` |
//!
//! A deformity is a ratio of measured heights, so a ratio that is exactly 0.80 on paper arrives
//! as `1 − 0.8 = 0.19999999999999996` in binary floating point. Comparisons therefore allow
//! [`BOUNDARY_TOLERANCE`] (10⁻⁹, far below any measurement's precision): a deformity within it
//! of a boundary counts as on the boundary, i.e. in the higher grade.

use spinescreen_proto::GenantGrade;

/// Lower bound of Genant grade 1 (mild).
pub const MILD: f64 = 0.20;
/// Lower bound of Genant grade 2 (moderate) — the experiment's target: "> 25 % deformity".
pub const MODERATE: f64 = 0.25;
/// Lower bound of Genant grade 3 (severe).
pub const SEVERE: f64 = 0.40;
/// Floating-point slack at the grade boundaries (see the module documentation).
pub const BOUNDARY_TOLERANCE: f64 = 1e-9;

/// Genant grade of a relative height loss `deformity` (0–1). Not-finite or negative input is
/// grade 0 (nothing measurable was lost).
pub fn grade_from_deformity(deformity: f64) -> GenantGrade {
    if !deformity.is_finite() {
        return GenantGrade::Normal;
    }
    let d = deformity + BOUNDARY_TOLERANCE;
    if d >= SEVERE {
        GenantGrade::Severe
    } else if d >= MODERATE {
        GenantGrade::Moderate
    } else if d >= MILD {
        GenantGrade::Mild
    } else {
        GenantGrade::Normal
    }
}

/// Half-width (deformity points) of the band around 25 % in which a grade is uncertain for
/// thoracic wedge shapes: mid-thoracic bodies are naturally 10–20 % shorter anteriorly, and
/// inter-expert SD of the same vertebra's height loss reaches 0.039 at the 90th percentile
/// (Pisov et al., MICCAI 2020).
pub const THORACIC_WEDGE_BAND: f64 = 0.05;
/// Half-width of the uncertain band for every other shape (≈ the inter-expert 90th percentile).
pub const DEFAULT_BAND: f64 = 0.03;

/// Factor (0.5–1) applied to a vertebra's detection confidence because its deformity is close to
/// the decisive 25 % boundary: 0.5 exactly at 25 %, rising linearly to 1 at the edge of the band
/// ([`THORACIC_WEDGE_BAND`] for a thoracic wedge, else [`DEFAULT_BAND`]).
pub fn boundary_confidence(deformity: f64, thoracic_wedge: bool) -> f64 {
    if !deformity.is_finite() {
        return 0.5;
    }
    let band = if thoracic_wedge {
        THORACIC_WEDGE_BAND
    } else {
        DEFAULT_BAND
    };
    let u = ((deformity - MODERATE).abs() / band).min(1.0);
    0.5 + 0.5 * u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_20_percent_is_grade_0() {
        assert_eq!(grade_from_deformity(0.0), GenantGrade::Normal);
        assert_eq!(grade_from_deformity(0.1999), GenantGrade::Normal);
        assert_eq!(grade_from_deformity(-0.3), GenantGrade::Normal);
        assert_eq!(grade_from_deformity(f64::NAN), GenantGrade::Normal);
    }

    #[test]
    fn exactly_20_percent_is_grade_1() {
        assert_eq!(grade_from_deformity(0.20), GenantGrade::Mild);
        // Ha/Hp = 8/10 computed in floating point is 0.19999999999999996.
        assert_eq!(grade_from_deformity(1.0 - 8.0 / 10.0), GenantGrade::Mild);
        assert_eq!(grade_from_deformity(0.2499), GenantGrade::Mild);
    }

    #[test]
    fn exactly_25_percent_is_grade_2() {
        assert_eq!(grade_from_deformity(0.25), GenantGrade::Moderate);
        assert_eq!(
            grade_from_deformity(1.0 - 15.0 / 20.0),
            GenantGrade::Moderate
        );
    }

    #[test]
    fn wedge_35_percent_is_grade_2() {
        assert_eq!(grade_from_deformity(0.35), GenantGrade::Moderate);
        assert_eq!(grade_from_deformity(0.3999), GenantGrade::Moderate);
    }

    #[test]
    fn exactly_40_percent_is_grade_3() {
        assert_eq!(grade_from_deformity(0.40), GenantGrade::Severe);
        assert_eq!(grade_from_deformity(1.0 - 6.0 / 10.0), GenantGrade::Severe);
        assert_eq!(grade_from_deformity(0.9), GenantGrade::Severe);
    }

    #[test]
    fn confidence_is_halved_at_25_percent_and_full_far_from_it() {
        assert_eq!(boundary_confidence(0.25, true), 0.5);
        assert_eq!(boundary_confidence(0.25, false), 0.5);
        assert_eq!(boundary_confidence(0.10, true), 1.0);
        assert_eq!(boundary_confidence(0.45, false), 1.0);
        // 3 points from the boundary: full for non-wedge, 0.8 for a thoracic wedge.
        assert!((boundary_confidence(0.22, false) - 1.0).abs() < 1e-12);
        assert!((boundary_confidence(0.22, true) - 0.8).abs() < 1e-12);
    }
}
