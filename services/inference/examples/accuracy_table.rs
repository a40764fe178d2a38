//! Print the classical detector's accuracy table on phantoms (for the README):
//! `cargo run --release -p spinescreen-inference --example accuracy_table -- [SEEDS] [-v]`
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "../tests/support/accuracy.rs"]
mod accuracy;

use accuracy::{evaluate, Tally};
use spinescreen_inference::ClassicalDetector;
use spinescreen_phantom::{Confounder, LastVertebra, PhantomSpec};

/// A phantom variant: seed → spec.
type SpecFor<'a> = Box<dyn Fn(u64) -> PhantomSpec + 'a>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(4);
    let verbose = args.iter().any(|a| a == "-v");
    let det = ClassicalDetector::default();
    let base = PhantomSpec {
        matrix: 256,
        pixel_spacing_mm: Some(1.4),
        slices: 330,
        slice_thickness_mm: 1.25,
        ..Default::default()
    };
    let variants: Vec<(&str, SpecFor)> = vec![
        (
            "plain",
            Box::new(|s| PhantomSpec {
                seed: s,
                ..base.clone()
            }),
        ),
        (
            "osteoporotic + noise 30",
            Box::new(|s| PhantomSpec {
                seed: s,
                osteoporotic: true,
                noise_hu: 30.0,
                ..base.clone()
            }),
        ),
        (
            "scoliosis 25 mm",
            Box::new(|s| PhantomSpec {
                seed: s,
                scoliosis_mm: 25.0,
                ..base.clone()
            }),
        ),
        (
            "kyphosis 60°",
            Box::new(|s| PhantomSpec {
                seed: s,
                kyphosis_deg: Some(60.0),
                ..base.clone()
            }),
        ),
        (
            "fractures L1 wedge .35, T8 biconcave .3",
            Box::new(|s| PhantomSpec {
                seed: s,
                fractures: vec![
                    "L1:wedge:0.35".parse().unwrap(),
                    "T8:biconcave:0.3".parse().unwrap(),
                ],
                ..base.clone()
            }),
        ),
        (
            "confounders (all)",
            Box::new(|s| PhantomSpec {
                seed: s,
                confounders: vec![
                    Confounder::CalcifiedDisc,
                    Confounder::Osteophyte,
                    Confounder::Schmorl,
                    Confounder::Cement,
                ],
                ..base.clone()
            }),
        ),
        (
            "ring artefacts",
            Box::new(|s| PhantomSpec {
                seed: s,
                confounders: vec![Confounder::Ring],
                ..base.clone()
            }),
        ),
        (
            "osteoporotic + scoliosis 40 mm + kyphosis 55°",
            Box::new(|s| PhantomSpec {
                seed: s,
                osteoporotic: true,
                scoliosis_mm: 40.0,
                kyphosis_deg: Some(55.0),
                noise_hu: 25.0,
                ..base.clone()
            }),
        ),
        (
            "crush T11 .4, wedge T6 .25, noise 40",
            Box::new(|s| PhantomSpec {
                seed: s,
                noise_hu: 40.0,
                fractures: vec![
                    "T11:crush:0.4".parse().unwrap(),
                    "T6:wedge:0.25".parse().unwrap(),
                ],
                ..base.clone()
            }),
        ),
        (
            "T1–L5, 1.25 mm",
            Box::new(|s| PhantomSpec {
                seed: s,
                last_vertebra: LastVertebra::L5,
                slices: 460,
                ..base.clone()
            }),
        ),
    ];
    println!("| phantoms | studies | vertebrae | found ≤ 3 mm | labelled | height MAE (mm) | not gradable | abstained |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut all = Tally::default();
    for (name, make) in &variants {
        let mut t = Tally::default();
        for s in 0..seeds {
            t.add(&evaluate(&det, &make(100 + s), verbose));
        }
        println!(
            "| {name} | {} | {} | {:.1} % | {:.1} % | {:.2} | {} | {} |",
            t.studies,
            t.total,
            100.0 * t.found_rate(),
            100.0 * t.label_rate(),
            t.height_mae(),
            t.not_gradable,
            t.abstained
        );
        all.add(&t);
    }
    println!(
        "| **all** | {} | {} | {:.1} % | {:.1} % | {:.2} | {} | {} |",
        all.studies,
        all.total,
        100.0 * all.found_rate(),
        100.0 * all.label_rate(),
        all.height_mae(),
        all.not_gradable,
        all.abstained
    );
}
