//! `spinescreen phantom`: generate a synthetic chest CT series with its ground truth.

use crate::{
    generate, write_dicom_series, write_preview_png, Confounder, FractureSpec, LastVertebra,
    PhantomSpec,
};
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `spinescreen phantom`.
#[derive(Debug, Clone, clap::Args)]
pub struct PhantomArgs {
    /// Output directory (DICOM slices, truth.json, preview.png).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of every random choice; the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Impose a fracture, LABEL:TYPE:FRACTION (TYPE wedge|biconcave|crush), repeatable.
    #[arg(long = "fracture", value_name = "LABEL:TYPE:FRACTION")]
    pub fractures: Vec<FractureSpec>,
    /// Scoliosis: lateral amplitude of the spine curve, mm.
    #[arg(long, default_value_t = 0.0)]
    pub scoliosis: f64,
    /// Thoracic kyphosis, degrees (default: normal, 35–45°).
    #[arg(long)]
    pub kyphosis: Option<f64>,
    /// Osteoporotic bone (trabecular ~70–100 HU).
    #[arg(long)]
    pub osteoporotic: bool,
    /// Add a confounder: ring|calcified-disc|osteophyte|schmorl|cement, repeatable.
    #[arg(long = "confounder", value_name = "KIND")]
    pub confounders: Vec<Confounder>,
    /// Columns and rows per slice.
    #[arg(long, default_value_t = 512)]
    pub matrix: usize,
    /// Number of slices.
    #[arg(long, default_value_t = 400)]
    pub slices: usize,
    /// Slice thickness = spacing, mm (default 1.0 to L2, 1.25 to L5).
    #[arg(long = "slice-thickness")]
    pub slice_thickness: Option<f64>,
    /// In-plane pixel spacing, mm (default: 360 mm field of view).
    #[arg(long = "pixel-spacing")]
    pub pixel_spacing: Option<f64>,
    /// Last vertebra covered: L2 (chest CT) or L5.
    #[arg(long = "to", default_value = "L2")]
    pub to: LastVertebra,
    /// Image noise, HU (standard deviation).
    #[arg(long, default_value_t = 15.0)]
    pub noise: f64,
    /// Also write preview.png (mid-sagittal plane and coronal rib projection).
    #[arg(long)]
    pub preview: bool,
}

impl PhantomArgs {
    /// The spec these arguments ask for.
    pub fn spec(&self) -> PhantomSpec {
        let default_thickness = match self.to {
            LastVertebra::L2 => 1.0,
            LastVertebra::L5 => 1.25,
        };
        PhantomSpec {
            seed: self.seed,
            fractures: self.fractures.clone(),
            scoliosis_mm: self.scoliosis,
            kyphosis_deg: self.kyphosis,
            osteoporotic: self.osteoporotic,
            confounders: self.confounders.clone(),
            matrix: self.matrix,
            slices: self.slices,
            slice_thickness_mm: self.slice_thickness.unwrap_or(default_thickness),
            pixel_spacing_mm: self.pixel_spacing,
            last_vertebra: self.to,
            noise_hu: self.noise,
        }
    }
}

/// Run `spinescreen phantom`.
pub fn run(args: &PhantomArgs) -> anyhow::Result<()> {
    let spec = args.spec();
    let started = std::time::Instant::now();
    let phantom = generate(&spec).context("generating the phantom")?;
    let generated = started.elapsed();
    let files = write_dicom_series(&phantom, &args.out).context("writing the DICOM series")?;
    if args.preview {
        write_preview_png(&phantom, &args.out.join("preview.png"))
            .context("writing the preview")?;
    }
    let t = &phantom.truth;
    // A closed stdout (e.g. piped into `head`) must not turn a finished study into a failure.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "wrote {} slices + truth.json to {} (generate {:.2} s, total {:.2} s); positive={} max_deformity={:.3}",
        files.len(),
        args.out.display(),
        generated.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        t.positive,
        t.max_deformity
    );
    for v in t
        .vertebrae
        .iter()
        .filter(|v| v.genant_grade as u8 > 0 || v.fracture.is_some())
    {
        let _ = writeln!(
            out,
            "  {}: deformity {:.3} ({:?}, Genant {})",
            v.label, v.deformity, v.deformity_type, v.genant_grade as u8
        );
    }
    Ok(())
}
