//! Expected posterior height of a vertebra from its normal neighbours, for the crush ratio.
//!
//! Genant's crush deformity is a loss of the whole body's height, visible only by comparison with
//! the vertebrae around it (McCloskey et al., Osteoporos Int 1993 compare Hp with the adjacent
//! bodies). Vertebral bodies grow taller caudally, so each neighbour's posterior height is first
//! scaled to the target level with [`REFERENCE_POSTERIOR_HEIGHT_MM`].

use spinescreen_proto::VertebraLevel;

/// Typical adult posterior vertebral body height (mm) at each level T1…L5, rounded to 0.5 mm.
///
/// Approximate values consistent with the cadaver series of Panjabi et al. (thoracic: Spine
/// 1991;16:888–901; lumbar: Spine 1992;17:299–306) and with the CT range T1 ≈ 15 mm to
/// L3 ≈ 27 mm. Only ratios between nearby levels are used (a neighbour's Hp is multiplied by
/// `table[target] / table[neighbour]`), so individual body size cancels; the table carries only
/// the cranio-caudal trend, whose error between adjacent levels is a few percent.
pub const REFERENCE_POSTERIOR_HEIGHT_MM: [(VertebraLevel, f64); 17] = [
    (VertebraLevel::T1, 15.0),
    (VertebraLevel::T2, 16.0),
    (VertebraLevel::T3, 16.5),
    (VertebraLevel::T4, 17.0),
    (VertebraLevel::T5, 17.5),
    (VertebraLevel::T6, 18.0),
    (VertebraLevel::T7, 18.5),
    (VertebraLevel::T8, 19.5),
    (VertebraLevel::T9, 20.0),
    (VertebraLevel::T10, 21.0),
    (VertebraLevel::T11, 22.0),
    (VertebraLevel::T12, 23.5),
    (VertebraLevel::L1, 25.0),
    (VertebraLevel::L2, 26.0),
    (VertebraLevel::L3, 27.0),
    (VertebraLevel::L4, 27.0),
    (VertebraLevel::L5, 26.5),
];

/// The reference posterior height of a label, `None` outside T1–L5.
pub fn reference_posterior_height(label: VertebraLevel) -> Option<f64> {
    REFERENCE_POSTERIOR_HEIGHT_MM
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, h)| *h)
}

/// Farthest neighbour (in levels) still used as a reference: beyond this the size trend of the
/// table dominates the estimate.
pub const MAX_NEIGHBOUR_LEVELS: usize = 4;

/// What the crush estimate needs to know about one vertebra.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelHeight {
    /// Label, e.g. `T12`.
    pub label: VertebraLevel,
    /// Measured posterior height Hp, mm.
    pub posterior_mm: f64,
    /// Whether this vertebra may serve as a normal reference: graded, measurable, and with wedge
    /// and biconcave losses both under 20 % (Genant grade 0 on within-body ratios).
    pub reference: bool,
}

/// Expected Hp of each vertebra: the mean of the level-scaled Hp of the nearest reference
/// vertebra above and the nearest below (one side when only one exists, within
/// [`MAX_NEIGHBOUR_LEVELS`]), or `None`.
///
/// Two passes: a neighbour that is itself crushed (uniformly shortened, so its wedge and
/// biconcave ratios look normal) would pull the estimate down, so references whose first-pass
/// crush is ≥ 20 % are dropped before the second pass.
pub fn expected_posterior_heights(levels: &[LevelHeight]) -> Vec<Option<f64>> {
    let mut reference: Vec<bool> = levels.iter().map(|l| l.reference).collect();
    let first = expected_with(levels, &reference);
    for (i, l) in levels.iter().enumerate() {
        if let Some(e) = first[i] {
            if reference[i] && 1.0 - l.posterior_mm / e >= crate::grade::MILD {
                reference[i] = false;
            }
        }
    }
    expected_with(levels, &reference)
}

