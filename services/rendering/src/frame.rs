//! Frame composition: the reformat on the left, a table of vertebrae on the right, a header with
//! the service and the finding, a footer with the legend and the intended-use sentence; and the
//! text-only frame for studies that were not graded.

use crate::canvas::{colour, Rgb, RgbImage};
use crate::config::RenderingConfig;
use crate::reformat::{Reformat, View};
use crate::strings::Strings;
use crate::text::{draw_text, line_height, text_width, wrap};
use spinescreen_proto::{GenantGrade, StudyResult, VertebraFlag, VertebraLevel, VertebraResult};

/// Frame width, pixels.
pub const FRAME_WIDTH: usize = 1024;
/// Frame height, pixels.
pub const FRAME_HEIGHT: usize = 768;
/// First image row of the reformat area.
const AREA_TOP: usize = 76;
/// Rows available to the reformat.
pub const AREA_ROWS: usize = FRAME_HEIGHT - AREA_TOP - 76;
/// Left margin of the reformat.
const AREA_LEFT: usize = 12;
/// Widest the reformat may be, leaving room for the table.
pub const AREA_MAX_COLUMNS: usize = 560;

const TITLE_PX: f32 = 17.0;
const SUMMARY_PX: f32 = 22.0;
const LABEL_PX: f32 = 18.0;
const TABLE_PX: f32 = 17.0;
const FOOTER_PX: f32 = 16.0;

/// What a frame shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Curved sagittal reformat with overlays.
    Sagittal,
    /// Curved coronal reformat with overlays.
    Coronal,
    /// Text only: why the study was not graded.
    Notice,
}

/// A string drawn into a frame, where and how (for tests and for auditing what was burned in).
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnText {
    /// Frame index.
    pub frame: usize,
    /// The text.
    pub text: String,
    /// Left edge, pixels.
    pub x: i64,
    /// Top edge, pixels.
    pub y: i64,
    /// Font size, pixels.
    pub size_px: f32,
    /// Colour.
    pub colour: Rgb,
}

/// A vertebra outline drawn into a frame, in frame pixel coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnOutline {
    /// Frame index.
    pub frame: usize,
    /// Vertebra label.
    pub label: VertebraLevel,
    /// Colour used (by grade).
    pub colour: Rgb,
    /// Closed polygon (sagittal: the six keypoints) or two endplate ticks (coronal), `[x, y]`.
    pub points: Vec<[f64; 2]>,
}

/// One frame being drawn, recording what goes into it.
pub struct Painter {
    /// The image.
    pub image: RgbImage,
    frame: usize,
    /// Texts drawn so far.
    pub texts: Vec<DrawnText>,
    /// Outlines drawn so far.
    pub outlines: Vec<DrawnOutline>,
}

impl Painter {
    fn new(frame: usize) -> Self {
        Self {
            image: RgbImage::new(FRAME_WIDTH, FRAME_HEIGHT, colour::PANEL),
            frame,
            texts: Vec::new(),
            outlines: Vec::new(),
        }
    }

    fn text(&mut self, text: &str, x: i64, y: i64, size_px: f32, c: Rgb) -> (i64, i64) {
        self.texts.push(DrawnText {
            frame: self.frame,
            text: text.to_string(),
            x,
            y,
            size_px,
            colour: c,
        });
        draw_text(&mut self.image, text, x, y, size_px, c)
    }
}

/// The colour of a vertebra: grade 0–1 green, 2 yellow, 3 red; grey if not gradable.
pub fn grade_colour(v: &VertebraResult) -> Rgb {
    if is_not_gradable(v) {
        return colour::GREY;
    }
    match v.genant_grade {
        GenantGrade::Normal | GenantGrade::Mild => colour::GREEN,
        GenantGrade::Moderate => colour::YELLOW,
        GenantGrade::Severe => colour::RED,
    }
}

fn is_not_gradable(v: &VertebraResult) -> bool {
    v.flags.contains(&VertebraFlag::NotGradable)
}

/// Vertebrae graded 2 or 3 (and gradable), cranial first.
pub fn positives(result: &StudyResult) -> Vec<&VertebraResult> {
    result
        .vertebrae
        .iter()
        .filter(|v| !is_not_gradable(v) && v.genant_grade >= GenantGrade::Moderate)
        .collect()
}

/// "Target pathology not detected", naming the levels assessed when some were not gradable: a
/// negative finding holds only for those.
pub fn not_detected_line(result: &StudyResult, s: &Strings) -> String {
    let assessed: Vec<VertebraLevel> = result
        .vertebrae
        .iter()
        .filter(|v| !is_not_gradable(v))
        .map(|v| v.label)
        .collect();
    if assessed.is_empty() || assessed.len() == result.vertebrae.len() {
        return s.not_detected.to_string();
    }
    format!(
        "{} ({}: {})",
        s.not_detected,
        s.assessed,
        VertebraLevel::ranges(&assessed).join(", ")
    )
}

