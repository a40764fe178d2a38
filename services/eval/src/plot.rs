//! `roc.png`: the ROC curve, drawn on the rendering stage's raster with its font
//! (`spinescreen-canvas`): white background, light grid every 0.1, axes labelled 0 / 0.5 / 1
//! with the titles `1 − specificity` and `Sensitivity`, the chance diagonal (dashed grey), the
//! empirical curve (blue), the service's operating point (red disc) and the AUC in the lower
//! right.

use spinescreen_canvas::text::{line_height, text_width};
use spinescreen_canvas::{draw_plain_text, Direction, Rgb, RgbImage};

/// Image side, pixels.
pub const SIZE: u32 = 512;
/// Margin around the plot area, pixels (room for tick labels and axis titles).
pub const MARGIN: u32 = 56;

/// Colour of the curve.
pub const CURVE: Rgb = [31, 90, 200];
/// Colour of the operating point.
pub const OPERATING_POINT: Rgb = [220, 30, 30];
/// Background.
pub const BACKGROUND: Rgb = [255, 255, 255];

const GRID: Rgb = [225, 225, 225];
const CHANCE: Rgb = [150, 150, 150];
const FRAME: Rgb = [120, 120, 120];
const INK: Rgb = [0, 0, 0];

/// Tick labels, pixels.
const LABEL_PX: f32 = 13.0;
/// Axis titles, pixels.
const TITLE_PX: f32 = 15.0;
/// The AUC, pixels.
const AUC_PX: f32 = 22.0;

/// Pixel position of an ROC point (fpr, tpr) on a [`SIZE`]² image.
pub fn to_pixel(fpr: f64, tpr: f64) -> (f64, f64) {
    let span = (SIZE - 2 * MARGIN) as f64;
    (
        MARGIN as f64 + fpr.clamp(0.0, 1.0) * span,
        (SIZE - MARGIN) as f64 - tpr.clamp(0.0, 1.0) * span,
    )
}

/// [`to_pixel`] as the `[x, y]` the raster's line drawing takes.
fn at(fpr: f64, tpr: f64) -> [f64; 2] {
    let (x, y) = to_pixel(fpr, tpr);
    [x, y]
}

/// Draw the ROC plot: `curve` as (fpr, tpr) points, `operating_point` as (fpr, tpr), `auc`
/// printed when given.
pub fn draw_roc(
    curve: &[(f64, f64)],
    operating_point: Option<(f64, f64)>,
    auc: Option<f64>,
) -> RgbImage {
    let mut img = RgbImage::new(SIZE as usize, SIZE as usize, BACKGROUND);
    draw_grid_and_axes(&mut img);
    for w in curve.windows(2) {
        img.line(at(w[0].0, w[0].1), at(w[1].0, w[1].1), 3.0, CURVE);
    }
    if let Some((f, t)) = operating_point {
        // A zero-length line with round caps is a disc.
        let centre = at(f, t);
        img.line(centre, centre, 14.0, OPERATING_POINT);
    }
    draw_labels(&mut img);
    if let Some(a) = auc {
        let text = format!("AUC = {a:.3}");
        let (right, bottom) = to_pixel(1.0, 0.0);
        let x = right - 12.0 - text_width(&text, AUC_PX) as f64;
        let y = bottom - 12.0 - line_height(AUC_PX) as f64;
        let corner = (x as i64, y as i64);
        draw_plain_text(&mut img, &text, corner, AUC_PX, CURVE, Direction::Across);
    }
    img
}

/// Grid every 0.1, the chance diagonal, the frame and the ticks.
fn draw_grid_and_axes(img: &mut RgbImage) {
    for i in 1..10 {
        let v = i as f64 / 10.0;
        img.line(at(v, 0.0), at(v, 1.0), 1.0, GRID);
        img.line(at(0.0, v), at(1.0, v), 1.0, GRID);
    }
    dashed_line(img, at(0.0, 0.0), at(1.0, 1.0), 6.0, CHANCE);
    img.line(at(1.0, 0.0), at(1.0, 1.0), 1.0, FRAME);
    img.line(at(0.0, 1.0), at(1.0, 1.0), 1.0, FRAME);
    img.line(at(0.0, 0.0), at(1.0, 0.0), 2.0, INK);
    img.line(at(0.0, 0.0), at(0.0, 1.0), 2.0, INK);
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let len = if i % 5 == 0 { 10.0 } else { 5.0 };
        let [x, y] = at(v, 0.0);
        img.line([x, y], [x, y + len], 1.0, INK);
        let [x, y] = at(0.0, v);
        img.line([x, y], [x - len, y], 1.0, INK);
    }
}

