//! The spine: a smooth 3-D centreline (thoracic kyphosis, lumbar lordosis, optional scoliosis
//! with axial rotation) and the vertebrae placed along it, each with its own natural variation,
//! imposed fracture and confounders.

use crate::anatomy::{Level, LEVELS};
use crate::geom::{add, normalize, scale, sub, Frame, V3};
use crate::spec::{FractureType, PhantomSpec};
use crate::vertebra::Vertebra;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Step of the sampled centreline, mm of arc length.
const DS: f64 = 0.25;

/// Mean lumbar lordosis (L1 to L5 tangent change), degrees.
const LORDOSIS_DEG: f64 = 45.0;

/// The spine centreline sampled every [`DS`] mm of arc length, cranial to caudal.
#[derive(Debug, Clone)]
pub struct Centreline {
    points: Vec<V3>,
}

impl Centreline {
    /// Point and unit cranial tangent at arc length `s`.
    pub fn at(&self, s: f64) -> (V3, V3) {
        let n = self.points.len();
        let x = (s / DS).clamp(0.0, (n - 2) as f64);
        let i = x.floor() as usize;
        let f = x - i as f64;
        let p = add(scale(self.points[i], 1.0 - f), scale(self.points[i + 1], f));
        let down = normalize(sub(self.points[i + 1], self.points[i]));
        (p, scale(down, -1.0))
    }

    /// Centreline `(x, y)` where it crosses the axial plane at height `z` (clamped to the ends).
    pub fn xy_at_z(&self, z: f64) -> (f64, f64) {
        // z decreases monotonically along the samples.
        let pts = &self.points;
        if z >= pts[0][2] {
            return (pts[0][0], pts[0][1]);
        }
        let last = pts[pts.len() - 1];
        if z <= last[2] {
            return (last[0], last[1]);
        }
        let i = pts.partition_point(|p| p[2] > z).max(1);
        let (a, b) = (pts[i - 1], pts[i]);
        let f = ((a[2] - z) / (a[2] - b[2]).max(1e-12)).clamp(0.0, 1.0);
        (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))
    }

    /// Translate every sample.
    fn shift(&mut self, d: V3) {
        for p in &mut self.points {
            *p = add(*p, d);
        }
    }
}

/// The generated spine.
#[derive(Debug, Clone)]
pub struct Spine {
    /// Vertebrae cranial to caudal, including the unreported context levels at both ends.
    pub vertebrae: Vec<Vertebra>,
    /// The centreline through the body centres.
    pub centreline: Centreline,
    /// Vertebrae above C7 at the head of `vertebrae` (population studies: C5, C6), so that
    /// `vertebrae[offset + i]` is [`LEVELS`]`[i]`.
    pub offset: usize,
}

impl Spine {
    /// Highest and lowest z of the reported vertebrae's bodies, mm.
    pub fn reported_z_range(&self) -> (f64, f64) {
        let mut hi = f64::NEG_INFINITY;
        let mut lo = f64::INFINITY;
        for v in self.vertebrae.iter().filter(|v| v.reported) {
            let (mn, mx) = (v.local_bounds().0, v.local_bounds().1);
            for &u in &[-v.a, v.a] {
                for &vv in &[-v.b, v.b] {
                    for &w in &[mn[2].max(-v.hp_nat), mx[2].min(v.hp_nat)] {
                        let p = v.frame.to_patient([u, vv, w]);
                        hi = hi.max(p[2]);
                        lo = lo.min(p[2]);
                    }
                }
            }
        }
        (hi, lo)
    }

    /// Translate the whole spine.
    pub fn shift(&mut self, d: V3) {
        self.centreline.shift(d);
        for v in &mut self.vertebrae {
            v.frame.origin = add(v.frame.origin, d);
        }
    }
}

