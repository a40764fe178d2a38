//! What inference hands to morphometry: each vertebral body with its label and six endplate
//! keypoints, plus the spine centreline the renderer reuses for its curved reformation.

use crate::{
    region::RegionBox,
    result::{Heights, Reason, StudyStatus},
    vec3,
    vertebra::{VertebraFlag, VertebraLevel},
    volume::Vec3,
};
use serde::{Deserialize, Serialize};

/// A point in patient coordinates (mm, LPS).
pub type Point3 = Vec3;

/// The six endplate keypoints of one vertebral body, in patient mm, lying in the vertebra's own
/// mid-sagittal plane (Pisov et al., MICCAI 2020 use the same six).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Keypoints {
    /// Anterior point of the superior (cranial) endplate.
    pub superior_anterior: Point3,
    /// Middle point of the superior endplate.
    pub superior_middle: Point3,
    /// Posterior point of the superior endplate.
    pub superior_posterior: Point3,
    /// Anterior point of the inferior (caudal) endplate.
    pub inferior_anterior: Point3,
    /// Middle point of the inferior endplate.
    pub inferior_middle: Point3,
    /// Posterior point of the inferior endplate.
    pub inferior_posterior: Point3,
}

impl Keypoints {
    /// Anterior (Ha), middle (Hm) and posterior (Hp) heights: the distance from each superior
    /// keypoint to the inferior keypoint of the same column, mm.
    pub fn heights(&self) -> Heights {
        Heights {
            anterior: vec3::dist(self.superior_anterior, self.inferior_anterior),
            middle: vec3::dist(self.superior_middle, self.inferior_middle),
            posterior: vec3::dist(self.superior_posterior, self.inferior_posterior),
        }
    }
}

/// One vertebral body found by a detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedVertebra {
    /// Anatomical label (`"T12"` on the wire).
    pub label: VertebraLevel,
    /// Centre of the vertebral body, patient mm.
    pub center_mm: Point3,
    /// Endplate keypoints.
    pub keypoints_mm: Keypoints,
    /// Unit vector from the canal towards the body (local anterior), patient space.
    pub anterior_dir: Vec3,
    /// Unit vector along the local spine axis, towards the head.
    pub cranial_dir: Vec3,
    /// Detection confidence 0–1 (edge strength, prior fit, label agreement).
    pub confidence: f64,
    /// Flags that change how the vertebra may be graded (`cement`, `ring_corrected`,
    /// `truncated`, `endplates_not_traced`…; see [`VertebraFlag`] for each one's meaning).
    pub flags: Vec<VertebraFlag>,
}

/// One sample of the spine centreline (through the vertebral bodies), cranial to caudal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CentrelinePoint {
    /// Position, patient mm.
    pub position_mm: Point3,
    /// Unit tangent towards the head.
    pub cranial_dir: Vec3,
    /// Unit vector towards the anterior, perpendicular to the tangent.
    pub anterior_dir: Vec3,
}

/// Inference output for one study (`detection.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Must equal [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `ok`, or `abstained` when the spine could not be traced reliably.
    pub status: StudyStatus,
    /// Why the detector abstained, if it did.
    pub reason: Option<Reason>,
    /// Which detector produced this (`classical`, `onnx:<model>`), with its version.
    pub detector: String,
    /// Vertebrae found, cranial to caudal.
    pub vertebrae: Vec<DetectedVertebra>,
    /// Spine centreline, cranial to caudal, ~1 mm apart.
    pub centreline: Vec<CentrelinePoint>,
    /// Study-level observations (e.g. "13 rib pairs: labels counted from the lumbosacral junction").
    pub notes: Vec<String>,
    /// The box of `volume.json`'s grid stored as the spine region (`spine_region.json`), which
    /// holds everything morphometry and rendering read ([`crate::region`]). `None` (absent in
    /// detections written before it existed, or nothing detected): they read the full volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spine_region: Option<RegionBox>,
}
