//! One vertebra as implicit geometry in its own frame: the body (footprint × two endplate
//! surfaces, cortical shell, trabecular core), the posterior elements around the spinal canal,
//! and the six keypoints and three heights that the truth reports.
//!
//! Local coordinates: `u` lateral (patient left), `v` anterior, `w` cranial along the vertebra's
//! own axis (the spine curve's tangent at the body centre). The antero-posterior fraction
//! `t = (v + b) / 2b` runs from 0 at the posterior wall to 1 at the anterior wall; heights are
//! measured at `t` = 0.15 (posterior), 0.50 (middle) and 0.85 (anterior), i.e. 15 % of the depth
//! in from each wall, as in the open morphometry tools cited in `shared/REFERENCE.md`.

use crate::geom::{capsule, ellipse, Frame, V3};
use crate::spec::FractureType;

/// Antero-posterior fractions (from the posterior wall) of the posterior, middle and anterior
/// height columns.
pub const COLUMNS: [f64; 3] = [0.15, 0.50, 0.85];

/// Radius (fraction of the footprint) of the central endplate concavity; the height columns at
/// 15/85 % lie outside it (normalised radius 0.70), so concavity changes only `Hm`.
const CONCAVITY_RADIUS: f64 = 0.65;

/// Thickness of the dense subchondral layer under each endplate, mm.
pub const SUBCHONDRAL_MM: f64 = 2.0;

/// Density of the subchondral layer next to the endplate, as a fraction of cortical HU.
const SUBCHONDRAL_PEAK: f64 = 0.7;

/// A focal endplate pit (Schmorl node) in the superior endplate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pit {
    /// Centre, local (u, v), mm.
    pub centre: (f64, f64),
    /// Radius, mm.
    pub radius: f64,
    /// Depth below the endplate, mm.
    pub depth: f64,
}

/// Geometry and attenuation of one vertebra.
#[derive(Debug, Clone)]
pub struct Vertebra {
    /// Index into [`crate::anatomy::LEVELS`].
    pub level: usize,
    /// Label (`T1`…).
    pub label: &'static str,
    /// Whether the vertebra is reported in the truth (T1..last) or only context (C7, below last).
    pub reported: bool,
    /// Local frame at the (unfractured) body centre.
    pub frame: Frame,
    /// Half width (lateral) and half depth (AP) of the body, mm.
    pub a: f64,
    /// Half depth, mm.
    pub b: f64,
    /// Natural posterior and anterior heights before any fracture, mm.
    pub hp_nat: f64,
    /// Natural anterior height, mm.
    pub ha_nat: f64,
    /// Posterior height as generated, mm.
    pub hp: f64,
    /// Anterior height (along the linear part of the endplates) as generated, mm.
    pub ha: f64,
    /// Central concavity depth of the superior and inferior endplates as generated, mm.
    pub conc_sup: f64,
    /// Inferior endplate concavity, mm.
    pub conc_inf: f64,
    /// Imposed fracture, if any.
    pub fracture: Option<(FractureType, f64)>,
    /// Schmorl node, if any.
    pub pit: Option<Pit>,
    /// Anterior osteophyte at the superior rim.
    pub osteophyte: bool,
    /// Vertebroplasty cement in the body.
    pub cement: bool,
    /// Cortical wall and endplate thickness, mm.
    pub cortex_mm: f64,
    /// Endplate cortical thickness, mm.
    pub endplate_mm: f64,
    /// HU of cortical bone.
    pub cortex_hu: f64,
    /// HU of trabecular bone (the truth's `trabecular_hu`).
    pub trabecular_hu: f64,
    /// Amplitude of the trabecular texture, HU.
    pub texture_hu: f64,
    /// HU of the marrow of the posterior elements.
    pub marrow_hu: f64,
    /// Heights of the discs above and below, mm (for canal and facet extents).
    pub disc_above: f64,
    /// Disc below, mm.
    pub disc_below: f64,
    /// Canal width and depth, mm.
    pub canal: (f64, f64),
    /// Pedicle width and height, mm.
    pub pedicle: (f64, f64),
    /// Spinous process length (mm) and angle below horizontal (rad).
    pub spinous: (f64, f64),
    /// Transverse process length (mm) and backward angle (rad).
    pub transverse: (f64, f64),
}

