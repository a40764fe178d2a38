//! `--population`: one patient drawn from the population a city chest-CT screening programme
//! sees (adults 40–95, both sexes), and the acquisition drawn with them. [`draw`] turns a seed
//! into a [`Population`] (every choice, recorded in `truth.json` under
//! `options.population`) and a [`PhantomSpec`] that carries it; the CLI's explicit flags then
//! override one choice each.
//!
//! Sources of the curves (see `shared/REFERENCE.md`): L1 trabecular attenuation by age and sex
//! after Jang et al. 2019 (> 20,000 adults; about −2.5 HU a year, women falling faster after
//! the menopause), read against Pickhardt et al. 2013's 110 / 160 HU thresholds; normal
//! mid-thoracic wedging and kyphosis growing with age; transitional and rib-count anomalies at
//! their usual few-per-cent prevalence.

use crate::scene::{rng, stream};
use crate::spec::{Confounder, FractureSpec, FractureType, LastVertebra, PhantomSpec};
use crate::spine::gauss;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Youngest and oldest patient of a screening programme's chest CT, years.
pub const AGE_RANGE: (u32, u32) = (40, 95);

/// Mean L1 trabecular HU at 40 years (Jang et al. 2019: women ~190, men ~180 at 40).
const L1_HU_AT_40: (f64, f64) = (190.0, 180.0);
/// Fall per year before 50 (women, men), HU (Jang 2019: slow before the menopause).
const L1_SLOPE_BEFORE_50: (f64, f64) = (1.2, 1.8);
/// Fall per year from 50 (women, men), HU: women fall faster after 50; the population mean
/// slope over 40–90 comes to ~2.4 HU/year (Jang 2019: ~2.5).
const L1_SLOPE_AFTER_50: (f64, f64) = (2.9, 1.9);
/// Spread of L1 HU between patients of one age and sex, HU (Jang 2019 SD ~ 35–40 HU; we clip
/// the tails at ±2.2 SD).
const L1_HU_SD: f64 = 33.0;
/// Lowest L1 HU drawn (severe osteoporosis still reads above fat-marrow values).
const L1_HU_FLOOR: f64 = 35.0;
/// Thoracic bodies read higher than L1: HU added per level above L1 (T12 ≈ L1 + 2, T1 ≈ L1 + 24).
pub const HU_PER_LEVEL_ABOVE_L1: f64 = 2.0;
/// Spread of trabecular HU between levels of one patient, HU.
pub const LEVEL_HU_SD: f64 = 6.0;

/// Vertebral size spread between patients: SD 7.5 % clipped at ±2 SD (about ±15 %).
const SIZE_SD: f64 = 0.075;
/// Prevalence of 11 and 13 rib pairs (each ~2–5 % in CT series).
const RIB_ANOMALY_P: (f64, f64) = (0.03, 0.03);
/// Prevalence of a sacralised L5 and of a lumbarised S1 (lumbosacral transitional vertebrae
/// ~ 4–12 % in total; we draw ~3 % of each).
const TRANSITIONAL_P: (f64, f64) = (0.03, 0.03);
/// Share of studies with iodinated contrast.
const CONTRAST_P: f64 = 0.35;
/// Share of studies with arms down (trauma, frail patients).
const ARMS_DOWN_P: f64 = 0.15;

/// Slice thicknesses of the programme's archive, mm, and their weights.
pub const SLICE_THICKNESSES: [(f64, f64); 8] = [
    (0.625, 0.10),
    (1.0, 0.25),
    (1.25, 0.15),
    (1.5, 0.10),
    (2.0, 0.10),
    (2.5, 0.10),
    (3.0, 0.10),
    (5.0, 0.10),
];

/// Levels at which a chest CT's field of view may start (the first level with bone in view).
pub const FOV_STARTS: [&str; 8] = ["C5", "C6", "C7", "T1", "T2", "T3", "T4", "T4"];
/// Levels at which it may end; a chest CT that stops in L1–L2 is the commonest.
pub const FOV_ENDS: [&str; 12] = [
    "T10", "T11", "T12", "L1", "L1", "L2", "L2", "L2", "L3", "L4", "L5", "S1",
];
/// Rarely the study runs on to the sacrum.
const FOV_END_S2_P: f64 = 0.05;