/// Gaussian sample via Box–Muller (rand 0.9 ships no normal distribution without `rand_distr`).
pub fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Natural (pre-fracture) parameters of one level for this patient.
fn natural(
    level: &Level,
    index: usize,
    size: f64,
    spec: &PhantomSpec,
    rng: &mut ChaCha8Rng,
    age: f64,
) -> Vertebra {
    if let Some(p) = &spec.population {
        return natural_population(level, index, size, p, rng);
    }
    let hp = level.hp * size * (1.0 + (0.025 * gauss(rng)).clamp(-0.05, 0.05));
    let wedge = (level.wedge + (0.02 * gauss(rng)).clamp(-0.045, 0.045)).clamp(0.82, 1.12);
    let ha = hp * wedge;
    let conc = |rng: &mut ChaCha8Rng| hp * (0.025 + 0.02 * rng.random::<f64>());
    let conc_sup = conc(rng);
    let conc_inf = conc(rng);
    let (trab, cortex_hu, cortex_mm, marrow) = if spec.osteoporotic {
        (70.0 + 30.0 * rng.random::<f64>(), 650.0, 0.7, 110.0)
    } else {
        // Falls with age (Jang et al. 2019: ~2.5 HU/year in a population that includes
        // osteoporosis; less in this non-osteoporotic phantom), ~190–245 HU over 50–85 years.
        let base = 235.0 - 1.5 * (age - 50.0) + 10.0 * gauss(rng).clamp(-1.5, 1.5);
        (base.clamp(175.0, 245.0), 850.0, 1.0, 260.0)
    };
    let deg = std::f64::consts::PI / 180.0;
    Vertebra {
        level: index,
        label: level.label,
        reported: false,
        frame: Frame::from_axis([0.0; 3], [0.0, 0.0, 1.0]),
        a: level.width * size / 2.0 * (1.0 + 0.03 * gauss(rng).clamp(-2.0, 2.0)),
        b: level.depth * size / 2.0 * (1.0 + 0.03 * gauss(rng).clamp(-2.0, 2.0)),
        hp_nat: hp,
        ha_nat: ha,
        hp,
        ha,
        conc_sup,
        conc_inf,
        fracture: None,
        pit: None,
        osteophyte: false,
        cement: false,
        cortex_mm,
        endplate_mm: cortex_mm * 0.9,
        cortex_hu,
        trabecular_hu: trab,
        texture_hu: if spec.osteoporotic { 12.0 } else { 28.0 },
        marrow_hu: marrow,
        disc_above: 0.0,
        disc_below: level.disc_below * size,
        canal: (level.canal.0 * size, level.canal.1 * size),
        pedicle: (level.pedicle.0 * size, level.pedicle.1 * size),
        spinous: (level.spinous.0 * size, level.spinous.1 * deg),
        transverse: (level.transverse.0 * size, level.transverse.1 * deg),
    }
}

/// Natural parameters of one level for a population patient: the drawn size, mid-thoracic
/// wedge, bone density by level (thoracic bodies above L1 read a little higher), cortex.
fn natural_population(
    level: &Level,
    index: usize,
    size: f64,
    p: &crate::population::Population,
    rng: &mut ChaCha8Rng,
) -> Vertebra {
    use crate::population::{level_wedge, HU_PER_LEVEL_ABOVE_L1, LEVEL_HU_SD};
    let hp = level.hp * size * (1.0 + (0.025 * gauss(rng)).clamp(-0.05, 0.05));
    let wedge = (level_wedge(p, level.label, level.wedge)
        + (0.015 * gauss(rng)).clamp(-0.03, 0.03))
    .clamp(0.82, 1.12);
    let ha = hp * wedge;
    let conc = |rng: &mut ChaCha8Rng| hp * (0.025 + 0.02 * rng.random::<f64>());
    let conc_sup = conc(rng);
    let conc_inf = conc(rng);
    // Levels above L1 (LEVELS index 13) read higher, lumbar below a little lower.
    let above_l1 = 13.0 - index as f64;
    let trab = (p.l1_trabecular_hu
        + HU_PER_LEVEL_ABOVE_L1 * above_l1.max(-2.0)
        + LEVEL_HU_SD * gauss(rng).clamp(-2.0, 2.0))
    .max(25.0);
    let deg = std::f64::consts::PI / 180.0;
    let a = level.width * size / 2.0 * (1.0 + 0.03 * gauss(rng).clamp(-2.0, 2.0));
    let b = level.depth * size / 2.0 * (1.0 + 0.03 * gauss(rng).clamp(-2.0, 2.0));
    Vertebra {
        level: index,
        label: level.label,
        reported: false,
        frame: Frame::from_axis([0.0; 3], [0.0, 0.0, 1.0]),
        a,
        b,
        hp_nat: hp,
        ha_nat: ha,
        hp,
        ha,
        conc_sup,
        conc_inf,
        fracture: None,
        pit: None,
        osteophyte: false,
        cement: false,
        cortex_mm: p.cortex_mm,
        endplate_mm: p.cortex_mm * 0.9,
        cortex_hu: p.cortex_hu,
        trabecular_hu: trab,
        // Sparser trabeculae in low-density bone: less texture.
        texture_hu: (8.0 + 0.1 * trab).min(30.0),
        marrow_hu: 90.0 + 0.8 * p.l1_trabecular_hu,
        disc_above: 0.0,
        disc_below: level.disc_below * size,
        canal: (level.canal.0 * size, level.canal.1 * size),
        pedicle: (level.pedicle.0 * size, level.pedicle.1 * size),
        spinous: (level.spinous.0 * size, level.spinous.1 * deg),
        transverse: (level.transverse.0 * size, level.transverse.1 * deg),
    }
}

