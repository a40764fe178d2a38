//! Rasterization: one axial slice of the [`Scene`] at a time, painter's order (air, body,
//! lungs, organs, vessels, ribs, spine), with analytic partial volume at every edge: each
//! structure has a signed distance, and a voxel takes the fraction `clamp(½ − d/h)` of it, `h`
//! being the voxel's extent along the surface normal (pixel spacing in-plane, slice spacing
//! along z). Structures are only evaluated inside their bounding boxes.

use crate::geom::{capsule, coverage, Frame, V3};
use crate::scene::{cement_centre, Scene};
use crate::torso::{ell, ell3, hu, rib_sdf};
use crate::vertebra::Vertebra;

/// A slice being painted.
struct Canvas<'a> {
    data: &'a mut [f32],
    nx: usize,
}

impl Canvas<'_> {
    #[inline]
    fn blend(&mut self, i: usize, j: usize, value: f64, c: f64) {
        if c > 0.0 {
            let p = &mut self.data[j * self.nx + i];
            *p += (value as f32 - *p) * c as f32;
        }
    }
}

/// Width of the linear partial-volume ramp across a surface with unit normal `e`: the ramp with
/// the same variance as the voxel box projected onto the normal (`Σ (eᵢ·sizeᵢ)²`), exact for
/// grid-aligned surfaces.
fn extent(g: &crate::scene::Grid, e: V3) -> f64 {
    ((e[0] * g.px).powi(2) + (e[1] * g.px).powi(2) + (e[2] * g.dz).powi(2)).sqrt()
}

/// Paint slice `k` of the scene into `out` (row-major, `nx·ny`, HU).
pub fn render_slice(scene: &Scene, k: usize, out: &mut [f32]) {
    let g = &scene.grid;
    let z = g.z(k);
    let mut cv = Canvas {
        data: out,
        nx: g.nx,
    };
    cv.data.fill(hu::AIR);
    torso(scene, z, &mut cv);
    let mut dist = vec![f32::INFINITY; g.nx * g.ny];
    ribs(scene, z, &mut cv, &mut dist);
    spine(scene, z, &mut cv);
}

/// An axial outline (ellipse anteriorly, flatter superellipse posteriorly) with cheap
/// conservative inside/outside tests, so the exact distance is only computed near its edge.
#[derive(Clone, Copy)]
struct Outline2 {
    yc: f64,
    a: f64,
    b: f64,
}

impl Outline2 {
    #[inline]
    fn q(&self, ax: f64, v: f64, post: bool) -> f64 {
        let (qx, qy) = (ax / self.a, v / self.b);
        if post {
            qx * qx * qx + qy * qy * qy
        } else {
            qx * qx + qy * qy
        }
    }

    /// Partial-volume coverage of the pixel at (x, y) (extent `h`).
    #[inline]
    fn coverage(&self, x: f64, y: f64, h: f64) -> f64 {
        let v = self.yc - y;
        let post = v < 0.0;
        let (ax, av) = (x.abs(), v.abs());
        if self.q(ax + h, av + h, post) < 1.0 {
            return 1.0;
        }
        if self.q((ax - h).max(0.0), (av - h).max(0.0), post) > 1.0 {
            return 0.0;
        }
        coverage(Vertebra::footprint(x, v, self.a, self.b), h)
    }

    /// Whether the square of half-side `m` around (x, y) lies inside.
    #[inline]
    fn inside_by(&self, x: f64, y: f64, m: f64) -> bool {
        let v = self.yc - y;
        self.q(x.abs() + m, v.abs() + m, v < 0.0) < 1.0
    }

    /// Exact-ish signed distance (negative inside).
    #[inline]
    fn sdf(&self, x: f64, y: f64) -> f64 {
        Vertebra::footprint(x, self.yc - y, self.a, self.b)
    }
}

/// An axis-aligned ellipsoid organ with its HU.
struct Organ {
    c: V3,
    r: V3,
    hu: f64,
}

impl Organ {
    #[inline]
    fn coverage(&self, p: V3, h: f64) -> f64 {
        let d = [p[0] - self.c[0], p[1] - self.c[1], p[2] - self.c[2]];
        if d[0].abs() > self.r[0] + h || d[1].abs() > self.r[1] + h || d[2].abs() > self.r[2] + h {
            return 0.0;
        }
        coverage(
            crate::geom::ellipsoid(d, self.r[0], self.r[1], self.r[2]),
            h,
        )
    }
}

