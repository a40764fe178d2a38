//! `result.json`: the study result every user-facing output is made from.
//!
//! Field names are a contract (issue #6); do not rename them. Extra fields may be added.

use crate::detection::Keypoints;
use crate::vertebra::{VertebraFlag, VertebraLevel};
use crate::volume::Vec3;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Outcome of a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StudyStatus {
    /// Analysed.
    Ok,
    /// The input could not be analysed (no CT series, broken geometry, decode failure…).
    TechnicalDefect,
    /// The input was readable but the service declined to grade (spine not traceable…).
    Abstained,
}

impl StudyStatus {
    /// The JSON spelling (`ok`, `technical_defect`, `abstained`).
    pub fn as_str(self) -> &'static str {
        match self {
            StudyStatus::Ok => "ok",
            StudyStatus::TechnicalDefect => "technical_defect",
            StudyStatus::Abstained => "abstained",
        }
    }
}

/// Machine-readable reason codes for technical defects and abstentions.
pub struct ReasonCode;

impl ReasonCode {
    /// No CT image series among the received instances.
    pub const NO_CT_SERIES: &'static str = "NO_CT_SERIES";
    /// No file could be parsed as DICOM.
    pub const NO_DICOM: &'static str = "NO_DICOM";
    /// Fewer slices than an analysis needs.
    pub const TOO_FEW_SLICES: &'static str = "TOO_FEW_SLICES";
    /// Slices disagree in orientation, matrix or pixel spacing.
    pub const INCONSISTENT_GEOMETRY: &'static str = "INCONSISTENT_GEOMETRY";
    /// Slice positions are not evenly spaced (missing slices).
    pub const NON_UNIFORM_SPACING: &'static str = "NON_UNIFORM_SPACING";
    /// Two slices share one position.
    pub const DUPLICATE_SLICES: &'static str = "DUPLICATE_SLICES";
    /// Pixel spacing or slice spacing is zero or missing.
    pub const ZERO_SPACING: &'static str = "ZERO_SPACING";
    /// The slice normal is not along the stacking direction (gantry tilt).
    pub const GANTRY_TILT: &'static str = "GANTRY_TILT";
    /// Required attribute missing or of the wrong type.
    pub const MISSING_ATTRIBUTE: &'static str = "MISSING_ATTRIBUTE";
    /// No pixel data in an image.
    pub const MISSING_PIXEL_DATA: &'static str = "MISSING_PIXEL_DATA";
    /// Pixel data could not be decoded.
    pub const DECODE_FAILURE: &'static str = "DECODE_FAILURE";
    /// Transfer syntax this build cannot decode.
    pub const UNSUPPORTED_TRANSFER_SYNTAX: &'static str = "UNSUPPORTED_TRANSFER_SYNTAX";
    /// Study exceeds configured size limits (decompression-bomb guard).
    pub const OVERSIZE: &'static str = "OVERSIZE";
    /// The spine could not be found in the volume.
    pub const NO_SPINE: &'static str = "NO_SPINE";
    /// The spine centreline could not be traced reliably (e.g. severe scoliosis).
    pub const SPINE_NOT_TRACEABLE: &'static str = "SPINE_NOT_TRACEABLE";
    /// Ring artefacts make endplates unreliable.
    pub const RING_ARTIFACTS: &'static str = "RING_ARTIFACTS";
    /// Metal or cement hardware prevents grading.
    pub const HARDWARE: &'static str = "HARDWARE";
    /// Too few vertebrae could be measured.
    pub const TOO_FEW_VERTEBRAE: &'static str = "TOO_FEW_VERTEBRAE";
    /// Slices too thick for endplates to be placed within the precision a Genant grade needs.
    pub const SLICES_TOO_THICK: &'static str = "SLICES_TOO_THICK";
    /// An internal error after retries (the study is not lost; it still gets an SR).
    pub const INTERNAL_ERROR: &'static str = "INTERNAL_ERROR";
}

/// Why a study is not `ok`: a stable code (see [`ReasonCode`]) and a human sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation (English; no patient identifiers).
    pub text: String,
}

impl Reason {
    /// A reason with a code from [`ReasonCode`].
    pub fn new(code: &str, text: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            text: text.into(),
        }
    }
}

/// Genant semiquantitative grade (Genant et al., JBMR 1993): 0 normal, 1 mild (20–25 %),
/// 2 moderate (25–40 %), 3 severe (≥ 40 %). Serialized as the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum GenantGrade {
    /// < 20 % height loss.
    Normal = 0,
    /// 20–25 %.
    Mild = 1,
    /// 25–40 %.
    Moderate = 2,
    /// ≥ 40 %.
    Severe = 3,
}

impl From<GenantGrade> for u8 {
    fn from(g: GenantGrade) -> u8 {
        g as u8
    }
}

impl TryFrom<u8> for GenantGrade {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            0 => Ok(GenantGrade::Normal),
            1 => Ok(GenantGrade::Mild),
            2 => Ok(GenantGrade::Moderate),
            3 => Ok(GenantGrade::Severe),
            _ => Err(format!("Genant grade {v} out of 0-3")),
        }
    }
}

