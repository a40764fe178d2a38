//! What a radiologist relies on in the rendered frames.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fractured, normal, service, spine};
use spinescreen_proto::{Reason, ReasonCode, StudyResult, StudyStatus};
use spinescreen_rendering::text::rasterize;
use spinescreen_rendering::{
    render, render_not_analysed, FrameKind, Language, Rendered, RenderingConfig,
};

fn is_red(p: [u8; 3]) -> bool {
    p[0] >= 200 && p[1] <= 80 && p[2] <= 80
}
fn is_green(p: [u8; 3]) -> bool {
    p[1] >= 180 && p[0] <= 100 && p[2] <= 120
}

/// Pixels along every edge of a drawn outline (excluding the corners, where lines meet).
fn edge_pixels(r: &Rendered, frame: usize, label: &str) -> Vec<[u8; 3]> {
    let o = r
        .outlines
        .iter()
        .find(|o| o.frame == frame && o.label == label)
        .unwrap_or_else(|| panic!("{label} not outlined in frame {frame}"));
    let img = &r.frames[frame];
    let n = o.points.len();
    // Sagittal outlines are closed polygons; coronal ones are two endplate ticks (0-1, 2-3).
    let edges: Vec<(usize, usize)> = match r.kinds[frame] {
        FrameKind::Coronal => vec![(0, 1), (2, 3)],
        _ => (0..n).map(|j| (j, (j + 1) % n)).collect(),
    };
    let mut px = Vec::new();
    for (i, j) in edges {
        let (a, b) = (o.points[i], o.points[j]);
        for t in [0.3, 0.5, 0.7] {
            let x = a[0] + (b[0] - a[0]) * t;
            let y = a[1] + (b[1] - a[1]) * t;
            px.push(
                img.get(x as usize, y as usize)
                    .expect("outline inside the frame"),
            );
        }
    }
    px
}

/// Whether `text` is visibly drawn: at the recorded position, the pixels where the glyphs are
/// solid carry the text colour.
fn text_is_visible(r: &Rendered, text: &str) -> bool {
    r.texts.iter().filter(|t| t.text == text).any(|t| {
        let mask = rasterize(&t.text, t.size_px);
        let img = &r.frames[t.frame];
        let mut solid = 0;
        let mut matching = 0;
        for y in 0..mask.height {
            for x in 0..mask.width {
                if mask.alpha[y * mask.width + x] > 0.95 {
                    solid += 1;
                    let p = img.get((t.x + x as i64) as usize, (t.y + y as i64) as usize);
                    let close = p.is_some_and(|p| {
                        p.iter()
                            .zip(t.colour)
                            .all(|(a, b)| (*a as i32 - b as i32).abs() <= 40)
                    });
                    if close {
                        matching += 1;
                    }
                }
            }
        }
        solid >= 5 && matching * 10 >= solid * 9
    })
}

#[test]
fn grade_3_vertebra_is_outlined_in_red_and_normal_ones_in_green() {
    let s = fractured();
    let r = render(
        &s.volume,
        Some(&s.detection),
        &s.result,
        &RenderingConfig::default(),
    )
    .unwrap();
    assert_eq!(r.kinds, vec![FrameKind::Sagittal, FrameKind::Coronal]);
    for frame in 0..2 {
        let l1 = edge_pixels(&r, frame, "L1");
        assert!(
            l1.iter().all(|p| is_red(*p)),
            "frame {frame}: L1 outline {l1:?}"
        );
        let l3 = edge_pixels(&r, frame, "L3");
        assert!(
            l3.iter().all(|p| is_green(*p)),
            "frame {frame}: L3 outline {l3:?}"
        );
        assert!(!l3.iter().any(|p| is_red(*p)));
    }
    assert!(text_is_visible(&r, "L1"));
    assert!(r.shows_text("Suspected compression fracture: L1 (Genant 3, 54 %)"));
    assert!(!r.shows_text("Target pathology not detected"));
}

#[test]
fn sagittal_outline_sits_on_the_wedged_body() {
    // The anterior edge of L1's outline is shorter than the posterior one, as the body is.
    let s = fractured();
    let r = render(
        &s.volume,
        Some(&s.detection),
        &s.result,
        &RenderingConfig::default(),
    )
    .unwrap();
    let o = r
        .outlines
        .iter()
        .find(|o| o.frame == 0 && o.label == "L1")
        .unwrap();
    let anterior = (o.points[5][1] - o.points[0][1]).abs();
    let posterior = (o.points[3][1] - o.points[2][1]).abs();
    assert!(
        anterior < posterior * 0.6,
        "anterior {anterior} px, posterior {posterior} px"
    );
    // Anterior is on the viewer's left in a sagittal image.
    assert!(o.points[0][0] < o.points[2][0]);
    // The outline encloses bone: the pixel at its centre is brighter than soft tissue.
    let cx = o.points.iter().map(|p| p[0]).sum::<f64>() / 6.0;
    let cy = o.points.iter().map(|p| p[1]).sum::<f64>() / 6.0;
    let inside = r.frames[0].get(cx as usize, cy as usize).unwrap();
    let tissue = r.frames[0]
        .get((o.points[0][0] - 12.0) as usize, cy as usize)
        .unwrap();
    assert!(
        inside[0] > tissue[0] + 20,
        "bone {inside:?} vs soft tissue {tissue:?}"
    );
}

