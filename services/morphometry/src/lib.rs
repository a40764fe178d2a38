//! spinescreen morphometry: from vertebral keypoints to what a radiologist reports.
//!
//! The stage **takes** a study's `detection.json` (vertebrae T1–L5 with six endplate keypoints
//! each, from inference) and its HU volume (from ingest), and **gives** `result.json`
//! ([`spinescreen_proto::StudyResult`]): per vertebra the anterior, middle and posterior heights,
//! the largest relative height loss and its type, the Genant grade and, for T11–L3, trabecular
//! attenuation; per study whether a fracture of Genant grade ≥ 2 is present, a score for ROC
//! analysis, and an opportunistic bone-density reading. **Why**: the Moscow experiment (Artyukova
//! et al., Digital Diagnostics 2024) asks a service for the presence and level of a vertebral
//! compression deformity > 25 % graded after Genant, and for reduced bone density at Th11–L3 read
//! against ISCD 2023.
//!
//! Everything is a pure function of plain data except [`worker`], which loads the inputs from
//! storage, calls [`measure()`] and stores the result.
//!
//! ```
//! use spinescreen_morphometry::{grade_from_deformity, fracture_probability};
//! use spinescreen_proto::GenantGrade;
//! assert_eq!(grade_from_deformity(0.35), GenantGrade::Moderate);
//! assert_eq!(fracture_probability(0.25, 0.9), 0.5);
//! ```
//!
//! # Layout
//! - [`heights`]: Ha, Hm, Hp and the wedge, biconcave and crush ratios.
//! - [`levels`]: per-level posterior height table and the crush reference from normal neighbours.
//! - [`grade`]: Genant grade boundaries and confidence near 25 %.
//! - [`roi`]: the trabecular region of interest and its mean/median HU.
//! - [`density`]: ISCD 2023 and Pickhardt 2013 readings of the L1 (or nearest) attenuation.
//! - [`probability`]: the study's fracture score.
//! - [`measure`](mod@measure): the whole study, [`measure()`].
//! - [`worker`]: [`MorphometryWorker`], the pipeline stage.
//! - [`geometry`]: vector helpers.
//!
//! # What is not reported
//! No ACR QCT category (mg/cm³ of calcium hydroxyapatite): that needs a calibration phantom or a
//! documented phantomless HU→mg/cm³ conversion, and spinescreen has neither.

pub mod density;
pub mod geometry;
pub mod grade;
pub mod heights;
pub mod levels;
pub mod measure;
pub mod probability;
pub mod roi;
pub mod worker;

pub use grade::{boundary_confidence, grade_from_deformity};
pub use heights::{deformity_of, heights_of, Deformity};
pub use levels::expected_posterior_heights;
pub use measure::measure;
pub use probability::{fracture_probability, study_fracture_probability};
pub use roi::{trabecular_hu, trabecular_roi, BodyFrame};
pub use worker::MorphometryWorker;
