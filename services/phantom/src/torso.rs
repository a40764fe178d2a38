//! The torso around the spine: body outline (skin, subcutaneous fat, muscle wall), lungs with
//! diaphragm domes, mediastinum (heart, aorta, trachea, oesophagus), upper abdominal organs
//! (liver, stomach with an air cap, spleen, kidneys), ribs, sternum and the scanner table.
//! Everything is expressed relative to the spine so kyphosis and scoliosis move the body too.

use crate::geom::{add, capsule, ellipse, ellipsoid, scale, sub, V3};
use crate::spine::{gauss, Spine};
use crate::vertebra::Vertebra;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// HU of the tissues.
pub mod hu {
    pub const AIR: f32 = -1000.0;
    pub const FAT: f32 = -100.0;
    pub const MUSCLE: f32 = 42.0;
    pub const LUNG: f32 = -850.0;
    pub const BLOOD: f32 = 40.0;
    pub const LIVER: f32 = 58.0;
    pub const SPLEEN: f32 = 46.0;
    pub const KIDNEY: f32 = 32.0;
    pub const STOMACH: f32 = 18.0;
    pub const ABDOMEN: f32 = 12.0;
    pub const DISC: f32 = 85.0;
    pub const NUCLEUS: f32 = 70.0;
    pub const CSF: f32 = 10.0;
    pub const CORD: f32 = 36.0;
    pub const CARTILAGE: f32 = 130.0;
    pub const TABLE: f32 = 160.0;
}

/// A rib as a chain of capsule segments (two stacked capsules per segment make its tall,
/// narrow cross-section), plus its costal cartilage.
#[derive(Debug, Clone)]
pub struct Rib {
    /// Segment end points, head to anterior end.
    pub path: Vec<V3>,
    /// Costal cartilage path (may be empty).
    pub cartilage: Vec<V3>,
    /// Which vertebra (index into the spine) it articulates with.
    pub vertebra: usize,
}

/// The torso model for one patient.
#[derive(Debug, Clone)]
pub struct Torso {
    /// Half width of the body outline, mm.
    pub half_width: f64,
    /// Half AP depth of the body outline, mm.
    pub half_depth: f64,
    /// Subcutaneous fat thickness, mm.
    pub fat_mm: f64,
    /// Skin-to-body-centre distance behind the vertebral bodies: thoracic, lumbar, mm.
    pub back_depth: (f64, f64),
    /// z of the T12 and L2 body centres (where the back thickens).
    pub z_t12: f64,
    /// z of the L2 centre.
    pub z_l2: f64,
    /// z of the lung apices.
    pub z_apex: f64,
    /// Right and left diaphragm dome tops, z.
    pub dome: (f64, f64),
    /// z of the carina.
    pub z_carina: f64,
    /// z of the aortic arch.
    pub z_arch: f64,
    /// Heart centre.
    pub heart: V3,
    /// Ribs (both sides).
    pub ribs: Vec<Rib>,
    /// Sternum: top z, bottom z.
    pub sternum: (f64, f64),
    /// Table top y.
    pub table_y: f64,
    /// Aorta as capsule segments (start, end, radius).
    pub aorta: Vec<(V3, V3, f64)>,
    /// Calcified plaques on the aortic wall: centre, radii, HU (common after 50; bright spots
    /// left-anterior of the vertebral bodies that a bone detector must not take for bone).
    pub plaques: Vec<(V3, V3, f64)>,
    /// Scapulae: z of the superior and inferior angles.
    pub scapula_z: (f64, f64),
    /// Population extras (`None` for the classic phantom).
    pub extra: Option<PopulationTorso>,
}

/// What a population patient adds around the spine.
#[derive(Debug, Clone)]
pub struct PopulationTorso {
    /// HU of blood in the heart and aorta (≈ 40 unenhanced, 150–350 with contrast).
    pub blood_hu: f64,
    /// Arms beside the chest: centre offsets from the body outline's lateral edge, mm.
    pub arms_down: bool,
    /// Psoas: z where it starts (T12/L1) and where it is fullest (L5).
    pub psoas_z: (f64, f64),
    /// Diaphragm crura: z of their top (the aortic hiatus, ~T12) and bottom (~L2/L3).
    pub crura_z: (f64, f64),
}

fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Per-slice outline of the body.
#[derive(Debug, Clone, Copy)]
pub struct Outline {
    /// Centre y of the body ellipse.
    pub yc: f64,
    /// Half width.
    pub a: f64,
    /// Half depth.
    pub b: f64,
    /// Spine centre at this z.
    pub spine: (f64, f64),
}

impl Torso {
    /// Build the torso around a spine.
    pub fn build(
        spine: &Spine,
        rng: &mut ChaCha8Rng,
        size: f64,
        pop: Option<&crate::population::Population>,
    ) -> Self {
        let off = spine.offset;
        let z_of = |i: usize| spine.vertebrae[i + off].frame.origin[2];
        let half_width = 158.0 * size * (1.0 + 0.04 * gauss(rng).clamp(-2.0, 2.0));
        let half_depth = 112.0 * size * (1.0 + 0.04 * gauss(rng).clamp(-2.0, 2.0));
        let fat_mm = 10.0 + 14.0 * rng.random::<f64>();
        let fat_mm = pop.map_or(fat_mm, |p| p.fat_mm);
        let mut t = Torso {
            half_width,
            half_depth,
            fat_mm,
            back_depth: (80.0 * size, 98.0 * size),
            z_t12: z_of(12),
            z_l2: z_of(14),
            z_apex: z_of(1) + 28.0,
            dome: (z_of(9) + 5.0 * gauss(rng).clamp(-1.5, 1.5), z_of(10)),
            z_carina: pop.map_or(z_of(5), |p| {
                z_of(5) + p.carina_t5_to_t6 * (z_of(6) - z_of(5))
            }),
            z_arch: z_of(4) + 8.0,
            heart: [0.0; 3],
            ribs: Vec::new(),
            sternum: (z_of(2), z_of(9)),
            table_y: 0.0,
            aorta: Vec::new(),
            plaques: Vec::new(),
            scapula_z: (z_of(1) + 5.0, z_of(8) - 5.0 * rng.random::<f64>()),
            extra: pop.map(|p| PopulationTorso {
                blood_hu: p.contrast_blood_hu.unwrap_or(hu::BLOOD as f64),
                arms_down: p.arms_down,
                psoas_z: (z_of(12), z_of(17)),
                crura_z: (z_of(12) + 10.0, z_of(15)),
            }),
        };
        let ol = t.outline(spine, z_of(8));
        t.heart = [22.0, ol.yc - ol.b + 62.0, z_of(8) - 5.0];
        // The patient lies on the table: its top touches the most posterior skin.
        let z_lo = spine.vertebrae.last().map_or(t.z_l2, |v| v.frame.origin[2]);
        let mut back = f64::NEG_INFINITY;
        let mut z = t.z_apex + 60.0;
        while z > z_lo - 40.0 {
            let o = t.outline(spine, z);
            back = back.max(o.yc + o.b);
            z -= 5.0;
        }
        t.table_y = back + 0.5;
        t.ribs = build_ribs(spine, &t, pop.map_or(12, |p| p.rib_pairs));
        t.aorta = t.aorta_segments(spine);
        // Descending-aorta plaques, on the wall at random heights and angles.
        let desc: Vec<(V3, V3, f64)> = t
            .aorta
            .iter()
            .copied()
            .filter(|(a, b, _)| (a[0] - b[0]).abs() + (a[1] - b[1]).abs() < 10.0)
            .collect();
        let n_plaques = if desc.is_empty() {
            0
        } else {
            rng.random_range(0..=5usize)
        };
        // Population: wall calcification grows with age (drawn count).
        let n_plaques = match pop {
            Some(p) if !desc.is_empty() => p.aortic_plaques as usize,
            _ => n_plaques,
        };
        for _ in 0..n_plaques {
            let (a, b, r) = desc[rng.random_range(0..desc.len())];
            let f: f64 = rng.random();
            let c = add(a, scale(sub(b, a), f));
            let th = std::f64::consts::TAU * rng.random::<f64>();
            let centre = [
                c[0] + (r - 1.0) * th.cos(),
                c[1] + (r - 1.0) * th.sin(),
                c[2],
            ];
            let hu = 450.0 + 450.0 * rng.random::<f64>();
            t.plaques
                .push((centre, [1.6, 1.6, 2.0 + 3.0 * rng.random::<f64>()], hu));
        }
        t
    }

