//! Run the classical detector on a NIfTI CT and print what it found, with the reference label at
//! each detected centre when a label map is given:
//! `cargo run --release -p spinescreen-inference --example detect_nifti -- ct.nii.gz [labels.nii.gz]`
//! (`DETECTION_JSON=det.json` also writes the detection).

use spinescreen_ingest::read_nifti;

use spinescreen_inference::{geom, ClassicalConfig, ClassicalDetector, Detector};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    // `RUST_LOG=spinescreen_inference=debug` prints the detector's working (discs, endplates).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let ct = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: detect_nifti CT [LABELS]"))?;
    let volume = read_nifti(ct)?;
    let labels = args.get(1).map(|p| read_nifti(p)).transpose()?;
    let t = std::time::Instant::now();
    // Tunables may be overridden for experiments: CLASSICAL_CONFIG='{"rib_cut_mm": 50}'.
    let cfg: ClassicalConfig = match std::env::var("CLASSICAL_CONFIG") {
        Ok(json) => serde_json::from_str(&json)?,
        Err(_) => ClassicalConfig::default(),
    };
    let det = ClassicalDetector::new(cfg).detect(&volume);
    println!(
        "detected in {:.2} s: status {:?} {:?}",
        t.elapsed().as_secs_f64(),
        det.status,
        det.reason
    );
    for n in &det.notes {
        println!("note: {n}");
    }
    println!("label  ref   Ha    Hm    Hp   conf  flags");
    for v in &det.vertebrae {
        let k = &v.keypoints_mm;
        let ha = geom::dist(k.superior_anterior, k.inferior_anterior);
        let hm = geom::dist(k.superior_middle, k.inferior_middle);
        let hp = geom::dist(k.superior_posterior, k.inferior_posterior);
        let r = labels
            .as_ref()
            .and_then(|l| {
                let i = l.header.patient_to_index(v.center_mm);
                l.get(
                    i[0].round() as isize,
                    i[1].round() as isize,
                    i[2].round() as isize,
                )
            })
            .map(|x| x.to_string())
            .unwrap_or_default();
        println!(
            "{:5} {:>4} {:5.1} {:5.1} {:5.1} {:5.2} {:?} c={:.0?}",
            v.label, r, ha, hm, hp, v.confidence, v.flags, v.center_mm
        );
    }
    // DETECTION_JSON=path writes the whole detection (keypoints, centreline) for plotting.
    if let Ok(path) = std::env::var("DETECTION_JSON") {
        std::fs::write(path, serde_json::to_vec_pretty(&det)?)?;
    }
    Ok(())
}
