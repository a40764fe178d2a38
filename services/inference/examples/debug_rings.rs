//! Developer aid: the rings found on each detected vertebra's centre slice, beside its radius.
//! Usage: `debug_rings /tmp/calib/case-024.truth.json`
use spinescreen_inference::{artefacts, ClassicalConfig, ClassicalDetector, Detector};
use spinescreen_phantom::{generate, PhantomSpec};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: debug_rings TRUTH_JSON"))?;
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let spec: PhantomSpec = serde_json::from_value(truth["options"].clone())?;
    let ph = generate(&spec)?;
    let cfg = ClassicalConfig::default();
    let det = ClassicalDetector::new(cfg.clone()).detect(&ph.volume);
    for v in &det.vertebrae {
        let (r_c, z, q) = artefacts::radius_of(&ph.volume, v.center_mm);
        let rings = artefacts::rings_on_slice(&ph.volume, z, cfg.ring_min_hu);
        let kp = &v.keypoints_mm;
        let radii: Vec<String> = [
            kp.superior_posterior,
            kp.inferior_posterior,
            kp.superior_anterior,
        ]
        .iter()
        .map(|p| {
            let (r, z, q) = artefacts::radius_of(&ph.volume, *p);
            format!("{r:.0}@{z}/{q}")
        })
        .collect();
        println!(
            "{} r_c {r_c:.0} z {z} q {q} kp {radii:?} flags {:?} rings {:?}",
            v.label,
            v.flags,
            rings
                .iter()
                .map(|r| format!(
                    "{:.0}mm {:.0}HU s{}+{}",
                    r.radius_mm, r.amplitude_hu, r.first_sector, r.sectors
                ))
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}