/// The levels a population study generates: C5, C6, C7…S1 (the table), S2; each with its
/// [`LEVELS`] index (C5/C6 borrow C7's, S2 S1's, for the shape rules keyed on it).
fn population_levels() -> Vec<(Level, usize)> {
    let mut out: Vec<(Level, usize)> = crate::anatomy::CERVICAL_ABOVE
        .iter()
        .map(|l| (*l, 0))
        .collect();
    out.extend(LEVELS.iter().enumerate().map(|(i, l)| (*l, i)));
    out.push((crate::anatomy::S2, LEVELS.len() - 1));
    out
}

/// Age changes and anatomical variants of a population patient, before placement: disc
/// narrowing, osteophytes, transitional lumbosacral anatomy, the fused sacrum.
fn population_variants(
    vs: &mut [Vertebra],
    p: &crate::population::Population,
    rng: &mut ChaCha8Rng,
) {
    use crate::population::Transitional;
    for v in vs.iter_mut() {
        // Disc narrowing with degeneration, more in the lower lumbar spine; never below 1.5 mm.
        let lumbar = if v.level >= 13 { 1.0 } else { 0.6 };
        let loss = p.disc_degeneration * lumbar * (0.15 + 0.3 * rng.random::<f64>());
        v.disc_below = (v.disc_below * (1.0 - loss)).max(1.5);
        // Anterior osteophytes at the mid/lower thoracic and lumbar levels, more with age.
        let p_ost = p.osteophytes * if v.level >= 13 { 0.45 } else { 0.25 };
        if v.reported && v.level >= 5 && rng.random::<f64>() < p_ost {
            v.osteophyte = true;
        }
    }
    let idx = |vs: &[Vertebra], l: &str| vs.iter().position(|v| v.label == l);
    if let Some(s1) = idx(vs, "S1") {
        // The sacrum is fused: S1/S2 is a rudimentary disc unless S1 is lumbarised.
        vs[s1].disc_below = 1.0;
        if p.transitional == Transitional::LumbarisedS1 {
            vs[s1].disc_below = 8.0;
            vs[s1].ha = vs[s1].hp;
            vs[s1].ha_nat = vs[s1].hp;
            vs[s1].transverse.0 *= 0.8;
        }
    }
    if let Some(l5) = idx(vs, "L5") {
        if p.transitional == Transitional::SacralisedL5 {
            vs[l5].disc_below = 1.5;
            vs[l5].transverse.0 *= 1.9;
            vs[l5].transverse.1 = 0.0;
        }
    }
}

/// Expected posterior height of vertebra `i` from its nearest unfractured reported neighbours
/// above and below, each scaled by the ratio of nominal level heights (the `crush` reference of
/// issue 6).
pub fn expected_hp(vs: &[Vertebra], i: usize, use_natural: bool) -> Option<f64> {
    let nominal = |k: usize| LEVELS[vs[k].level].hp;
    let hp = |k: usize| if use_natural { vs[k].hp_nat } else { vs[k].hp };
    let ok = |k: usize| vs[k].reported && vs[k].fracture.is_none();
    let above = (0..i).rev().find(|&k| ok(k));
    let below = (i + 1..vs.len()).find(|&k| ok(k));
    let refs: Vec<f64> = [above, below]
        .into_iter()
        .flatten()
        .map(|k| hp(k) * nominal(i) / nominal(k))
        .collect();
    if refs.is_empty() {
        None
    } else {
        Some(refs.iter().sum::<f64>() / refs.len() as f64)
    }
}

