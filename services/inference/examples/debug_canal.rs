//! Developer aid: per-slice canal candidates, the linked track, the centreline and the ribs of a
//! NIfTI CT.
use spinescreen_ingest::read_nifti;

use spinescreen_inference::{canal, centreline, grid, labels, ClassicalConfig};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: debug_canal CT"))?;
    let v = read_nifti(std::path::Path::new(&path))?;
    // Tunables may be overridden for experiments: CLASSICAL_CONFIG='{"rib_cut_mm": 50}'.
    let cfg: ClassicalConfig = match std::env::var("CLASSICAL_CONFIG") {
        Ok(json) => serde_json::from_str(&json)?,
        Err(_) => ClassicalConfig::default(),
    };
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
        for (i, p) in t.points.iter().enumerate().rev().step_by(2) {
            println!(
                "  k{:3} canal ({:.0},{:.0}) r{:.1}{}",
                t.k_start + i,
                p.0,
                p.1,
                p.2,
                if p.3 { "" } else { " (interpolated)" }
            );
        }
        if let Some(cl) = centreline::build(&g, &t, &cfg) {
            println!(
                "centreline {:.0} mm, body coverage {:.2}",
                cl.length(),
                cl.body_coverage
            );
            let mut s = 0.0;
            while s <= cl.length() {
                let f = cl.frame_at(s);
                println!(
                    "  s{s:5.0} p ({:.0},{:.0},{:.0}) t ({:.2},{:.2},{:.2}) a ({:.2},{:.2},{:.2}) bone beside {:.2}",
                    f.p[0], f.p[1], f.p[2], f.t[0], f.t[1], f.t[2], f.a[0], f.a[1], f.a[2],
                    labels::lateral_bone_fraction(&g, &cl, s, cfg.sacrum_ala_hu)
                );
                s += 5.0;
            }
            let found = labels::find_ribs(&g, &t, &cl, &cfg);
            for r in found.ribs {
                println!("rib {r:?}");
            }
            println!(
                "unresolved bone beyond the rib cut at {:?}",
                found.unresolved
            );
        }
    }
    Ok(())
}
