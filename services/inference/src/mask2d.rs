//! Binary image operations on one axial slice: 3 × 3 closing, connected components, holes.

/// A binary image, x fastest.
#[derive(Debug, Clone)]
pub struct Mask {
    /// Width (x).
    pub w: usize,
    /// Height (y).
    pub h: usize,
    /// Pixels.
    pub px: Vec<bool>,
}

impl Mask {
    /// Threshold a slice: `value > thr`.
    pub fn threshold(slice: &[f32], w: usize, h: usize, thr: f32) -> Self {
        Self {
            w,
            h,
            px: slice.iter().map(|&v| v > thr).collect(),
        }
    }

    fn dilate(&self) -> Self {
        let (w, h) = (self.w, self.h);
        let mut out = vec![false; w * h];
        for y in 0..h {
            for x in 0..w {
                if !self.px[y * w + x] {
                    continue;
                }
                for yy in y.saturating_sub(1)..(y + 2).min(h) {
                    for xx in x.saturating_sub(1)..(x + 2).min(w) {
                        out[yy * w + xx] = true;
                    }
                }
            }
        }
        Self { w, h, px: out }
    }

    fn erode(&self) -> Self {
        let (w, h) = (self.w, self.h);
        let mut out = vec![false; w * h];
        for y in 1..h.saturating_sub(1) {
            for x in 1..w.saturating_sub(1) {
                let mut all = true;
                'n: for yy in y - 1..y + 2 {
                    for xx in x - 1..x + 2 {
                        if !self.px[yy * w + xx] {
                            all = false;
                            break 'n;
                        }
                    }
                }
                out[y * w + x] = all;
            }
        }
        Self { w, h, px: out }
    }

    /// Morphological closing with a 3 × 3 square (bridges one-pixel gaps in a bony ring).
    pub fn close(&self) -> Self {
        self.dilate().erode()
    }
}

/// One connected region.
#[derive(Debug, Clone)]
pub struct Region {
    /// Pixel indices (y · w + x).
    pub pixels: Vec<usize>,
    /// Whether the region touches the image border.
    pub touches_border: bool,
}

impl Region {
    /// Centroid `(x, y)` in pixels.
    pub fn centroid(&self, w: usize) -> (f64, f64) {
        let n = self.pixels.len().max(1) as f64;
        let (mut sx, mut sy) = (0.0, 0.0);
        for &p in &self.pixels {
            sx += (p % w) as f64;
            sy += (p / w) as f64;
        }
        (sx / n, sy / n)
    }
}

/// 4-connected components of the pixels where `mask.px == value`.
pub fn components(mask: &Mask, value: bool) -> Vec<Region> {
    let (w, h) = (mask.w, mask.h);
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if seen[start] || mask.px[start] != value {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut pixels = Vec::new();
        let mut border = false;
        while let Some(p) = stack.pop() {
            pixels.push(p);
            let (x, y) = (p % w, p / w);
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                border = true;
            }
            let mut visit = |q: usize| {
                if !seen[q] && mask.px[q] == value {
                    seen[q] = true;
                    stack.push(q);
                }
            };
            if x > 0 {
                visit(p - 1);
            }
            if x + 1 < w {
                visit(p + 1);
            }
            if y > 0 {
                visit(p - w);
            }
            if y + 1 < h {
                visit(p + w);
            }
        }
        out.push(Region {
            pixels,
            touches_border: border,
        });
    }
    out
}

/// Holes of a mask: background components that do not touch the border.
pub fn holes(mask: &Mask) -> Vec<Region> {
    components(mask, false)
        .into_iter()
        .filter(|r| !r.touches_border)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_with_one_pixel_gap_encloses_a_hole_after_closing() {
        let (w, h) = (20, 20);
        let mut px = vec![false; w * h];
        for y in 0..h {
            for x in 0..w {
                let d = ((x as f64 - 10.0).powi(2) + (y as f64 - 10.0).powi(2)).sqrt();
                if (4.0..6.0).contains(&d) && !(x == 10 && y < 10) {
                    px[y * w + x] = true;
                }
            }
        }
        let m = Mask { w, h, px };
        assert!(holes(&m).is_empty(), "open ring has no hole");
        let hs = holes(&m.close());
        assert_eq!(hs.len(), 1);
        let (cx, cy) = hs[0].centroid(w);
        assert!((cx - 10.0).abs() < 1.0 && (cy - 10.0).abs() < 1.5);
    }
}