/// Share of patients drawn with a compression fracture: rises as bone density falls (the
/// experiment flagged 18–24 % of studies Genant 2–3).
const FRACTURE_P: (f64, f64) = (0.04, 0.35);
/// Where drawn fractures go (weighted by repetition: mid-thorax and thoracolumbar junction).
const FRACTURE_SITES: [&str; 12] = [
    "T6", "T7", "T7", "T8", "T9", "T10", "T11", "T12", "T12", "L1", "L1", "L2",
];
/// Share of fractured studies whose fracture is the first or last whole body in view.
const FRACTURE_AT_EDGE_P: f64 = 0.3;

/// Reconstruction kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    /// Soft tissue / standard: wider PSF, low-frequency noise.
    Soft,
    /// Lung / bone: narrow PSF, edge overshoot, fine-grained noise.
    Sharp,
}

/// Lumbosacral transitional anatomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transitional {
    /// Five lumbar vertebrae and a fused sacrum.
    None,
    /// L5 partly fused to the sacrum: a rudimentary L5/S1 disc, broad transverse processes.
    SacralisedL5,
    /// S1 separated from S2 by a full disc: it looks like a sixth lumbar vertebra.
    LumbarisedS1,
}

/// Every choice drawn for one population patient and study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Population {
    /// Age, years.
    pub age: u32,
    /// `F` or `M`.
    pub sex: String,
    /// Vertebral size factor (1 = nominal adult man).
    pub size: f64,
    /// Body girth factor: < 0.9 thin, > 1.2 obese.
    pub habitus: f64,
    /// Subcutaneous fat, mm.
    pub fat_mm: f64,
    /// L1 trabecular HU of this patient (other levels follow it).
    pub l1_trabecular_hu: f64,
    /// Cortical shell and endplate thickness, mm (thins with age).
    pub cortex_mm: f64,
    /// Cortical HU (darkens with age and low density).
    pub cortex_hu: f64,
    /// 0–1: how many levels carry anterior osteophytes (grows with age).
    pub osteophytes: f64,
    /// 0–1: disc height loss and desiccation (grows with age).
    pub disc_degeneration: f64,
    /// Anterior shortfall of the mid-thoracic bodies (T5–T10), 1 − Ha/Hp at the apex.
    pub thoracic_wedge: f64,
    /// Thoracic kyphosis, degrees.
    pub kyphosis_deg: f64,
    /// Lumbar lordosis, degrees.
    pub lordosis_deg: f64,
    /// Scoliosis amplitude, mm (0 in most).
    pub scoliosis_mm: f64,
    /// Rib pairs: 11, 12 or 13.
    pub rib_pairs: u8,
    /// Lumbosacral transitional vertebra.
    pub transitional: Transitional,
    /// Arms beside the chest (true) or above the head.
    pub arms_down: bool,
    /// Aortic wall calcifications (count of plaques; more with age).
    pub aortic_plaques: u32,
    /// First level with bone in view.
    pub fov_start: String,
    /// Where the top of the scan cuts the start level's body: 0 = its superior endplate,
    /// 1 = its inferior endplate (negative: above it).
    pub fov_start_frac: f64,
    /// Last level with bone in view.
    pub fov_end: String,
    /// Where the bottom of the scan cuts the end level's body: 0 = its inferior endplate,
    /// 1 = its superior endplate (negative: below it).
    pub fov_end_frac: f64,
    /// Whether the number of slices follows from the field of view (false when `--slices` set it).
    pub slices_from_fov: bool,
    /// Display field of view, mm (sized to the body).
    pub display_fov_mm: f64,
    /// Reconstruction kernel.
    pub kernel: Kernel,
    /// Iodinated contrast: HU of blood in the aorta and heart (`None`: unenhanced).
    pub contrast_blood_hu: Option<f64>,
    /// Where the tracheal carina lies, as a fraction of the way from T5's centre down to
    /// T6's (on CT, taken in inspiration, it projects onto T5–T6 in most adults).
    #[serde(default)]
    pub carina_t5_to_t6: f64,
}