/// A line of width 1 drawn in dashes and gaps of `dash` pixels each.
fn dashed_line(img: &mut RgbImage, a: [f64; 2], b: [f64; 2], dash: f64, c: Rgb) {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    if len <= 0.0 {
        return;
    }
    let mut s = 0.0;
    while s < len {
        let e = (s + dash).min(len);
        let p = |t: f64| [a[0] + dx * t / len, a[1] + dy * t / len];
        img.line(p(s), p(e), 1.0, c);
        s += 2.0 * dash;
    }
}

/// Tick labels 0 / 0.5 / 1 on both axes and the two axis titles.
fn draw_labels(img: &mut RgbImage) {
    let label_h = line_height(LABEL_PX) as f64;
    for (v, label) in [(0.0, "0"), (0.5, "0.5"), (1.0, "1")] {
        let w = text_width(label, LABEL_PX) as f64;
        let [x, y] = at(v, 0.0);
        let corner = ((x - w / 2.0) as i64, (y + 12.0) as i64);
        draw_plain_text(img, label, corner, LABEL_PX, INK, Direction::Across);
        let [x, y] = at(0.0, v);
        let (lx, ly) = (x - 13.0 - w, y - label_h / 2.0);
        let corner = (lx as i64, ly as i64);
        draw_plain_text(img, label, corner, LABEL_PX, INK, Direction::Across);
    }
    let x_title = "1 − specificity";
    let [mid_x, bottom] = at(0.5, 0.0);
    let w = text_width(x_title, TITLE_PX) as f64;
    let y = bottom + 14.0 + label_h;
    let corner = ((mid_x - w / 2.0) as i64, y as i64);
    draw_plain_text(img, x_title, corner, TITLE_PX, INK, Direction::Across);
    let y_title = "Sensitivity";
    let [_, mid_y] = at(0.0, 0.5);
    let w = text_width(y_title, TITLE_PX) as f64;
    let corner = (4, (mid_y + w / 2.0) as i64);
    draw_plain_text(img, y_title, corner, TITLE_PX, INK, Direction::Up);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_and_operating_point_are_drawn_where_they_belong() {
        let img = draw_roc(
            &[(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)],
            Some((0.1, 0.9)),
            Some(1.0),
        );
        let (x, y) = to_pixel(0.0, 0.5);
        assert_eq!(img.get(x as usize, y as usize), Some(CURVE));
        let (x, y) = to_pixel(0.1, 0.9);
        assert_eq!(img.get(x as usize, y as usize), Some(OPERATING_POINT));
        // Far from everything: white.
        let (x, y) = to_pixel(0.75, 0.25);
        assert_eq!(img.get(x as usize + 3, y as usize + 3), Some(BACKGROUND));
        let bytes = img.to_png().unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }

    #[test]
    fn labels_are_inked_in_the_margins() {
        let img = draw_roc(&[], None, Some(0.5));
        let ink = |x0: usize, x1: usize, y0: usize, y1: usize| {
            (y0..y1)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .filter(|&(x, y)| img.get(x, y).is_some_and(|p| p[0] < 128))
                .count()
        };
        let (m, s) = (MARGIN as usize, SIZE as usize);
        assert!(ink(m, s - m, s - m + 12, s) > 100, "x labels and title");
        assert!(ink(0, 24, m, s - m) > 50, "y title");
        assert!(ink(24, m - 4, m, s - m) > 20, "y labels");
        // The AUC, in the curve's colour, in the lower right of the plot.
        let auc = (s / 2..s - m)
            .flat_map(|y| (s / 2..s - m).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get(x, y) == Some(CURVE))
            .count();
        assert!(auc > 30, "{auc} AUC pixels");
    }
}
