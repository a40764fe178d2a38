//! Configuration of the inference stage and of the classical detector.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which detector the inference stage runs (`[inference]` in the service configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceConfig {
    /// `"classical"` (default, needs no weights) or `"onnx"`.
    pub detector: String,
    /// Model manifest (JSON) for the ONNX detector; see `services/inference/models/README.md`.
    pub onnx_manifest: Option<PathBuf>,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            detector: "classical".into(),
            onnx_manifest: None,
        }
    }
}

/// Tunables of the classical detector. Defaults are calibrated on the phantom suite and the real
/// abdominal CT in `shared/data/real`; distances are mm, intensities HU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassicalConfig {
    /// Voxel size of the coarse tracing grid.
    pub coarse_mm: f64,
    /// Bone threshold on the coarse grid (cortex and endplates carry the shape).
    pub bone_hu: f32,
    /// Accepted canal cross-section area (min, max), mm².
    pub canal_area_mm2: (f64, f64),
    /// Highest mean HU of a canal candidate.
    pub canal_max_hu: f64,
    /// Longest gap bridged between canal candidates.
    pub canal_max_gap_mm: f64,
    /// Cost per mm of gap in the canal track (reward per mm of candidate is its score ≤ 1.3).
    pub canal_gap_cost: f64,
    /// Longest gap bridged when following the canal caudally into the sacrum (the sacral canal
    /// bends posteriorly and its thin roof leaves slices without candidates).
    pub canal_caudal_max_gap_mm: f64,
    /// Steepest posterior drift of the canal per mm of z when following it caudally (the sacral
    /// canal below the lumbosacral angle runs more posterior than caudal).
    pub canal_caudal_posterior_slope: f64,
    /// Furthest the canal is followed caudally beyond the linked track, mm of z.
    pub canal_caudal_extension_mm: f64,
    /// Shortest traced spine accepted.
    pub min_track_mm: f64,
    /// Abstain (`SPINE_NOT_TRACEABLE`) when the canal is lost over more than this.
    pub abstain_gap_mm: f64,
    /// Deepest extent of the body searched anterior to the canal.
    pub body_max_depth_mm: f64,
    /// Trabecular bone threshold on the coarse grid: above soft tissue and disc, below the
    /// 100–150 HU of even osteoporotic trabecular bone.
    pub body_hu: f64,
    /// Gaussian σ of the centreline smoothing along the spine.
    pub centreline_sigma_mm: f64,
    /// Arc-length step of the straightened reformation.
    pub straight_step_mm: f64,
    /// Half width of the lateral band averaged into the mid-sagittal straightened image.
    pub lateral_half_mm: f64,
    /// Half width of the narrower lateral band the endplate surfaces are read from (a concave
    /// endplate is deepest in the mid-sagittal plane).
    pub endplate_lateral_half_mm: f64,
    /// Half width (anterior offset) of the band whose median gives the disc profile.
    pub disc_band_mm: f64,
    /// How far from a disc centre its flanking endplates are sought: a disc is a minimum with
    /// bright endplates close on both sides, a trabecular dip mid-body is not.
    pub disc_flank_mm: f64,
    /// Smallest disc contrast considered, HU.
    pub disc_min_contrast_hu: f64,
    /// Plausible vertebral pitch (body + disc), mm.
    pub pitch_range_mm: (f64, f64),
    /// Weight of the smooth-pitch prior (per squared log ratio of successive pitches).
    pub pitch_smoothness: f64,
    /// Weight of the prior that a vertebral pitch is about the body's antero-posterior depth
    /// (per squared log ratio).
    pub pitch_depth_weight: f64,
    /// Largest half depth searched for the cortex from the centreline.
    pub body_max_half_depth_mm: f64,
    /// Smallest antero-posterior body depth accepted.
    pub body_min_depth_mm: f64,
    /// Smallest height accepted at any column.
    pub body_min_height_mm: f64,
    /// Smallest fraction of its pitch (disc centre to disc centre) that a body's median column
    /// height must fill: less is a disc with its endplates between two mid-body dips.
    pub body_min_pitch_fraction: f64,
    /// Smallest endplate-to-disc drop accepted, HU.
    pub endplate_min_drop_hu: f64,
    /// Shift of each detected endplate surface outward (+) or inward (−), per mm of slice
    /// spacing: the half-level estimator on a thin bright endplate blurred by the slice profile
    /// lands outside the true surface by a fraction of the slice thickness (calibrated on
    /// phantoms at 1.25 mm: −0.3 mm per endplate).
    pub edge_bias_per_slice_mm: f64,
    /// Smallest depth of a focal endplate pit called a Schmorl node.
    pub schmorl_min_depth_mm: f64,
    /// Bone above this inside a body is cement (vertebroplasty): not gradable.
    pub cement_hu: f64,
    /// Metal above this near a vertebra (screws, rods): not gradable.
    pub metal_hu: f64,
    /// Coherent ring amplitude that flags a vertebra, HU.
    pub ring_min_hu: f64,
    /// Ring amplitude, pooled over the study's slices, that is corrected before measuring, HU
    /// (`f64::INFINITY` turns the correction off).
    pub ring_correction_min_hu: f64,
    /// Bone threshold for ribs on the coarse grid.
    pub rib_hu: f32,
    /// Axial distance from the canal beyond which bone can only be rib (or pelvis, scapula).
    pub rib_cut_mm: f64,
    /// Shortest rib (beyond the cut) that makes a vertebra rib-bearing.
    pub rib_min_length_mm: f64,
    /// Bone threshold for the sacral alae beside S1 (trabecular bone, above psoas muscle).
    pub sacrum_ala_hu: f32,
    /// Smallest fraction of bone beside a body, at both sides, that makes it S1.
    pub sacrum_min_ala_fraction: f64,
    /// Largest fraction of bone beside the body above S1: L5 has psoas at its sides, and the
    /// iliac crests beside a low-seated L5 (the crests' line through L5 in about a fifth of
    /// adults; the real abdominal CT's L5 reads 0.19–0.26 as its centre moves by a millimetre).
    pub sacrum_max_lumbar_fraction: f64,
    /// Smallest step in lateral bone fraction from the body above S1 to S1 (alae against psoas
    /// or iliac crests).
    pub sacrum_min_ala_contrast: f64,
}

