//! Developer aid: write the straightened image of a NIfTI CT to /tmp/straight.pgm and print the
//! discs and per-body measurements.
use spinescreen_ingest::read_nifti;

use spinescreen_inference::{classical, endplates, ClassicalConfig};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: debug_straight CT"))?;
    let v = read_nifti(std::path::Path::new(&path))?;
    let cfg = ClassicalConfig::default();
    let t = classical::trace(&v, &cfg).ok_or_else(|| anyhow::anyhow!("no trace"))?;
    let img = &t.image;
    println!(
        "straightened {} x {} (len {:.0} mm)",
        img.rows,
        img.cols,
        t.centreline.length()
    );
    println!(
        "discs: {:?}",
        t.discs
            .iter()
            .map(|d| format!("{d:.1}"))
            .collect::<Vec<_>>()
    );
    for w in t.discs.windows(2) {
        match endplates::measure(img, w[0], w[1], cfg.edge_bias_per_slice_mm * v.header.spacing_mm[2], &cfg) {
            Some(e) => println!(
                "  {:.1}-{:.1}: u {:.1}..{:.1} sup {:.1?} inf {:.1?} edge {:.0} found {:.2} schmorl {}",
                w[0], w[1], e.u_post, e.u_ant, e.s_sup, e.s_inf, e.edge_hu, e.found_fraction, e.schmorl
            ),
            None => println!("  {:.1}-{:.1}: not measured", w[0], w[1]),
        }
    }
    img.write_pgm(std::fs::File::create("/tmp/straight.pgm")?)?;
    Ok(())
}