fn expected_with(levels: &[LevelHeight], reference: &[bool]) -> Vec<Option<f64>> {
    let parsed: Vec<Option<(usize, f64)>> = levels
        .iter()
        .map(|l| {
            let idx = l.label.index();
            let table = reference_posterior_height(l.label)?;
            Some((idx, table))
        })
        .collect();
    (0..levels.len())
        .map(|i| {
            let (idx, table) = parsed[i]?;
            let mut above: Option<(usize, f64)> = None;
            let mut below: Option<(usize, f64)> = None;
            for (j, other) in levels.iter().enumerate() {
                let Some((jdx, jtable)) = parsed[j] else {
                    continue;
                };
                let finite = other.posterior_mm.is_finite() && other.posterior_mm > 0.0;
                if j == i || !reference[j] || !finite || jdx == idx {
                    continue;
                }
                let gap = jdx.abs_diff(idx);
                if gap > MAX_NEIGHBOUR_LEVELS {
                    continue;
                }
                let scaled = other.posterior_mm * table / jtable;
                let slot = if jdx < idx { &mut above } else { &mut below };
                if slot.is_none_or(|(g, _)| gap < g) {
                    *slot = Some((gap, scaled));
                }
            }
            match (above, below) {
                (Some((_, a)), Some((_, b))) => Some((a + b) / 2.0),
                (Some((_, a)), None) | (None, Some((_, a))) => Some(a),
                (None, None) => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(label: &str, hp: f64, reference: bool) -> LevelHeight {
        LevelHeight {
            label: label.parse().unwrap(),
            posterior_mm: hp,
            reference,
        }
    }

    #[test]
    fn table_covers_t1_to_l5_and_grows_caudally_to_l3() {
        assert_eq!(reference_posterior_height(VertebraLevel::T1), Some(15.0));
        assert_eq!(reference_posterior_height(VertebraLevel::L3), Some(27.0));
        assert_eq!(reference_posterior_height(VertebraLevel::C7), None);
        for w in REFERENCE_POSTERIOR_HEIGHT_MM[..15].windows(2) {
            assert!(w[1].1 > w[0].1, "{} not taller than {}", w[1].0, w[0].0);
        }
    }

    #[test]
    fn expected_height_is_mean_of_scaled_neighbours() {
        // T12 between T11 (22 mm in the table) and L1 (25 mm), both exactly at table size × 1.1.
        let e = expected_posterior_heights(&[
            lv("T11", 24.2, true),
            lv("T12", 15.0, false),
            lv("L1", 27.5, true),
        ]);
        let t12 = e[1].unwrap();
        assert!((t12 - 23.5 * 1.1).abs() < 1e-9, "{t12}");
    }

    #[test]
    fn non_reference_and_far_neighbours_are_skipped() {
        let e = expected_posterior_heights(&[
            lv("T4", 17.0, true),
            lv("T10", 21.0, true),
            lv("T11", 10.0, false),
            lv("T12", 23.5, false),
        ]);
        // T11: T10 above (1 level); nothing usable below (T12 is not a reference).
        assert!((e[2].unwrap() - 22.0).abs() < 1e-9);
        // T4 has no reference within 4 levels.
        assert_eq!(e[0], None);
    }

    #[test]
    fn a_crushed_neighbour_is_not_a_reference() {
        // L1 is uniformly crushed (ratios normal, so `reference` is true at first); it must not
        // pull down the expected height of L2.
        let e = expected_posterior_heights(&[
            lv("T12", 23.5, true),
            lv("L1", 15.0, true),
            lv("L2", 26.0, true),
            lv("L3", 27.0, true),
        ]);
        assert!((e[2].unwrap() - 26.0).abs() < 1e-9, "{:?}", e[2]);
        // L1's own expectation comes from T12 and L2.
        assert!((e[1].unwrap() - 25.0).abs() < 1e-9);
    }
}
