//! Nominal adult dimensions per spinal level, C7 to S1.
//!
//! Vertebral body posterior heights, widths and depths follow the morphometry of Panjabi et al.
//! (Spine 1991;16:888–901, thoracic; Spine 1992;17:299–306, lumbar) rounded to typical adult
//! values: posterior height rises from ~15 mm at T1 to ~27 mm at L3–L4. Intervertebral discs
//! thicken caudally (~4 mm upper thoracic to ~10 mm lower lumbar). Natural anterior wedging
//! (Ha/Hp) is strongest mid-thoracic (~0.89) and reverses in the lower lumbar spine.

/// Nominal values for one level.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    /// Label, e.g. `T7`.
    pub label: &'static str,
    /// Posterior body height, mm.
    pub hp: f64,
    /// Body width (lateral), mm.
    pub width: f64,
    /// Body depth (antero-posterior), mm.
    pub depth: f64,
    /// Mean Ha/Hp of a healthy body.
    pub wedge: f64,
    /// Height of the disc below this body, mm.
    pub disc_below: f64,
    /// Spinal canal width (lateral) and depth (AP), mm.
    pub canal: (f64, f64),
    /// Pedicle width and height, mm.
    pub pedicle: (f64, f64),
    /// Spinous process length (from the lamina) and its downward angle from horizontal, degrees.
    pub spinous: (f64, f64),
    /// Transverse process length, mm, and backward angle from lateral, degrees.
    pub transverse: (f64, f64),
}

#[allow(clippy::too_many_arguments)] // a table row constructor, read column-wise
const fn lv(
    label: &'static str,
    hp: f64,
    width: f64,
    depth: f64,
    wedge: f64,
    disc_below: f64,
    canal: (f64, f64),
    pedicle: (f64, f64),
    spinous: (f64, f64),
    transverse: (f64, f64),
) -> Level {
    Level {
        label,
        hp,
        width,
        depth,
        wedge,
        disc_below,
        canal,
        pedicle,
        spinous,
        transverse,
    }
}

