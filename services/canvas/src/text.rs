//! Text: DejaVu Sans (Latin and Cyrillic; Bitstream Vera licence, see
//! `assets/LICENSE-DejaVu.txt`) rasterised with `ab_glyph`. [`draw_text`] puts a dark halo
//! behind the glyphs so burned-in text reads on bone, air and a dark panel alike;
//! [`draw_plain_text`] draws the glyphs alone, across or upward, for a light chart.

use crate::image::{Rgb, RgbImage, BLACK};
use ab_glyph::{point, Font, FontRef, GlyphId, PxScale, ScaleFont};
use std::sync::OnceLock;

/// The embedded font file.
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The embedded font, parsed once. `None` only if the embedded file were corrupt.
fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

/// Whether the embedded font parsed (the rendering stage checks it before drawing a frame).
pub fn font_available() -> bool {
    font().is_some()
}

/// Coverage (0–1) of a line of text rasterised at a pixel size; row-major, `width × height`,
/// top row at the font's ascent line.
#[derive(Debug, Clone, PartialEq)]
pub struct TextMask {
    /// Columns.
    pub width: usize,
    /// Rows (ascent − descent, rounded up).
    pub height: usize,
    /// Coverage per pixel.
    pub alpha: Vec<f32>,
}

impl TextMask {
    /// Number of pixels with coverage above one half (how much ink the text has).
    pub fn ink(&self) -> usize {
        self.alpha.iter().filter(|a| **a > 0.5).count()
    }
}

/// Each glyph of `text` with the caret position it starts at (kerning applied), and the caret
/// after the last glyph: the one layout rule of [`text_width`] and [`rasterize`].
fn layout<F: Font>(scaled: &ab_glyph::PxScaleFont<F>, text: &str) -> (Vec<(GlyphId, f32)>, f32) {
    let mut caret = 0.0;
    let mut last = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for ch in text.chars() {
        let id = scaled.glyph_id(ch);
        if let Some(prev) = last {
            caret += scaled.kern(prev, id);
        }
        glyphs.push((id, caret));
        caret += scaled.h_advance(id);
        last = Some(id);
    }
    (glyphs, caret)
}

/// Width in pixels of `text` at `size_px`.
pub fn text_width(text: &str, size_px: f32) -> f32 {
    let Some(font) = font() else { return 0.0 };
    layout(&font.as_scaled(PxScale::from(size_px)), text).1
}

/// Height in pixels of one line of text at `size_px`.
pub fn line_height(size_px: f32) -> f32 {
    match font() {
        Some(f) => {
            let s = f.as_scaled(PxScale::from(size_px));
            s.ascent() - s.descent()
        }
        None => size_px,
    }
}

/// Rasterise one line of text.
pub fn rasterize(text: &str, size_px: f32) -> TextMask {
    let width = text_width(text, size_px).ceil().max(1.0) as usize + 1;
    let height = line_height(size_px).ceil().max(1.0) as usize;
    let mut alpha = vec![0.0f32; width * height];
    let Some(font) = font() else {
        return TextMask {
            width,
            height,
            alpha,
        };
    };
    let scale = PxScale::from(size_px);
    let scaled = font.as_scaled(scale);
    for (id, caret) in layout(&scaled, text).0 {
        let glyph = id.with_scale_and_position(scale, point(caret, scaled.ascent()));
        if let Some(outlined) = font.outline_glyph(glyph) {
            let b = outlined.px_bounds();
            outlined.draw(|gx, gy, c| {
                let x = b.min.x as i64 + gx as i64;
                let y = b.min.y as i64 + gy as i64;
                if x >= 0 && y >= 0 && (x as usize) < width && (y as usize) < height {
                    let i = y as usize * width + x as usize;
                    alpha[i] = (alpha[i] + c).min(1.0);
                }
            });
        }
    }
    TextMask {
        width,
        height,
        alpha,
    }
}

/// Grow a mask by `r` pixels (maximum filter), for the halo behind the glyphs.
fn dilate(mask: &TextMask, r: usize) -> TextMask {
    let (w, h) = (mask.width + 2 * r, mask.height + 2 * r);
    let mut out = vec![0.0f32; w * h];
    for y in 0..mask.height {
        for x in 0..mask.width {
            let a = mask.alpha[y * mask.width + x];
            if a <= 0.0 {
                continue;
            }
            for oy in 0..=2 * r {
                for ox in 0..=2 * r {
                    let i = (y + oy) * w + x + ox;
                    out[i] = out[i].max(a);
                }
            }
        }
    }
    TextMask {
        width: w,
        height: h,
        alpha: out,
    }
}

/// Draw `text` with its top-left corner at `(x, y)` in `c`, over a dark halo; returns the
/// drawn `(width, height)` in pixels.
pub fn draw_text(
    img: &mut RgbImage,
    text: &str,
    x: i64,
    y: i64,
    size_px: f32,
    c: Rgb,
) -> (i64, i64) {
    let mask = rasterize(text, size_px);
    let r = if size_px >= 20.0 { 2 } else { 1 };
    let halo = dilate(&mask, r);
    let ri = r as i64;
    for hy in 0..halo.height {
        for hx in 0..halo.width {
            let a = halo.alpha[hy * halo.width + hx];
            if a > 0.0 {
                img.blend(x + hx as i64 - ri, y + hy as i64 - ri, BLACK, a * 0.9);
            }
        }
    }
    blend_mask(img, &mask, c, |mx, my| (x + mx, y + my));
    (mask.width as i64, mask.height as i64)
}