/// The trunk at height `z`, in painter's order: table, arms, body wall with lungs and
/// abdominal organs, heart, airways, oesophagus, aorta and plaques, crura and psoas, scapulae.
#[inline(never)]
fn torso(scene: &Scene, z: f64, cv: &mut Canvas) {
    let g = &scene.grid;
    let t = &scene.torso;
    let ol = t.outline(&scene.spine, z);
    table(scene, cv);
    let extra = t.extra.as_ref();
    let blood = extra.map_or(hu::BLOOD as f64, |e| e.blood_hu);
    if let Some(e) = extra {
        if e.arms_down {
            arms(scene, z, &ol, cv);
        }
    }
    let section = Section::new(scene, &ol, z, blood);
    let Some((j0, j1)) = g.j_range(ol.yc - ol.b - 2.0, ol.yc + ol.b + 2.0) else {
        return;
    };
    section.paint(&ol, (j0, j1), cv);
    heart(scene, z, &section.heart, cv);
    airways(scene, z, ol.spine, cv);
    oesophagus(scene, z, ol.spine, cv);
    aorta_and_plaques(scene, z, blood, cv);
    if let Some(e) = extra {
        crura_and_psoas(scene, e, z, cv);
    }
    scapulae(scene, z, &ol, cv);
}

/// Table: a slightly curved plate under the patient.
fn table(scene: &Scene, cv: &mut Canvas) {
    let g = &scene.grid;
    let t = &scene.torso;
    let px = g.px;
    if let (Some((i0, i1)), Some((j0, j1))) = (
        g.i_range(-215.0, 215.0),
        g.j_range(t.table_y - 2.0, t.table_y + 40.0),
    ) {
        for j in j0..=j1 {
            let y = g.y(j);
            for i in i0..=i1 {
                let x = g.x(i);
                let top = t.table_y + 0.0006 * x * x;
                let d = ((y - top - 4.0).abs() - 4.0).max(x.abs() - 210.0);
                cv.blend(i, j, hu::TABLE as f64, coverage(d, px));
            }
        }
    }
}

/// The trunk's cross-section at one height: the nested outlines (skin, muscle wall, cavity)
/// and what fills the cavity (lungs above the diaphragm, abdominal organs below).
struct Section<'a> {
    scene: &'a Scene,
    z: f64,
    skin: Outline2,
    wall: Outline2,
    cav: Outline2,
    /// The spinal canal's centre in this slice (x, y).
    spine: (f64, f64),
    heart: Organ,
    /// Liver, spleen, kidneys.
    organs: [Organ; 4],
    stomach: Organ,
    /// The paravertebral block the lungs stop at: centre x, centre y, half-width, half-depth.
    paravertebral: (f64, f64, f64, f64),
    in_chest: bool,
    abdomen: bool,
}

impl<'a> Section<'a> {
    fn new(scene: &'a Scene, ol: &crate::torso::Outline, z: f64, blood: f64) -> Self {
        let g = &scene.grid;
        let t = &scene.torso;
        let (sx, sy) = ol.spine;
        let skin = Outline2 {
            yc: ol.yc,
            a: ol.a,
            b: ol.b,
        };
        let wall = Outline2 {
            yc: ol.yc,
            a: ol.a - t.fat_mm,
            b: ol.b - t.fat_mm,
        };
        let cav = Outline2 {
            yc: ol.yc,
            a: ol.a - t.fat_mm - 14.0,
            b: ol.b - t.fat_mm - 14.0,
        };
        let heart = Organ {
            c: t.heart,
            r: [62.0, 48.0, 55.0],
            hu: blood,
        };
        let in_chest = z < t.z_apex + 5.0;
        // Highest point of the diaphragm: below it, abdominal organs; above it, lungs.
        let dome_top = t.dome.0.max(t.dome.1);
        let abdomen = z < dome_top + g.dz;
        let organs = [
            Organ {
                c: [-55.0, ol.yc - 5.0, t.dome.0 - 70.0],
                r: [95.0, 85.0, 85.0],
                hu: hu::LIVER as f64,
            },
            Organ {
                c: [sx + 90.0, sy + 5.0, t.dome.1 - 45.0],
                r: [28.0, 45.0, 50.0],
                hu: hu::SPLEEN as f64,
            },
            Organ {
                c: [sx - 62.0, sy + 12.0, t.z_t12 - 60.0],
                r: [28.0, 22.0, 55.0],
                hu: hu::KIDNEY as f64,
            },
            Organ {
                c: [sx + 62.0, sy + 12.0, t.z_t12 - 45.0],
                r: [28.0, 22.0, 55.0],
                hu: hu::KIDNEY as f64,
            },
        ];
        let stomach = Organ {
            c: [55.0, ol.yc - 35.0, t.dome.1 - 45.0],
            r: [45.0, 38.0, 40.0],
            hu: hu::STOMACH as f64,
        };
        let paravertebral = if t.extra.is_some() {
            // Population: the lungs reach the anterolateral face of the bodies.
            let b = spine_b(scene, z);
            (sx, sy + 10.0, 1.1 * b + 6.0, b + 12.0)
        } else {
            (sx, sy + 22.0, 34.0, 46.0)
        };
        Self {
            scene,
            z,
            skin,
            wall,
            cav,
            spine: ol.spine,
            heart,
            organs,
            stomach,
            paravertebral,
            in_chest,
            abdomen,
        }
    }