/// C7 (context above the study), T1–T12, L1–L5, S1 (context below).
pub const LEVELS: [Level; 19] = [
    lv(
        "C7",
        14.0,
        26.0,
        16.0,
        0.98,
        4.0,
        (22.0, 14.0),
        (6.0, 8.0),
        (40.0, 30.0),
        (18.0, 10.0),
    ),
    lv(
        "T1",
        15.0,
        28.0,
        17.0,
        0.96,
        4.0,
        (20.0, 15.0),
        (7.5, 9.5),
        (40.0, 40.0),
        (22.0, 25.0),
    ),
    lv(
        "T2",
        16.0,
        27.0,
        18.5,
        0.95,
        4.0,
        (17.5, 15.0),
        (6.5, 11.0),
        (42.0, 45.0),
        (23.0, 30.0),
    ),
    lv(
        "T3",
        16.8,
        27.0,
        20.0,
        0.93,
        4.0,
        (16.5, 15.0),
        (5.5, 11.5),
        (42.0, 55.0),
        (23.0, 32.0),
    ),
    lv(
        "T4",
        17.4,
        27.5,
        22.0,
        0.92,
        4.2,
        (16.0, 15.0),
        (5.0, 11.5),
        (42.0, 60.0),
        (22.0, 34.0),
    ),
    lv(
        "T5",
        18.0,
        28.5,
        23.5,
        0.91,
        4.4,
        (16.0, 15.0),
        (5.0, 11.5),
        (42.0, 62.0),
        (22.0, 35.0),
    ),
    lv(
        "T6",
        18.6,
        29.5,
        25.0,
        0.90,
        4.6,
        (16.0, 15.0),
        (5.5, 12.0),
        (42.0, 62.0),
        (21.0, 36.0),
    ),
    lv(
        "T7",
        19.2,
        30.5,
        26.0,
        0.89,
        4.8,
        (16.0, 15.0),
        (5.5, 12.0),
        (40.0, 60.0),
        (20.0, 37.0),
    ),
    lv(
        "T8",
        19.8,
        31.5,
        27.0,
        0.90,
        5.0,
        (16.0, 15.0),
        (6.0, 12.5),
        (38.0, 55.0),
        (20.0, 37.0),
    ),
    lv(
        "T9",
        20.4,
        33.0,
        28.0,
        0.91,
        5.4,
        (16.0, 15.0),
        (6.0, 13.0),
        (36.0, 50.0),
        (19.0, 37.0),
    ),
    lv(
        "T10",
        21.2,
        35.0,
        29.0,
        0.93,
        5.8,
        (16.5, 15.0),
        (6.5, 14.0),
        (34.0, 40.0),
        (17.0, 35.0),
    ),
    lv(
        "T11",
        22.2,
        38.0,
        30.0,
        0.94,
        6.5,
        (17.5, 15.5),
        (7.5, 15.0),
        (32.0, 30.0),
        (14.0, 30.0),
    ),
    lv(
        "T12",
        23.3,
        40.0,
        31.0,
        0.95,
        7.5,
        (19.5, 16.0),
        (8.0, 15.0),
        (30.0, 20.0),
        (12.0, 20.0),
    ),
    lv(
        "L1",
        24.5,
        42.0,
        32.0,
        0.97,
        8.5,
        (21.5, 17.0),
        (8.5, 15.0),
        (30.0, 12.0),
        (18.0, 5.0),
    ),
    lv(
        "L2",
        25.5,
        44.0,
        33.0,
        0.99,
        9.5,
        (22.0, 17.0),
        (9.0, 15.0),
        (30.0, 10.0),
        (24.0, 5.0),
    ),
    lv(
        "L3",
        26.5,
        47.0,
        34.0,
        1.01,
        10.0,
        (23.0, 17.0),
        (10.0, 15.0),
        (30.0, 8.0),
        (28.0, 5.0),
    ),
    lv(
        "L4",
        27.0,
        49.0,
        34.0,
        1.03,
        10.5,
        (23.5, 17.5),
        (11.5, 14.5),
        (28.0, 5.0),
        (26.0, 5.0),
    ),
    lv(
        "L5",
        26.5,
        51.0,
        34.0,
        1.07,
        11.0,
        (25.0, 17.5),
        (14.0, 14.0),
        (24.0, 0.0),
        (22.0, 0.0),
    ),
    lv(
        "S1",
        25.0,
        50.0,
        32.0,
        1.05,
        4.0,
        (28.0, 14.0),
        (16.0, 14.0),
        (20.0, 0.0),
        (30.0, 0.0),
    ),
];

/// Whether the level carries a rib pair in a patient with `pairs` rib pairs (11: none on T12;
/// 13: a short pair on L1).
pub fn has_ribs_n(index: usize, pairs: u8) -> bool {
    (1..=pairs as usize).contains(&index)
}

/// C5 and C6, above the table's C7: context at the top of a population study's field of view
/// (Panjabi et al. 1991, cervical bodies ~13–14 mm high).
pub const CERVICAL_ABOVE: [Level; 2] = [
    lv(
        "C5",
        13.0,
        22.0,
        15.5,
        1.0,
        4.5,
        (24.0, 14.0),
        (5.5, 7.0),
        (22.0, 20.0),
        (14.0, 10.0),
    ),
    lv(
        "C6",
        13.5,
        24.0,
        16.0,
        1.0,
        4.5,
        (24.0, 14.0),
        (5.5, 7.5),
        (28.0, 25.0),
        (16.0, 10.0),
    ),
];

/// S2 below S1: context at the bottom of a population study that runs on to the sacrum; the
/// sacral segments are fused (a ~1 mm rudimentary disc).
pub const S2: Level = lv(
    "S2",
    21.0,
    42.0,
    24.0,
    1.0,
    1.0,
    (22.0, 10.0),
    (14.0, 12.0),
    (14.0, 0.0),
    (30.0, 0.0),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_rise_from_t1_to_l3() {
        let idx = |l: &str| LEVELS.iter().position(|v| v.label == l).unwrap();
        let t1 = LEVELS[idx("T1")].hp;
        let l3 = LEVELS[idx("L3")].hp;
        assert!((14.0..=16.0).contains(&t1) && (26.0..=28.0).contains(&l3));
        for w in LEVELS[1..16].windows(2) {
            assert!(
                w[1].hp > w[0].hp,
                "{} not taller than {}",
                w[1].label,
                w[0].label
            );
        }
    }
}