/// Partial-volume fractions of the body at one point.
#[derive(Debug, Clone, Copy)]
pub struct BodySample {
    /// Fraction inside the outer (periosteal) surface.
    pub outer: f64,
    /// Fraction inside the trabecular core.
    pub inner: f64,
    /// HU of the trabecular core at this point.
    pub core_hu: f64,
}

impl Vertebra {
    /// Linear (wedge) height at AP fraction `t` as generated.
    fn hl(&self, t: f64) -> f64 {
        self.hp + (self.ha - self.hp) * (t - 0.15) / 0.7
    }

    fn hl_nat(&self, t: f64) -> f64 {
        self.hp_nat + (self.ha_nat - self.hp_nat) * (t - 0.15) / 0.7
    }

    /// Mid-column height used for spacing the spine, mm.
    pub fn centre_height(&self) -> f64 {
        self.hl(0.5)
    }

    /// Central concavity profile: 1 at the centre, 0 beyond 65 % of the footprint radius.
    #[inline]
    fn concavity(&self, u: f64, v: f64) -> f64 {
        let rr = (u / self.a).powi(2) + (v / self.b).powi(2);
        let x = 1.0 - rr / (CONCAVITY_RADIUS * CONCAVITY_RADIUS);
        if x > 0.0 {
            x * x
        } else {
            0.0
        }
    }

    #[inline]
    fn pit_depth(&self, u: f64, v: f64) -> f64 {
        match self.pit {
            Some(p) => {
                let rr =
                    ((u - p.centre.0).powi(2) + (v - p.centre.1).powi(2)) / (p.radius * p.radius);
                if rr < 1.0 {
                    p.depth * (1.0 - rr).sqrt()
                } else {
                    0.0
                }
            }
            None => 0.0,
        }
    }

    /// Superior (cranial) endplate surface `w` at local (u, v), mm. Fracture height loss is
    /// taken 70 % from the superior and 30 % from the inferior endplate, as osteoporotic
    /// fractures mostly involve the superior endplate.
    #[inline]
    pub fn w_top(&self, u: f64, v: f64) -> f64 {
        let t = (v + self.b) / (2.0 * self.b);
        let nat = self.hl_nat(t);
        let loss = nat - self.hl(t);
        nat / 2.0 - 0.7 * loss - self.conc_sup * self.concavity(u, v) - self.pit_depth(u, v)
    }

    /// Inferior (caudal) endplate surface `w` at local (u, v), mm.
    #[inline]
    pub fn w_bot(&self, u: f64, v: f64) -> f64 {
        let t = (v + self.b) / (2.0 * self.b);
        let nat = self.hl_nat(t);
        let loss = nat - self.hl(t);
        -nat / 2.0 + 0.3 * loss + self.conc_inf * self.concavity(u, v)
    }

    /// Local `v` of an AP fraction `t`.
    pub fn v_of(&self, t: f64) -> f64 {
        -self.b + 2.0 * self.b * t
    }

    /// Lateral half-width at height `w` (a slight waist at mid-height).
    #[inline]
    fn half_width_at(&self, w: f64) -> f64 {
        let h = (self.hp_nat + self.ha_nat) / 4.0;
        let x = (w / h).clamp(-1.0, 1.0);
        self.a * (1.0 - 0.05 * (1.0 - x * x))
    }

    /// Signed distance to the body footprint (axial outline) scaled by `grow`.
    #[inline]
    pub fn footprint(u: f64, v: f64, a: f64, b: f64) -> f64 {
        if v >= 0.0 {
            ellipse(u, v, a, b)
        } else {
            // Flatter posterior wall: superellipse of exponent 3, r = q^(1/3) (a two-term series
            // near the boundary, where partial volume is decided; `cbrt` elsewhere).
            let qx = (u / a).abs();
            let qy = (v / b).abs();
            let q = qx * qx * qx + qy * qy * qy;
            let e = q - 1.0;
            let r = if e.abs() < 0.4 {
                1.0 + e / 3.0 - e * e / 9.0
            } else {
                q.cbrt()
            };
            if r < 1e-9 {
                return -a.min(b);
            }
            let gx = qx * qx / (a * r * r);
            let gy = qy * qy / (b * r * r);
            (r - 1.0) / (gx * gx + gy * gy).sqrt().max(1e-9)
        }
    }

