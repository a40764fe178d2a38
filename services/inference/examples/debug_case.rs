//! Developer aid: regenerate a calibration case from its truth JSON (`options` = the phantom spec),
//! print the disc chain, each measured body and the truth endplates in arc length, then the full
//! detector's heights beside the truth's.
//! Usage: `debug_case /tmp/calib/case-005.truth.json [straight.pgm]` (the optional second argument
//! writes the straightened image, rows = arc length, columns = anterior offset).
use spinescreen_inference::{
    classical, endplates, geom, ClassicalConfig, ClassicalDetector, Detector,
};
use spinescreen_phantom::{generate, PhantomSpec};

fn main() -> anyhow::Result<()> {
    // `RUST_LOG=spinescreen_inference=debug` prints the sub-column endplate readings too.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: debug_case TRUTH_JSON"))?;
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let spec: PhantomSpec = serde_json::from_value(truth["options"].clone())?;
    let ph = generate(&spec)?;
    let cfg = ClassicalConfig::default();
    let t = classical::trace(&ph.volume, &cfg).ok_or_else(|| anyhow::anyhow!("no trace"))?;
    println!(
        "len {:.0} discs {:?}",
        t.centreline.length(),
        t.discs
            .iter()
            .map(|d| format!("{d:.1}"))
            .collect::<Vec<_>>()
    );
    let bias = cfg.edge_bias_per_slice_mm * ph.volume.header.spacing_mm[2].abs();
    for w in t.discs.windows(2) {
        match endplates::measure(&t.image, w[0], w[1], bias, &cfg) {
            Some(e) => println!(
                "  {:.1}-{:.1}: u {:.1}..{:.1} sup {:.1?} inf {:.1?} h {:.1?} schmorl {}",
                w[0],
                w[1],
                e.u_post,
                e.u_ant,
                e.s_sup,
                e.s_inf,
                [0, 1, 2].map(|c| e.s_inf[c] - e.s_sup[c]),
                e.schmorl
            ),
            None => println!("  {:.1}-{:.1}: not measured", w[0], w[1]),
        }
    }
    if std::env::var_os("DEBUG_CURVE").is_some() {
        for (s, f) in t.centreline.s.iter().zip(&t.centreline.frames).step_by(2) {
            println!(
                "curve s {s:6.1} p {:6.1} {:6.1} {:6.1} t {:+.2} {:+.2} {:+.2}",
                f.p[0], f.p[1], f.p[2], f.t[0], f.t[1], f.t[2]
            );
        }
    }
    for v in &ph.truth.vertebrae {
        let k = &v.keypoints_mm;
        let s = |p| t.centreline.project(p).0;
        let (sc, dist) = t.centreline.project(v.center_mm);
        let f = t.centreline.frame_at(sc);
        let tilt = geom::dot(f.t, v.cranial_dir)
            .clamp(-1.0, 1.0)
            .acos()
            .to_degrees();
        let off = geom::sub(v.center_mm, f.p);
        print!(
            "centre {dist:4.1} mm off the curve (anterior {:+.1}, left {:+.1}), tangent {tilt:4.1}° off its axis  ",
            geom::dot(off, f.a),
            geom::dot(off, f.l)
        );
        println!(
            "{:4} sup {:.1} {:.1} {:.1}  inf {:.1} {:.1} {:.1}  h {:.1} {:.1} {:.1} {}",
            v.label,
            s(k.superior_posterior),
            s(k.superior_middle),
            s(k.superior_anterior),
            s(k.inferior_posterior),
            s(k.inferior_middle),
            s(k.inferior_anterior),
            v.heights_mm.posterior,
            v.heights_mm.middle,
            v.heights_mm.anterior,
            v.deformity
        );
    }
    if let Some(out) = std::env::args().nth(2) {
        let img = &t.image;
        img.write_pgm(std::fs::File::create(out)?)?;
    }
    let det = ClassicalDetector::default().detect(&ph.volume);
    println!("detector: {:?} {:?}", det.status, det.reason);
    for v in &det.vertebrae {
        let h = v.keypoints_mm.heights();
        let truth = ph
            .truth
            .vertebrae
            .iter()
            .find(|t| geom::dist(t.center_mm, v.center_mm) <= 3.0);
        let t = truth.map_or([f64::NAN; 3], |t| {
            [
                t.heights_mm.posterior,
                t.heights_mm.middle,
                t.heights_mm.anterior,
            ]
        });
        println!(
            "{:4} h {:.1} {:.1} {:.1}  truth {:.1} {:.1} {:.1}  {:?}",
            v.label, h.posterior, h.middle, h.anterior, t[0], t[1], t[2], v.flags
        );
    }
    Ok(())
}
