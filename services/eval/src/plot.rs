//! `roc.png`: the ROC curve drawn with plain line rasterization and a built-in 5×7 bitmap font
//! (no font files): white background, light grid every 0.1, axes labelled 0 / 0.5 / 1 with the
//! titles `1 - SPECIFICITY` and `SENSITIVITY`, the chance diagonal (dashed grey), the empirical
//! curve (blue), the service's operating point (red disc) and the AUC in the lower right.

use std::io::Write;

/// Image side, pixels.
pub const SIZE: u32 = 512;
/// Margin around the plot area, pixels.
pub const MARGIN: u32 = 40;

type Rgb = [u8; 3];

/// An RGB canvas.
pub struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; (width * height * 3) as usize],
        }
    }

    /// Colour of a pixel (for tests), `None` outside.
    pub fn pixel(&self, x: u32, y: u32) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = ((y * self.width + x) * 3) as usize;
        Some([self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]])
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let i = ((y as u32 * self.width + x as u32) * 3) as usize;
        self.pixels[i..i + 3].copy_from_slice(&c);
    }

    /// Bresenham line of the given thickness (square pen); every `dash`-th run of 6 px is skipped
    /// when `dashed`.
    pub fn line(&mut self, from: (f64, f64), to: (f64, f64), c: Rgb, thickness: i64, dashed: bool) {
        let (mut x0, mut y0) = (from.0.round() as i64, from.1.round() as i64);
        let (x1, y1) = (to.0.round() as i64, to.1.round() as i64);
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let mut err = dx + dy;
        let mut step = 0i64;
        let r = thickness / 2;
        loop {
            if !dashed || (step / 6) % 2 == 0 {
                for oy in -r..=(thickness - 1 - r) {
                    for ox in -r..=(thickness - 1 - r) {
                        self.set(x0 + ox, y0 + oy, c);
                    }
                }
            }
            if x0 == x1 && y0 == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x0 += sx;
            }
            if e2 <= dx {
                err += dx;
                y0 += sy;
            }
            step += 1;
        }
    }

    /// Text in the built-in 5×7 font (upper case, digits, `.`, `-`, `=`, space; other characters
    /// are skipped), `scale` pixels per font pixel, top-left at `(x, y)`; `vertical` writes
    /// bottom-to-top (rotated 90° anticlockwise).
    pub fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: Rgb, vertical: bool) {
        let advance = 6 * scale;
        for (i, ch) in s.chars().enumerate() {
            let Some(rows) = glyph(ch) else { continue };
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0b10000 >> col) == 0 {
                        continue;
                    }
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (gx, gy) = (col * scale + dx, r as i64 * scale + dy);
                            if vertical {
                                self.set(x + gy, y - i as i64 * advance - gx, c);
                            } else {
                                self.set(x + i as i64 * advance + gx, y + gy, c);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Filled disc.
    pub fn disc(&mut self, centre: (f64, f64), radius: f64, c: Rgb) {
        let r = radius.ceil() as i64;
        let (cx, cy) = (centre.0.round() as i64, centre.1.round() as i64);
        for y in -r..=r {
            for x in -r..=r {
                if ((x * x + y * y) as f64) <= radius * radius {
                    self.set(cx + x, cy + y, c);
                }
            }
        }
    }

    /// Encode as an 8-bit RGB PNG.
    pub fn write_png<W: Write>(&self, out: W) -> Result<(), png::EncodingError> {
        let mut enc = png::Encoder::new(out, self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.pixels)?;
        w.finish()
    }
}

/// 5×7 glyphs, one byte per row, the five low bits left to right.
fn glyph(c: char) -> Option<[u8; 7]> {
    Some(match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        ' ' => [0; 7],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        _ => return None,
    })
}

/// Pixel position of an ROC point (fpr, tpr) on a [`SIZE`]² canvas.
pub fn to_pixel(fpr: f64, tpr: f64) -> (f64, f64) {
    let span = (SIZE - 2 * MARGIN) as f64;
    (
        MARGIN as f64 + fpr.clamp(0.0, 1.0) * span,
        (SIZE - MARGIN) as f64 - tpr.clamp(0.0, 1.0) * span,
    )
}