impl Population {
    /// In-plane PSF σ of the kernel, mm (sharp ~0.45 mm, soft ~0.85 mm).
    pub fn psf_sigma_mm(&self) -> f64 {
        match self.kernel {
            Kernel::Soft => 0.85,
            Kernel::Sharp => 0.45,
        }
    }
}

/// Noise SD at 1 mm slices for a 220 mm AP body with the soft kernel, HU.
const NOISE_SOFT_1MM: f64 = 14.0;
/// A sharp kernel's noise relative to the soft kernel at the same dose.
const NOISE_SHARP_FACTOR: f64 = 2.2;
/// Noise grows with body size under automatic exposure control roughly as (size ratio)^1.5.
const NOISE_SIZE_EXPONENT: f64 = 1.5;

/// Image noise SD for a draw at a slice thickness: ∝ 1/√thickness and with body size.
pub fn noise_for(p: &Population, slice_mm: f64) -> f64 {
    let base = match p.kernel {
        Kernel::Soft => NOISE_SOFT_1MM,
        Kernel::Sharp => NOISE_SOFT_1MM * NOISE_SHARP_FACTOR,
    };
    base * p.habitus.powf(NOISE_SIZE_EXPONENT) / slice_mm.max(0.3).sqrt()
}

fn pick<T: Copy>(r: &mut ChaCha8Rng, items: &[T]) -> T {
    items[r.random_range(0..items.len())]
}

/// Mean L1 trabecular HU for an age and sex (Jang et al. 2019 shape).
pub fn mean_l1_hu(age: f64, female: bool) -> f64 {
    let (at40, s1, s2) = if female {
        (L1_HU_AT_40.0, L1_SLOPE_BEFORE_50.0, L1_SLOPE_AFTER_50.0)
    } else {
        (L1_HU_AT_40.1, L1_SLOPE_BEFORE_50.1, L1_SLOPE_AFTER_50.1)
    };
    let before = (age.min(50.0) - 40.0).max(0.0);
    let after = (age - 50.0).max(0.0);
    at40 - s1 * before - s2 * after
}