    /// Paint rows `j0..=j1`, each over the outline's width at that row.
    fn paint(&self, ol: &crate::torso::Outline, (j0, j1): (usize, usize), cv: &mut Canvas) {
        let g = &self.scene.grid;
        for j in j0..=j1 {
            let y = g.y(j);
            let dy = ((y - ol.yc) / ol.b).abs().min(1.0);
            let span = ol.a
                * (1.0 - dy * dy)
                    .max(0.0)
                    .sqrt()
                    .max((1.0 - dy * dy * dy).max(0.0).cbrt());
            let Some((i0, i1)) = g.i_range(-span - 3.0, span + 3.0) else {
                continue;
            };
            for i in i0..=i1 {
                if let Some(v) = self.voxel(g.x(i), y) {
                    cv.data[j * g.nx + i] = v as f32;
                }
            }
        }
    }

    /// HU at (x, y): fat under the skin, the muscle wall, then the cavity — mediastinal fat
    /// and lungs above the diaphragm, abdomen and its organs below. `None` outside the skin.
    #[inline]
    fn voxel(&self, x: f64, y: f64) -> Option<f64> {
        let g = &self.scene.grid;
        let t = &self.scene.torso;
        let (px, z) = (g.px, self.z);
        let c_skin = self.skin.coverage(x, y, px);
        if c_skin <= 0.0 {
            return None;
        }
        let mut v = hu::AIR as f64;
        v += (hu::FAT as f64 - v) * c_skin;
        let c = self.wall.coverage(x, y, px);
        if c > 0.0 {
            v += (hu::MUSCLE as f64 - v) * c;
            let c_cav = self.cav.coverage(x, y, px);
            if c_cav > 0.0 {
                let dia = t.diaphragm(x, y, self.skin.yc);
                let above = coverage(dia - z, g.dz);
                // Mediastinal fat above the diaphragm, abdomen below.
                let base = hu::ABDOMEN as f64 + (-70.0 - hu::ABDOMEN as f64) * above;
                v += (base - v) * c_cav;
                let p = [x, y, z];
                if self.in_chest && above > 0.0 {
                    let c = self.lung_coverage(p, c_cav) * above;
                    v += (hu::LUNG as f64 - v) * c;
                }
                if self.abdomen && above < 1.0 {
                    v = self.abdominal_organs(p, 1.0 - above, v);
                }
            }
        }
        Some(v)
    }

    /// Lungs: cavity minus mediastinum, heart, paravertebral block, below the apex; coverage
    /// of the voxel at `p` whose cavity coverage is `c_cav`.
    #[inline]
    fn lung_coverage(&self, p: V3, c_cav: f64) -> f64 {
        let g = &self.scene.grid;
        let t = &self.scene.torso;
        let [x, y, z] = p;
        let px = g.px;
        let (sx, sy) = self.spine;
        let apex = (z - t.z_apex) / g.dz * px;
        let d_med = if t.extra.is_some() && z < t.z_carina {
            // Population, below the carina: the mediastinal band covers the
            // oesophagus and aorta only, so the right lung reaches in front of
            // the bodies (the azygo-oesophageal recess).
            8.0 - (x - sx - 14.0).abs()
        } else {
            16.0 - (x - sx * 0.5 - 4.0).abs()
        };
        let d_med = if y < sy - 5.0 { d_med } else { d_med - 40.0 };
        // Deep inside the cavity its exact distance does not matter.
        let d_cav = if c_cav >= 1.0 && self.cav.inside_by(x, y, 2.0 * px) {
            -2.0 * px
        } else {
            self.cav.sdf(x, y)
        };
        let mut d = d_cav.max(d_med).max(apex);
        let blk = self.paravertebral;
        if (x - blk.0).abs() < blk.2 + px && (y - blk.1).abs() < blk.3 + px {
            d = d.max(-ell(x, y, blk.0, blk.1, blk.2, blk.3));
        }
        let heart = &self.heart;
        if heart.coverage(p, 4.0 * px) > 0.0 {
            d = d.max(-(ell3(p, heart.c, heart.r) - 3.0));
        }
        coverage(d, px)
    }

    /// `v` with the liver (kept inside the cavity), spleen, kidneys and stomach (with its air
    /// cap) painted over it, each weighted by `below`, the voxel's share under the diaphragm.
    #[inline]
    fn abdominal_organs(&self, p: V3, below: f64, mut v: f64) -> f64 {
        let px = self.scene.grid.px;
        let [x, y, _] = p;
        let organs = &self.organs;
        let mut c = organs[0].coverage(p, px);
        if c > 0.0 && !self.cav.inside_by(x, y, 4.0 + px) {
            c *= coverage(self.cav.sdf(x, y) + 4.0, px);
        }
        v += (organs[0].hu - v) * c * below;
        for o in &organs[1..] {
            v += (o.hu - v) * o.coverage(p, px) * below;
        }
        let stomach = &self.stomach;
        let c = stomach.coverage(p, px) * below;
        if c > 0.0 {
            // Supine: the gastric air cap is anterior (−y).
            let air = coverage(y - (stomach.c[1] - 18.0), px);
            v += (stomach.hu - v) * c;
            v += (hu::AIR as f64 - v) * c * air;
        }
        v
    }
}

