//! A quick-look PNG of a phantom: left, the curved mid-sagittal plane through the spine's
//! centreline (stacked vertebrae, discs, canal); right, a coronal maximum-intensity projection
//! of the posterior half of the body (ribs, spine). Bone window (W 800, L 200, so discs stay darker than trabecular bone), 1 mm per pixel.

use crate::{Phantom, PhantomError};
use std::path::Path;

/// Window applied to the preview, HU.
const WINDOW: (f64, f64) = (200.0, 800.0);

fn window(hu: f64) -> u8 {
    let lo = WINDOW.0 - WINDOW.1 / 2.0;
    (((hu - lo) / WINDOW.1).clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Render the preview image: returns (width, height, 8-bit grey pixels, row-major, top = head).
pub fn render_preview(phantom: &Phantom) -> (usize, usize, Vec<u8>) {
    let vol = &phantom.volume;
    let h = &vol.header;
    let [nx, ny, nz] = h.dims;
    let fov_x = h.spacing_mm[0] * nx as f64;
    let fov_y = h.spacing_mm[1] * ny as f64;
    let len_z = h.spacing_mm[2] * nz as f64;
    let (w_sag, w_cor, rows) = (
        fov_y.round() as usize,
        fov_x.round() as usize,
        len_z.round() as usize,
    );
    let width = w_sag + w_cor;
    let mut img = vec![0u8; width * rows];
    // Centreline x per z from the truth's vertebra centres (linear interpolation).
    let centres: Vec<[f64; 3]> = phantom
        .truth
        .vertebrae
        .iter()
        .map(|v| v.center_mm)
        .collect();
    let x_at = |z: f64| -> f64 {
        if centres.is_empty() {
            return 0.0;
        }
        let mut best = centres[0][0];
        for w in centres.windows(2) {
            let (a, b) = (w[0], w[1]);
            if z <= a[2] && z >= b[2] {
                let f = (a[2] - z) / (a[2] - b[2]).max(1e-9);
                return a[0] + f * (b[0] - a[0]);
            }
        }
        if z < centres[centres.len() - 1][2] {
            best = centres[centres.len() - 1][0];
        }
        best
    };
    let y_spine = centres.iter().map(|c| c[1]).sum::<f64>() / centres.len().max(1) as f64;
    let z_top = h.origin_mm[2] + (nz as f64 - 1.0) * h.spacing_mm[2];
    for r in 0..rows {
        let z = z_top - r as f64;
        let xs = x_at(z);
        for c in 0..w_sag {
            let y = h.origin_mm[1] + c as f64;
            let v = vol.sample_patient([xs, y, z]).unwrap_or(-1000.0) as f64;
            img[r * width + c] = window(v);
        }
        for c in 0..w_cor {
            let x = h.origin_mm[0] + c as f64;
            let mut m = -1000.0f64;
            let mut y = y_spine - 25.0;
            while y < y_spine + 110.0 {
                if let Some(v) = vol.sample_patient([x, y, z]) {
                    m = m.max(v as f64);
                }
                y += 1.0;
            }
            img[r * width + w_sag + c] = window(m);
        }
    }
    (width, rows, img)
}

/// Write the preview PNG to `path`.
pub fn write_preview_png(phantom: &Phantom, path: &Path) -> Result<(), PhantomError> {
    let (w, h, data) = render_preview(phantom);
    let file = std::fs::File::create(path).map_err(|e| PhantomError::io(path, e))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| PhantomError::Png {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(&data).map_err(err)?;
    writer.finish().map_err(err)
}