    /// Body outline at height `z`.
    pub fn outline(&self, spine: &Spine, z: f64) -> Outline {
        let (sx, sy) = spine.centreline.xy_at_z(z);
        let lumbar = smoothstep(self.z_t12 + 10.0, self.z_l2, z);
        let back = self.back_depth.0 + (self.back_depth.1 - self.back_depth.0) * lumbar;
        // Narrower at the thoracic inlet.
        let top = smoothstep(self.z_apex - 60.0, self.z_apex + 20.0, z);
        let a = self.half_width * (1.0 - 0.22 * top);
        let b = self.half_depth * (1.0 - 0.10 * top) * (1.0 - 0.05 * lumbar);
        Outline {
            yc: sy + back - b,
            a,
            b,
            spine: (sx, sy),
        }
    }

    /// Diaphragm surface height at (x, y): two domes, the right one higher.
    pub fn diaphragm(&self, x: f64, y: f64, yc: f64) -> f64 {
        let r2 = |cx: f64| ((x - cx).powi(2) + (y - yc + 5.0).powi(2)) / 160.0;
        let right = self.dome.0 - r2(-65.0);
        let left = self.dome.1 - r2(65.0);
        if x < 0.0 {
            right.max(left - 40.0)
        } else {
            left.max(right - 40.0)
        }
    }

    /// Descending/arch/ascending aorta centreline segments at the study's anatomy.
    fn aorta_segments(&self, spine: &Spine) -> Vec<(V3, V3, f64)> {
        let mut segs = Vec::new();
        let mut prev: Option<V3> = None;
        let z_hi = self.z_arch;
        let z_lo = spine
            .vertebrae
            .last()
            .map_or(z_hi - 300.0, |v| v.frame.origin[2]);
        let mut z = z_hi;
        while z > z_lo {
            let (sx, sy) = spine.centreline.xy_at_z(z);
            let below = smoothstep(self.dome.1 + 10.0, self.dome.1 - 60.0, z);
            let p = [sx + 22.0 - 10.0 * below, sy - 14.0 - 16.0 * below, z];
            if let Some(q) = prev {
                segs.push((q, p, 12.0));
            }
            prev = Some(p);
            z -= 12.0;
        }
        // Arch over to the ascending aorta and down towards the heart.
        let (sx, sy) = spine.centreline.xy_at_z(z_hi);
        let top = [sx + 22.0, sy - 14.0, z_hi];
        let apex = [sx + 5.0, sy - 45.0, z_hi + 14.0];
        let asc = [sx - 22.0, sy - 78.0, z_hi - 5.0];
        let root = add(self.heart, [-25.0, -10.0, 40.0]);
        segs.push((top, apex, 13.0));
        segs.push((apex, asc, 14.0));
        segs.push((asc, root, 15.0));
        segs
    }
}

fn build_ribs(spine: &Spine, torso: &Torso, pairs: u8) -> Vec<Rib> {
    let drops = [
        25.0, 40.0, 50.0, 58.0, 64.0, 68.0, 70.0, 70.0, 66.0, 60.0, 45.0, 35.0,
    ];
    let ends = [
        0.80, 0.82, 0.82, 0.82, 0.81, 0.80, 0.78, 0.74, 0.70, 0.64, 0.52, 0.40,
    ];
    let mut ribs = Vec::new();
    for (vi, v) in spine.vertebrae.iter().enumerate() {
        if !crate::anatomy::has_ribs_n(v.level, pairs) {
            continue;
        }
        let k = v.level - 1;
        // A 13th (lumbar) rib is a short stub.
        let (drop, end) = if k < 12 {
            (drops[k], ends[k])
        } else {
            (25.0, 0.28)
        };
        for side in [-1.0, 1.0] {
            ribs.push(one_rib(spine, torso, vi, v, side, drop, end));
        }
    }
    ribs
}

