//! # spinescreen-phantom: synthetic chest CT with exact ground truth
//!
//! Real spine CTs with fracture labels cannot be had here, so spinescreen tests and benchmarks
//! every stage on phantoms from this crate. It **takes** a [`PhantomSpec`] (seed, fractures,
//! scoliosis, kyphosis, osteoporosis, confounders, scan geometry) and **gives** a [`Phantom`]: an
//! HU volume ([`spinescreen_proto::HuVolume`], the same type ingest produces) and its [`Truth`]
//! — per vertebra the six endplate keypoints, heights, deformity, Genant grade and trabecular
//! HU — which [`write_dicom_series`] stores as a CT Image Storage series plus `truth.json`.
//!
//! ```no_run
//! use spinescreen_phantom::{generate, write_dicom_series, PhantomSpec};
//! let spec = PhantomSpec { seed: 7, fractures: vec!["L1:wedge:0.35".parse()?], ..Default::default() };
//! let phantom = generate(&spec)?;
//! assert!(phantom.truth.positive);
//! write_dicom_series(&phantom, std::path::Path::new("/tmp/phantom-7"))?;
//! # Ok::<(), spinescreen_phantom::PhantomError>(())
//! ```
//!
//! # Layout
//! - [`spec`]: the options and their CLI text forms (`L1:wedge:0.35`, `calcified-disc`).
//! - `anatomy`: nominal per-level dimensions (Panjabi 1991/1992).
//! - `vertebra`: one vertebra as implicit geometry — body, endplates, posterior elements.
//! - `spine`: the centreline (kyphosis, lordosis, scoliosis) and vertebra placement, fractures.
//! - `torso`: body outline, lungs, mediastinum, abdominal organs, ribs, sternum, table.
//! - `scene`: the scan grid, the fake patient and where confounders go.
//! - `raster`: painting a slice with analytic partial volume; `filter`: noise, PSF, artefacts.
//! - [`truth`]: `truth.json`; [`dicom`]: the DICOM series; [`preview`]: a mid-sagittal PNG.
//! - [`cli`]: `spinescreen phantom`.
//! - [`population`]: `--population`, a patient and study drawn from the screened population
//!   (`docs/phantom-population.md`); without it every output stays byte for byte as before.
//!
//! # Geometry and definitions
//! Patient coordinates are DICOM LPS (x → left, y → posterior, z → head; PS3.3 C.7.6.2.1.1).
//! Heights are measured in each vertebra's own mid-sagittal plane along its own axis (the spine
//! curve's tangent), at 15 / 50 / 85 % of the antero-posterior depth, between the outer
//! cortical surfaces of the endplates. Fractures follow Genant's semiquantitative types: a
//! wedge lowers `Ha`, a biconcave fracture depresses both endplates centrally (`Hm`), a crush
//! lowers the whole body (`Hp` against its neighbours). Healthy vertebrae vary naturally
//! (thoracic Ha/Hp ≈ 0.85–0.97, small random height and concavity variation) but their
//! deformity stays below 0.235 by construction.
//!
//! # Known limits
//! - Anatomy is built from smooth analytic shapes: no trabecular texture beyond image noise,
//!   no vascular tree in the lungs, no bowel gas pattern or mesenteric fat, no arms or
//!   clavicles; posterior elements are simplified (facet joints are vertical pillars with a
//!   joint gap, laminae an elliptic ring); ribs follow elliptic arcs; the heart is an ellipsoid.
//! - Fracture shapes are idealised (planar wedge, smooth central depression, uniform crush,
//!   70 % of the loss at the superior endplate) with a sclerotic band but no fracture lines,
//!   retropulsed fragments or endplate irregularity; a wedge fracture does not add local
//!   kyphosis (the spine curve is prescribed, neighbours keep their places).
//! - Noise is white (Irwin–Hall, ±3.5 σ tails) filtered by the same Gaussian PSF as the
//!   anatomy, not the mid-frequency texture of filtered back-projection; the slice profile is
//!   a box of the slice thickness (slices are contiguous, spacing = thickness). At 1.25 mm
//!   slices a ~1 mm endplate is sampled coarsely, so single heights read back by half-maximum
//!   scatter by up to ~1 mm (unbiased on average); at 0.625 mm they match within 0.5 mm.
//! - Ring and cement streak artefacts are additive image-domain patterns, not simulated
//!   projections; no beam hardening, scatter or photon starvation elsewhere.
//! - Classic phantom: always 12 thoracic vertebrae with 12 rib pairs and 5 lumbar, no
//!   transitional anatomy, so rib counting always labels correctly; `--population` draws 11 or
//!   13 rib pairs and a sacralised L5 / lumbarised S1 in a few per cent.
//! - Classic phantom: osteoporosis lowers trabecular HU and thins the cortex but does not change
//!   shape; normal trabecular bone (175–245 HU, falling with age) is brighter than many real
//!   over-50 spines. `--population` draws bone density by age and sex (Jang 2019).
//! - `--population`: the cervical levels follow the thoracic curve (no cervical lordosis), the
//!   sacrum is two stacked bodies (no alae or pelvis), the arms are cylinders.
//! - Confounder levels are seeded choices among unfractured vertebrae (cement prefers a
//!   fractured one); each confounder is placed once per study.

