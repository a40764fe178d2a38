//! The preview shows stacked vertebrae and discs along the spine, and ribs lateral to it.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use spinescreen_phantom::preview::render_preview;
use spinescreen_phantom::write_preview_png;

#[test]
fn preview_png_shows_stacked_vertebrae_discs_and_ribs() {
    let ph = common::small(4, |_| {});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("preview.png");
    write_preview_png(&ph, &path).unwrap();
    // Decode the written file, not the in-memory image.
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w2, h2, data) = render_preview(&ph);
    assert_eq!((w, h), (w2, h2));
    assert_eq!(&buf[..w * h], &data[..]);

    let hdr = &ph.volume.header;
    let z_top = hdr.origin_mm[2] + (hdr.dims[2] - 1) as f64 * hdr.spacing_mm[2];
    let row_of = |z: f64| (z_top - z).round() as usize;
    let px = |r: usize, c: usize| buf[r * w + c];

    // Sagittal panel: walk down the column through the body centres. Endplates are bright
    // bands; between two bands lies either a disc (a short, dark gap) or a vertebral body's
    // trabecular interior (a long gap) — they must alternate, one disc per pair of neighbours.
    let vs = &ph.truth.vertebrae;
    let (first, last) = (&vs[0], &vs[vs.len() - 1]);
    let mut profile = Vec::new();
    for r in row_of(first.center_mm[2])..=row_of(last.center_mm[2]) {
        let z = z_top - r as f64;
        let v = vs
            .iter()
            .min_by(|a, b| {
                (a.center_mm[2] - z)
                    .abs()
                    .total_cmp(&(b.center_mm[2] - z).abs())
            })
            .unwrap();
        let c = (v.center_mm[1] - hdr.origin_mm[1]).round() as usize;
        profile.push(px(r, c));
    }
    let mut gaps = Vec::new();
    let mut in_band = false;
    let mut gap_start = None;
    for (i, &val) in profile.iter().enumerate() {
        if val > 200 {
            if !in_band {
                if let Some(s) = gap_start {
                    let g = &profile[s..i];
                    gaps.push((i - s, *g.iter().min().unwrap()));
                }
            }
            in_band = true;
        } else if val < 170 && in_band {
            in_band = false;
            gap_start = Some(i);
        }
    }
    let kinds: String = gaps
        .iter()
        .map(|&(len, _)| if len <= 8 { 'd' } else { 'B' })
        .collect();
    assert_eq!(
        kinds,
        "dB".repeat(vs.len() - 2) + "d",
        "gaps along the spine (d = disc, B = body): {gaps:?}"
    );
    for &(len, min) in &gaps {
        if len <= 8 {
            assert!(min < 130, "a disc gap should be dark: {gaps:?}");
        }
    }

    // Coronal panel: at the level of T6, bone (ribs) appears well lateral of the spine on both sides.
    let w_sag = (hdr.spacing_mm[1] * hdr.dims[1] as f64).round() as usize;
    let t6 = vs.iter().find(|v| v.label == "T6").unwrap();
    let c_spine = w_sag + (t6.center_mm[0] - hdr.origin_mm[0]).round() as usize;
    let band = |lo: usize, hi: usize| {
        let mut m = 0u8;
        for r in row_of(t6.center_mm[2] + 15.0)..=row_of(t6.center_mm[2] - 35.0) {
            for c in lo..hi {
                m = m.max(px(r, c));
            }
        }
        m
    };
    let left = band(c_spine + 60, c_spine + 110);
    let right = band(c_spine - 110, c_spine - 60);
    let soft = px(row_of(t6.center_mm[2]), c_spine + 180.min(w - c_spine - 1));
    assert!(
        left > 150 && right > 150,
        "ribs lateral to the spine: left {left}, right {right}"
    );
    assert!(
        soft < 120,
        "lateral soft tissue / air should be dark, got {soft}"
    );
}
