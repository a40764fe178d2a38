//! Developer aid: the rings found on each detected vertebra's centre slice, beside its radius,
//! before and after the study's ring correction; with `--residue`, how far the corrected volume
//! is from the same phantom drawn without its rings, per vertebra.
//! Usage: `debug_rings /tmp/calib/case-024.truth.json [--residue]`
use spinescreen_inference::{
    artefacts, ring_correction::RingCorrection, ClassicalConfig, ClassicalDetector, Detector,
};
use spinescreen_phantom::{generate, spec::Confounder, PhantomSpec};
use spinescreen_proto::HuVolume;

fn rings_text(volume: &HuVolume, z: usize, min_hu: f64) -> Vec<String> {
    artefacts::rings_on_slice(volume, z, min_hu)
        .iter()
        .map(|r| {
            format!(
                "{:.0}mm {:.0}HU s{}+{}",
                r.radius_mm, r.amplitude_hu, r.first_sector, r.sectors
            )
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: debug_rings TRUTH_JSON [--residue]"))?;
    let residue = std::env::args().any(|a| a == "--residue");
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let spec: PhantomSpec = serde_json::from_value(truth["options"].clone())?;
    let ph = generate(&spec)?;
    let cfg = ClassicalConfig::default();
    let correction = RingCorrection::estimate(&ph.volume, cfg.ring_correction_min_hu);
    let corrected = correction.as_ref().map(|c| c.apply(&ph.volume));
    let corrected = corrected.as_ref().unwrap_or(&ph.volume);
    println!(
        "{}",
        correction.map_or("no ring correction".to_string(), |c| c.note())
    );
    let clean = if residue {
        let mut s = spec.clone();
        s.confounders.retain(|c| *c != Confounder::Ring);
        Some(generate(&s)?.volume)
    } else {
        None
    };
    let det = ClassicalDetector::new(cfg.clone()).detect(&ph.volume);
    for v in &det.vertebrae {
        let (r_c, z, q) = artefacts::radius_of(&ph.volume, v.center_mm);
        println!(
            "{} r_c {r_c:.0} z {z} q {q} flags {:?} rings {:?} after correction {:?}",
            v.label,
            v.flags,
            rings_text(&ph.volume, z, cfg.ring_min_hu),
            rings_text(corrected, z, cfg.ring_min_hu),
        );
        if let Some(clean) = &clean {
            // Largest and mean absolute difference over a 60 mm box about the body's centre.
            let h = &ph.volume.header;
            let c = h.patient_to_index(v.center_mm);
            let (rx, ry) = (30.0 / h.spacing_mm[0], 30.0 / h.spacing_mm[1]);
            let [nx, ny, _] = h.dims;
            let (mut worst, mut sum, mut n, mut before) = (0i32, 0i64, 0i64, 0i32);
            for y in (c[1] - ry).max(0.0) as usize..((c[1] + ry) as usize).min(ny) {
                for x in (c[0] - rx).max(0.0) as usize..((c[0] + rx) as usize).min(nx) {
                    let d =
                        i32::from(corrected.voxels[[z, y, x]]) - i32::from(clean.voxels[[z, y, x]]);
                    let d0 =
                        i32::from(ph.volume.voxels[[z, y, x]]) - i32::from(clean.voxels[[z, y, x]]);
                    worst = worst.max(d.abs());
                    before = before.max(d0.abs());
                    sum += i64::from(d.abs());
                    n += 1;
                }
            }
            // Mean signed residue per 1 mm of radius about the isocentre, where it is large.
            let (cx, cy) = ((nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0);
            let mut by_r = vec![(0i64, 0i64, 0i64); 400];
            for y in (c[1] - ry).max(0.0) as usize..((c[1] + ry) as usize).min(ny) {
                for x in (c[0] - rx).max(0.0) as usize..((c[0] + rx) as usize).min(nx) {
                    let r = ((x as f64 - cx) * h.spacing_mm[0])
                        .hypot((y as f64 - cy) * h.spacing_mm[1]);
                    let b = (r.round() as usize).min(399);
                    let cl = i64::from(clean.voxels[[z, y, x]]);
                    by_r[b].0 += i64::from(corrected.voxels[[z, y, x]]) - cl;
                    by_r[b].1 += i64::from(ph.volume.voxels[[z, y, x]]) - cl;
                    by_r[b].2 += 1;
                }
            }
            let big: Vec<String> = by_r
                .iter()
                .enumerate()
                .filter(|(_, b)| b.2 > 0 && (b.0.abs() > 15 * b.2 || b.1.abs() > 15 * b.2))
                .map(|(r, b)| format!("{r}:{}/{}", b.0 / b.2, b.1 / b.2))
                .collect();
            println!("    by radius (after/before): {big:?}");
            println!(
                "    residue: worst {worst} HU (before {before}), mean {:.1} HU",
                sum as f64 / n.max(1) as f64
            );
        }
    }
    Ok(())
}
