//! ONNX Runtime detector: a hospital's trained model locates the vertebral bodies; the classical
//! modules then straighten, find endplates, name and flag exactly as for the classical detector.
//!
//! ONNX Runtime is loaded at run time (`ort` with `load-dynamic`) from the library named by the
//! `ORT_DYLIB_PATH` environment variable, so the default build and the classical path never need
//! it. Inference runs on the CPU, or on CUDA when the manifest asks for it and the loaded
//! library provides the CUDA execution provider.
//!
//! # Model manifest (JSON)
//! ```json
//! {
//!   "name": "toy-bone-threshold",
//!   "model": "toy_bodymap.onnx",
//!   "input_name": "ct",
//!   "output_name": "body_probability",
//!   "spacing_mm": 2.0,
//!   "hu_window": [-200.0, 1300.0],
//!   "patch": [32, 96, 96],
//!   "output": "body_probability",
//!   "threshold": 0.5,
//!   "use_cuda": false
//! }
//! ```
//! The input is a `[1, 1, z, y, x]` float tensor of the study resampled to an isotropic grid of
//! `spacing_mm` aligned with the patient axes (x → left, y → posterior, z → head; DICOM LPS),
//! HU mapped linearly from `hu_window` to 0…1 and clamped, tiled in `patch`-sized blocks (air
//! padding at the edges). The output must have the same shape: the probability (0…1) that a
//! voxel belongs to a vertebral body. See `services/inference/models/README.md`.

use crate::{
    canal::CanalTrack,
    centreline, classical,
    config::ClassicalConfig,
    grid::{self, Grid},
    mask2d::{self, Mask},
    Detector,
};
use ort::{session::Session, value::Tensor};
use serde::{Deserialize, Serialize};
use spinescreen_proto::{Detection, HuVolume, Reason, ReasonCode};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// What the model's output means. Only per-voxel body probability is supported today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputSemantics {
    /// Probability that a voxel belongs to a vertebral body, same grid as the input.
    BodyProbability,
}

/// The model manifest (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Model name, reported as `onnx:<name>`.
    pub name: String,
    /// The `.onnx` file, relative to the manifest's directory.
    pub model: PathBuf,
    /// Name of the input tensor.
    pub input_name: String,
    /// Name of the output tensor.
    pub output_name: String,
    /// Isotropic input voxel size, mm.
    pub spacing_mm: f64,
    /// HU mapped to 0 and 1.
    pub hu_window: (f32, f32),
    /// Tile size `[z, y, x]` in voxels.
    pub patch: [usize; 3],
    /// Output semantics.
    pub output: OutputSemantics,
    /// Probability above which a voxel is body.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// Try the CUDA execution provider first.
    #[serde(default)]
    pub use_cuda: bool,
}

fn default_threshold() -> f32 {
    0.5
}

/// Errors loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The manifest cannot be read or parsed, or is inconsistent.
    #[error("model manifest {path}: {message}")]
    Manifest {
        /// Manifest path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// ONNX Runtime could not be loaded (set `ORT_DYLIB_PATH`).
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
}

impl ModelManifest {
    /// Read and check a manifest.
    pub fn load(path: &Path) -> Result<Self, OnnxError> {
        let bad = |message: String| OnnxError::Manifest {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let m: ModelManifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if !(m.spacing_mm > 0.2 && m.spacing_mm <= 8.0) {
            return Err(bad(format!("spacing_mm {} not in (0.2, 8]", m.spacing_mm)));
        }
        if m.patch.iter().any(|&p| !(4..=512).contains(&p)) {
            return Err(bad(format!(
                "patch {:?}: each side must be 4..=512",
                m.patch
            )));
        }
        if m.hu_window.1 <= m.hu_window.0 {
            return Err(bad("hu_window must be increasing".into()));
        }
        Ok(m)
    }
}

/// The process-wide ONNX Runtime environment, loaded once from `ORT_DYLIB_PATH`.
fn environment() -> Result<&'static ort::environment::Environment, OnnxError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let lib = std::env::var_os("ORT_DYLIB_PATH")
            .ok_or_else(|| "ORT_DYLIB_PATH is not set".to_string())?;
        ort::init_from(PathBuf::from(lib))
            .map_err(|e| e.to_string())?
            .with_name("spinescreen")
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| OnnxError::Runtime(e.clone()))
}

/// Detector backed by an ONNX model.
pub struct OnnxDetector {
    manifest: ModelManifest,
    session: Mutex<Session>,
    cfg: ClassicalConfig,
}

