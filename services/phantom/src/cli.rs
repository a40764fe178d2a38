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
    /// Draw the patient and the acquisition from the screened population (age 40–95, both
    /// sexes, bone density by age and sex, field of view C5–T4 to T10–S2, 0.625–5 mm slices,
    /// kernels, contrast); every other flag given overrides one drawn choice.
    #[arg(long)]
    pub population: bool,
    /// With --population: no fracture, whatever the draw (a negative study).
    #[arg(long = "no-fracture", conflicts_with = "fractures")]
    pub no_fracture: bool,
    /// With --population: none of the drawn confounders (calcified disc, Schmorl node).
    #[arg(long = "no-confounder", conflicts_with = "confounders")]
    pub no_confounder: bool,
    /// Impose a fracture, LABEL:TYPE:FRACTION (TYPE wedge|biconcave|crush), repeatable; with
    /// --population LABEL may be `first` / `last` (the first / last body wholly in view).
    #[arg(long = "fracture", value_name = "LABEL:TYPE:FRACTION")]
    pub fractures: Vec<FractureSpec>,
    /// Scoliosis: lateral amplitude of the spine curve, mm (default 0).
    #[arg(long)]
    pub scoliosis: Option<f64>,
    /// Thoracic kyphosis, degrees (default: normal, 35–45°).
    #[arg(long)]
    pub kyphosis: Option<f64>,
    /// Osteoporotic bone (trabecular ~70–100 HU).
    #[arg(long)]
    pub osteoporotic: bool,
    /// Add a confounder: ring|calcified-disc|osteophyte|schmorl|cement, repeatable.
    #[arg(long = "confounder", value_name = "KIND")]
    pub confounders: Vec<Confounder>,
    /// Columns and rows per slice (default 512).
    #[arg(long)]
    pub matrix: Option<usize>,
    /// Number of slices (default 400; with --population: as many as the drawn field of view).
    #[arg(long)]
    pub slices: Option<usize>,
    /// Slice thickness = spacing, mm (default 1.0 to L2, 1.25 to L5).
    #[arg(long = "slice-thickness")]
    pub slice_thickness: Option<f64>,
    /// In-plane pixel spacing, mm (default: 360 mm field of view).
    #[arg(long = "pixel-spacing")]
    pub pixel_spacing: Option<f64>,
    /// Last vertebra covered: L2 (chest CT, the default) or L5; with --population the field of
    /// view then ends just below that body.
    #[arg(long = "to")]
    pub to: Option<LastVertebra>,
    /// Image noise, HU (standard deviation; default 15, with --population by kernel, slice
    /// thickness and body size).
    #[arg(long)]
    pub noise: Option<f64>,
    /// Also write preview.png (mid-sagittal plane and coronal rib projection).
    #[arg(long)]
    pub preview: bool,
}

impl PhantomArgs {
    /// The spec these arguments ask for.
    pub fn spec(&self) -> PhantomSpec {
        if self.population {
            return self.population_spec();
        }
        let to = self.to.unwrap_or_default();
        let default_thickness = match to {
            LastVertebra::L2 => 1.0,
            LastVertebra::L5 => 1.25,
        };
        PhantomSpec {
            seed: self.seed,
            fractures: self.fractures.clone(),
            scoliosis_mm: self.scoliosis.unwrap_or(0.0),
            kyphosis_deg: self.kyphosis,
            osteoporotic: self.osteoporotic,
            confounders: self.confounders.clone(),
            matrix: self.matrix.unwrap_or(512),
            slices: self.slices.unwrap_or(400),
            slice_thickness_mm: self.slice_thickness.unwrap_or(default_thickness),
            pixel_spacing_mm: self.pixel_spacing,
            last_vertebra: to,
            noise_hu: self.noise.unwrap_or(15.0),
            population: None,
        }
    }

    /// `--population`: the seed's draw, then each flag given overrides its choice.
    fn population_spec(&self) -> PhantomSpec {
        let mut s = crate::population::draw(self.seed);
        let Some(mut p) = s.population.take() else {
            return s;
        };
        if !self.fractures.is_empty() {
            s.fractures = self.fractures.clone();
        }
        if self.no_fracture {
            s.fractures.clear();
        }
        if let Some(v) = self.scoliosis {
            s.scoliosis_mm = v;
            p.scoliosis_mm = v;
        }
        if let Some(v) = self.kyphosis {
            s.kyphosis_deg = Some(v);
            p.kyphosis_deg = v;
        }
        if self.osteoporotic {
            crate::population::make_osteoporotic(&mut p, self.seed);
            s.osteoporotic = true;
        }
        if !self.confounders.is_empty() {
            s.confounders = self.confounders.clone();
        }
        if self.no_confounder {
            s.confounders.clear();
        }
        if let Some(m) = self.matrix {
            s.matrix = m;
        }
        s.pixel_spacing_mm = Some(
            self.pixel_spacing
                .unwrap_or(p.display_fov_mm / s.matrix.max(1) as f64),
        );
        if let Some(t) = self.slice_thickness {
            s.slice_thickness_mm = t;
        }
        if let Some(n) = self.slices {
            s.slices = n;
            p.slices_from_fov = false;
        }
        if let Some(to) = self.to {
            // End just below the requested body, so it lies wholly in view.
            p.fov_end = to.to_string();
            p.fov_end_frac = -0.2;
        }
        s.noise_hu = self
            .noise
            .unwrap_or(crate::population::noise_for(&p, s.slice_thickness_mm));
        s.population = Some(p);
        s
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
