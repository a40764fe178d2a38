//! The tracheal carina: where the trachea divides into the two main bronchi, a naming cue for a
//! chest CT that shows neither the first rib (with the level above it) nor the last rib (with
//! the level below it).
//!
//! The carina projects onto T5 in most adults (T4–T6 in nearly all; CT studies of the
//! tracheal bifurcation, it sits a little lower with age and kyphosis), so it names levels to
//! within one and is used only when no rib or sacral anchor is seen (`labels::name`).
//!
//! On each axial slice of the coarse grid, air pockets (below [`AIR_HU`]) are sought in a window
//! in front of the spinal canal. An airway is a pocket that does not reach the window's border
//! (the lungs do). The trachea is one pocket of tracheal size near the midline; the bronchi are
//! two smaller pockets, one each side of it. The carina is the first slice, walking caudally,
//! with bronchi right below a run of trachea.

use crate::canal::CanalTrack;
use crate::grid::Grid;
use crate::mask2d::{self, Mask};

/// Air in an airway's lumen on the 2 mm grid (−1000 HU at its core). Below aerated lung
/// (−850 … −900 HU), so a bronchus whose thin wall blurs into the lung beside it stays a pocket
/// of its own; emphysematous lung darker than this joins the bronchi and hides the carina.
const AIR_HU: f32 = -920.0;
/// Window in front of the canal centre (mm): lateral half width and the antero-posterior span
/// (the trachea's centre lies 45–90 mm in front of the canal's).
const WINDOW_HALF_WIDTH_MM: f64 = 60.0;
const WINDOW_ANTERIOR_MM: (f64, f64) = (20.0, 110.0);
/// Lumen areas (mm²): trachea 150–400 (13–22 mm across), a main bronchus 50–250.
const TRACHEA_AREA_MM2: (f64, f64) = (100.0, 600.0);
const BRONCHUS_AREA_MM2: (f64, f64) = (25.0, 300.0);
/// The trachea's centre lies within this distance of the canal's midline (mm).
const TRACHEA_OFF_MIDLINE_MM: f64 = 25.0;
/// Two bronchi lie on either side of the midline, at least this far apart (mm).
const BRONCHI_MIN_SEPARATION_MM: f64 = 12.0;
/// Trachea needed above the division and bronchi below it (mm), so that a pocket of air beside
/// the trachea for a few slices (the oesophagus, a lung apex inside the window) does not make a
/// carina.
const MIN_TRACHEA_RUN_MM: f64 = 8.0;
const MIN_BRONCHI_RUN_MM: f64 = 8.0;
/// Slices of neither kind allowed between the trachea and the bronchi (mm).
const MAX_DIVISION_GAP_MM: f64 = 6.0;

/// What the airways show on one slice.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Airway {
    Trachea,
    Bronchi,
    Neither,
}

/// The carina's position (patient mm, LPS), when the trachea and its division are in view.
pub fn find(g: &Grid, track: &CanalTrack) -> Option<[f64; 3]> {
    let kinds: Vec<(Airway, [f64; 3])> = track
        .points
        .iter()
        .enumerate()
        .map(|(i, &(cx, cy, _, _))| classify(g, track.k_start + i, cx, cy))
        .collect();
    tracing::trace!(
        "airways from the track's top down: {}",
        kinds
            .iter()
            .rev()
            .map(|(a, _)| match a {
                Airway::Trachea => 'T',
                Airway::Bronchi => 'B',
                Airway::Neither => '.',
            })
            .collect::<String>()
    );
    // The track runs from the lowest slice (k grows cranially): walk from the top down.
    let s = g.spacing;
    let run = |mm: f64| (mm / s).ceil() as usize;
    let mut trachea_run = 0usize;
    let mut gap = 0usize;
    // The lowest division: the trachea ends at the carina, and any pair of pockets above it
    // (apices of the lungs, the oesophagus beside the trachea) is passed over.
    let mut carina = None;
    for i in (0..kinds.len()).rev() {
        match kinds[i].0 {
            Airway::Trachea => {
                trachea_run += 1;
                gap = 0;
            }
            Airway::Bronchi if trachea_run >= run(MIN_TRACHEA_RUN_MM) => {
                // Thick slices blur a bronchus into its lung now and then: most of the
                // slices below must show bronchi, and none the trachea again.
                let below = i.saturating_sub(run(MIN_BRONCHI_RUN_MM + MAX_DIVISION_GAP_MM) - 1);
                let window = &kinds[below..=i];
                let bronchi = window.iter().filter(|k| k.0 == Airway::Bronchi).count();
                let trachea = window.iter().any(|k| k.0 == Airway::Trachea);
                if bronchi >= run(MIN_BRONCHI_RUN_MM) && !trachea {
                    // Between the last trachea slice and this first bronchi slice.
                    let above = kinds[i + gap + 1].1;
                    let here = kinds[i].1;
                    carina = Some(std::array::from_fn(|a| 0.5 * (above[a] + here[a])));
                }
                trachea_run = 0;
                gap = 0;
            }
            _ if trachea_run > 0 && gap < run(MAX_DIVISION_GAP_MM) => gap += 1,
            _ => {
                trachea_run = 0;
                gap = 0;
            }
        }
    }
    carina
}

