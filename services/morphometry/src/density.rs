//! Opportunistic bone-density reading from trabecular attenuation (HU) of a non-calibrated CT.
//!
//! - ISCD 2023 official positions (opportunistic CT): L1/L2 trabecular attenuation < 100 HU
//!   suggests osteoporosis.
//! - Pickhardt et al., Ann Intern Med 2013;158:588–95: L1 ≤ 160 HU is ~90 % sensitive, ≤ 110 HU
//!   > 90 % specific for osteoporosis (DXA reference).
//!
//! ACR QCT categories (< 80, 80–120, > 120 mg/cm³ calcium hydroxyapatite) need HU converted to
//! mg/cm³ with a calibration phantom or a documented phantomless method; spinescreen applies
//! neither, so it reports no QCT category. Contrast media raise trabecular HU by ~10–20, which is
//! why the series' contrast agent is carried alongside the reading.

use spinescreen_proto::{BoneDensity, VertebraLevel, VertebraResult};

/// ISCD 2023 threshold: below this, osteoporosis is suggested.
pub const ISCD_THRESHOLD_HU: f64 = 100.0;
/// Pickhardt 2013 specific threshold (≤ is `low`).
pub const PICKHARDT_LOW_HU: f64 = 110.0;
/// Pickhardt 2013 sensitive threshold (≤ is at most `indeterminate`).
pub const PICKHARDT_SENSITIVE_HU: f64 = 160.0;

/// Levels eligible for the reading, in order of preference: L1 first (the level every cited
/// threshold was derived at), then the nearest levels, preferring the caudal one at equal
/// distance (ISCD names L1 and L2).
pub const DENSITY_LEVELS: [VertebraLevel; 5] = [
    VertebraLevel::L1,
    VertebraLevel::L2,
    VertebraLevel::T12,
    VertebraLevel::L3,
    VertebraLevel::T11,
];

/// Levels at which trabecular HU is measured (ISCD/experiment: Th11–L3).
pub fn measures_density(label: VertebraLevel) -> bool {
    DENSITY_LEVELS.contains(&label)
}

/// ISCD 2023 category: `osteoporosis_suggested` below 100 HU, else `not_suggested`.
pub fn iscd_category(hu: f64) -> &'static str {
    if hu < ISCD_THRESHOLD_HU {
        "osteoporosis_suggested"
    } else {
        "not_suggested"
    }
}

/// Pickhardt 2013 band: `low` (≤ 110 HU), `indeterminate` (110–160 HU], `normal` (> 160 HU).
pub fn pickhardt_category(hu: f64) -> &'static str {
    if hu <= PICKHARDT_LOW_HU {
        "low"
    } else if hu <= PICKHARDT_SENSITIVE_HU {
        "indeterminate"
    } else {
        "normal"
    }
}

/// The study's bone density reading: the first level of [`DENSITY_LEVELS`] with a trabecular
/// reading and Genant grade < 2 (a fractured body's attenuation is raised by compaction, so ISCD
/// excludes it); failing that, the first level with any reading (the caller should note it).
/// Returns the reading and whether it had to fall back to a fractured level.
pub fn bone_density(
    vertebrae: &[VertebraResult],
    contrast_agent: Option<String>,
) -> Option<(BoneDensity, bool)> {
    let find = |allow_fractured: bool| {
        DENSITY_LEVELS.iter().find_map(|level| {
            vertebrae.iter().find(|v| {
                v.label == *level
                    && v.trabecular_hu.is_some()
                    && (allow_fractured || (v.genant_grade as u8) < 2)
            })
        })
    };
    let (v, fractured) = match find(false) {
        Some(v) => (v, false),
        None => (find(true)?, true),
    };
    let hu = v.trabecular_hu?.mean;
    Some((
        BoneDensity {
            level: v.label,
            hu,
            iscd_category: iscd_category(hu).into(),
            pickhardt_category: pickhardt_category(hu).into(),
            contrast_agent,
        },
        fractured,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spinescreen_proto::{DeformityType, GenantGrade, Heights, Keypoints, TrabecularHu};

    fn v(label: &str, hu: Option<f64>, grade: GenantGrade) -> VertebraResult {
        let p = [0.0; 3];
        VertebraResult {
            label: label.parse().unwrap(),
            center_mm: p,
            keypoints_mm: Keypoints {
                superior_anterior: p,
                superior_middle: p,
                superior_posterior: p,
                inferior_anterior: p,
                inferior_middle: p,
                inferior_posterior: p,
            },
            heights_mm: Heights {
                anterior: 1.0,
                middle: 1.0,
                posterior: 1.0,
            },
            deformity: 0.0,
            deformity_type: DeformityType::None,
            genant_grade: grade,
            trabecular_hu: hu.map(|m| TrabecularHu {
                mean: m,
                median: m,
                voxels: 100,
            }),
            confidence: 1.0,
            flags: vec![],
        }
    }

    #[test]
    fn iscd_boundary_is_strictly_below_100() {
        assert_eq!(iscd_category(99.9), "osteoporosis_suggested");
        assert_eq!(iscd_category(100.0), "not_suggested");
    }

    #[test]
    fn pickhardt_bands_are_closed_above() {
        assert_eq!(pickhardt_category(110.0), "low");
        assert_eq!(pickhardt_category(110.1), "indeterminate");
        assert_eq!(pickhardt_category(160.0), "indeterminate");
        assert_eq!(pickhardt_category(160.1), "normal");
    }

    #[test]
    fn l1_is_preferred_then_nearest_unfractured() {
        let n = GenantGrade::Normal;
        let vs = [
            v("T11", Some(150.0), n),
            v("T12", Some(140.0), n),
            v("L1", Some(95.0), n),
            v("L2", Some(120.0), n),
        ];
        let (bd, fallback) = bone_density(&vs, Some("IOHEXOL".into())).unwrap();
        assert_eq!(bd.level, "L1");
        assert_eq!(bd.iscd_category, "osteoporosis_suggested");
        assert_eq!(bd.pickhardt_category, "low");
        assert_eq!(bd.contrast_agent.as_deref(), Some("IOHEXOL"));
        assert!(!fallback);

        let vs = [
            v("T12", Some(140.0), n),
            v("L1", Some(200.0), GenantGrade::Moderate),
            v("L2", None, n),
        ];
        let (bd, _) = bone_density(&vs, None).unwrap();
        assert_eq!(bd.level, "T12");

        let vs = [v("L1", Some(130.0), GenantGrade::Severe), v("T5", None, n)];
        let (bd, fallback) = bone_density(&vs, None).unwrap();
        assert_eq!((bd.level.as_str(), fallback), ("L1", true));
        assert!(bone_density(&[v("T5", Some(100.0), n)], None).is_none());
    }
}
