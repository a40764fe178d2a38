//! Vertebral body heights and the three height ratios of quantitative morphometry
//! (Eastell et al., JBMR 1991; McCloskey et al., Osteoporos Int 1993), read as relative height
//! losses so they compare directly with Genant's semiquantitative thresholds.

use crate::geometry::is_finite;
use spinescreen_proto::{DeformityType, Heights, Keypoints};

/// Anterior (Ha), middle (Hm) and posterior (Hp) heights: the distance from each superior
/// endplate keypoint to the inferior keypoint of the same column, mm.
pub fn heights_of(k: &Keypoints) -> Heights {
    k.heights()
}

/// Smallest height (mm) below which a measurement is taken to be a detection failure rather than
/// a vertebral body: no real body, however crushed, is under 3 mm at every column.
pub const MIN_MEASURABLE_HEIGHT_MM: f64 = 3.0;

/// Whether heights can be graded at all: every keypoint finite, every height finite and
/// non-negative, Hp positive, and at least one column ≥ [`MIN_MEASURABLE_HEIGHT_MM`].
pub fn measurable(k: &Keypoints, h: &Heights) -> bool {
    let points = [
        k.superior_anterior,
        k.superior_middle,
        k.superior_posterior,
        k.inferior_anterior,
        k.inferior_middle,
        k.inferior_posterior,
    ];
    let hs = [h.anterior, h.middle, h.posterior];
    points.iter().all(|p| is_finite(*p))
        && hs.iter().all(|v| v.is_finite() && *v >= 0.0)
        && h.posterior > 1e-6
        && hs.iter().any(|v| *v >= MIN_MEASURABLE_HEIGHT_MM)
}

/// The three relative height losses of one vertebra and the largest of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deformity {
    /// Wedge: `1 − Ha/Hp` (negative when the front is taller, as in normal lumbar lordosis).
    pub wedge: f64,
    /// Biconcave: `1 − Hm/Hp`.
    pub biconcave: f64,
    /// Crush: `1 − Hp / expected Hp`, `None` when no expected height was available.
    pub crush: Option<f64>,
    /// The largest of the three, floored at 0.
    pub value: f64,
    /// Which ratio gave `value`; [`DeformityType::None`] when all are ≤ 0.
    pub kind: DeformityType,
}

/// Relative height losses of one vertebra. `expected_posterior_mm` is the posterior height
/// expected from normal neighbours (see [`crate::levels::expected_posterior_heights`]); without
/// it a crush deformity cannot be measured. `ignore_middle` drops the biconcave ratio (used for a
/// detector-flagged Schmorl node, a focal endplate pit that is not a biconcave fracture).
///
/// Ties prefer wedge, then biconcave, then crush (the order Genant lists them).
pub fn deformity_of(
    heights: &Heights,
    expected_posterior_mm: Option<f64>,
    ignore_middle: bool,
) -> Deformity {
    let hp = heights.posterior;
    let wedge = 1.0 - heights.anterior / hp;
    let biconcave = 1.0 - heights.middle / hp;
    let crush = expected_posterior_mm
        .filter(|e| e.is_finite() && *e > 1e-6)
        .map(|e| 1.0 - hp / e);
    let mut value = 0.0;
    let mut kind = DeformityType::None;
    let mut consider = |v: f64, k: DeformityType| {
        if v.is_finite() && v > value {
            value = v;
            kind = k;
        }
    };
    consider(wedge, DeformityType::Wedge);
    if !ignore_middle {
        consider(biconcave, DeformityType::Biconcave);
    }
    if let Some(c) = crush {
        consider(c, DeformityType::Crush);
    }
    Deformity {
        wedge,
        biconcave,
        crush,
        value,
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(a: f64, m: f64, p: f64) -> Heights {
        Heights {
            anterior: a,
            middle: m,
            posterior: p,
        }
    }

    #[test]
    fn heights_are_column_distances() {
        let k = Keypoints {
            superior_anterior: [0.0, -10.0, 20.0],
            superior_middle: [0.0, 0.0, 21.0],
            superior_posterior: [0.0, 10.0, 22.0],
            inferior_anterior: [0.0, -10.0, 5.0],
            inferior_middle: [0.0, 0.0, 4.0],
            inferior_posterior: [3.0, 10.0, 2.0],
        };
        let hs = heights_of(&k);
        assert_eq!(hs.anterior, 15.0);
        assert_eq!(hs.middle, 17.0);
        assert!((hs.posterior - (9.0f64 + 400.0).sqrt()).abs() < 1e-12);
        assert!(measurable(&k, &hs));
    }

    #[test]
    fn wedge_is_one_minus_anterior_over_posterior() {
        let d = deformity_of(&h(13.0, 18.0, 20.0), None, false);
        assert!((d.wedge - 0.35).abs() < 1e-12);
        assert!((d.biconcave - 0.10).abs() < 1e-12);
        assert_eq!(d.crush, None);
        assert!((d.value - 0.35).abs() < 1e-12);
        assert_eq!(d.kind, DeformityType::Wedge);
    }

    #[test]
    fn biconcave_is_one_minus_middle_over_posterior() {
        let d = deformity_of(&h(19.0, 14.0, 20.0), Some(20.0), false);
        assert!((d.biconcave - 0.30).abs() < 1e-12);
        assert_eq!(d.kind, DeformityType::Biconcave);
        assert!((d.value - 0.30).abs() < 1e-12);
    }

    #[test]
    fn crush_is_one_minus_posterior_over_expected() {
        let d = deformity_of(&h(12.0, 12.0, 12.0), Some(20.0), false);
        assert!((d.crush.unwrap() - 0.40).abs() < 1e-12);
        assert_eq!(d.kind, DeformityType::Crush);
        assert!((d.value - 0.40).abs() < 1e-12);
    }

    #[test]
    fn taller_front_is_no_deformity() {
        let d = deformity_of(&h(28.0, 27.0, 26.0), Some(25.0), false);
        assert_eq!(d.value, 0.0);
        assert_eq!(d.kind, DeformityType::None);
    }

    #[test]
    fn schmorl_node_middle_dip_is_ignored_when_flagged() {
        let d = deformity_of(&h(20.0, 12.0, 20.0), Some(20.0), true);
        assert_eq!(d.kind, DeformityType::None);
        assert_eq!(d.value, 0.0);
    }

    #[test]
    fn degenerate_keypoints_are_not_measurable() {
        let p = [1.0, 2.0, 3.0];
        let k = Keypoints {
            superior_anterior: p,
            superior_middle: p,
            superior_posterior: p,
            inferior_anterior: p,
            inferior_middle: p,
            inferior_posterior: p,
        };
        assert!(!measurable(&k, &heights_of(&k)));
        let mut k2 = k;
        k2.superior_posterior = [f64::NAN, 0.0, 0.0];
        assert!(!measurable(&k2, &heights_of(&k2)));
    }
}