/// Heart with its pericardial fat rim.
fn heart(scene: &Scene, z: f64, heart: &Organ, cv: &mut Canvas) {
    let g = &scene.grid;
    let px = g.px;
    let heart_rim = Organ {
        c: heart.c,
        r: [64.5, 50.5, 57.5],
        hu: -90.0,
    };
    if (z - heart.c[2]).abs() < heart_rim.r[2] {
        let r = heart_rim.r;
        paint_box(
            cv,
            g,
            (heart.c[0] - r[0], heart.c[1] - r[1]),
            (heart.c[0] + r[0], heart.c[1] + r[1]),
            |x, y| {
                let p = [x, y, z];
                [
                    (heart_rim.hu, heart_rim.coverage(p, px)),
                    (heart.hu, heart.coverage(p, px)),
                ]
            },
        );
    }
}

/// Trachea above the carina, then the two main bronchi diverging (air in a soft-tissue wall).
fn airways(scene: &Scene, z: f64, (sx, sy): (f64, f64), cv: &mut Canvas) {
    let g = &scene.grid;
    let t = &scene.torso;
    let px = g.px;
    let trach_y = sy - 2.0 * spine_b(scene, z) - 20.0;
    if z > t.z_carina {
        paint_box(
            cv,
            g,
            (sx - 14.0, trach_y - 14.0),
            (sx + 14.0, trach_y + 14.0),
            |x, y| {
                let d = ell(x, y, sx, trach_y, 9.5, 9.0);
                [
                    (60.0, coverage(d - 2.0, px)),
                    (hu::AIR as f64, coverage(d, px)),
                ]
            },
        );
    } else if z > t.z_carina - 28.0 {
        let f = (t.z_carina - z) / 28.0;
        for side in [-1.0, 1.0] {
            let cx = sx + side * (5.0 + 40.0 * f);
            let cy = trach_y + 4.0 * f;
            paint_box(
                cv,
                g,
                (cx - 12.0, cy - 12.0),
                (cx + 12.0, cy + 12.0),
                |x, y| {
                    let d = ell(x, y, cx, cy, 6.5, 6.0);
                    [
                        (60.0, coverage(d - 1.5, px)),
                        (hu::AIR as f64, coverage(d, px)),
                    ]
                },
            );
        }
    }
}

/// Oesophagus in front of the spine, between the stomach and the thoracic inlet.
fn oesophagus(scene: &Scene, z: f64, (sx, sy): (f64, f64), cv: &mut Canvas) {
    let g = &scene.grid;
    let t = &scene.torso;
    let px = g.px;
    if z > t.dome.1 - 20.0 && z < t.z_apex + 40.0 {
        let oy = sy - spine_b(scene, z) - 9.0;
        let ox = sx + 8.0;
        let population = t.extra.is_some();
        paint_box(
            cv,
            g,
            (ox - 10.0, oy - 10.0),
            (ox + 10.0, oy + 10.0),
            |x, y| {
                [
                    (hu::MUSCLE as f64, coverage(ell(x, y, ox, oy, 7.5, 6.0), px)),
                    // Population: a collapsed lumen with a little swallowed air.
                    if population {
                        (hu::AIR as f64, coverage(ell(x, y, ox, oy, 3.2, 1.8), px))
                    } else {
                        (0.0, 0.0)
                    },
                ]
            },
        );
    }
}

/// The aorta (capsules of `blood` density) and its calcified plaques.
fn aorta_and_plaques(scene: &Scene, z: f64, blood: f64, cv: &mut Canvas) {
    let g = &scene.grid;
    let t = &scene.torso;
    let px = g.px;
    for (a, b, r) in &t.aorta {
        let (a, b, r) = (*a, *b, *r);
        if z < a[2].min(b[2]) - r - 1.0 || z > a[2].max(b[2]) + r + 1.0 {
            continue;
        }
        let lo = (a[0].min(b[0]) - r - 2.0, a[1].min(b[1]) - r - 2.0);
        let hi = (a[0].max(b[0]) + r + 2.0, a[1].max(b[1]) + r + 2.0);
        paint_box(cv, g, lo, hi, |x, y| {
            let d = capsule([x, y, z], a, b, r);
            // A thin calcified wall spot now and then is left out: wall = blood density.
            [(blood, coverage(d, px)), (0.0, 0.0)]
        });
    }
    for &(c, r, hu_p) in &t.plaques {
        if (z - c[2]).abs() > r[2] + g.dz {
            continue;
        }
        paint_box(
            cv,
            g,
            (c[0] - r[0] - 2.0, c[1] - r[1] - 2.0),
            (c[0] + r[0] + 2.0, c[1] + r[1] + 2.0),
            |x, y| [(hu_p, coverage(ell3([x, y, z], c, r), px)), (0.0, 0.0)],
        );
    }
}

