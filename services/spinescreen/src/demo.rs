//! `spinescreen demo --out OUT`: make a phantom chest CT with known fractures, analyse it on the
//! embedded pipeline, and compare what was found with the phantom's ground truth.

use crate::{analyze, config::AppConfig};
use anyhow::Context;
use spinescreen_phantom::{FractureSpec, FractureType, PhantomSpec};
use std::path::Path;
use std::time::Duration;

/// The demo study: a wedge fracture of L1 (Genant 3) and a biconcave T12 (Genant 2).
pub fn demo_spec(seed: u64) -> PhantomSpec {
    PhantomSpec {
        seed,
        fractures: vec![
            FractureSpec {
                label: "L1".into(),
                kind: FractureType::Wedge,
                fraction: 0.45,
            },
            FractureSpec {
                label: "T12".into(),
                kind: FractureType::Biconcave,
                fraction: 0.32,
            },
        ],
        ..PhantomSpec::default()
    }
}

/// Generate, analyse, print a comparison with the truth.
pub async fn demo(config: &AppConfig, out: &Path, seed: u64) -> anyhow::Result<()> {
    let study_dir = out.join("study");
    let spec = demo_spec(seed);
    println!(
        "generating a {}x{}x{} phantom chest CT (seed {seed}) in {}",
        spec.matrix,
        spec.matrix,
        spec.slices,
        study_dir.display()
    );
    let phantom = spinescreen_phantom::generate(&spec).context("generating the phantom")?;
    spinescreen_phantom::write_dicom_series(&phantom, &study_dir)
        .context("writing the phantom series")?;
    let opts = analyze::AnalyzeOptions {
        input: study_dir,
        out: out.to_path_buf(),
        store_dir: None,
        timeout: Duration::from_secs(390),
    };
    let analysis = analyze::analyze(config, &opts).await?;
    print!("{}", analyze::summary(&analysis.result));
    println!("\nground truth (phantom):");
    for v in &phantom.truth.vertebrae {
        if u8::from(v.genant_grade) > 0 {
            let found = analysis
                .result
                .vertebrae
                .iter()
                .find(|r| r.label == v.label);
            println!(
                "  {:<4} truth {:.0}% Genant {}  →  found {}",
                v.label,
                v.deformity * 100.0,
                u8::from(v.genant_grade),
                found.map_or("not measured".to_string(), |r| format!(
                    "{:.0}% Genant {}",
                    r.deformity * 100.0,
                    u8::from(r.genant_grade)
                ))
            );
        }
    }
    println!(
        "\noutputs in {}: result.json, sr.dcm, sc/*.dcm, preview.png",
        out.display()
    );
    Ok(())
}