#[test]
fn negative_study_says_target_pathology_not_detected() {
    let s = normal();
    let r = render(
        &s.volume,
        Some(&s.detection),
        &s.result,
        &RenderingConfig::default(),
    )
    .unwrap();
    assert!(text_is_visible(&r, "Target pathology not detected"));
    assert!(!r.shows_text("Suspected"));
    for label in common::LABELS {
        assert!(text_is_visible(&r, label), "{label} label not visible");
    }
}

#[test]
fn russian_negative_study_says_it_in_russian() {
    let s = normal();
    let cfg = RenderingConfig {
        language: Language::Ru,
        ..Default::default()
    };
    let r = render(&s.volume, Some(&s.detection), &s.result, &cfg).unwrap();
    assert!(text_is_visible(&r, "Целевая патология не обнаружена"));
    assert!(text_is_visible(
        &r,
        "Для вспомогательного использования; диагноз ставит врач-рентгенолог"
    ));
    assert!(!r.shows_text("Target pathology not detected"));
}

#[test]
fn every_frame_carries_the_service_and_the_intended_use() {
    let s = fractured();
    let r = render(
        &s.volume,
        Some(&s.detection),
        &s.result,
        &RenderingConfig::default(),
    )
    .unwrap();
    for frame in 0..r.frames.len() {
        let texts: Vec<&str> = r
            .texts
            .iter()
            .filter(|t| t.frame == frame)
            .map(|t| t.text.as_str())
            .collect();
        assert!(
            texts.iter().any(|t| t.starts_with("spinescreen 0.1.0")),
            "{texts:?}"
        );
        assert!(texts.contains(&"For assistive use; a radiologist makes the diagnosis"));
        assert!(
            texts.contains(&"Genant 3 (≥ 40 %)"),
            "legend missing: {texts:?}"
        );
    }
    assert!(text_is_visible(
        &r,
        "For assistive use; a radiologist makes the diagnosis"
    ));
    // Heights and percent deformity of the fractured vertebra are written.
    assert!(r.shows_text("11.0 / 17.5 / 24.0"));
    assert!(r.shows_text("54 %"));
}

#[test]
fn technical_defect_frame_says_why() {
    let result = StudyResult::not_analysed(
        "1.2.3".into(),
        StudyStatus::TechnicalDefect,
        Reason::new(
            ReasonCode::NON_UNIFORM_SPACING,
            "Slices 12 and 13 are 5 mm apart; the rest 1 mm.",
        ),
        service(),
    );
    let r = render_not_analysed(&result, None, &RenderingConfig::default()).unwrap();
    assert_eq!(r.kinds, vec![FrameKind::Notice]);
    assert!(text_is_visible(
        &r,
        "Technical defect: the study was not analysed"
    ));
    assert!(r.shows_text("NON_UNIFORM_SPACING"));
    assert!(r.shows_text("Slices 12 and 13 are 5 mm apart;"));
    // Same via render() when a volume exists.
    let s = normal();
    let r = render(
        &s.volume,
        Some(&s.detection),
        &result,
        &RenderingConfig::default(),
    )
    .unwrap();
    assert_eq!(r.kinds, vec![FrameKind::Notice]);
}

#[test]
fn abstention_and_missing_detection_render_a_notice() {
    let s = normal();
    let mut result = s.result.clone();
    result.status = StudyStatus::Abstained;
    result.reason = Some(Reason::new(
        ReasonCode::SPINE_NOT_TRACEABLE,
        "Severe scoliosis.",
    ));
    let r = render(
        &s.volume,
        Some(&s.detection),
        &result,
        &RenderingConfig::default(),
    )
    .unwrap();
    assert!(r.shows_text("Not graded: the service abstained"));
    assert!(r.shows_text("SPINE_NOT_TRACEABLE"));

    let r = render(&s.volume, None, &s.result, &RenderingConfig::default()).unwrap();
    assert_eq!(r.kinds, vec![FrameKind::Notice]);
    assert!(r.shows_text("Not graded: no usable spine detection"));
    assert!(r.shows_text("No spine detection is available"));

    let mut broken = s.detection.clone();
    broken.centreline.truncate(1);
    let r = render(
        &s.volume,
        Some(&broken),
        &s.result,
        &RenderingConfig::default(),
    )
    .unwrap();
    assert!(r.shows_text("centreline"));
}