/// The airway seen on slice `k` in front of the canal centred at `(cx, cy)`, and the point the
/// slice contributes (the airway's centre, or the canal's with nothing found).
fn classify(g: &Grid, k: usize, cx: f64, cy: f64) -> (Airway, [f64; 3]) {
    let s = g.spacing;
    let [nx, ny, _] = g.dims;
    let canal = g.to_index([cx, cy, g.origin[2] + k as f64 * s]);
    let x0 = (canal[0] - WINDOW_HALF_WIDTH_MM / s).floor().max(0.0) as usize;
    let x1 = ((canal[0] + WINDOW_HALF_WIDTH_MM / s).ceil() as usize).min(nx);
    // Anterior is −y.
    let y0 = (canal[1] - WINDOW_ANTERIOR_MM.1 / s).floor().max(0.0) as usize;
    let y1 = ((canal[1] - WINDOW_ANTERIOR_MM.0 / s).ceil().max(0.0) as usize).min(ny);
    let fallback = (Airway::Neither, [cx, cy, g.origin[2] + k as f64 * s]);
    if x1 <= x0 + 2 || y1 <= y0 + 2 {
        return fallback;
    }
    let (w, h) = (x1 - x0, y1 - y0);
    let slice = g.slice(k);
    let window: Vec<f32> = (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .map(|(x, y)| slice[y * nx + x])
        .collect();
    let mask = Mask::threshold(&window, w, h, AIR_HU);
    let pocket_area = |r: &mask2d::Region| r.pixels.len() as f64 * s * s;
    let pockets: Vec<(f64, [f64; 3])> = mask2d::components(&mask, false)
        .into_iter()
        .filter(|r| !r.touches_border)
        .map(|r| {
            let (px, py) = r.centroid(w);
            (
                pocket_area(&r),
                g.to_patient(x0 as f64 + px, y0 as f64 + py, k as f64),
            )
        })
        .collect();
    let within = |a: f64, (lo, hi): (f64, f64)| (lo..=hi).contains(&a);
    let tracheas: Vec<&(f64, [f64; 3])> = pockets
        .iter()
        .filter(|(a, p)| {
            within(*a, TRACHEA_AREA_MM2) && (p[0] - cx).abs() <= TRACHEA_OFF_MIDLINE_MM
        })
        .collect();
    if let [only] = tracheas.as_slice() {
        return (Airway::Trachea, only.1);
    }
    let bronchi: Vec<&(f64, [f64; 3])> = pockets
        .iter()
        .filter(|(a, _)| within(*a, BRONCHUS_AREA_MM2))
        .collect();
    let nearest_on = |side: f64| {
        bronchi
            .iter()
            .filter(|(_, p)| (p[0] - cx) * side > 0.0)
            .min_by(|a, b| (a.1[0] - cx).abs().total_cmp(&(b.1[0] - cx).abs()))
    };
    if let (Some(l), Some(r)) = (nearest_on(1.0), nearest_on(-1.0)) {
        if (l.1[0] - r.1[0]).abs() >= BRONCHI_MIN_SEPARATION_MM {
            let mid = std::array::from_fn(|a| 0.5 * (l.1[a] + r.1[a]));
            return (Airway::Bronchi, mid);
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2 mm grid of soft tissue 160 × 200 × 120 mm with the canal at x = 80, y = 150 mm, lungs
    /// beside the mediastinum, and a trachea 60 mm in front of the canal down to `carina_z`,
    /// dividing there into two bronchi that diverge caudally.
    fn chest(carina_z: Option<f64>) -> (Grid, CanalTrack) {
        let s = 2.0;
        let dims = [80, 100, 60];
        let (cx, cy) = (80.0, 150.0);
        let mut data = vec![40.0f32; dims[0] * dims[1] * dims[2]];
        for z in 0..dims[2] {
            let pz = z as f64 * s;
            for y in 0..dims[1] {
                for x in 0..dims[0] {
                    let (px, py) = (x as f64 * s, y as f64 * s);
                    let dx = px - cx;
                    let ty = cy - 60.0;
                    let lung = dx.abs() > 35.0 && py < cy;
                    let airway = match carina_z {
                        Some(c) if pz < c => {
                            let spread = 6.0 + 0.5 * (c - pz);
                            [-1.0, 1.0]
                                .iter()
                                .any(|side| (dx - side * spread).hypot(py - ty) < 5.5)
                        }
                        _ => dx.hypot(py - ty) < 8.0,
                    };
                    if lung {
                        data[(z * dims[1] + y) * dims[0] + x] = -860.0;
                    }
                    if airway {
                        data[(z * dims[1] + y) * dims[0] + x] = -1000.0;
                    }
                }
            }
        }
        let grid = Grid {
            dims,
            spacing: s,
            origin: [0.0; 3],
            data,
        };
        let track = CanalTrack {
            k_start: 0,
            points: vec![(cx, cy, 7.0, true); dims[2]],
            longest_gap_mm: 0.0,
        };
        (grid, track)
    }

    #[test]
    fn the_carina_is_found_where_the_trachea_divides() {
        let (grid, track) = chest(Some(70.0));
        let p = find(&grid, &track).expect("carina");
        assert!((p[2] - 70.0).abs() <= 3.0, "{p:?}");
        assert!((p[0] - 80.0).abs() <= 4.0, "{p:?}");
    }

    #[test]
    fn a_trachea_that_does_not_divide_in_view_gives_no_carina() {
        let (grid, track) = chest(None);
        assert_eq!(find(&grid, &track), None);
    }
}