/// Draw the patient and study of `seed`, and the spec that generates it.
pub fn draw(seed: u64) -> PhantomSpec {
    let mut r = rng(seed, stream::POPULATION);
    // Age: screening chest CT skews old; triangular-ish over 40–95 peaking in the sixties.
    let u = (r.random::<f64>() + r.random::<f64>()) / 2.0;
    let age = (AGE_RANGE.0 as f64 + u * (AGE_RANGE.1 - AGE_RANGE.0) as f64).round() as u32;
    let female = r.random::<bool>();
    let a = age as f64;
    let size = (if female { 0.92 } else { 1.0 }) * (1.0 + SIZE_SD * gauss(&mut r).clamp(-2.0, 2.0));
    // Girth: thin (0.82) to obese (1.35), skewed towards overweight.
    let habitus = (1.02 + 0.12 * gauss(&mut r)).clamp(0.82, 1.35);
    let fat_mm = (6.0 + 40.0 * (habitus - 0.82)).clamp(4.0, 40.0) * (0.8 + 0.4 * r.random::<f64>());
    let l1 = (mean_l1_hu(a, female) + L1_HU_SD * gauss(&mut r).clamp(-2.2, 2.2)).max(L1_HU_FLOOR);
    // Cortex thins from ~1.1 mm at 40 to ~0.6 mm at 95 and darkens with density.
    let old = ((a - 40.0) / 55.0).clamp(0.0, 1.0);
    let cortex_mm = (1.1 - 0.5 * old + 0.08 * gauss(&mut r)).clamp(0.5, 1.25);
    let cortex_hu = (560.0 + 1.6 * l1).clamp(560.0, 900.0);
    let osteophytes = (old * 0.9 + 0.15 * gauss(&mut r)).clamp(0.0, 1.0);
    let disc_degeneration = (old * 0.8 + 0.15 * gauss(&mut r)).clamp(0.0, 1.0);
    let thoracic_wedge = 0.05 + 0.10 * r.random::<f64>();
    // Kyphosis grows with age (Fon et al. 1980: ~25° in the young to ~45–50° after 70).
    let kyphosis_deg = (30.0 + 0.35 * (a - 40.0) + 7.0 * gauss(&mut r)).clamp(18.0, 70.0);
    let lordosis_deg = (45.0 + 8.0 * gauss(&mut r)).clamp(25.0, 65.0);
    let scoliosis_mm = if r.random::<f64>() < 0.08 + 0.25 * old {
        4.0 + 14.0 * r.random::<f64>()
    } else {
        0.0
    };
    let x: f64 = r.random();
    let rib_pairs = if x < RIB_ANOMALY_P.0 {
        11
    } else if x < RIB_ANOMALY_P.0 + RIB_ANOMALY_P.1 {
        13
    } else {
        12
    };
    let x: f64 = r.random();
    let transitional = if x < TRANSITIONAL_P.0 {
        Transitional::SacralisedL5
    } else if x < TRANSITIONAL_P.0 + TRANSITIONAL_P.1 {
        Transitional::LumbarisedS1
    } else {
        Transitional::None
    };
    let arms_down = r.random::<f64>() < ARMS_DOWN_P;
    let aortic_plaques = ((old * 10.0 + 2.0 * gauss(&mut r)).max(0.0)).round() as u32;
    let fov_start = pick(&mut r, &FOV_STARTS).to_string();
    let fov_start_frac = 0.1 + 0.8 * r.random::<f64>();
    let fov_end = if r.random::<f64>() < FOV_END_S2_P {
        "S2".to_string()
    } else {
        pick(&mut r, &FOV_ENDS).to_string()
    };
    let fov_end_frac = 0.1 + 0.8 * r.random::<f64>();
    let mut w: f64 = r.random();
    let mut thickness = SLICE_THICKNESSES[0].0;
    for (t, p) in SLICE_THICKNESSES {
        thickness = t;
        if w < p {
            break;
        }
        w -= p;
    }
    let kernel = if r.random::<f64>() < 0.45 {
        Kernel::Sharp
    } else {
        Kernel::Soft
    };
    let contrast_blood_hu =
        (r.random::<f64>() < CONTRAST_P).then(|| 150.0 + 200.0 * r.random::<f64>());
    let display_fov_mm = (2.0 * 158.0 * habitus * size.max(0.95) + 40.0).clamp(330.0, 480.0);

    let mut confounders = Vec::new();
    if r.random::<f64>() < 0.10 + 0.2 * old {
        confounders.push(Confounder::CalcifiedDisc);
    }
    if r.random::<f64>() < 0.15 {
        confounders.push(Confounder::Schmorl);
    }
    let pop = Population {
        age,
        sex: if female { "F" } else { "M" }.to_string(),
        size,
        habitus,
        fat_mm,
        l1_trabecular_hu: (l1 * 10.0).round() / 10.0,
        cortex_mm,
        cortex_hu,
        osteophytes,
        disc_degeneration,
        thoracic_wedge,
        kyphosis_deg,
        lordosis_deg,
        scoliosis_mm,
        rib_pairs,
        transitional,
        arms_down,
        aortic_plaques,
        fov_start,
        fov_start_frac,
        fov_end,
        fov_end_frac,
        slices_from_fov: true,
        display_fov_mm,
        kernel,
        contrast_blood_hu,
        // Its own stream, so that every other draw stays as it was.
        carina_t5_to_t6: (rng(seed, stream::AIRWAYS).random::<f64>() * 100.0).round() / 100.0,
    };
    // Fractures at a prevalence that rises as bone density falls; some at the edge of the view.
    let p_frac =
        FRACTURE_P.0 + (FRACTURE_P.1 - FRACTURE_P.0) * ((170.0 - l1) / 120.0).clamp(0.0, 1.0);
    let mut fractures = Vec::new();
    if r.random::<f64>() < p_frac {
        let label = if r.random::<f64>() < FRACTURE_AT_EDGE_P {
            if r.random::<bool>() {
                crate::spec::FIRST_IN_VIEW
            } else {
                crate::spec::LAST_IN_VIEW
            }
        } else {
            // Thoracolumbar junction and mid-thorax, the commonest sites; kept in view.
            let want = pick(&mut r, &FRACTURE_SITES);
            let (first, last) = edge_levels(&pop);
            let pos = |l: &str| ALL_LEVELS.iter().position(|x| *x == l).unwrap_or(9);
            // At or beyond the (estimated) edge bodies: the first / last body really in view.
            if pos(want) <= pos(first) {
                crate::spec::FIRST_IN_VIEW
            } else if pos(want) >= pos(last) {
                crate::spec::LAST_IN_VIEW
            } else {
                want
            }
        };
        let kind = pick(
            &mut r,
            &[
                FractureType::Wedge,
                FractureType::Wedge,
                FractureType::Biconcave,
                FractureType::Crush,
            ],
        );
        let fraction = 0.21 + 0.34 * r.random::<f64>();
        fractures.push(FractureSpec {
            label: label.to_string(),
            kind,
            fraction: (fraction * 100.0).round() / 100.0,
        });
    }
    let matrix = 512;
    PhantomSpec {
        seed,
        fractures,
        scoliosis_mm,
        kyphosis_deg: Some(kyphosis_deg),
        osteoporotic: false,
        confounders,
        matrix,
        slices: 400,
        slice_thickness_mm: thickness,
        pixel_spacing_mm: Some(display_fov_mm / matrix as f64),
        last_vertebra: LastVertebra::L5,
        noise_hu: noise_for(&pop, thickness),
        population: Some(pop),
    }
}