#[test]
fn scoliosis_shows_as_a_lateral_curve_in_the_coronal_frame() {
    let s = spine([24.0; 5], [0; 5], 15.0);
    let r = render(
        &s.volume,
        Some(&s.detection),
        &s.result,
        &RenderingConfig::default(),
    )
    .unwrap();
    let centre_x = |label: &str| {
        let o = r
            .outlines
            .iter()
            .find(|o| o.frame == 1 && o.label == label)
            .unwrap();
        (o.points[0][0] + o.points[1][0]) / 2.0
    };
    // L3 sits at the apex of the curve, ~15 mm lateral of L1 and L5.
    let shift = centre_x("L3") - (centre_x("L1") + centre_x("L5")) / 2.0;
    assert!(shift > 8.0, "lateral shift {shift} px");
    // In the sagittal frame the curve is followed, so all bodies line up.
    let sag_x = |label: &str| {
        let o = r
            .outlines
            .iter()
            .find(|o| o.frame == 0 && o.label == label)
            .unwrap();
        o.points[1][0]
    };
    assert!((sag_x("L3") - sag_x("L1")).abs() < 4.0);
}

#[test]
fn mip_and_average_differ_and_both_render() {
    let s = fractured();
    let avg = render(
        &s.volume,
        Some(&s.detection),
        &s.result,
        &RenderingConfig::default(),
    )
    .unwrap();
    let mip_cfg = RenderingConfig {
        projection: spinescreen_rendering::Projection::Mip,
        ..Default::default()
    };
    let mip = render(&s.volume, Some(&s.detection), &s.result, &mip_cfg).unwrap();
    assert_ne!(avg.frames[0], mip.frames[0]);
    assert!(mip.shows_text("10 mm slab (MIP)"));
}

#[test]
fn preview_is_a_png_of_all_frames() {
    let s = fractured();
    let r = render(
        &s.volume,
        Some(&s.detection),
        &s.result,
        &RenderingConfig::default(),
    )
    .unwrap();
    assert_eq!(&r.preview_png[1..4], b"PNG");
    let dec = png::Decoder::new(std::io::Cursor::new(&r.preview_png));
    let reader = dec.read_info().unwrap();
    let total: usize = r.frames.iter().map(|f| f.width).sum::<usize>() + 8;
    assert_eq!(reader.info().width as usize, total);
    if let Ok(dir) = std::env::var("SPINESCREEN_PREVIEW_DIR") {
        std::fs::write(format!("{dir}/synthetic-fractured.png"), &r.preview_png).unwrap();
        let n = normal();
        let cfg = RenderingConfig {
            language: Language::Ru,
            ..Default::default()
        };
        let rn = render(&n.volume, Some(&n.detection), &n.result, &cfg).unwrap();
        std::fs::write(format!("{dir}/synthetic-normal-ru.png"), &rn.preview_png).unwrap();
        let defect = StudyResult::not_analysed(
            "1.2.3".into(),
            StudyStatus::TechnicalDefect,
            Reason::new(
                ReasonCode::NON_UNIFORM_SPACING,
                "Slice positions are not evenly spaced: 3 slices missing between z = 120 mm and z = 135 mm.",
            ),
            service(),
        );
        let rd = render_not_analysed(&defect, None, &cfg).unwrap();
        std::fs::write(format!("{dir}/notice-ru.png"), &rd.preview_png).unwrap();
    }
}

#[test]
fn inputs_never_panic_the_renderer() {
    let s = fractured();
    let mut det = s.detection.clone();
    det.centreline[5].cranial_dir = [0.0, 0.0, 0.0];
    assert!(render(
        &s.volume,
        Some(&det),
        &s.result,
        &RenderingConfig::default()
    )
    .is_ok());
    let mut result = s.result.clone();
    result.vertebrae[0].keypoints_mm.superior_anterior = [f64::NAN, 0.0, 0.0];
    result.vertebrae[1].center_mm = [1e9, 1e9, 1e9];
    assert!(render(
        &s.volume,
        Some(&s.detection),
        &result,
        &RenderingConfig::default()
    )
    .is_ok());
    let cfg = RenderingConfig {
        slab_mm: f64::NAN,
        window_width: -5.0,
        field_mm: 1e12,
        ..Default::default()
    };
    assert!(render(&s.volume, Some(&s.detection), &s.result, &cfg).is_ok());
}
