//! Developer aid: per-slice canal candidates and the linked track of a NIfTI CT.
#[path = "../tests/support/nifti.rs"]
mod nifti;

use spinescreen_inference::{canal, grid, ClassicalConfig};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: debug_canal CT"))?;
    let v = nifti::read(std::path::Path::new(&path))?;
    let cfg = ClassicalConfig::default();
    let g = grid::coarse_grid(&v, cfg.coarse_mm).ok_or_else(|| anyhow::anyhow!("grid"))?;
    println!("grid {:?} origin {:?}", g.dims, g.origin);
    let mut all = Vec::new();
    for k in 0..g.dims[2] {
        let c = canal::candidates(&g, k, &cfg);
        let desc: Vec<String> = c
            .iter()
            .map(|c| format!("({:.0},{:.0} r{:.1} s{:.2})", c.x, c.y, c.radius, c.score))
            .collect();
        println!(
            "k{k:3} z{:6.1} {}",
            g.origin[2] + k as f64 * g.spacing,
            desc.join(" ")
        );
        all.extend(c);
    }
    if let Some(t) = canal::track(&g, &all, &cfg) {
        println!(
            "track k {}..{} gap {:.0} mm",
            t.k_start,
            t.k_start + t.points.len(),
            t.longest_gap_mm
        );
    }
    Ok(())
}
