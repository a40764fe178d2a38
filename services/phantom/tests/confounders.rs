//! Each confounder is where the truth says, looks like what fooled real services, and changes
//! no vertebra's truth (heights, grade).
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use spinescreen_phantom::{Confounder, Phantom};

fn with(c: Option<Confounder>) -> Phantom {
    common::small(41, |s| s.confounders = c.into_iter().collect())
}

fn add(p: [f64; 3], d: [f64; 3], s: f64) -> [f64; 3] {
    [p[0] + d[0] * s, p[1] + d[1] * s, p[2] + d[2] * s]
}

fn assert_truth_unchanged(base: &Phantom, ph: &Phantom) {
    for (a, b) in base.truth.vertebrae.iter().zip(&ph.truth.vertebrae) {
        assert_eq!(a.heights_mm, b.heights_mm, "{}", a.label);
        assert_eq!(a.genant_grade, b.genant_grade, "{}", a.label);
    }
    assert!(!ph.truth.positive);
}

fn site(ph: &Phantom, kind: Confounder) -> (String, [f64; 3]) {
    let s = ph
        .truth
        .confounders
        .iter()
        .find(|s| s.kind == kind)
        .expect("site recorded");
    (s.label.clone().unwrap_or_default(), s.centre_mm)
}

/// Largest voxel difference within `r` mm of `c`.
fn max_diff_near(a: &Phantom, b: &Phantom, c: [f64; 3], r: f64) -> f64 {
    let h = &a.volume.header;
    let lo = h.patient_to_index([c[0] - r, c[1] - r, c[2] - r]);
    let hi = h.patient_to_index([c[0] + r, c[1] + r, c[2] + r]);
    let mut m: f64 = 0.0;
    for z in lo[2].floor() as isize..=hi[2].ceil() as isize {
        for y in lo[1].floor() as isize..=hi[1].ceil() as isize {
            for x in lo[0].floor() as isize..=hi[0].ceil() as isize {
                if let (Some(p), Some(q)) = (a.volume.get(x, y, z), b.volume.get(x, y, z)) {
                    m = m.max((p as f64 - q as f64).abs());
                }
            }
        }
    }
    m
}

#[test]
fn calcified_disc_is_a_bright_ovoid_between_two_bodies() {
    let base = with(None);
    let ph = with(Some(Confounder::CalcifiedDisc));
    assert_truth_unchanged(&base, &ph);
    let (label, c) = site(&ph, Confounder::CalcifiedDisc);
    let i = ph
        .truth
        .vertebrae
        .iter()
        .position(|v| v.label == label)
        .unwrap();
    let (up, down) = (&ph.truth.vertebrae[i], &ph.truth.vertebrae[i + 1]);
    assert!(up.flags.contains(&"calcified_disc_below".to_string()));
    // Its centre lies between the inferior endplate above and the superior endplate below.
    assert!(
        c[2] < up.keypoints_mm.inferior_middle[2] && c[2] > down.keypoints_mm.superior_middle[2]
    );
    let v = ph.volume.sample_patient(c).unwrap();
    let v0 = base.volume.sample_patient(c).unwrap();
    assert!(v > 350.0 && v0 < 200.0, "disc centre {v0:.0} → {v:.0} HU");
}

#[test]
fn osteophyte_is_bone_beyond_the_anterior_cortex() {
    let base = with(None);
    let ph = with(Some(Confounder::Osteophyte));
    assert_truth_unchanged(&base, &ph);
    let (label, c) = site(&ph, Confounder::Osteophyte);
    let v = ph
        .truth
        .vertebrae
        .iter()
        .find(|v| v.label == label)
        .unwrap();
    assert!(v.flags.contains(&"osteophyte".to_string()));
    // Anterior of the body's anterior wall (centre + depth/2 along anterior_dir).
    let wall = add(v.center_mm, v.anterior_dir, v.depth_mm / 2.0);
    let beyond = (0..3)
        .map(|k| (c[k] - wall[k]) * v.anterior_dir[k])
        .sum::<f64>();
    assert!(
        beyond > 1.0,
        "spur centre only {beyond:.1} mm beyond the wall"
    );
    assert!(max_diff_near(&base, &ph, c, 3.0) > 250.0);
}