/// Population: the diaphragm crura hugging the front of T12–L2 and the psoas muscles growing
/// beside the lumbar bodies.
fn crura_and_psoas(scene: &Scene, e: &crate::torso::PopulationTorso, z: f64, cv: &mut Canvas) {
    let g = &scene.grid;
    let (sx, sy) = scene.spine.centreline.xy_at_z(z);
    let b = spine_b(scene, z);
    let px = g.px;
    let (c_top, c_bot) = e.crura_z;
    if z < c_top && z > c_bot {
        let f = ((c_top - z) / (c_top - c_bot)).clamp(0.0, 1.0);
        let (rx, ry) = (3.0 + 3.0 * f, 6.0 + 6.0 * f);
        for side in [-1.0, 1.0] {
            let (cx, cy) = (sx + side * (0.75 * b + 2.0), sy - b - ry * 0.5 + 3.0);
            paint_box(
                cv,
                g,
                (cx - rx - 2.0, cy - ry - 2.0),
                (cx + rx + 2.0, cy + ry + 2.0),
                |x, y| {
                    [
                        (hu::MUSCLE as f64, coverage(ell(x, y, cx, cy, rx, ry), px)),
                        (0.0, 0.0),
                    ]
                },
            );
        }
    }
    let (p_top, p_full) = e.psoas_z;
    if z < p_top {
        let f = ((p_top - z) / (p_top - p_full)).clamp(0.0, 1.0);
        let r = 5.0 + 17.0 * f;
        for side in [-1.0, 1.0] {
            let (cx, cy) = (
                sx + side * (1.25 * b + r * 0.8 + 2.0),
                sy - 0.2 * b + 0.2 * r,
            );
            paint_box(
                cv,
                g,
                (cx - r - 2.0, cy - r - 2.0),
                (cx + r + 2.0, cy + r + 2.0),
                |x, y| {
                    [
                        (
                            hu::MUSCLE as f64,
                            coverage(ell(x, y, cx, cy, 0.85 * r, r), px),
                        ),
                        (0.0, 0.0),
                    ]
                },
            );
        }
    }
}

/// Population, arms down: each arm beside the chest (skin and fat, muscle, the humerus with
/// cortex and marrow), from the shoulder down.
fn arms(scene: &Scene, z: f64, ol: &crate::torso::Outline, cv: &mut Canvas) {
    let g = &scene.grid;
    let t = &scene.torso;
    if z > t.z_apex + 15.0 {
        return;
    }
    let px = g.px;
    let (r_out, r_mus, r_bone) = (38.0 + 0.5 * t.fat_mm, 30.0, 11.0);
    for side in [-1.0, 1.0] {
        let cx = side * (ol.a + r_out + 8.0);
        let cy = ol.yc + 0.2 * ol.b;
        paint_box(
            cv,
            g,
            (cx - r_out - 2.0, cy - r_out - 2.0),
            (cx + r_out + 2.0, cy + r_out + 2.0),
            |x, y| {
                let d = ell(x, y, cx, cy, r_out, r_out * 0.95);
                [
                    (hu::FAT as f64, coverage(d, px)),
                    (
                        hu::MUSCLE as f64,
                        coverage(ell(x, y, cx, cy, r_mus, r_mus * 0.95), px),
                    ),
                ]
            },
        );
        let bx = cx - side * 4.0;
        paint_box(
            cv,
            g,
            (bx - r_bone - 2.0, cy - r_bone - 2.0),
            (bx + r_bone + 2.0, cy + r_bone + 2.0),
            |x, y| {
                let d = ell(x, y, bx, cy, r_bone, r_bone);
                [(750.0, coverage(d, px)), (60.0, coverage(d + 3.0, px))]
            },
        );
    }
}

/// Scapulae: thin curved blades on the posterior chest wall from the T1 to the T8 level,
/// outside the ribs, with a thicker lateral border and the glenoid near the top.
fn scapulae(scene: &Scene, z: f64, ol: &crate::torso::Outline, cv: &mut Canvas) {
    let g = &scene.grid;
    let t = &scene.torso;
    let (z_top, z_bot) = t.scapula_z;
    if z > z_top + 20.0 || z < z_bot {
        return;
    }
    let f = ((z_top - z) / (z_top - z_bot)).clamp(0.0, 1.0);
    let h = (2.0 * g.px + g.dz) / 3.0;
    let (cortex, marrow) = if scene.spec.osteoporotic {
        (550.0, 120.0)
    } else {
        (700.0, 250.0)
    };
    // Posterior skin of the flat-backed outline at x, minus fat and a muscle layer.
    let back = |x: f64| {
        let q = 1.0 - (x.abs() / ol.a).powi(3);
        ol.yc + ol.b * q.max(0.0).cbrt() - t.fat_mm - 8.0
    };
    for side in [-1.0, 1.0] {
        let xm = side * (50.0 + 22.0 * f);
        let xl = side * (125.0 - 50.0 * f.powf(1.5));
        let mut pts = Vec::new();
        if z <= z_top {
            for k in 0..=6 {
                let x = xm + (xl - xm) * k as f64 / 6.0;
                pts.push([x, back(x) - 4.0 * (k as f64 / 6.0), z]);
            }
        }
        let glen = [side * 118.0, back(118.0) - 38.0, z_top - 8.0];
        let lo = (xm.min(xl).min(glen[0]) - 20.0, back(0.0) - 80.0);
        let hi = (xm.max(xl).max(glen[0]) + 20.0, back(0.0) + 10.0);
        paint_box(cv, g, lo, hi, |x, y| {
            let p = [x, y, z];
            let mut d = crate::geom::ellipsoid(sub3(p, glen), 14.0, 17.0, 18.0);
            for w in pts.windows(2) {
                d = d.min(capsule(p, w[0], w[1], 2.2));
            }
            if let Some(last) = pts.last() {
                // Thick lateral border.
                d = d.min(capsule(
                    p,
                    *last,
                    [last[0] - side * 6.0, last[1] - 10.0, z],
                    4.0,
                ));
            }
            if d > h {
                return [(0.0, 0.0); 2];
            }
            [(cortex, coverage(d, h)), (marrow, coverage(d + 1.2, h))]
        });
    }
}