    /// The body at local point `l`: partial-volume fractions of the outer surface and the
    /// trabecular core. `hf` and `hw` are the voxel extents across the walls and along the axis.
    #[inline]
    pub fn body(&self, l: V3, hf: f64, hw: f64) -> BodySample {
        let (u, v, w) = (l[0], l[1], l[2]);
        let df = Self::footprint(u, v, self.half_width_at(w), self.b) / hf;
        let top = self.w_top(u, v);
        let bot = self.w_bot(u, v);
        let dt = (w - top) / hw;
        let db = (bot - w) / hw;
        let outer = (0.5 - df.max(dt).max(db)).clamp(0.0, 1.0);
        if outer <= 0.0 {
            return BodySample {
                outer,
                inner: 0.0,
                core_hu: self.trabecular_hu,
            };
        }
        let di = (df + self.cortex_mm / hf)
            .max(dt + self.endplate_mm / hw)
            .max(db + self.endplate_mm / hw);
        let inner = (0.5 - di).clamp(0.0, 1.0);
        let mut core = self.trabecular_hu;
        // Subchondral bone: denser trabeculae under each endplate, fading over 2 mm, which is
        // why endplates look like bright bands (not hairlines) on CT.
        let depth = (top - w).min(w - bot) - self.endplate_mm;
        if depth < SUBCHONDRAL_MM {
            let f = (1.0 - depth / SUBCHONDRAL_MM).clamp(0.0, 1.0);
            core += (SUBCHONDRAL_PEAK * self.cortex_hu - core) * f;
        }
        // Trabecular texture: zero-mean value noise on a ~2.5 mm lattice in the vertebra's own
        // frame (so it moves with the bone), ±~20 HU, less in osteoporotic (sparser) bone.
        core += self.texture_hu * value_noise(u / 2.5, v / 2.5, w / 2.5, self.level as u64);
        // Basivertebral vein: a low-density channel entering the posterior centre.
        let t = (v + self.b) / (2.0 * self.b);
        if t < 0.3 {
            let d = ((u / 3.0).powi(2) + ((t - 0.05) / 0.25).powi(2) + (w / 2.5).powi(2)).sqrt();
            if d < 1.0 {
                core -= 70.0 * (1.0 - d);
            }
        }
        // Fracture: compacted trabeculae form a sclerotic band under the collapsed endplate.
        if self.fracture.is_some() {
            let loss =
                (self.hl_nat(t) - self.hl(t)).max(0.0) + self.conc_sup * self.concavity(u, v) * 0.5;
            let band = 1.0 - ((top - w) / 4.0).clamp(0.0, 1.0);
            core += 90.0 * band * (loss / 4.0).min(1.0);
        }
        BodySample {
            outer,
            inner,
            core_hu: core,
        }
    }

    /// Local `v` of the spinal canal's centre.
    pub fn canal_centre_v(&self) -> f64 {
        -self.b - self.canal.1 / 2.0 - 0.5
    }

    /// Local `w` range of this segment's share of the canal and facet column.
    pub fn segment_w_range(&self) -> (f64, f64) {
        let h = self.centre_height() / 2.0;
        (
            -h - self.disc_below / 2.0 - 0.5,
            h + self.disc_above / 2.0 + 0.5,
        )
    }

    /// Signed distance (mm) to the canal's outline (negative inside), ignoring `w` extent.
    #[inline]
    pub fn canal(&self, l: V3) -> f64 {
        ellipse(
            l[0],
            l[1] - self.canal_centre_v(),
            self.canal.0 / 2.0,
            self.canal.1 / 2.0,
        )
    }