/// Build the spine for a spec: levels C7..(last + 1), natural variation, fractures, and the
/// centreline, with the body centre of T7 at y = `apex_y` and x = 0.
pub fn build(spec: &PhantomSpec, rng: &mut ChaCha8Rng, age: f64, size: f64) -> Spine {
    let reported = spec.labels();
    let (mut vs, off): (Vec<Vertebra>, usize) = if let Some(p) = &spec.population {
        let mut vs: Vec<Vertebra> = population_levels()
            .iter()
            .map(|(l, i)| {
                let mut v = natural(l, *i, size, spec, rng, age);
                v.reported = reported.contains(&v.label);
                v
            })
            .collect();
        population_variants(&mut vs, p, rng);
        (vs, crate::anatomy::CERVICAL_ABOVE.len())
    } else {
        let n_levels = reported.len() + 2; // C7 + reported + one below
        let vs = (0..n_levels)
            .map(|i| {
                let mut v = natural(&LEVELS[i], i, size, spec, rng, age);
                v.reported = reported.contains(&v.label);
                v
            })
            .collect();
        (vs, 0)
    };
    for i in 1..vs.len() {
        vs[i].disc_above = vs[i - 1].disc_below;
    }
    vs[0].disc_above = 4.0;

    // Fractures: wedge lowers Ha, biconcave deepens both endplate concavities (Hm), crush lowers
    // the whole body against the neighbours' expected height.
    for f in &spec.fractures {
        if let Some(i) = vs.iter().position(|v| v.label == f.label) {
            vs[i].fracture = Some((f.kind, f.fraction));
        }
    }
    for i in 0..vs.len() {
        let Some((kind, fr)) = vs[i].fracture else {
            continue;
        };
        let v = &mut vs[i];
        match kind {
            FractureType::Wedge => {
                v.ha = v.hp * (1.0 - fr);
            }
            FractureType::Biconcave => {
                let hl_mid = (v.ha + v.hp) / 2.0;
                let needed = hl_mid - v.hp * (1.0 - fr);
                let have = v.conc_sup + v.conc_inf;
                if needed > have {
                    v.conc_sup = needed * 0.55;
                    v.conc_inf = needed * 0.45;
                }
            }
            FractureType::Crush => {}
        }
        if kind == FractureType::Crush {
            let e = expected_hp(&vs, i, true).unwrap_or(vs[i].hp_nat);
            let v = &mut vs[i];
            let k = (e * (1.0 - fr) / v.hp).min(1.0);
            v.hp *= k;
            v.ha *= k;
            v.conc_sup *= k;
            v.conc_inf *= k;
        }
    }
    keep_healthy_below_threshold(&mut vs);

    // Centreline: sagittal tangent angle phi(s) (down-direction = (0, sin phi, -cos phi)),
    // piecewise linear: +K/2 at T1 to -K/2 at T12 (kyphosis, apex mid-thoracic), then lordosis.
    let kyph = spec
        .kyphosis_deg
        .unwrap_or(35.0 + 10.0 * rng.random::<f64>())
        .to_radians();
    let lord = match &spec.population {
        Some(p) => p.lordosis_deg.to_radians(),
        None => (LORDOSIS_DEG + 6.0 * gauss(rng).clamp(-1.5, 1.5)).to_radians(),
    };
    let mut s_nom = vec![0.0; vs.len()];
    for i in 1..vs.len() {
        s_nom[i] = s_nom[i - 1]
            + vs[i - 1].centre_height() / 2.0
            + vs[i - 1].disc_below
            + vs[i].centre_height() / 2.0;
    }
    // Lumbar curvature uses nominal L1..L5 lengths so a chest study has the same lumbar shape.
    let lumbar_len: f64 = (12..17)
        .map(|k| LEVELS[k].hp * size + LEVELS[k].disc_below * size)
        .sum();
    let (s_t1, s_t12) = (s_nom[1 + off], s_nom[12 + off]);
    let s_last = s_nom[reported.len() + off];
    let phi = |s: f64| -> f64 {
        if s <= s_t1 {
            kyph / 2.0
        } else if s <= s_t12 {
            kyph / 2.0 - kyph * (s - s_t1) / (s_t12 - s_t1)
        } else {
            -kyph / 2.0 + lord * ((s - s_t12) / lumbar_len).min(1.0)
        }
    };
    let total = s_nom[vs.len() - 1] + 60.0;
    let n = (total / DS).ceil() as usize + 2;
    let mut sag = Vec::with_capacity(n);
    let mut p = [0.0, 0.0, 0.0];
    for k in 0..n {
        let s = k as f64 * DS;
        sag.push(p);
        let ph = phi(s + DS / 2.0);
        p = add(p, [0.0, ph.sin() * DS, -ph.cos() * DS]);
    }
    // Scoliosis: lateral bump A·sin²(πτ) over T1..last, zero slope at the ends.
    let amp = spec.scoliosis_mm;
    let scol = |s: f64| -> f64 {
        let tau = ((s - s_t1) / (s_last - s_t1)).clamp(0.0, 1.0);
        amp * (std::f64::consts::PI * tau).sin().powi(2)
    };
    let points: Vec<V3> = sag
        .iter()
        .enumerate()
        .map(|(k, q)| [q[0] + scol(k as f64 * DS), q[1], q[2]])
        .collect();
    let centreline = Centreline { points };

    // Place each vertebra at its arc length, pushing it down if its superior rim would come
    // closer than half a disc to the inferior rim of the one above (strong curvature, wedging).
    let mut s_at = vec![0.0; vs.len()];
    for i in 0..vs.len() {
        if i > 0 {
            s_at[i] = s_at[i - 1]
                + vs[i - 1].centre_height() / 2.0
                + vs[i - 1].disc_below
                + vs[i].centre_height() / 2.0;
        }
        for _ in 0..40 {
            let (pt, tan) = centreline.at(s_at[i]);
            let rot = -(0.35 * scol(s_at[i])).to_radians();
            vs[i].frame = Frame::from_axis(pt, tan).rotated_about_w(rot);
            if i == 0 {
                break;
            }
            let need = (vs[i - 1].disc_below * 0.5).max(1.5);
            let gap = min_gap(&vs[i - 1], &vs[i]);
            if gap >= need - 1e-6 {
                break;
            }
            s_at[i] += need - gap;
        }
    }
    let mut spine = Spine {
        vertebrae: vs,
        centreline,
        offset: off,
    };
    // Put the T7 body centre at the origin; the caller moves the spine into the body.
    let t7 = spine.vertebrae[7 + off].frame.origin;
    spine.shift(scale(t7, -1.0));
    spine
}