/// Which height is lost most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeformityType {
    /// No deformity of grade ≥ 1.
    None,
    /// Anterior height loss.
    Wedge,
    /// Middle height loss.
    Biconcave,
    /// Whole-body (posterior) height loss relative to neighbours.
    Crush,
}

/// Vertebral body heights, mm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Heights {
    /// Ha.
    pub anterior: f64,
    /// Hm.
    pub middle: f64,
    /// Hp.
    pub posterior: f64,
}

/// Trabecular attenuation in a central ROI.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrabecularHu {
    /// Mean HU.
    pub mean: f64,
    /// Median HU.
    pub median: f64,
    /// Voxels in the ROI.
    pub voxels: usize,
}

/// One vertebra in `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VertebraResult {
    /// `T1` … `L5`.
    pub label: VertebraLevel,
    /// Body centre, patient mm.
    pub center_mm: Vec3,
    /// Endplate keypoints, patient mm.
    pub keypoints_mm: Keypoints,
    /// Heights, mm.
    pub heights_mm: Heights,
    /// Largest relative height loss 0–1.
    pub deformity: f64,
    /// Which height is lost.
    #[serde(rename = "type")]
    pub deformity_type: DeformityType,
    /// Genant grade.
    pub genant_grade: GenantGrade,
    /// Trabecular HU for Th11–L3, else `null`.
    pub trabecular_hu: Option<TrabecularHu>,
    /// Confidence 0–1.
    pub confidence: f64,
    /// Flags carried from detection or raised by morphometry (`not_gradable`, `cement`…).
    #[serde(default)]
    pub flags: Vec<VertebraFlag>,
}

/// Bone density reading from trabecular attenuation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoneDensity {
    /// Level measured (L1, or the nearest available of Th11–L3).
    pub level: VertebraLevel,
    /// Mean trabecular HU at that level.
    pub hu: f64,
    /// ISCD 2023 reading: `osteoporosis_suggested` (< 100 HU) or `not_suggested`.
    pub iscd_category: String,
    /// Pickhardt 2013 band: `low` (≤ 110 HU, > 90 % specific), `indeterminate` (110–160],
    /// `normal` (> 160 HU; ≤ 160 is ~90 % sensitive).
    pub pickhardt_category: String,
    /// Contrast agent noted in the series, if any (raises HU by ~10–20).
    pub contrast_agent: Option<String>,
}

/// Name and version of the service that made a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Configured service name (also the SR/SC series description).
    pub name: String,
    /// Software version.
    pub version: String,
}

/// `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyResult {
    /// Must equal [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Study Instance UID.
    pub study_instance_uid: String,
    /// `ok` | `technical_defect` | `abstained`.
    pub status: StudyStatus,
    /// `null`, or why the study is not `ok`.
    pub reason: Option<Reason>,
    /// Any vertebra Genant grade ≥ 2; `null` when not analysed.
    pub has_fracture: Option<bool>,
    /// 0–1, monotone in the largest deformity and confidence, 0.5 at 25 %; `null` when not analysed.
    pub fracture_probability: Option<f64>,
    /// Largest deformity among graded vertebrae; `null` when not analysed.
    pub max_deformity: Option<f64>,
    /// Vertebrae, cranial to caudal.
    pub vertebrae: Vec<VertebraResult>,
    /// Bone density reading, if Th11–L3 were measurable.
    pub bone_density: Option<BoneDensity>,
    /// Milliseconds per stage, plus `end_to_end` once published.
    pub timings_ms: BTreeMap<String, u64>,
    /// The service.
    pub service: ServiceInfo,
    /// Detector that found the vertebrae.
    #[serde(default)]
    pub detector: String,
    /// Study-level notes (labelling anchors, flags).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl StudyResult {
    /// A result for a study that could not be analysed.
    pub fn not_analysed(
        study_instance_uid: String,
        status: StudyStatus,
        reason: Reason,
        service: ServiceInfo,
    ) -> Self {
        Self {
            schema_version: crate::SCHEMA_VERSION,
            study_instance_uid,
            status,
            reason: Some(reason),
            has_fracture: None,
            fracture_probability: None,
            max_deformity: None,
            vertebrae: vec![],
            bone_density: None,
            timings_ms: BTreeMap::new(),
            service,
            detector: String::new(),
            notes: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_field_names() {
        let r = StudyResult::not_analysed(
            "1.2.3".into(),
            StudyStatus::TechnicalDefect,
            Reason::new(ReasonCode::NO_CT_SERIES, "no CT"),
            ServiceInfo {
                name: "spinescreen".into(),
                version: "0.1.0".into(),
            },
        );
        let v = serde_json::to_value(&r).unwrap();
        for field in [
            "study_instance_uid",
            "status",
            "reason",
            "has_fracture",
            "fracture_probability",
            "max_deformity",
            "vertebrae",
            "bone_density",
            "timings_ms",
            "service",
        ] {
            assert!(v.get(field).is_some(), "missing {field}");
        }
        assert_eq!(v["status"], "technical_defect");
        assert_eq!(v["reason"]["code"], "NO_CT_SERIES");
    }

    #[test]
    fn genant_grade_is_an_integer_on_the_wire() {
        assert_eq!(serde_json::to_string(&GenantGrade::Severe).unwrap(), "3");
        assert!(serde_json::from_str::<GenantGrade>("4").is_err());
    }
}