    /// Signed distance (mm) to the union of the posterior elements: pedicles, laminae, articular
    /// pillars, transverse and spinous processes.
    #[inline]
    pub fn posterior(&self, l: V3) -> f64 {
        let (u, v, w) = (l[0], l[1], l[2]);
        let vcc = self.canal_centre_v();
        let (cw, cd) = self.canal;
        let (pw, ph) = self.pedicle;
        let hp = self.hp_nat;
        let wp = 0.12 * hp;
        let ua = u.abs();
        // Pedicles: elliptic bars from the posterolateral body to the canal's mid-depth.
        let pu = cw / 2.0 + pw / 2.0 - 0.5;
        let v0 = -self.b + 3.0;
        let v1 = vcc;
        let ped = ellipse(ua - pu, w - wp, pw / 2.0, ph / 2.0)
            .max((v - (v0 + v1) / 2.0).abs() - (v0 - v1) / 2.0);
        // Laminae: posterior half of an elliptic ring around the canal, shingled caudally.
        let lt = 4.5;
        let ring_out = ellipse(u, v - vcc, cw / 2.0 + lt, cd / 2.0 + lt);
        let ring_in = -ellipse(u, v - vcc, cw / 2.0, cd / 2.0);
        let lam_hi = 0.30 * hp;
        let lam_lo = -0.55 * hp - 3.0;
        let lam = ring_out
            .max(ring_in)
            .max(v - vcc)
            .max(w - lam_hi)
            .max(lam_lo - w);
        // Articular pillars (facet columns), stopping short of the neighbours' (joint space).
        let (w_lo, w_hi) = self.segment_w_range();
        let pr = if self.level >= 13 { 5.5 } else { 4.0 };
        let pil_u = cw / 2.0 + pr - 1.0;
        let pil = capsule(
            [ua, v, w],
            [pil_u, vcc - 1.0, w_lo + pr + 0.6],
            [pil_u, vcc - 1.0, w_hi - pr - 0.6],
            pr,
        );
        // Transverse processes.
        let (tl, tb) = self.transverse;
        let t0 = [cw / 2.0 + 2.0, vcc, wp];
        let t1 = [t0[0] + tl * tb.cos(), vcc - tl * tb.sin(), wp + 1.0];
        let tr = if self.level >= 13 { 3.0 } else { 4.5 };
        let tp = capsule([ua, v, w], t0, t1, tr);
        // Spinous process: two stacked capsules (a tall, narrow blade) pointing back and down.
        let (sl, sa) = self.spinous;
        let s0 = [0.0, vcc - cd / 2.0 - lt * 0.5, (lam_hi + lam_lo) / 2.0];
        let dir = [0.0, -sa.cos(), -sa.sin()];
        let s1 = [0.0, s0[1] + dir[1] * sl, s0[2] + dir[2] * sl];
        let perp = [0.0, -dir[2], dir[1]];
        let off = 2.5;
        let sp = capsule(
            [u, v, w],
            [0.0, s0[1] + perp[1] * off, s0[2] + perp[2] * off],
            [
                0.0,
                s1[1] + perp[1] * off * 0.6,
                s1[2] + perp[2] * off * 0.6,
            ],
            3.0,
        )
        .min(capsule(
            [u, v, w],
            [0.0, s0[1] - perp[1] * off, s0[2] - perp[2] * off],
            [
                0.0,
                s1[1] - perp[1] * off * 0.6,
                s1[2] - perp[2] * off * 0.6,
            ],
            3.0,
        ));
        ped.min(lam).min(pil).min(tp).min(sp)
    }

    /// Osteophyte: an anterior spur from the superior rim curving towards the disc above.
    #[inline]
    pub fn osteophyte_sdf(&self, l: V3) -> f64 {
        if !self.osteophyte {
            return f64::INFINITY;
        }
        let top = self.w_top(0.0, self.b);
        let a = [0.0, self.b - 0.5, top - 2.0];
        let b = [0.0, self.b + 4.5, top + 1.0];
        let c = [0.0, self.b + 6.0, top + 3.0];
        let s = |p: V3, q: V3| {
            (
                [l[0] / 2.5, l[1], l[2]],
                [p[0], p[1], p[2]],
                [q[0], q[1], q[2]],
            )
        };
        let (x, p, q) = s(a, b);
        let d1 = capsule(x, p, q, 2.2);
        let (x, p, q) = s(b, c);
        d1.min(capsule(x, p, q, 1.5))
    }