/// `--osteoporotic` on a population patient: L1 redrawn in 50–100 HU (osteoporotic spines,
/// REFERENCE.md), cortex thinned and darkened accordingly.
pub fn make_osteoporotic(p: &mut Population, seed: u64) {
    let mut r = rng(seed, stream::POPULATION + 1);
    p.l1_trabecular_hu = (50.0 + 50.0 * r.random::<f64>()).round();
    p.cortex_mm = p.cortex_mm.min(0.7);
    p.cortex_hu = (560.0 + 1.6 * p.l1_trabecular_hu).clamp(560.0, 900.0);
}

/// Nominal (pre-variation) Ha/Hp of a level in a population patient: the drawn mid-thoracic
/// wedge, full over T6–T9, half at T5 and T10, the nominal table's value elsewhere.
pub fn level_wedge(p: &Population, label: &str, nominal: f64) -> f64 {
    let w = p.thoracic_wedge;
    match label {
        "T6" | "T7" | "T8" | "T9" => 1.0 - w,
        "T5" | "T10" => (1.0 - 0.6 * w).min(nominal),
        _ => nominal,
    }
}

/// All levels a population study generates, cranial to caudal.
pub const ALL_LEVELS: [&str; 22] = [
    "C5", "C6", "C7", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12",
    "L1", "L2", "L3", "L4", "L5", "S1", "S2",
];

/// An estimate of the first and last thoracolumbar (T1–L5) bodies wholly in view for the drawn
/// cuts: the level after the cut start level (or the start level itself when the cut lies above
/// it), the level before the cut end level (or itself when the cut lies below it). Tilted bodies
/// overlap in z, so the scene finds the real ones on the geometry (`FIRST` / `LAST`).
pub fn edge_levels(p: &Population) -> (&'static str, &'static str) {
    let pos = |l: &str| ALL_LEVELS.iter().position(|x| *x == l);
    let t1 = 3;
    let l5 = 19;
    let s = pos(&p.fov_start).map_or(t1, |i| if p.fov_start_frac > 0.0 { i + 1 } else { i });
    let e = pos(&p.fov_end).map_or(l5, |i| {
        if p.fov_end_frac > 0.0 {
            i.saturating_sub(1)
        } else {
            i
        }
    });
    (ALL_LEVELS[s.clamp(t1, l5)], ALL_LEVELS[e.clamp(t1, l5)])
}