impl OnnxDetector {
    /// Load the manifest and its model (needs `ORT_DYLIB_PATH`).
    pub fn from_manifest(path: &Path) -> Result<Self, OnnxError> {
        let manifest = ModelManifest::load(path)?;
        let model = path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&manifest.model);
        let env = environment()?;
        let rt = |e: ort::Error| OnnxError::Runtime(e.to_string());
        let mut builder = Session::builder(env).map_err(rt)?;
        if manifest.use_cuda {
            // Falls back to the CPU when the library has no CUDA provider.
            builder = builder
                .with_execution_providers([ort::ep::CUDA::default().build()])
                .map_err(|e| OnnxError::Runtime(e.to_string()))?;
        }
        let session = builder
            .commit_from_file(&model)
            .map_err(|e| OnnxError::Runtime(format!("{}: {e}", model.display())))?;
        Ok(Self {
            manifest,
            session: Mutex::new(session),
            cfg: ClassicalConfig::default(),
        })
    }

    /// The manifest in use.
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Run the model over the whole grid, tile by tile: body probability per grid voxel.
    pub fn probability(&self, g: &Grid) -> Result<Vec<f32>, OnnxError> {
        let [nx, ny, nz] = g.dims;
        let [pz, py, px] = self.manifest.patch;
        let (lo, hi) = self.manifest.hu_window;
        let norm = |v: f32| ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        let mut out = vec![0f32; g.data.len()];
        let rt = |e: ort::Error| OnnxError::Runtime(e.to_string());
        let mut session = self
            .session
            .lock()
            .map_err(|_| OnnxError::Runtime("session lock poisoned".into()))?;
        for z0 in (0..nz).step_by(pz) {
            for y0 in (0..ny).step_by(py) {
                for x0 in (0..nx).step_by(px) {
                    let mut tile = vec![norm(grid::OUTSIDE_HU); pz * py * px];
                    for z in 0..pz.min(nz - z0) {
                        for y in 0..py.min(ny - y0) {
                            for x in 0..px.min(nx - x0) {
                                tile[(z * py + y) * px + x] = norm(g.at(x0 + x, y0 + y, z0 + z));
                            }
                        }
                    }
                    let input = Tensor::from_array(([1usize, 1, pz, py, px], tile)).map_err(rt)?;
                    let outputs = session
                        .run(ort::inputs![self.manifest.input_name.as_str() => input])
                        .map_err(rt)?;
                    let value = outputs.get(&self.manifest.output_name).ok_or_else(|| {
                        OnnxError::Runtime(format!("no output {:?}", self.manifest.output_name))
                    })?;
                    let (shape, data) = value.try_extract_tensor::<f32>().map_err(rt)?;
                    if data.len() != pz * py * px {
                        return Err(OnnxError::Runtime(format!(
                            "output shape {shape:?} does not match the patch {:?}",
                            self.manifest.patch
                        )));
                    }
                    for z in 0..pz.min(nz - z0) {
                        for y in 0..py.min(ny - y0) {
                            for x in 0..px.min(nx - x0) {
                                out[g.idx(x0 + x, y0 + y, z0 + z)] = data[(z * py + y) * px + x];
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The model's centreline, then the shared measuring, on the volume with its ring
    /// artefacts corrected (as the classical detector does).
    fn analyse(&self, volume: &HuVolume) -> Result<Detection, Reason> {
        classical::with_rings_corrected(volume, &self.cfg, |v| self.analyse_corrected(v))
    }

    fn analyse_corrected(&self, volume: &HuVolume) -> Result<Detection, Reason> {
        let no_spine = |t: &str| Reason::new(ReasonCode::NO_SPINE, t);
        let g = grid::coarse_grid(volume, self.manifest.spacing_mm)
            .ok_or_else(|| no_spine("volume is empty or too large to resample"))?;
        let p = self
            .probability(&g)
            .map_err(|e| Reason::new(ReasonCode::INTERNAL_ERROR, e.to_string()))?;
        let centres = body_centres(&g, &p, self.manifest.threshold);
        let first = centres
            .iter()
            .position(Option::is_some)
            .ok_or_else(|| no_spine("the model found no vertebral body"))?;
        let last = centres.iter().rposition(Option::is_some).unwrap_or(first);
        let s = g.spacing;
        let z_of = |k: usize| g.origin[2] + k as f64 * s;
        let (mut bx, mut by, mut cx, mut cy, mut points) = (vec![], vec![], vec![], vec![], vec![]);
        for (k, c) in centres.iter().enumerate().take(last + 1).skip(first) {
            if let Some((x, y)) = *c {
                bx.push((z_of(k), x));
                by.push((z_of(k), y));
                // The canal lies behind the body; its exact place is not needed here.
                cx.push((z_of(k), x));
                cy.push((z_of(k), y + 25.0));
            }
        }
        let n = last - first + 1;
        let cl = centreline::from_samples(&g, first, n, &bx, &by, &cx, &cy, bx.len(), &self.cfg)
            .ok_or_else(|| no_spine("too few vertebral bodies for a centreline"))?;
        for i in 0..n {
            let f = cl.frame_at(cl.length() * (1.0 - i as f64 / (n.max(2) - 1) as f64));
            points.push((f.p[0], f.p[1] + 25.0, 6.0, true));
        }
        let track = CanalTrack {
            k_start: first,
            points,
            longest_gap_mm: 0.0,
        };
        classical::measure_and_name(volume, &g, &track, &cl, n as f64 * s, &self.cfg)
    }
}

/// Per axial slice, the probability-weighted centroid of the largest body component.
fn body_centres(g: &Grid, p: &[f32], thr: f32) -> Vec<Option<(f64, f64)>> {
    let (w, h) = (g.dims[0], g.dims[1]);
    let plane = w * h;
    (0..g.dims[2])
        .map(|k| {
            let sl = &p[k * plane..(k + 1) * plane];
            let m = Mask::threshold(sl, w, h, thr);
            let comp = mask2d::components(&m, true)
                .into_iter()
                .max_by_key(|c| c.pixels.len())?;
            if (comp.pixels.len() as f64) * g.spacing * g.spacing < 60.0 {
                return None;
            }
            let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
            for &i in &comp.pixels {
                let wgt = sl[i] as f64;
                sx += wgt * (i % w) as f64;
                sy += wgt * (i / w) as f64;
                sw += wgt;
            }
            Some((
                g.origin[0] + sx / sw * g.spacing,
                g.origin[1] + sy / sw * g.spacing,
            ))
        })
        .collect()
}

impl Detector for OnnxDetector {
    fn name(&self) -> String {
        format!("onnx:{}", self.manifest.name)
    }

    fn detect(&self, volume: &HuVolume) -> Detection {
        crate::classical::named_detection(self.name(), self.analyse(volume))
    }
}