/// Colour of the curve.
pub const CURVE: Rgb = [31, 90, 200];
/// Colour of the operating point.
pub const OPERATING_POINT: Rgb = [220, 30, 30];

/// Draw the ROC plot: `curve` as (fpr, tpr) points, `operating_point` as (fpr, tpr), `auc`
/// printed when given.
pub fn draw_roc(
    curve: &[(f64, f64)],
    operating_point: Option<(f64, f64)>,
    auc: Option<f64>,
) -> Canvas {
    let mut c = Canvas::new(SIZE, SIZE);
    let grid = [225, 225, 225];
    for i in 1..10 {
        let v = i as f64 / 10.0;
        c.line(to_pixel(v, 0.0), to_pixel(v, 1.0), grid, 1, false);
        c.line(to_pixel(0.0, v), to_pixel(1.0, v), grid, 1, false);
    }
    c.line(
        to_pixel(0.0, 0.0),
        to_pixel(1.0, 1.0),
        [150, 150, 150],
        1,
        true,
    );
    let black = [0, 0, 0];
    c.line(to_pixel(0.0, 0.0), to_pixel(1.0, 0.0), black, 2, false);
    c.line(to_pixel(0.0, 0.0), to_pixel(0.0, 1.0), black, 2, false);
    c.line(
        to_pixel(1.0, 0.0),
        to_pixel(1.0, 1.0),
        [120, 120, 120],
        1,
        false,
    );
    c.line(
        to_pixel(0.0, 1.0),
        to_pixel(1.0, 1.0),
        [120, 120, 120],
        1,
        false,
    );
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let (x, y) = to_pixel(v, 0.0);
        let len = if i % 5 == 0 { 10.0 } else { 5.0 };
        c.line((x, y), (x, y + len), black, 1, false);
        let (x, y) = to_pixel(0.0, v);
        c.line((x, y), (x - len, y), black, 1, false);
    }
    for w in curve.windows(2) {
        c.line(
            to_pixel(w[0].0, w[0].1),
            to_pixel(w[1].0, w[1].1),
            CURVE,
            3,
            false,
        );
    }
    if let Some((f, t)) = operating_point {
        c.disc(to_pixel(f, t), 7.0, OPERATING_POINT);
    }
    let m = MARGIN as i64;
    let bottom = (SIZE - MARGIN) as i64;
    let right = (SIZE - MARGIN) as i64;
    let mid = (m + right) / 2;
    c.text(m - 5, bottom + 14, "0", 1, black, false);
    c.text(mid - 8, bottom + 14, "0.5", 1, black, false);
    c.text(right - 2, bottom + 14, "1", 1, black, false);
    c.text(mid - 45, bottom + 26, "1 - SPECIFICITY", 1, black, false);
    c.text(m - 22, bottom - 3, "0", 1, black, false);
    c.text(m - 29, (m + bottom) / 2 - 3, "0.5", 1, black, false);
    c.text(m - 22, m - 3, "1", 1, black, false);
    c.text(2, (m + bottom) / 2 + 33, "SENSITIVITY", 1, black, true);
    if let Some(a) = auc {
        c.text(
            right - 130,
            bottom - 30,
            &format!("AUC = {a:.3}"),
            2,
            CURVE,
            false,
        );
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_and_operating_point_are_drawn_where_they_belong() {
        let c = draw_roc(
            &[(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)],
            Some((0.1, 0.9)),
            Some(1.0),
        );
        let (x, y) = to_pixel(0.0, 0.5);
        assert_eq!(c.pixel(x as u32, y as u32), Some(CURVE));
        let (x, y) = to_pixel(0.1, 0.9);
        assert_eq!(c.pixel(x as u32, y as u32), Some(OPERATING_POINT));
        // Far from everything: white.
        let (x, y) = to_pixel(0.75, 0.25);
        assert_eq!(c.pixel(x as u32 + 3, y as u32 + 3), Some([255, 255, 255]));
        let mut bytes = vec![];
        c.write_png(&mut bytes).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