/// Heights (mm above the body's centre) of a rib's head and tubercle, by level. Ribs 2–9 have
/// their head at the disc above their body (two demifacets) and rise to the tubercle on the
/// transverse process; ribs 10–12 (and a 13th) articulate with their own body only, below its
/// top, and fall steeply beside the spine: on a real chest CT the 10th–12th ribs reach the spine
/// at their body's centre, the 2nd–9th 4–13 mm above it (docs/detection.md).
fn rib_root_heights(level: usize, centre_height: f64, hp_nat: f64) -> (f64, f64) {
    match level {
        1 => (0.5 * centre_height - 2.0, 0.12 * hp_nat + 2.0),
        2..=9 => (0.5 * centre_height + 1.0, 0.3 * hp_nat + 2.0),
        _ => (0.15 * centre_height, -0.1 * hp_nat),
    }
}

fn one_rib(
    spine: &Spine,
    torso: &Torso,
    vi: usize,
    v: &Vertebra,
    side: f64,
    drop: f64,
    end: f64,
) -> Rib {
    let vcc = v.canal_centre_v();
    let (cw, _) = v.canal;
    let (tl, tb) = v.transverse;
    let (head_z, tub_z) = rib_root_heights(v.level, v.centre_height(), v.hp_nat);
    let head = v.frame.to_patient([side * (v.a + 2.5), -0.5 * v.b, head_z]);
    let tub_l = [
        side * (cw / 2.0 + 2.0 + tl * tb.cos()),
        vcc - tl * tb.sin() + 5.0,
        tub_z,
    ];
    let tub = v.frame.to_patient(tub_l);
    let z0 = tub[2];
    let ol = torso.outline(spine, z0);
    let idx = (v.level as f64 - 1.0).min(5.0) / 5.0;
    let a_in = (ol.a - torso.fat_mm - 14.0) * (0.55 + 0.45 * idx);
    let b_in = ol.b - torso.fat_mm - 14.0;
    let y_back = ol.yc + b_in;
    let theta0 = (((tub[0] - ol.spine.0).abs() + 18.0) / a_in)
        .min(0.9)
        .asin();
    let theta_end = end * std::f64::consts::PI;
    let at = |th: f64| -> V3 {
        let f = ((th - theta0) / (std::f64::consts::PI - theta0)).clamp(0.0, 1.0);
        [
            ol.spine.0 + side * a_in * th.sin(),
            y_back - (1.0 - th.cos()) * b_in,
            z0 - drop * f.powf(0.9),
        ]
    };
    let mut path = vec![head, add(head, sub(tub, head).map(|c| c * 0.5)), tub];
    let n = 14;
    for i in 0..=n {
        let th = theta0 + (theta_end - theta0) * i as f64 / n as f64;
        path.push(at(th));
    }
    let mut cartilage = Vec::new();
    if v.level <= 7 {
        let last = *path.last().unwrap_or(&tub);
        let y_front = ol.yc - ol.b + torso.fat_mm + 12.0;
        let st = [
            ol.spine.0 + side * 16.0,
            y_front,
            last[2] + 6.0 - 2.0 * v.level as f64,
        ];
        cartilage = vec![last, add(last, sub(st, last).map(|c| c * 0.5)), st];
    } else if v.level <= 10 {
        let last = *path.last().unwrap_or(&tub);
        let tip = [last[0] - side * 25.0, last[1] - 20.0, last[2] + 22.0];
        cartilage = vec![last, tip];
    }
    Rib {
        path,
        cartilage,
        vertebra: vi,
    }
}

/// Signed distance to a rib's bone, mm (tall narrow cross-section).
#[inline]
pub fn rib_sdf(p: V3, a: V3, b: V3) -> f64 {
    let off = [0.0, 0.0, 2.6];
    capsule(p, add(a, off), add(b, off), 3.3).min(capsule(p, sub(a, off), sub(b, off), 3.3))
}

/// Signed distance in the axial plane to a centred ellipse (helper for organs).
#[inline]
pub fn ell(x: f64, y: f64, cx: f64, cy: f64, a: f64, b: f64) -> f64 {
    ellipse(x - cx, y - cy, a, b)
}

/// Signed distance to an axis-aligned ellipsoid centred at `c`.
#[inline]
pub fn ell3(p: V3, c: V3, r: V3) -> f64 {
    ellipsoid(sub(p, c), r[0], r[1], r[2])
}
