//! [`RgbImage`]: an 8-bit RGB raster with the few drawing operations the rendering overlays and
//! the eval ROC plot need (blended pixels, thick anti-aliased lines, filled rectangles) and PNG
//! encoding.

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Black: line borders and text halos.
pub const BLACK: Rgb = [0, 0, 0];

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `R G B` (PS3.3 C.7.6.3.1.3,
/// Planar Configuration 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// An image filled with one colour.
    pub fn new(width: usize, height: usize, fill: Rgb) -> Self {
        let mut data = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            data.extend_from_slice(&fill);
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// The pixel at `(x, y)`, or `None` outside the image.
    pub fn get(&self, x: usize, y: usize) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y * self.width + x) * 3;
        Some([self.data[i], self.data[i + 1], self.data[i + 2]])
    }

    /// Set the pixel at `(x, y)`; outside the image nothing happens.
    pub fn put(&mut self, x: i64, y: i64, c: Rgb) {
        self.blend(x, y, c, 1.0);
    }

    /// Blend `c` over the pixel at `(x, y)` with opacity `alpha` (0–1); outside, nothing.
    pub fn blend(&mut self, x: i64, y: i64, c: Rgb, alpha: f32) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let a = alpha.clamp(0.0, 1.0);
        if a <= 0.0 {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        for (px, target) in self.data[i..i + 3].iter_mut().zip(c) {
            let old = *px as f32;
            *px = (old + (target as f32 - old) * a).round() as u8;
        }
    }

    /// Fill the rectangle `[x, x+w) × [y, y+h)` (clipped).
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + w).min(self.width as i64);
        let y1 = (y + h).min(self.height as i64);
        for yy in y0..y1 {
            for xx in x0..x1 {
                let i = (yy as usize * self.width + xx as usize) * 3;
                self.data[i..i + 3].copy_from_slice(&c);
            }
        }
    }

    /// Outline of the rectangle `[x, x+w) × [y, y+h)`, one pixel wide.
    pub fn stroke_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        self.fill_rect(x, y, w, 1, c);
        self.fill_rect(x, y + h - 1, w, 1, c);
        self.fill_rect(x, y, 1, h, c);
        self.fill_rect(x + w - 1, y, 1, h, c);
    }

    /// Copy `src` with its top-left corner at `(x, y)` (clipped).
    pub fn paste(&mut self, src: &RgbImage, x: i64, y: i64) {
        for sy in 0..src.height {
            let ty = y + sy as i64;
            if ty < 0 || ty as usize >= self.height {
                continue;
            }
            for sx in 0..src.width {
                let tx = x + sx as i64;
                if tx < 0 || tx as usize >= self.width {
                    continue;
                }
                let s = (sy * src.width + sx) * 3;
                let t = (ty as usize * self.width + tx as usize) * 3;
                self.data[t..t + 3].copy_from_slice(&src.data[s..s + 3]);
            }
        }
    }

    /// An anti-aliased line of the given width in pixels, with round caps: each pixel's
    /// coverage is its distance to the segment, so thick lines stay smooth at any angle.
    pub fn line(&mut self, a: [f64; 2], b: [f64; 2], width: f64, c: Rgb) {
        if !(a.iter().chain(b.iter()).all(|v| v.is_finite())) {
            return;
        }
        let r = width / 2.0;
        let x0 = (a[0].min(b[0]) - r - 1.0).floor().max(0.0) as i64;
        let y0 = (a[1].min(b[1]) - r - 1.0).floor().max(0.0) as i64;
        let x1 = ((a[0].max(b[0]) + r + 1.0).ceil() as i64).min(self.width as i64 - 1);
        let y1 = ((a[1].max(b[1]) + r + 1.0).ceil() as i64).min(self.height as i64 - 1);
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len2 = dx * dx + dy * dy;
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = if len2 > 0.0 {
                    (((px - a[0]) * dx + (py - a[1]) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (qx, qy) = (a[0] + t * dx, a[1] + t * dy);
                let d = ((px - qx).powi(2) + (py - qy).powi(2)).sqrt();
                let coverage = (r + 0.5 - d).clamp(0.0, 1.0) as f32;
                if coverage > 0.0 {
                    self.blend(x, y, c, coverage);
                }
            }
        }
    }

    /// A line drawn twice: a dark border first, then the colour, so it reads on bone and air.
    pub fn outlined_line(&mut self, a: [f64; 2], b: [f64; 2], width: f64, c: Rgb) {
        self.line(a, b, width + 2.0, BLACK);
        self.line(a, b, width, c);
    }

    /// Scale by an integer factor (nearest neighbour), for crisp previews.
    pub fn scaled(&self, factor: usize) -> RgbImage {
        let f = factor.max(1);
        let mut out = RgbImage::new(self.width * f, self.height * f, BLACK);
        for y in 0..out.height {
            for x in 0..out.width {
                let s = ((y / f) * self.width + x / f) * 3;
                let t = (y * out.width + x) * 3;
                out.data[t..t + 3].copy_from_slice(&self.data[s..s + 3]);
            }
        }
        out
    }

    /// Encode as an 8-bit RGB PNG.
    pub fn to_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header()?;
            writer.write_image_data(&self.data)?;
            writer.finish()?;
        }
        Ok(out)
    }
}

/// Side-by-side concatenation (top-aligned, black fill), e.g. both frames in one preview.
pub fn hstack(images: &[&RgbImage], gap: usize) -> RgbImage {
    let width =
        images.iter().map(|i| i.width).sum::<usize>() + gap * images.len().saturating_sub(1);
    let height = images.iter().map(|i| i.height).max().unwrap_or(0);
    let mut out = RgbImage::new(width, height, BLACK);
    let mut x = 0;
    for img in images {
        out.paste(img, x as i64, 0);
        x += img.width + gap;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgb = [255, 30, 30];
    const GREEN: Rgb = [40, 220, 60];
    const WHITE: Rgb = [255, 255, 255];
    const YELLOW: Rgb = [255, 215, 0];

    #[test]
    fn thick_line_covers_its_axis_and_nothing_far_away() {
        let mut img = RgbImage::new(40, 40, BLACK);
        img.line([5.0, 20.5], [35.0, 20.5], 3.0, RED);
        assert_eq!(img.get(20, 20), Some(RED));
        assert_eq!(img.get(20, 21), Some(RED));
        assert_eq!(img.get(20, 10), Some(BLACK));
        assert_eq!(img.get(38, 20), Some(BLACK));
    }

    #[test]
    fn drawing_off_canvas_is_clipped_not_a_panic() {
        let mut img = RgbImage::new(10, 10, BLACK);
        img.line([-50.0, -50.0], [100.0, 100.0], 5.0, GREEN);
        img.fill_rect(-5, -5, 100, 3, WHITE);
        img.line([f64::NAN, 0.0], [1.0, 1.0], 1.0, WHITE);
        assert_eq!(img.get(5, 5), Some(GREEN));
    }

    #[test]
    fn png_round_trips_dimensions() {
        let img = RgbImage::new(7, 3, YELLOW);
        let bytes = img.to_png().unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = dec.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (7, 3));
    }
}