/// Which way a line of text runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Left to right, its top-left corner at `(x, y)`.
    Across,
    /// Bottom to top (turned 90° anticlockwise, as a vertical axis title): it starts at `y` and
    /// runs up, the glyphs' ascent side at column `x`.
    Up,
}

/// Draw `text` in `c` without a halo, running `direction` from `(x, y)`; returns the drawn
/// `(width, height)` in pixels.
pub fn draw_plain_text(
    img: &mut RgbImage,
    text: &str,
    (x, y): (i64, i64),
    size_px: f32,
    c: Rgb,
    direction: Direction,
) -> (i64, i64) {
    let mask = rasterize(text, size_px);
    let (w, h) = (mask.width as i64, mask.height as i64);
    match direction {
        Direction::Across => {
            blend_mask(img, &mask, c, |mx, my| (x + mx, y + my));
            (w, h)
        }
        Direction::Up => {
            blend_mask(img, &mask, c, |mx, my| (x + my, y - mx));
            (h, w)
        }
    }
}

/// Blend colour `c` through `mask`, each mask pixel `(mx, my)` going to `place(mx, my)`.
fn blend_mask(img: &mut RgbImage, mask: &TextMask, c: Rgb, place: impl Fn(i64, i64) -> (i64, i64)) {
    for my in 0..mask.height {
        for mx in 0..mask.width {
            let a = mask.alpha[my * mask.width + mx];
            if a > 0.0 {
                let (px, py) = place(mx as i64, my as i64);
                img.blend(px, py, c, a);
            }
        }
    }
}

/// Break `text` into lines no wider than `max_width` pixels, at spaces.
pub fn wrap(text: &str, size_px: f32, max_width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if !line.is_empty() && text_width(&candidate, size_px) > max_width {
            lines.push(std::mem::take(&mut line));
            line = word.to_string();
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const PANEL: Rgb = [18, 20, 26];
    const RED: Rgb = [255, 30, 30];
    const WHITE: Rgb = [255, 255, 255];

    #[test]
    fn cyrillic_glyphs_have_ink() {
        assert!(font_available());
        let ru = rasterize("Целевая патология не обнаружена", 16.0);
        assert!(ru.ink() > 200, "only {} inked pixels", ru.ink());
        // Every Cyrillic letter must come from the font, not the empty .notdef box.
        for ch in "ЦелвапоиягбнужЖЩЫЭЮ".chars() {
            assert!(
                rasterize(&ch.to_string(), 16.0).ink() > 5,
                "{ch} has no glyph"
            );
        }
    }

    #[test]
    fn wrap_respects_the_width() {
        let lines = wrap(
            "one two three four five six seven eight nine ten",
            14.0,
            80.0,
        );
        assert!(lines.len() > 2);
        for l in &lines {
            assert!(text_width(l, 14.0) <= 80.0 || !l.contains(' '));
        }
    }

    #[test]
    fn drawn_text_lands_where_asked() {
        let mut img = RgbImage::new(200, 40, PANEL);
        let (w, h) = draw_text(&mut img, "L1", 10, 5, 20.0, RED);
        assert!(w > 10 && h > 15);
        let red = (0..40)
            .flat_map(|y| (0..200).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get(x, y) == Some(RED))
            .collect::<Vec<_>>();
        assert!(!red.is_empty());
        assert!(red
            .iter()
            .all(|&(x, y)| (10..10 + w as usize).contains(&x) && (5..5 + h as usize).contains(&y)));
    }

    #[test]
    fn upward_text_is_taller_than_wide_and_plain_text_has_no_halo() {
        let mut img = RgbImage::new(60, 200, WHITE);
        let (w, h) = draw_plain_text(&mut img, "Sensitivity", (10, 190), 16.0, RED, Direction::Up);
        assert!(h > 2 * w, "{w} × {h}");
        let inked = |img: &RgbImage, x0: usize, x1: usize, y0: usize, y1: usize| {
            (y0..y1)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .filter(|&(x, y)| img.get(x, y) != Some(WHITE))
                .count()
        };
        assert!(inked(&img, 10, 10 + w as usize, (190 - h) as usize, 191) > 50);
        assert_eq!(inked(&img, 0, 10, 0, 200), 0, "ink left of the column");
        let mut img = RgbImage::new(200, 40, WHITE);
        draw_plain_text(&mut img, "AUC", (10, 5), 16.0, RED, Direction::Across);
        let dark = (0..40)
            .flat_map(|y| (0..200).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get(x, y).is_some_and(|p| p[1] < 20 && p[0] < 100))
            .count();
        assert_eq!(dark, 0, "a plain text has no dark halo");
    }
}
