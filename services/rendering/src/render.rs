//! [`render`]: study result + volume + detection → the frames a radiologist sees.

use crate::canvas::{hstack, RgbImage};
use crate::config::RenderingConfig;
use crate::frame::{notice_frame, reformat_frame, DrawnOutline, DrawnText, FrameKind, Painter};
use crate::frame::{AREA_MAX_COLUMNS, AREA_ROWS};
use crate::reformat::{plan, sample, View};
use crate::text::font_available;
use spinescreen_proto::{Detection, HuSource, StudyResult, StudyStatus};

/// Why rendering failed. Bad inputs never fail: they become a notice frame saying why.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The embedded font did not parse (a build defect).
    #[error("embedded font cannot be parsed")]
    Font,
    /// PNG encoding failed.
    #[error("PNG encoding: {0}")]
    Png(String),
    /// A DICOM object could not be built or encoded.
    #[error("DICOM secondary capture: {0}")]
    Dicom(String),
    /// Nothing to encode.
    #[error("no frames to encode")]
    NoFrames,
}

/// The rendered frames of one study.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The frames: sagittal then coronal reformat, or one notice frame.
    pub frames: Vec<RgbImage>,
    /// What each frame shows (parallel to `frames`).
    pub kinds: Vec<FrameKind>,
    /// All frames side by side, PNG, for the CLI.
    pub preview_png: Vec<u8>,
    /// Every string burned into the frames, with its position.
    pub texts: Vec<DrawnText>,
    /// Every vertebra outline drawn, in frame pixels.
    pub outlines: Vec<DrawnOutline>,
}

impl Rendered {
    fn from_painters(painters: Vec<(Painter, FrameKind)>) -> Result<Self, RenderError> {
        let mut frames = Vec::new();
        let mut kinds = Vec::new();
        let mut texts = Vec::new();
        let mut outlines = Vec::new();
        for (p, kind) in painters {
            frames.push(p.image);
            kinds.push(kind);
            texts.extend(p.texts);
            outlines.extend(p.outlines);
        }
        let refs: Vec<&RgbImage> = frames.iter().collect();
        let preview_png = hstack(&refs, 8)
            .to_png()
            .map_err(|e| RenderError::Png(e.to_string()))?;
        Ok(Self {
            frames,
            kinds,
            preview_png,
            texts,
            outlines,
        })
    }

    /// Whether `needle` was drawn in any frame.
    pub fn shows_text(&self, needle: &str) -> bool {
        self.texts.iter().any(|t| t.text.contains(needle))
    }
}

/// Render a study.
///
/// An `ok` result with a usable centreline gives two frames: a curved sagittal reformat (slab
/// along the lateral direction) with each vertebra outlined through its six keypoints, labelled
/// and coloured by Genant grade, and a curved coronal reformat showing lateral curvature. A
/// technical defect, an abstention, a missing detection or an unusable centreline gives one
/// notice frame with the reason.
pub fn render(
    volume: &impl HuSource,
    detection: Option<&Detection>,
    result: &StudyResult,
    cfg: &RenderingConfig,
) -> Result<Rendered, RenderError> {
    if !font_available() {
        return Err(RenderError::Font);
    }
    if result.status != StudyStatus::Ok {
        return render_not_analysed(result, None, cfg);
    }
    let Some(detection) = detection else {
        return render_not_analysed(
            result,
            Some("No spine detection is available for this study."),
            cfg,
        );
    };
    if detection.status != StudyStatus::Ok {
        let why = detection
            .reason
            .as_ref()
            .map(|r| format!("{}: {}", r.code, r.text))
            .unwrap_or_else(|| "The spine detector abstained.".into());
        return render_not_analysed(result, Some(&why), cfg);
    }
    if volume.header().dims.contains(&0) {
        return render_not_analysed(result, Some("The CT volume is empty."), cfg);
    }
    let mut painters = Vec::new();
    for (index, (view, kind)) in [
        (View::Sagittal, FrameKind::Sagittal),
        (View::Coronal, FrameKind::Coronal),
    ]
    .into_iter()
    .enumerate()
    {
        let plane = match plan(
            &detection.centreline,
            view,
            cfg.field_mm,
            AREA_ROWS,
            AREA_MAX_COLUMNS,
        ) {
            Ok(p) => p,
            Err(e) => {
                let why = format!("The spine centreline cannot be reformatted: {e}.");
                return render_not_analysed(result, Some(&why), cfg);
            }
        };
        let reformat = sample(volume, plane, cfg);
        painters.push((reformat_frame(index, &reformat, result, cfg), kind));
    }
    Rendered::from_painters(painters)
}

/// Render the notice frame alone: for studies without a volume (technical defects found by
/// ingest) or not graded. `why` is shown when the result carries no reason.
pub fn render_not_analysed(
    result: &StudyResult,
    why: Option<&str>,
    cfg: &RenderingConfig,
) -> Result<Rendered, RenderError> {
    if !font_available() {
        return Err(RenderError::Font);
    }
    // An ok result without a usable detection keeps its status but must still say why.
    let painter = if result.status == StudyStatus::Ok || result.reason.is_none() {
        let mut shown = result.clone();
        shown.reason = None;
        let fallback = why
            .map(str::to_string)
            .or_else(|| result.reason.as_ref().map(|r| r.text.clone()))
            .unwrap_or_else(|| "No reason was recorded.".into());
        notice_frame(0, &shown, Some(&fallback), cfg)
    } else {
        notice_frame(0, result, why, cfg)
    };
    Rendered::from_painters(vec![(painter, FrameKind::Notice)])
}