mod anatomy;
pub mod cli;
pub mod dicom;
mod error;
mod filter;
mod geom;
pub mod population;
pub mod preview;
mod raster;
mod scene;
pub mod spec;
mod spine;
mod torso;
pub mod truth;
mod uid;
mod vertebra;

pub use dicom::write_dicom_series;
pub use error::PhantomError;
pub use preview::write_preview_png;
pub use scene::ConfounderSite;
pub use spec::{
    Confounder, FractureSpec, FractureType, LastVertebra, PhantomSpec, GENERATED_LABELS,
};
pub use truth::{Truth, TruthVertebra};

use ndarray::Array3;
use rayon::prelude::*;
use spinescreen_proto::{HuVolume, StudyInfo, VolumeHeader, SCHEMA_VERSION};

/// Thickest sub-slice a population study renders; thicker slices average several (a box slice
/// profile integrated, not point-sampled).
pub const SUB_SLICE_MM: f64 = 1.25;

/// CT Image Storage SOP Class UID (PS3.4 B.5).
pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";

/// A generated study: the HU volume (with its patient/study module and per-slice SOP Instance
/// UIDs in `volume.header.study`) and its ground truth.
#[derive(Debug, Clone)]
pub struct Phantom {
    /// Voxels in HU, indexed `[z, y, x]`; slice index increases towards the head.
    pub volume: HuVolume,
    /// Ground truth.
    pub truth: Truth,
}

/// Generate a phantom. Deterministic: the same spec gives the same voxels and UIDs.
pub fn generate(spec: &PhantomSpec) -> Result<Phantom, PhantomError> {
    let scene = scene::Scene::build(spec)?;
    let g = scene.grid;
    let plane_len = g.nx * g.ny;
    let mut voxels = vec![0i16; plane_len * g.nz];
    // Population studies integrate a thick slice over its profile: the average of sub-slices
    // at most SUB_SLICE_MM thick, each with its own analytic partial volume.
    let sub = match scene.spec.population {
        Some(_) => (g.dz / SUB_SLICE_MM).ceil().max(1.0) as usize,
        None => 1,
    };
    let sub_scene = (sub > 1).then(|| {
        let dz = g.dz / sub as f64;
        scene::Scene {
            grid: scene::Grid {
                nz: g.nz * sub,
                dz,
                z0: g.z0 - g.dz / 2.0 + dz / 2.0,
                ..g
            },
            ..scene.clone()
        }
    });
    voxels.par_chunks_mut(plane_len).enumerate().for_each_init(
        || (vec![0f32; plane_len], Vec::new(), vec![0f32; plane_len]),
        |(plane, scratch, part), (k, out)| {
            match &sub_scene {
                Some(ss) => {
                    plane.fill(0.0);
                    for m in 0..sub {
                        raster::render_slice(ss, k * sub + m, part);
                        for (p, q) in plane.iter_mut().zip(part.iter()) {
                            *p += q / sub as f32;
                        }
                    }
                }
                None => raster::render_slice(&scene, k, plane),
            }
            filter::finish_slice(&scene, k, plane, scratch);
            filter::quantise(plane, out);
        },
    );
    let voxels = Array3::from_shape_vec((g.nz, g.ny, g.nx), voxels)
        .map_err(|e| PhantomError::invalid("matrix", e.to_string()))?;

    let seed = spec.seed;
    let study_uid = uid::derived_uid(seed, "study");
    let series_uid = uid::derived_uid(seed, "series");
    let study = StudyInfo {
        patient_name: format!("PHANTOM^S{seed}"),
        patient_id: format!("PH{seed:010}"),
        patient_birth_date: format!("{:04}0101", 2024 - scene.patient.age),
        patient_sex: scene.patient.sex.to_string(),
        patient_age: format!("{:03}Y", scene.patient.age),
        study_instance_uid: study_uid.clone(),
        study_date: "20240115".into(),
        study_time: "093000".into(),
        study_id: format!("{}", seed % 100_000),
        accession_number: format!("PHA{:08}", seed % 100_000_000),
        referring_physician_name: String::new(),
        study_description: "CT CHEST (spinescreen phantom)".into(),
        series_instance_uid: series_uid.clone(),
        series_number: "1".into(),
        frame_of_reference_uid: uid::derived_uid(seed, "frame-of-reference"),
        sop_class_uid: CT_IMAGE_STORAGE.into(),
        sop_instance_uids: (0..g.nz)
            .map(|k| uid::derived_uid(seed, &format!("instance/{k}")))
            .collect(),
        contrast_agent: spec
            .population
            .as_ref()
            .and_then(|p| p.contrast_blood_hu)
            .map(|_| "IODINATED CONTRAST".to_string()),
    };
    let header = VolumeHeader {
        schema_version: SCHEMA_VERSION,
        dims: [g.nx, g.ny, g.nz],
        spacing_mm: [g.px, g.px, g.dz],
        origin_mm: [g.x0, g.y0, g.z0],
        direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        study,
    };
    let volume = HuVolume::new(header, voxels)
        .map_err(|e| PhantomError::invalid("matrix", e.to_string()))?;
    let truth = truth::compute(&scene, &study_uid, &series_uid);
    Ok(Phantom { volume, truth })
}