fn header(p: &mut Painter, result: &StudyResult, title: &str, cfg: &RenderingConfig, s: &Strings) {
    p.image
        .fill_rect(0, 0, FRAME_WIDTH as i64, AREA_TOP as i64 - 8, colour::BLACK);
    let line = format!(
        "{} {}  ·  {title}  ·  {}  ·  W {:.0} / L {:.0}",
        result.service.name,
        result.service.version,
        s.slab_description(cfg.slab_mm, cfg.projection),
        cfg.window_width,
        cfg.window_center
    );
    p.text(&line, 12, 8, TITLE_PX, colour::LIGHT);
    let pos = positives(result);
    if pos.is_empty() {
        p.text(
            &not_detected_line(result, s),
            12,
            34,
            SUMMARY_PX,
            colour::GREEN,
        );
    } else {
        let list = pos
            .iter()
            .map(|v| {
                format!(
                    "{} (Genant {}, {:.0} %)",
                    v.label,
                    v.genant_grade as u8,
                    v.deformity * 100.0
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let c = if pos.iter().any(|v| v.genant_grade == GenantGrade::Severe) {
            colour::RED
        } else {
            colour::YELLOW
        };
        p.text(&format!("{}: {list}", s.suspected), 12, 34, SUMMARY_PX, c);
    }
}

fn footer(p: &mut Painter, result: Option<&StudyResult>, s: &Strings) {
    let top = (FRAME_HEIGHT - 66) as i64;
    p.image
        .fill_rect(0, top, FRAME_WIDTH as i64, 66, colour::BLACK);
    if let Some(result) = result {
        let mut x = 12i64;
        let y = top + 8;
        for (label, c) in
            s.legend
                .iter()
                .zip([colour::GREEN, colour::YELLOW, colour::RED, colour::GREY])
        {
            p.image.fill_rect(x, y + 2, 16, 14, c);
            p.image.stroke_rect(x, y + 2, 16, 14, colour::LIGHT);
            let (w, _) = p.text(label, x + 22, y, FOOTER_PX, colour::LIGHT);
            x += 22 + w + 22;
        }
        if let Some(bd) = &result.bone_density {
            let line = format!("{} {}: {:.0} HU", s.trabecular, bd.level, bd.hu);
            p.text(&line, x + 10, y, FOOTER_PX, colour::LIGHT);
        }
    }
    p.text(s.disclaimer, 12, top + 36, FOOTER_PX + 1.0, colour::WHITE);
}

/// Paint the windowed grey reformat into the frame at the reformat area.
fn paste_grey(p: &mut Painter, r: &Reformat) -> (i64, i64) {
    let (w, h) = (r.plane.columns, r.plane.height());
    let mut img = RgbImage::new(w, h, colour::BLACK);
    for (i, g) in r.grey.iter().enumerate() {
        img.data[i * 3..i * 3 + 3].copy_from_slice(&[*g, *g, *g]);
    }
    let ox = AREA_LEFT as i64;
    // Centre short spines vertically in the area.
    let oy = AREA_TOP as i64 + (AREA_ROWS.saturating_sub(h) / 2) as i64;
    p.image.paste(&img, ox, oy);
    p.image
        .stroke_rect(ox - 1, oy - 1, w as i64 + 2, h as i64 + 2, [70, 70, 80]);
    (ox, oy)
}

/// Orientation letters at the left and right image edges, and a 10 mm scale bar.
fn orientation_and_scale(p: &mut Painter, r: &Reformat, ox: i64, oy: i64, s: &Strings) {
    let (w, h) = (r.plane.columns as i64, r.plane.height() as i64);
    let (left, right) = match r.plane.view {
        View::Sagittal => (s.orientation[0], s.orientation[1]),
        View::Coronal => (s.orientation[2], s.orientation[3]),
    };
    let mid = oy + h / 2 - 10;
    p.text(left, ox + 4, mid, LABEL_PX, colour::LIGHT);
    let rw = text_width(right, LABEL_PX) as i64;
    p.text(right, ox + w - rw - 5, mid, LABEL_PX, colour::LIGHT);
    let bar = 10.0 / r.plane.pixel_mm;
    let y = (oy + h - 10) as f64;
    let x0 = (ox + 8) as f64;
    p.image
        .outlined_line([x0, y], [x0 + bar, y], 2.0, colour::WHITE);
    p.text(
        &format!("10 {}", s.mm),
        (x0 + bar) as i64 + 6,
        y as i64 - 10,
        13.0,
        colour::WHITE,
    );
}

/// Table rows placed at their vertebra's height, pushed apart so they never overlap.
fn place_rows(desired: &[f64], row_h: f64, top: f64, bottom: f64) -> Vec<f64> {
    let mut ys: Vec<f64> = Vec::with_capacity(desired.len());
    for &d in desired {
        let min = ys.last().map_or(top, |prev| prev + row_h);
        ys.push((d - row_h / 2.0).max(min));
    }
    // If the last rows ran off the bottom, push back up.
    let mut max = bottom - row_h;
    for y in ys.iter_mut().rev() {
        if *y > max {
            *y = max;
        }
        max = *y - row_h;
    }
    ys
}

/// The vertebra table, each row joined by a leader to its vertebra's level on the image.
fn table(
    p: &mut Painter,
    result: &StudyResult,
    anchors: &[(usize, f64)],
    image_right: i64,
    s: &Strings,
) {
    let x0 = image_right + 36;
    let top = AREA_TOP as f64;
    p.text(
        s.table_heading,
        x0,
        AREA_TOP as i64 - 4,
        TABLE_PX,
        colour::LIGHT,
    );
    let row_h = (line_height(TABLE_PX) as f64 + 3.0).ceil();
    let desired: Vec<f64> = anchors.iter().map(|a| a.1).collect();
    let ys = place_rows(
        &desired,
        row_h,
        top + row_h + 2.0,
        (FRAME_HEIGHT - 70) as f64,
    );
    let label_w = text_width(
        s.table_heading.split("  ").next().unwrap_or("Level"),
        TABLE_PX,
    ) + 14.0;
    let cols = [0.0, label_w, label_w + 56.0, label_w + 130.0];
    for ((i, anchor_y), y) in anchors.iter().zip(ys) {
        let v = &result.vertebrae[*i];
        let c = grade_colour(v);
        let text_mid = y + row_h / 2.0;
        p.image.line(
            [image_right as f64 + 3.0, *anchor_y],
            [x0 as f64 - 6.0, text_mid],
            1.2,
            c,
        );
        let yi = y as i64;
        p.text(v.label.as_str(), x0 + cols[0] as i64, yi, TABLE_PX, c);
        let grade = if is_not_gradable(v) {
            "—".to_string()
        } else {
            format!("{}", v.genant_grade as u8)
        };
        p.text(&grade, x0 + cols[1] as i64, yi, TABLE_PX, c);
        p.text(
            &format!("{:.0} %", v.deformity * 100.0),
            x0 + cols[2] as i64,
            yi,
            TABLE_PX,
            c,
        );
        let h = v.heights_mm;
        let heights = format!("{:.1} / {:.1} / {:.1}", h.anterior, h.middle, h.posterior);
        p.text(&heights, x0 + cols[3] as i64, yi, TABLE_PX, colour::LIGHT);
    }
}

fn finite2(p: [f64; 2]) -> bool {
    p[0].is_finite() && p[1].is_finite()
}

/// A reformat frame (sagittal or coronal) with every overlay.
pub fn reformat_frame(
    index: usize,
    r: &Reformat,
    result: &StudyResult,
    cfg: &RenderingConfig,
) -> Painter {
    let s = Strings::for_language(cfg.language);
    let mut p = Painter::new(index);
    let title = match r.plane.view {
        View::Sagittal => s.sagittal_title,
        View::Coronal => s.coronal_title,
    };
    header(&mut p, result, title, cfg, s);
    let (ox, oy) = paste_grey(&mut p, r);
    let to_frame = |q: [f64; 2]| [q[0] + ox as f64, q[1] + oy as f64];
    let project = |pt| r.plane.project(pt).map(to_frame).filter(|q| finite2(*q));
    let image_right = ox + r.plane.columns as i64;
    let (img_top, img_bottom) = (oy as f64, (oy + r.plane.height() as i64) as f64);
    let mm = 1.0 / r.plane.pixel_mm;
    let mut anchors = Vec::new();
    for (i, v) in result.vertebrae.iter().enumerate() {
        let c = grade_colour(v);
        let k = &v.keypoints_mm;
        let Some(centre) = project(v.center_mm) else {
            continue;
        };
        if centre[1] < img_top - 5.0 || centre[1] > img_bottom + 5.0 {
            continue;
        }
        let severe = v.genant_grade >= GenantGrade::Moderate && !is_not_gradable(v);
        let label_px = if severe { LABEL_PX + 4.0 } else { LABEL_PX };
        let label_h = line_height(label_px) as f64;
        let label_w = text_width(v.label.as_str(), label_px) as f64;
        match r.plane.view {
            View::Sagittal => {
                let poly: Option<Vec<[f64; 2]>> = [
                    k.superior_anterior,
                    k.superior_middle,
                    k.superior_posterior,
                    k.inferior_posterior,
                    k.inferior_middle,
                    k.inferior_anterior,
                ]
                .iter()
                .map(|pt| project(*pt))
                .collect();
                let Some(poly) = poly else { continue };
                let width = if severe { 2.5 } else { 2.0 };
                for j in 0..poly.len() {
                    p.image.line(poly[j], poly[(j + 1) % poly.len()], width, c);
                }
                // Middle height, thin.
                p.image.line(poly[1], poly[4], 1.0, c);
                let anterior_x = poly[0][0].min(poly[5][0]);
                let x = (anterior_x - 8.0 - label_w).max(ox as f64 + 2.0);
                let y = (poly[0][1] + poly[5][1]) / 2.0 - label_h / 2.0;
                p.text(v.label.as_str(), x as i64, y as i64, label_px, c);
                if severe {
                    // The height loss under the label, where the eye already is.
                    let loss = format!("{:.0} %", v.deformity * 100.0);
                    let lw = text_width(&loss, LABEL_PX) as f64;
                    let lx = (anterior_x - 8.0 - lw).max(ox as f64 + 2.0);
                    p.text(&loss, lx as i64, (y + label_h) as i64, LABEL_PX, c);
                }
                p.outlines.push(DrawnOutline {
                    frame: index,
                    label: v.label,
                    colour: c,
                    points: poly,
                });
            }
            View::Coronal => {
                let (Some(sup), Some(inf)) =
                    (project(k.superior_middle), project(k.inferior_middle))
                else {
                    continue;
                };
                let half = 18.0 * mm;
                let ticks = vec![
                    [centre[0] - half, sup[1]],
                    [centre[0] + half, sup[1]],
                    [centre[0] + half, inf[1]],
                    [centre[0] - half, inf[1]],
                ];
                p.image.line(ticks[0], ticks[1], 2.0, c);
                p.image.line(ticks[2], ticks[3], 2.0, c);
                let x = (centre[0] - half - 8.0 - label_w).max(ox as f64 + 2.0);
                p.text(
                    v.label.as_str(),
                    x as i64,
                    (centre[1] - label_h / 2.0) as i64,
                    label_px,
                    c,
                );
                p.outlines.push(DrawnOutline {
                    frame: index,
                    label: v.label,
                    colour: c,
                    points: ticks,
                });
            }
        }
        anchors.push((i, centre[1].clamp(img_top, img_bottom)));
    }
    anchors.sort_by(|a, b| a.1.total_cmp(&b.1));
    orientation_and_scale(&mut p, r, ox, oy, s);
    table(&mut p, result, &anchors, image_right, s);
    footer(&mut p, Some(result), s);
    p
}

/// The text-only frame for a study that was not graded: the status, the reason code and text.
pub fn notice_frame(
    index: usize,
    result: &StudyResult,
    fallback_reason: Option<&str>,
    cfg: &RenderingConfig,
) -> Painter {
    let s = Strings::for_language(cfg.language);
    let mut p = Painter::new(index);
    p.image
        .fill_rect(0, 0, FRAME_WIDTH as i64, AREA_TOP as i64 - 8, colour::BLACK);
    let line = format!("{} {}", result.service.name, result.service.version);
    p.text(&line, 12, 8, TITLE_PX, colour::LIGHT);
    let title = s.not_graded_title(result.status);
    let mut y = 200i64;
    for l in wrap(title, 28.0, (FRAME_WIDTH - 120) as f32) {
        p.text(&l, 60, y, 28.0, colour::YELLOW);
        y += 42;
    }
    y += 20;
    let (code, text) = match &result.reason {
        Some(r) => (r.code.clone(), r.text.clone()),
        None => (
            String::new(),
            fallback_reason.unwrap_or_default().to_string(),
        ),
    };
    if !code.is_empty() {
        p.text(&format!("{}: {code}", s.reason), 60, y, 22.0, colour::WHITE);
        y += 40;
    }
    for l in wrap(&text, 20.0, (FRAME_WIDTH - 120) as f32) {
        p.text(&l, 60, y, 20.0, colour::LIGHT);
        y += 30;
    }
    footer(&mut p, None, s);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_never_overlap_and_stay_on_the_frame() {
        let ys = place_rows(&[100.0, 101.0, 102.0, 700.0, 701.0], 20.0, 80.0, 720.0);
        for w in ys.windows(2) {
            assert!(w[1] - w[0] >= 20.0 - 1e-9, "{ys:?}");
        }
        assert!(ys[0] >= 80.0 && *ys.last().unwrap() <= 700.0);
    }
}
