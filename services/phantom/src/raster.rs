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
    ribs(scene, z, &mut cv);
    spine(scene, z, &mut cv);
}

fn torso(scene: &Scene, z: f64, cv: &mut Canvas) {
    let g = &scene.grid;
    let t = &scene.torso;
    let ol = t.outline(&scene.spine, z);
    let px = g.px;
    // Table: a slightly curved plate under the patient.
    if let Some((i0, i1)) = g.i_range(-215.0, 215.0) {
        if let Some((j0, j1)) = g.j_range(t.table_y - 2.0, t.table_y + 30.0) {
            for j in j0..=j1 {
                let y = g.y(j);
                for i in i0..=i1 {
                    let x = g.x(i);
                    let top = t.table_y + 0.0006 * x * x;
                    let d = (y - top - 4.0).abs() - 4.0;
                    let d = d.max(x.abs() - 210.0);
                    cv.blend(i, j, hu::TABLE as f64, coverage(d, px));
                }
            }
        }
    }
    let (sx, sy) = ol.spine;
    let cav_a = ol.a - t.fat_mm - 14.0;
    let cav_b = ol.b - t.fat_mm - 14.0;
    let Some((j0, j1)) = g.j_range(ol.yc - ol.b - 2.0, ol.yc + ol.b + 2.0) else {
        return;
    };
    let heart_r = [62.0, 48.0, 55.0];
    let in_chest = z < t.z_apex + 5.0;
    for j in j0..=j1 {
        let y = g.y(j);
        let dy = (y - ol.yc) / ol.b;
        let span = ol.a * (1.0 - dy * dy).max(0.0).sqrt();
        let Some((i0, i1)) = g.i_range(-span - 3.0, span + 3.0) else {
            continue;
        };
        for i in i0..=i1 {
            let x = g.x(i);
            let d_skin = ell(x, y, 0.0, ol.yc, ol.a, ol.b);
            if d_skin > px {
                continue;
            }
            let mut v = hu::AIR as f64;
            let c = coverage(d_skin, px);
            v += (hu::FAT as f64 - v) * c;
            let d_wall = ell(x, y, 0.0, ol.yc, ol.a - t.fat_mm, ol.b - t.fat_mm);
            let c = coverage(d_wall, px);
            if c > 0.0 {
                v += (hu::MUSCLE as f64 - v) * c;
                let d_cav = ell(x, y, 0.0, ol.yc, cav_a, cav_b);
                let c_cav = coverage(d_cav, px);
                if c_cav > 0.0 {
                    let dia = t.diaphragm(x, y, ol.yc);
                    let above = coverage((dia - z) / g.dz * px, px);
                    // Mediastinal fat above the diaphragm, abdomen below.
                    let base = hu::ABDOMEN as f64 + (-70.0 - hu::ABDOMEN as f64) * above;
                    v += (base - v) * c_cav;
                    if in_chest && above > 0.0 {
                        // Lungs: cavity minus mediastinum, heart, paravertebral block, below apex.
                        let apex = (z - t.z_apex) / g.dz * px;
                        let d_med = 16.0 - (x - sx * 0.5 - 4.0).abs();
                        let d_med = if y < sy - 5.0 { d_med } else { d_med - 40.0 };
                        let d_heart = -(ell3([x, y, z], t.heart, heart_r) - 3.0);
                        let d_blk = -ell(x, y, sx, sy + 22.0, 34.0, 46.0);
                        let d = d_cav.max(d_med).max(d_heart).max(d_blk).max(apex);
                        let c = coverage(d, px) * above;
                        v += (hu::LUNG as f64 - v) * c;
                    }
                    if above < 1.0 {
                        let p = [x, y, z];
                        // Liver (right), spleen (left posterior), stomach (left anterior), kidneys.
                        let d_liver =
                            ell3(p, [-55.0, ol.yc - 5.0, t.dome.0 - 70.0], [95.0, 85.0, 85.0]);
                        let c = coverage(d_liver.max(d_cav + 4.0), px) * (1.0 - above);
                        v += (hu::LIVER as f64 - v) * c;
                        let d_spl = ell3(
                            p,
                            [sx + 90.0, sy + 5.0, t.dome.1 - 45.0],
                            [28.0, 45.0, 50.0],
                        );
                        v += (hu::SPLEEN as f64 - v)
                            * coverage(d_spl.max(d_cav + 3.0), px)
                            * (1.0 - above);
                        let st_c = [55.0, ol.yc - 35.0, t.dome.1 - 45.0];
                        let d_st = ell3(p, st_c, [45.0, 38.0, 40.0]);
                        let c = coverage(d_st, px) * (1.0 - above);
                        if c > 0.0 {
                            let air = coverage((y - (st_c[1] - 18.0)) / 1.0, px);
                            v += (hu::STOMACH as f64 - v) * c;
                            v += (hu::AIR as f64 - v) * c * air;
                        }
                        for side in [-1.0, 1.0] {
                            let kc = [
                                sx + side * 62.0,
                                sy + 12.0,
                                t.z_t12 - 45.0 - if side < 0.0 { 15.0 } else { 0.0 },
                            ];
                            let d_k = ell3(p, kc, [28.0, 22.0, 55.0]);
                            v += (hu::KIDNEY as f64 - v) * coverage(d_k, px);
                        }
                    }
                }
            }
            cv.data[j * g.nx + i] = v as f32;
        }
    }
    // Heart, trachea/bronchi, oesophagus, aorta (bounding boxes only).
    let p_heart = t.heart;
    if (z - p_heart[2]).abs() < heart_r[2] {
        let f = (1.0 - ((z - p_heart[2]) / heart_r[2]).powi(2)).sqrt();
        paint_box(
            cv,
            g,
            (p_heart[0] - heart_r[0] * f, p_heart[1] - heart_r[1] * f),
            (p_heart[0] + heart_r[0] * f, p_heart[1] + heart_r[1] * f),
            |x, y| {
                let d = ell3([x, y, z], p_heart, heart_r);
                // Pericardial fat rim, then myocardium/blood.
                Some(vec![
                    (-90.0, coverage(d - 2.5, px)),
                    (hu::BLOOD as f64, coverage(d, px)),
                ])
            },
        );
    }
    let trach_y = sy - 2.0 * spine_b(scene, z) - 20.0;
    if z > t.z_carina {
        paint_box(
            cv,
            g,
            (sx - 14.0, trach_y - 14.0),
            (sx + 14.0, trach_y + 14.0),
            |x, y| {
                let d = ell(x, y, sx, trach_y, 9.5, 9.0);
                Some(vec![
                    (60.0, coverage(d - 2.0, px)),
                    (hu::AIR as f64, coverage(d, px)),
                ])
            },
        );
    } else if z > t.z_carina - 45.0 {
        let f = (t.z_carina - z) / 45.0;
        for side in [-1.0, 1.0] {
            let cx = sx + side * (4.0 + 45.0 * f);
            paint_box(
                cv,
                g,
                (cx - 12.0, trach_y - 12.0),
                (cx + 12.0, trach_y + 12.0),
                |x, y| {
                    let d = ell(x, y, cx, trach_y, 6.5, 6.0);
                    Some(vec![
                        (60.0, coverage(d - 1.5, px)),
                        (hu::AIR as f64, coverage(d, px)),
                    ])
                },
            );
        }
    }
    if z > t.dome.1 - 20.0 && z < t.z_apex + 40.0 {
        let oy = sy - spine_b(scene, z) - 9.0;
        let ox = sx + 8.0;
        paint_box(
            cv,
            g,
            (ox - 10.0, oy - 10.0),
            (ox + 10.0, oy + 10.0),
            |x, y| {
                Some(vec![(
                    hu::MUSCLE as f64,
                    coverage(ell(x, y, ox, oy, 7.5, 6.0), px),
                )])
            },
        );
    }
    for (a, b, r) in t.aorta(&scene.spine) {
        if z < a[2].min(b[2]) - r - 1.0 || z > a[2].max(b[2]) + r + 1.0 {
            continue;
        }
        let lo = (a[0].min(b[0]) - r - 2.0, a[1].min(b[1]) - r - 2.0);
        let hi = (a[0].max(b[0]) + r + 2.0, a[1].max(b[1]) + r + 2.0);
        paint_box(cv, g, lo, hi, |x, y| {
            let d = capsule([x, y, z], a, b, r);
            Some(vec![(hu::BLOOD as f64, coverage(d, px))])
        });
    }
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

/// Evaluate `f` over the pixels of an axial box and blend the layers it returns.
fn paint_box(
    cv: &mut Canvas,
    g: &crate::scene::Grid,
    lo: (f64, f64),
    hi: (f64, f64),
    f: impl Fn(f64, f64) -> Option<Vec<(f64, f64)>>,
) {
    let (Some((i0, i1)), Some((j0, j1))) = (g.i_range(lo.0, hi.0), g.j_range(lo.1, hi.1)) else {
        return;
    };
    for j in j0..=j1 {
        let y = g.y(j);
        for i in i0..=i1 {
            if let Some(layers) = f(g.x(i), y) {
                for (v, c) in layers {
                    cv.blend(i, j, v, c);
                }
            }
        }
    }
}

fn ribs(scene: &Scene, z: f64, cv: &mut Canvas) {
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
                Some(vec![(hu::CARTILAGE as f64, coverage(d, h))])
            });
        }
        for seg in rib.path.windows(2) {
            let (a, b) = (seg[0], seg[1]);
            let r = 6.0;
            if z < a[2].min(b[2]) - r - 1.0 || z > a[2].max(b[2]) + r + 1.0 {
                continue;
            }
            let lo = (a[0].min(b[0]) - r, a[1].min(b[1]) - r);
            let hi = (a[0].max(b[0]) + r, a[1].max(b[1]) + r);
            paint_box(cv, g, lo, hi, |x, y| {
                let d = rib_sdf([x, y, z], a, b);
                if d > h {
                    return None;
                }
                Some(vec![
                    (cortex, coverage(d, h)),
                    (marrow, coverage(d + 1.0, h)),
                ])
            });
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
                Some(vec![
                    (cortex, coverage(d, h)),
                    (marrow, coverage(d + 1.2, h)),
                ])
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
                let dp = v.posterior(l);
                if dp < hiso {
                    cv.blend(i, j, post_cortex, coverage(dp, hiso));
                    cv.blend(i, j, marrow, coverage(dp + 1.2, hiso));
                }
                if v.osteophyte {
                    let d = v.osteophyte_sdf(l);
                    cv.blend(i, j, v.cortex_hu * 0.9, coverage(d, hiso));
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