fn sub3(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Half depth of the vertebral body nearest to height `z`.
fn spine_b(scene: &Scene, z: f64) -> f64 {
    scene
        .spine
        .vertebrae
        .iter()
        .min_by(|a, b| {
            (a.frame.origin[2] - z)
                .abs()
                .total_cmp(&(b.frame.origin[2] - z).abs())
        })
        .map_or(14.0, |v| v.b)
}

/// Evaluate `f` over the pixels of an axial box and blend the two layers (value, coverage)
/// it returns, in order.
fn paint_box(
    cv: &mut Canvas,
    g: &crate::scene::Grid,
    lo: (f64, f64),
    hi: (f64, f64),
    f: impl Fn(f64, f64) -> [(f64, f64); 2],
) {
    let (Some((i0, i1)), Some((j0, j1))) = (g.i_range(lo.0, hi.0), g.j_range(lo.1, hi.1)) else {
        return;
    };
    for j in j0..=j1 {
        let y = g.y(j);
        for i in i0..=i1 {
            for (v, c) in f(g.x(i), y) {
                cv.blend(i, j, v, c);
            }
        }
    }
}

#[inline(never)]
fn ribs(scene: &Scene, z: f64, cv: &mut Canvas, dist: &mut [f32]) {
    let g = &scene.grid;
    let px = g.px;
    let h = (2.0 * px + g.dz) / 3.0;
    let (cortex, marrow) = if scene.spec.osteoporotic {
        (620.0, 110.0)
    } else {
        (800.0, 240.0)
    };
    let t = &scene.torso;
    for rib in &t.ribs {
        for seg in rib.cartilage.windows(2) {
            let (a, b) = (seg[0], seg[1]);
            if z < a[2].min(b[2]) - 6.0 || z > a[2].max(b[2]) + 6.0 {
                continue;
            }
            let lo = (a[0].min(b[0]) - 6.0, a[1].min(b[1]) - 6.0);
            let hi = (a[0].max(b[0]) + 6.0, a[1].max(b[1]) + 6.0);
            paint_box(cv, g, lo, hi, |x, y| {
                let d = capsule([x, y, z], a, b, 4.2);
                [(hu::CARTILAGE as f64, coverage(d, h)), (0.0, 0.0)]
            });
        }
        // The bone as one union of its segments (a per-slice distance buffer filled segment by
        // segment inside tight boxes), so joints between segments stay seamless.
        let r = 6.0;
        let mut touched: Option<((usize, usize), (usize, usize))> = None;
        for w in rib.path.windows(2) {
            let (a, b) = (w[0], w[1]);
            if z < a[2].min(b[2]) - r - 1.0 || z > a[2].max(b[2]) + r + 1.0 {
                continue;
            }
            let (Some((i0, i1)), Some((j0, j1))) = (
                g.i_range(a[0].min(b[0]) - r, a[0].max(b[0]) + r),
                g.j_range(a[1].min(b[1]) - r, a[1].max(b[1]) + r),
            ) else {
                continue;
            };
            for j in j0..=j1 {
                let y = g.y(j);
                for i in i0..=i1 {
                    let d = rib_sdf([g.x(i), y, z], a, b) as f32;
                    let cell = &mut dist[j * g.nx + i];
                    if d < *cell {
                        *cell = d;
                    }
                }
            }
            touched = Some(match touched {
                None => ((i0, i1), (j0, j1)),
                Some(((a0, a1), (b0, b1))) => ((a0.min(i0), a1.max(i1)), (b0.min(j0), b1.max(j1))),
            });
        }
        if let Some(((i0, i1), (j0, j1))) = touched {
            for j in j0..=j1 {
                for i in i0..=i1 {
                    let cell = &mut dist[j * g.nx + i];
                    let d = *cell as f64;
                    *cell = f32::INFINITY;
                    if d < h {
                        cv.blend(i, j, cortex, coverage(d, h));
                        cv.blend(i, j, marrow, coverage(d + 1.0, h));
                    }
                }
            }
        }
    }
    // Sternum: manubrium (wider) and body, at the anterior chest wall.
    let (s_hi, s_lo) = t.sternum;
    if z < s_hi + 10.0 && z > s_lo - 25.0 {
        let ol = t.outline(&scene.spine, z);
        let yf = ol.yc - ol.b + t.fat_mm + 6.0;
        let f = ((s_hi + 10.0 - z) / 50.0).clamp(0.0, 1.0);
        let half_w = 26.0 - 12.0 * f.min(1.0) - 6.0 * ((s_lo - z) / 25.0).clamp(0.0, 1.0);
        let half_t = 6.0;
        let cx = ol.spine.0 * 0.3;
        paint_box(
            cv,
            g,
            (cx - half_w - 3.0, yf - 3.0),
            (cx + half_w + 3.0, yf + 2.0 * half_t + 3.0),
            |x, y| {
                let d = ell(x, y, cx, yf + half_t, half_w, half_t);
                let dz = (z - (s_hi + 10.0)).max(s_lo - 25.0 - z);
                let d = d.max(dz);
                [(cortex, coverage(d, h)), (marrow, coverage(d + 1.2, h))]
            },
        );
    }
}

/// Extents for a vertebra's walls and endplates.
fn frame_extents(g: &crate::scene::Grid, f: &Frame) -> (f64, f64, f64) {
    let hf = (extent(g, f.eu) + extent(g, f.ev)) / 2.0;
    let hw = extent(g, f.ew);
    (hf, hw, (2.0 * hf + hw) / 3.0)
}

/// Pixel box of a local box of a frame, intersected with the slice plane's neighbourhood;
/// `None` when the slice misses the box.
fn local_box_pixels(
    g: &crate::scene::Grid,
    f: &Frame,
    lo: V3,
    hi: V3,
    z: f64,
) -> Option<((usize, usize), (usize, usize))> {
    let mut mn = [f64::INFINITY; 3];
    let mut mx = [f64::NEG_INFINITY; 3];
    for c in 0..8 {
        let l = [
            if c & 1 == 0 { lo[0] } else { hi[0] },
            if c & 2 == 0 { lo[1] } else { hi[1] },
            if c & 4 == 0 { lo[2] } else { hi[2] },
        ];
        let p = f.to_patient(l);
        for a in 0..3 {
            mn[a] = mn[a].min(p[a]);
            mx[a] = mx[a].max(p[a]);
        }
    }
    if z < mn[2] - g.dz || z > mx[2] + g.dz {
        return None;
    }
    Some((g.i_range(mn[0], mx[0])?, g.j_range(mn[1], mx[1])?))
}

fn inside(l: V3, lo: V3, hi: V3) -> bool {
    l[0] >= lo[0]
        && l[0] <= hi[0]
        && l[1] >= lo[1]
        && l[1] <= hi[1]
        && l[2] >= lo[2]
        && l[2] <= hi[2]
}

#[inline(never)]
fn spine(scene: &Scene, z: f64, cv: &mut Canvas) {
    let g = &scene.grid;
    let vs = &scene.spine.vertebrae;
    // Pass 1: soft tissue of the spine (canal, cord, discs, calcified discs).
    for (idx, v) in vs.iter().enumerate() {
        let (hf, hw, _) = frame_extents(g, &v.frame);
        let (w_lo, w_hi) = v.segment_w_range();
        let (cw, cd) = v.canal;
        let vcc = v.canal_centre_v();
        let lo = [-cw / 2.0 - 2.0, vcc - cd / 2.0 - 2.0, w_lo];
        let hi = [cw / 2.0 + 2.0, vcc + cd / 2.0 + 2.0, w_hi];
        if let Some(((i0, i1), (j0, j1))) = local_box_pixels(g, &v.frame, lo, hi, z) {
            let cord = v.level <= 13;
            for j in j0..=j1 {
                for i in i0..=i1 {
                    let l = v.frame.to_local([g.x(i), g.y(j), z]);
                    if l[2] < w_lo || l[2] > w_hi {
                        continue;
                    }
                    let d = v.canal(l);
                    cv.blend(i, j, hu::CSF as f64, coverage(d, hf));
                    if cord {
                        let dc = crate::geom::ellipse(l[0], l[1] - vcc + 1.0, 5.0, 4.0);
                        cv.blend(i, j, hu::CORD as f64, coverage(dc, hf));
                    }
                }
            }
        }
        if idx + 1 < vs.len() {
            disc(scene, v, &vs[idx + 1], z, cv, hf.min(hw));
        }
    }
    for c in &scene.calcifications {
        let r = c.radii;
        let (_, _, h) = frame_extents(g, &c.frame);
        if let Some(((i0, i1), (j0, j1))) = local_box_pixels(
            g,
            &c.frame,
            [-r[0] - 1.0, -r[1] - 1.0, -r[2] - 1.0],
            [r[0] + 1.0, r[1] + 1.0, r[2] + 1.0],
            z,
        ) {
            for j in j0..=j1 {
                for i in i0..=i1 {
                    let l = c.frame.to_local([g.x(i), g.y(j), z]);
                    let d = crate::geom::ellipsoid(l, r[0], r[1], r[2]);
                    cv.blend(i, j, c.hu, coverage(d, h));
                }
            }
        }
    }
    // Pass 2: bone.
    for v in vs {
        let (hf, hw, hiso) = frame_extents(g, &v.frame);
        let (lo, hi) = v.local_bounds();
        let Some(((i0, i1), (j0, j1))) = local_box_pixels(g, &v.frame, lo, hi, z) else {
            continue;
        };
        let (post_cortex, marrow) = (v.cortex_hu * 0.85, v.marrow_hu);
        let cc = cement_centre(v);
        for j in j0..=j1 {
            for i in i0..=i1 {
                let l = v.frame.to_local([g.x(i), g.y(j), z]);
                if !inside(l, lo, hi) {
                    continue;
                }
                // Posterior elements all lie behind the body's posterior wall.
                let dp = if l[1] < -v.b + 4.0 {
                    v.posterior(l)
                } else {
                    f64::INFINITY
                };
                if dp < hiso {
                    cv.blend(i, j, post_cortex, coverage(dp, hiso));
                    cv.blend(i, j, marrow, coverage(dp + 1.2, hiso));
                }
                if v.osteophyte {
                    let d = v.osteophyte_sdf(l);
                    cv.blend(i, j, v.cortex_hu * 0.9, coverage(d, hiso));
                }
                if l[1] < -v.b - 2.0 || l[1] > v.b + 2.0 || l[0].abs() > v.a + 2.0 {
                    continue;
                }
                let b = v.body(l, hf, hw);
                if b.outer > 0.0 {
                    cv.blend(i, j, v.cortex_hu, b.outer);
                    cv.blend(i, j, b.core_hu, b.inner);
                    if v.cement && b.inner > 0.0 {
                        // Lobulated cement deposit inside the trabecular core.
                        let q = [l[0] - cc[0], l[1] - cc[1], l[2] - cc[2]];
                        let lob = 1.0
                            + 0.18 * (0.35 * q[0]).sin() * (0.4 * q[1]).cos()
                            + 0.12 * (0.5 * q[2]).sin();
                        let d = crate::geom::ellipsoid(
                            q,
                            0.55 * v.a * lob,
                            0.5 * v.b * lob,
                            0.3 * v.hp * lob,
                        );
                        cv.blend(i, j, 2500.0, coverage(d, hiso) * b.inner);
                    }
                }
            }
        }
    }
}

/// Intervertebral disc between `up` and `down`: fills from the inferior endplate of `up` to the
/// superior endplate of `down` (extending 1.5 mm under both, so bone painted later covers it
/// exactly at the endplates), within a footprint bulging 3 % beyond the bodies.
#[inline(never)]
fn disc(scene: &Scene, up: &Vertebra, down: &Vertebra, z: f64, cv: &mut Canvas, h: f64) {
    let g = &scene.grid;
    let pu = up.frame.to_patient([0.0, 0.0, up.w_bot(0.0, 0.0)]);
    let pd = down.frame.to_patient([0.0, 0.0, down.w_top(0.0, 0.0)]);
    let mid = crate::geom::scale(crate::geom::add(pu, pd), 0.5);
    let f = Frame::from_axis(mid, crate::geom::add(up.frame.ew, down.frame.ew));
    let (hf, _, _) = frame_extents(g, &f);
    let a = (up.a + down.a) / 2.0 * 1.03;
    let b = (up.b + down.b) / 2.0 * 1.03;
    let half =
        crate::geom::norm(crate::geom::sub(pu, pd)) / 2.0 + up.conc_inf + down.conc_sup + 4.0;
    let Some(((i0, i1), (j0, j1))) = local_box_pixels(
        g,
        &f,
        [-a - 1.0, -b - 1.0, -half],
        [a + 1.0, b + 1.0, half],
        z,
    ) else {
        return;
    };
    for j in j0..=j1 {
        for i in i0..=i1 {
            let p = [g.x(i), g.y(j), z];
            let l = f.to_local(p);
            if l[2].abs() > half {
                continue;
            }
            let df = Vertebra::footprint(l[0], l[1], a, b) / hf;
            if df > 0.5 {
                continue;
            }
            let lu = up.frame.to_local(p);
            let ld = down.frame.to_local(p);
            let d1 = (lu[2] - (up.w_bot(lu[0], lu[1]) + 1.5)) / h;
            let d2 = ((down.w_top(ld[0], ld[1]) - 1.5) - ld[2]) / h;
            let c = (0.5 - df.max(d1).max(d2)).clamp(0.0, 1.0);
            if c > 0.0 {
                cv.blend(i, j, hu::DISC as f64, c);
                let dn = Vertebra::footprint(l[0], l[1] - 0.1 * b, a * 0.55, b * 0.5) / hf;
                cv.blend(
                    i,
                    j,
                    hu::NUCLEUS as f64,
                    (0.5 - dn.max(d1).max(d2)).clamp(0.0, 1.0),
                );
            }
        }
    }
}
