//! Developer aid: straightened image of a phantom to /tmp/straight.pgm, discs and truth.
use spinescreen_inference::{classical, ClassicalConfig};
use spinescreen_phantom::{generate, PhantomSpec};

fn main() -> anyhow::Result<()> {
    let osteo = std::env::args().any(|a| a == "osteo");
    let spec = PhantomSpec {
        seed: 100,
        matrix: 256,
        pixel_spacing_mm: Some(1.4),
        slices: 330,
        slice_thickness_mm: 1.25,
        osteoporotic: osteo,
        noise_hu: if osteo { 30.0 } else { 15.0 },
        ..Default::default()
    };
    let ph = generate(&spec)?;
    let cfg = ClassicalConfig::default();
    let t = classical::trace(&ph.volume, &cfg).ok_or_else(|| anyhow::anyhow!("no trace"))?;
    println!(
        "discs {:?}",
        t.discs
            .iter()
            .map(|d| format!("{d:.1}"))
            .collect::<Vec<_>>()
    );
    for v in &ph.truth.vertebrae {
        let (s, d) = t.centreline.project(v.keypoints_mm.superior_middle);
        let (s2, _) = t.centreline.project(v.keypoints_mm.inferior_middle);
        println!("{} sup {:.1} inf {:.1} (off {:.1})", v.label, s, s2, d);
    }
    let img = &t.image;
    img.write_pgm(std::fs::File::create("/tmp/straight.pgm")?)?;
    Ok(())
}