impl Default for ClassicalConfig {
    fn default() -> Self {
        Self {
            coarse_mm: 2.0,
            bone_hu: 180.0,
            canal_area_mm2: (40.0, 700.0),
            canal_max_hu: 120.0,
            canal_max_gap_mm: 30.0,
            canal_gap_cost: 0.1,
            canal_caudal_max_gap_mm: 16.0,
            canal_caudal_posterior_slope: 3.5,
            canal_caudal_extension_mm: 60.0,
            min_track_mm: 60.0,
            abstain_gap_mm: 30.0,
            body_max_depth_mm: 55.0,
            body_hu: 110.0,
            centreline_sigma_mm: 10.0,
            straight_step_mm: 0.5,
            lateral_half_mm: 4.5,
            endplate_lateral_half_mm: 1.5,
            disc_band_mm: 5.0,
            disc_flank_mm: 8.0,
            disc_min_contrast_hu: 15.0,
            pitch_range_mm: (10.0, 50.0),
            pitch_smoothness: 1.5,
            pitch_depth_weight: 2.0,
            body_max_half_depth_mm: 32.0,
            body_min_depth_mm: 10.0,
            body_min_height_mm: 4.0,
            body_min_pitch_fraction: 0.5,
            endplate_min_drop_hu: 25.0,
            edge_bias_per_slice_mm: -0.24,
            schmorl_min_depth_mm: 1.5,
            cement_hu: 1500.0,
            metal_hu: 2500.0,
            ring_min_hu: 80.0,
            ring_correction_min_hu: 40.0,
            rib_hu: 200.0,
            rib_cut_mm: 55.0,
            rib_min_length_mm: 30.0,
            sacrum_ala_hu: 100.0,
            sacrum_min_ala_fraction: 0.45,
            sacrum_max_lumbar_fraction: 0.35,
            sacrum_min_ala_contrast: 0.25,
        }
    }
}