    /// Local `v` extent of the whole vertebra (posterior-most spinous tip, anterior-most point).
    pub fn local_bounds(&self) -> (V3, V3) {
        let vcc = self.canal_centre_v();
        let (cw, cd) = self.canal;
        let (sl, sa) = self.spinous;
        let (tl, tb) = self.transverse;
        let u_max = (self.a + 2.0).max(cw / 2.0 + 2.0 + tl * tb.cos() + 6.0);
        let v_min = (vcc - cd / 2.0 - 4.5 - sl * sa.cos() - 7.0).min(vcc - tl * tb.sin() - 6.0);
        let v_max = self.b + if self.osteophyte { 10.0 } else { 2.0 };
        let (w_lo, w_hi) = self.segment_w_range();
        let w_min = (w_lo - 1.0).min(-0.55 * self.hp_nat - 3.0 - sl * sa.sin() - 7.0);
        let w_max = w_hi + if self.osteophyte { 5.0 } else { 1.0 };
        ([-u_max, v_min, w_min], [u_max, v_max, w_max])
    }

    /// Heights (posterior, middle, anterior), mm, measured along the vertebra's own axis in its
    /// mid-sagittal plane at the three columns, endplate to endplate (outer cortical surfaces).
    pub fn heights(&self) -> [f64; 3] {
        COLUMNS.map(|t| {
            let v = self.v_of(t);
            self.w_top(0.0, v) - self.w_bot(0.0, v)
        })
    }

    /// Keypoints in local coordinates: superior (posterior, middle, anterior), then inferior.
    pub fn keypoints_local(&self) -> [[V3; 3]; 2] {
        let sup = COLUMNS.map(|t| {
            let v = self.v_of(t);
            [0.0, v, self.w_top(0.0, v)]
        });
        let inf = COLUMNS.map(|t| {
            let v = self.v_of(t);
            [0.0, v, self.w_bot(0.0, v)]
        });
        [sup, inf]
    }

    /// Centre of the body as generated (middle column, half-way between the endplates), local.
    pub fn centre_local(&self) -> V3 {
        let w = (self.w_top(0.0, 0.0) + self.w_bot(0.0, 0.0)) / 2.0;
        [0.0, 0.0, w]
    }
}

/// Hash of a lattice point to [−1, 1] (integer mixing, no RNG state: the same point always
/// gives the same value).
#[inline]
fn lattice(i: i64, j: i64, k: i64, salt: u64) -> f64 {
    let mut h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (k as u64).wrapping_mul(0x1656_67B1_9E37_79F9)
        ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^= h >> 31;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 29;
    (h >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Trilinearly interpolated lattice noise, zero mean, in [−1, 1].
#[inline]
pub fn value_noise(x: f64, y: f64, z: f64, salt: u64) -> f64 {
    let (xf, yf, zf) = (x.floor(), y.floor(), z.floor());
    let (i, j, k) = (xf as i64, yf as i64, zf as i64);
    let s = |t: f64| t * t * (3.0 - 2.0 * t);
    let (fx, fy, fz) = (s(x - xf), s(y - yf), s(z - zf));
    let mut acc = 0.0;
    for dk in 0..2 {
        let wz = if dk == 0 { 1.0 - fz } else { fz };
        for dj in 0..2 {
            let wy = if dj == 0 { 1.0 - fy } else { fy };
            for di in 0..2 {
                let wx = if di == 0 { 1.0 - fx } else { fx };
                acc += wx * wy * wz * lattice(i + di, j + dj, k + dk, salt);
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texture_is_zero_mean_and_bounded() {
        let mut sum = 0.0;
        let mut n = 0.0;
        for i in 0..40 {
            for j in 0..40 {
                for k in 0..10 {
                    let v = value_noise(i as f64 * 0.37, j as f64 * 0.41, k as f64 * 0.53, 7);
                    assert!((-1.0..=1.0).contains(&v));
                    sum += v;
                    n += 1.0;
                }
            }
        }
        assert!((sum / n).abs() < 0.05, "mean {}", sum / n);
    }
}
