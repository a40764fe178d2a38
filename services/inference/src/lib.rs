//! spinescreen inference: find, name and keypoint every vertebral body in a CT volume.
//!
//! **Takes** the study's Hounsfield volume ([`spinescreen_proto::HuVolume`], `volume.json` +
//! `volume.i16`). **Gives** `detection.json` ([`spinescreen_proto::Detection`]): each vertebral
//! body T1…L5 in view, cranial to caudal, with its label, centre, six endplate keypoints
//! (anterior, middle, posterior point of the superior and inferior endplate, in the vertebra's
//! own mid-sagittal plane, patient mm), local axes, confidence and flags; the spine centreline
//! the rendering stage reformats along; or an abstention with a coded reason when the spine
//! cannot be traced reliably. **Why**: morphometry grades compression fractures by Genant's
//! semiquantitative method (Genant et al., JBMR 1993) from these six points (the six-keypoint
//! scheme of Pisov et al., MICCAI 2020).
//!
//! Two detectors implement [`Detector`]: the [`ClassicalDetector`] (default; needs no weights)
//! and [`onnx::OnnxDetector`] (a hospital's trained model through ONNX Runtime).
//!
//! ```no_run
//! use spinescreen_inference::{ClassicalDetector, Detector};
//! # fn f(volume: &spinescreen_proto::HuVolume) {
//! let detection = ClassicalDetector::default().detect(volume);
//! for v in &detection.vertebrae {
//!     println!("{} at {:?}", v.label, v.center_mm);
//! }
//! # }
//! ```
//!
//! # Layout
//! - [`config`]: [`InferenceConfig`] (which detector) and [`ClassicalConfig`] (its tunables).
//! - [`classical`]: the classical pipeline end to end.
//! - [`grid`]: coarse LPS-aligned resampling and the full-resolution trilinear sampler.
//! - [`mask2d`]: binary operations on axial slices (closing, components, holes).
//! - [`canal`]: spinal canal candidates per slice, linked by dynamic programming.
//! - [`centreline`]: body centroids → smoothed 3-D centreline with local frames.
//! - [`straighten`]: the straightened (curved planar) reformation.
//! - [`lateral`]: each body's own mid-sagittal plane.
//! - [`profile`]: 1-D profile helpers.
//! - [`segment`]: discs along the arc under a smooth-height prior.
//! - [`endplates`]: endplates, columns, Schmorl nodes of one body.
//! - [`cut_body`]: a body cut by the scan's edge (named, not graded).
//! - [`body_axis`]: keypoints on columns along each body's own axis, in patient space.
//! - [`labels`]: ribs, the sacrum, and naming.
//! - [`carina`]: the tracheal carina, a naming cue when no rib anchor is seen.
//! - [`artefacts`]: ring artefacts about the isocentre.
//! - [`onnx`]: the ONNX Runtime detector and its model manifest.
//! - [`worker`]: [`InferenceWorker`], the pipeline stage.

pub mod artefacts;
pub mod body_axis;
pub mod canal;
pub mod carina;
pub mod centreline;
pub mod classical;
pub mod config;
pub mod cut_body;
pub mod endplates;
pub mod geom;
pub mod grid;
pub mod labels;
pub mod lateral;
pub mod mask2d;
pub mod onnx;
pub mod profile;
pub mod ring_correction;
pub mod segment;
pub mod straighten;
pub mod worker;

pub use classical::ClassicalDetector;
pub use config::{ClassicalConfig, InferenceConfig};
pub use worker::InferenceWorker;

use spinescreen_proto::{Detection, HuVolume};

/// Finds, names and keypoints vertebrae in a CT volume.
pub trait Detector: Send + Sync {
    /// Name and version, written to `Detection::detector` (`classical/0.1.0`, `onnx:<model>`).
    fn name(&self) -> String;
    /// Detect the vertebrae. Never panics on input data: failures are abstentions with a reason.
    fn detect(&self, volume: &HuVolume) -> Detection;
}