#[test]
fn schmorl_node_is_a_focal_pit_that_changes_no_height() {
    let base = with(None);
    let ph = with(Some(Confounder::Schmorl));
    assert_truth_unchanged(&base, &ph);
    let (label, c) = site(&ph, Confounder::Schmorl);
    let v = ph
        .truth
        .vertebrae
        .iter()
        .find(|v| v.label == label)
        .unwrap();
    assert!(v.flags.contains(&"schmorl_node".to_string()));
    // Below the original endplate surface, bone became disc-like tissue.
    let inside = add(c, v.cranial_dir, -2.0);
    let (a, b) = (
        base.volume.sample_patient(inside).unwrap(),
        ph.volume.sample_patient(inside).unwrap(),
    );
    assert!(a - b > 150.0, "pit: {a:.0} → {b:.0} HU");
    // Focal: the middle column's measured height is unchanged.
    let (ma, mb) = (
        common::measured_heights(&base.volume, v),
        common::measured_heights(&ph.volume, v),
    );
    assert!(
        (ma[1] - mb[1]).abs() < 0.5,
        "Hm {:.2} → {:.2}",
        ma[1],
        mb[1]
    );
}

#[test]
fn cement_is_very_dense_with_streaks_beyond_the_body() {
    let base = with(None);
    let ph = with(Some(Confounder::Cement));
    assert_truth_unchanged(&base, &ph);
    let (label, c) = site(&ph, Confounder::Cement);
    let v = ph
        .truth
        .vertebrae
        .iter()
        .find(|v| v.label == label)
        .unwrap();
    assert!(v.flags.contains(&"cement".to_string()));
    assert!(ph.volume.sample_patient(c).unwrap() > 1800.0);
    // Streaks reach well outside the vertebra in the same slice.
    let h = &ph.volume.header;
    let k = h.patient_to_index(c)[2].round() as isize;
    let mut changed = 0;
    for y in 0..h.dims[1] as isize {
        for x in 0..h.dims[0] as isize {
            let p = h.index_to_patient([x as f64, y as f64, k as f64]);
            let r = ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)).sqrt();
            if r > 40.0 {
                let d = ph.volume.get(x, y, k).unwrap() as i32
                    - base.volume.get(x, y, k).unwrap() as i32;
                if d.abs() > 60 {
                    changed += 1;
                }
            }
        }
    }
    assert!(changed > 100, "streak pixels beyond 40 mm: {changed}");
}

#[test]
fn ring_artefact_is_concentric_about_the_isocentre_in_every_slice() {
    let base = with(None);
    let ph = with(Some(Confounder::Ring));
    assert_truth_unchanged(&base, &ph);
    let h = &ph.volume.header;
    for k in [10usize, h.dims[2] / 2, h.dims[2] - 10] {
        // Mean absolute difference per 1-mm radius bin about the isocentre (0, 0).
        let mut bins = vec![(0.0f64, 0.0f64); 200];
        for y in 0..h.dims[1] {
            for x in 0..h.dims[0] {
                let p = h.index_to_patient([x as f64, y as f64, k as f64]);
                let r = (p[0] * p[0] + p[1] * p[1]).sqrt() as usize;
                if r < 200 {
                    let d =
                        ph.volume.voxels[[k, y, x]] as f64 - base.volume.voxels[[k, y, x]] as f64;
                    bins[r].0 += d.abs();
                    bins[r].1 += 1.0;
                }
            }
        }
        let means: Vec<f64> = bins
            .iter()
            .map(|(s, n)| if *n > 0.0 { s / n } else { 0.0 })
            .collect();
        let peak = means.iter().cloned().fold(0.0, f64::max);
        let quiet = means.iter().filter(|m| **m < 5.0).count();
        assert!(peak > 40.0, "slice {k}: strongest ring only {peak:.0} HU");
        assert!(
            quiet > 120,
            "slice {k}: rings should be thin, {quiet} quiet radii of 200"
        );
    }
}
