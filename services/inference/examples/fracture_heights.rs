//! Heights of fractured vertebrae through the classical detector, against phantom truth: the
//! signed error of Ha / Hm / Hp and of the deformity ratio, per fracture type, and how often the
//! Genant grade (from 1 − min/max of the heights) comes out as generated. (A crush keeps its
//! shape and is graded by morphometry against its neighbours, so its within-body grade says
//! little; its heights are what count.)
//! `cargo run --release -p spinescreen-inference --example fracture_heights -- [SEEDS] [-v]`
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use spinescreen_inference::{geom, ClassicalDetector, Detector};
use spinescreen_phantom::{generate, PhantomSpec};
use spinescreen_proto::Keypoints;

const LEVELS: [&str; 6] = ["T5", "T7", "T9", "T11", "L1", "L2"];
const FRACTIONS: [f64; 3] = [0.28, 0.36, 0.46];

/// Heights (Ha, Hm, Hp) from six keypoints.
fn heights(k: &Keypoints) -> [f64; 3] {
    let h = k.heights();
    [h.anterior, h.middle, h.posterior]
}

/// Genant grade of a height loss (1 − min/max).
fn grade(loss: f64) -> u8 {
    match loss {
        l if l >= 0.40 => 3,
        l if l >= 0.25 => 2,
        l if l >= 0.20 => 1,
        _ => 0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(2);
    let verbose = args.iter().any(|a| a == "-v");
    let det = ClassicalDetector::default();
    println!("| type | fractured bodies | found | Ha bias | Hm bias | Hp bias (mm) | deformity bias | grade exact |");
    println!("|---|---|---|---|---|---|---|---|");
    for kind in ["wedge", "biconcave", "crush"] {
        let (mut n, mut found, mut exact) = (0usize, 0usize, 0usize);
        let mut bias = [0.0f64; 4];
        for seed in 0..seeds {
            for (i, level) in LEVELS.iter().enumerate() {
                let fraction = FRACTIONS[(i + seed as usize) % FRACTIONS.len()];
                let spec = PhantomSpec {
                    seed: 500 + seed * 17 + i as u64,
                    matrix: 256,
                    pixel_spacing_mm: Some(1.4),
                    slices: 330,
                    slice_thickness_mm: 1.25,
                    osteoporotic: seed % 2 == 1,
                    fractures: vec![format!("{level}:{kind}:{fraction:.2}").parse().unwrap()],
                    ..Default::default()
                };
                let ph = generate(&spec).expect("phantom generates");
                let Some(tv) = ph.truth.vertebrae.iter().find(|v| v.label == *level) else {
                    continue;
                };
                n += 1;
                let got = det.detect(&ph.volume);
                let Some(v) = got
                    .vertebrae
                    .iter()
                    .find(|v| geom::dist(v.center_mm, tv.center_mm) <= 3.0)
                else {
                    if verbose {
                        eprintln!("{kind} {level} {fraction:.2} seed {}: not found", spec.seed);
                    }
                    continue;
                };
                found += 1;
                let h = heights(&v.keypoints_mm);
                let th = [
                    tv.heights_mm.anterior,
                    tv.heights_mm.middle,
                    tv.heights_mm.posterior,
                ];
                let loss = |h: [f64; 3]| {
                    1.0 - h.iter().copied().fold(f64::MAX, f64::min)
                        / h.iter().copied().fold(0.0, f64::max)
                };
                let (dl, tl) = (loss(h), loss(th));
                for c in 0..3 {
                    bias[c] += h[c] - th[c];
                }
                bias[3] += dl - tl;
                exact += usize::from(grade(dl) == grade(tl));
                if verbose {
                    eprintln!(
                        "{kind} {level} {fraction:.2} seed {}: H {:.1} {:.1} {:.1} truth {:.1} {:.1} {:.1} loss {:.2} truth {:.2} {:?}",
                        spec.seed, h[0], h[1], h[2], th[0], th[1], th[2], dl, tl, v.flags
                    );
                }
            }
        }
        let f = found.max(1) as f64;
        println!(
            "| {kind} | {n} | {found} | {:+.2} | {:+.2} | {:+.2} | {:+.3} | {:.0} % |",
            bias[0] / f,
            bias[1] / f,
            bias[2] / f,
            bias[3] / f,
            100.0 * exact as f64 / f
        );
    }
}