/// Smallest axial clearance between the inferior endplate of `up` and the superior endplate of
/// `down`, over rim and interior sample points, mm.
pub fn min_gap(up: &Vertebra, down: &Vertebra) -> f64 {
    let mut g = f64::INFINITY;
    for &r in &[0.0, 0.5, 0.9] {
        for k in 0..12 {
            let th = k as f64 * std::f64::consts::TAU / 12.0;
            // Point on `down`'s superior surface, seen from `up`'s frame.
            let (u, v) = (down.a * r * th.cos(), down.b * r * th.sin());
            let p = down.frame.to_patient([u, v, down.w_top(u, v)]);
            let l = up.frame.to_local(p);
            g = g.min(up.w_bot(l[0], l[1]) - l[2]);
            // Point on `up`'s inferior surface, seen from `down`'s frame.
            let (u, v) = (up.a * r * th.cos(), up.b * r * th.sin());
            let p = up.frame.to_patient([u, v, up.w_bot(u, v)]);
            let l = down.frame.to_local(p);
            g = g.min(l[2] - down.w_top(l[0], l[1]));
        }
    }
    g
}

/// Genant's three ratios for vertebra `i`: (wedge `1 − Ha/Hp`, biconcave `1 − Hm/Hp`,
/// crush `1 − Hp/expected Hp`).
pub fn ratios(vs: &[Vertebra], i: usize) -> [f64; 3] {
    let [hp, hm, ha] = vs[i].heights();
    let crush = expected_hp(vs, i, false).map_or(0.0, |e| 1.0 - hp / e);
    [1.0 - ha / hp, 1.0 - hm / hp, crush]
}

/// Healthy vertebrae must never reach the 25 % fracture threshold: shrink any natural wedge or
/// concavity that would (the natural tail stays below 0.235).
fn keep_healthy_below_threshold(vs: &mut [Vertebra]) {
    const LIMIT: f64 = 0.235;
    for _ in 0..4 {
        for i in 0..vs.len() {
            if vs[i].fracture.is_some() || !vs[i].reported {
                continue;
            }
            let r = ratios(vs, i);
            let v = &mut vs[i];
            if r[0] > LIMIT {
                v.ha = v.hp * (1.0 - LIMIT + 0.02);
                v.ha_nat = v.ha;
            }
            if r[1] > LIMIT {
                v.conc_sup *= 0.6;
                v.conc_inf *= 0.6;
            }
            if r[2] > LIMIT {
                let e = expected_hp(vs, i, false).unwrap_or(vs[i].hp);
                let v = &mut vs[i];
                let k = e * (1.0 - LIMIT + 0.03) / v.hp;
                v.hp *= k;
                v.ha *= k;
                v.hp_nat = v.hp;
                v.ha_nat = v.ha;
            }
        }
    }
}
