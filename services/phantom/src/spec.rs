//! [`PhantomSpec`]: what phantom to generate — anatomy options, fractures, confounders, scan
//! geometry — and the text forms the CLI accepts (`L1:wedge:0.35`, `calcified-disc`, `L5`).

use crate::PhantomError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Labels that may be generated, cranial to caudal (T1 to L5).
pub const GENERATED_LABELS: [&str; 17] = [
    "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3",
    "L4", "L5",
];

/// Everything that defines one phantom study. The same spec (same `seed`) always gives the same
/// voxels, UIDs and files, byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhantomSpec {
    /// Seed of every random choice (anatomy variation, noise, patient, UIDs).
    pub seed: u64,
    /// Fractures to impose, at most one per vertebra.
    pub fractures: Vec<FractureSpec>,
    /// Scoliosis: amplitude (mm) of the lateral sine deviation of the spine; 0 = straight.
    pub scoliosis_mm: f64,
    /// Thoracic kyphosis (degrees of tangent change over T1–T12); `None` = normal, 35–45° from the seed.
    pub kyphosis_deg: Option<f64>,
    /// Osteoporotic trabecular bone (~70–100 HU instead of ~170–250 HU) and thinner cortex.
    pub osteoporotic: bool,
    /// Confounders (look-alikes of fractures) to add.
    pub confounders: Vec<Confounder>,
    /// Columns and rows of each slice (square matrix).
    pub matrix: usize,
    /// Number of axial slices.
    pub slices: usize,
    /// Slice thickness, mm; slices are contiguous (spacing = thickness).
    pub slice_thickness_mm: f64,
    /// In-plane pixel spacing, mm; `None` = a 360 mm field of view over `matrix` pixels.
    pub pixel_spacing_mm: Option<f64>,
    /// Most caudal vertebra covered (and reported in the truth).
    pub last_vertebra: LastVertebra,
    /// Standard deviation of the image noise, HU.
    pub noise_hu: f64,
    /// `--population`: the drawn patient and acquisition ([`crate::population`]); `None` for the
    /// classic idealised phantom (then absent from `truth.json`, whose bytes stay as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<crate::population::Population>,
}

impl Default for PhantomSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            fractures: Vec::new(),
            scoliosis_mm: 0.0,
            kyphosis_deg: None,
            osteoporotic: false,
            confounders: Vec::new(),
            matrix: 512,
            slices: 400,
            slice_thickness_mm: 1.0,
            pixel_spacing_mm: None,
            last_vertebra: LastVertebra::L2,
            noise_hu: 15.0,
            population: None,
        }
    }
}

impl PhantomSpec {
    /// Field of view used when `pixel_spacing_mm` is `None`, mm.
    pub const DEFAULT_FOV_MM: f64 = 360.0;

    /// A quick study for other stages' tests: 256² at 1.4 mm, 200 slices of 2 mm (T1–L2),
    /// normal anatomy from `seed`; ~0.5 s to generate in a debug build.
    pub fn coarse(seed: u64) -> Self {
        Self {
            seed,
            matrix: 256,
            pixel_spacing_mm: Some(1.4),
            slices: 200,
            slice_thickness_mm: 2.0,
            ..Self::default()
        }
    }

    /// In-plane pixel spacing in effect, mm.
    pub fn pixel_spacing(&self) -> f64 {
        self.pixel_spacing_mm
            .unwrap_or(Self::DEFAULT_FOV_MM / self.matrix.max(1) as f64)
    }

    /// Labels generated and reported, T1 to [`Self::last_vertebra`].
    pub fn labels(&self) -> &'static [&'static str] {
        &GENERATED_LABELS[..self.last_vertebra.count()]
    }

    /// Check ranges and consistency; `generate` calls this first.
    pub fn validate(&self) -> Result<(), PhantomError> {
        if !(32..=2048).contains(&self.matrix) {
            return Err(PhantomError::invalid(
                "matrix",
                format!("{} not in 32..=2048", self.matrix),
            ));
        }
        if !(8..=4000).contains(&self.slices) {
            return Err(PhantomError::invalid(
                "slices",
                format!("{} not in 8..=4000", self.slices),
            ));
        }
        if !(self.slice_thickness_mm.is_finite() && (0.3..=10.0).contains(&self.slice_thickness_mm))
        {
            return Err(PhantomError::invalid(
                "slice-thickness",
                format!("{} mm not in 0.3..=10", self.slice_thickness_mm),
            ));
        }
        let ps = self.pixel_spacing();
        if !(ps.is_finite() && (0.1..=5.0).contains(&ps)) {
            return Err(PhantomError::invalid(
                "pixel-spacing",
                format!("{ps} mm not in 0.1..=5"),
            ));
        }
        if ps * (self.matrix as f64) < 300.0 {
            return Err(PhantomError::invalid(
                "pixel-spacing",
                format!(
                    "field of view {:.0} mm is smaller than the 300 mm the torso needs",
                    ps * self.matrix as f64
                ),
            ));
        }
        if !(self.scoliosis_mm.is_finite() && (0.0..=60.0).contains(&self.scoliosis_mm)) {
            return Err(PhantomError::invalid(
                "scoliosis",
                format!("{} mm not in 0..=60", self.scoliosis_mm),
            ));
        }
        if let Some(k) = self.kyphosis_deg {
            if !(k.is_finite() && (0.0..=90.0).contains(&k)) {
                return Err(PhantomError::invalid(
                    "kyphosis",
                    format!("{k}° not in 0..=90"),
                ));
            }
        }
        if !(self.noise_hu.is_finite() && (0.0..=200.0).contains(&self.noise_hu)) {
            return Err(PhantomError::invalid(
                "noise",
                format!("{} HU not in 0..=200", self.noise_hu),
            ));
        }
        let labels = self.labels();
        for (i, f) in self.fractures.iter().enumerate() {
            let edge = f.label == FIRST_IN_VIEW || f.label == LAST_IN_VIEW;
            if edge && self.population.is_none() {
                return Err(PhantomError::invalid(
                    "fracture",
                    format!("{} needs --population (a drawn field of view)", f.label),
                ));
            }
            if !edge && !labels.contains(&f.label.as_str()) {
                return Err(PhantomError::invalid(
                    "fracture",
                    format!("{} is not generated (T1..{})", f.label, self.last_vertebra),
                ));
            }
            if !(f.fraction.is_finite() && (0.0..=0.8).contains(&f.fraction)) {
                return Err(PhantomError::invalid(
                    "fracture",
                    format!("fraction {} not in 0..=0.8", f.fraction),
                ));
            }
            if self.fractures[..i].iter().any(|g| g.label == f.label) {
                return Err(PhantomError::invalid(
                    "fracture",
                    format!("{} fractured twice", f.label),
                ));
            }
        }
        Ok(())
    }
}

/// Fracture label meaning the first vertebral body wholly in view (population studies).
pub const FIRST_IN_VIEW: &str = "FIRST";
/// Fracture label meaning the last vertebral body wholly in view (population studies).
pub const LAST_IN_VIEW: &str = "LAST";

/// One imposed fracture: which vertebra, which shape, how much height is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FractureSpec {
    /// Vertebra label, `T1`…`L5`; with `--population` also `FIRST` / `LAST` (the first / last
    /// body wholly in view), resolved to a level when the scene is built.
    pub label: String,
    /// Shape of the deformity.
    pub kind: FractureType,
    /// Height loss 0–1 of the affected height relative to its reference: wedge `1 − Ha/Hp`,
    /// biconcave `1 − Hm/Hp`, crush `1 − Hp/expected Hp` (Genant's semiquantitative measures).
    pub fraction: f64,
}

impl FromStr for FractureSpec {
    type Err = PhantomError;
    /// Parse `LABEL:TYPE:FRACTION`, e.g. `L1:wedge:0.35`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| PhantomError::Parse {
            what: "fracture",
            text: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 3 {
            return Err(err("expected LABEL:TYPE:FRACTION, e.g. L1:wedge:0.35"));
        }
        let label = parts[0].trim().to_ascii_uppercase();
        if !GENERATED_LABELS.contains(&label.as_str())
            && label != FIRST_IN_VIEW
            && label != LAST_IN_VIEW
        {
            return Err(err(
                "label must be one of T1..T12, L1..L5 (or first / last with --population)",
            ));
        }
        let kind: FractureType = parts[1].parse()?;
        let fraction: f64 = parts[2]
            .trim()
            .parse()
            .map_err(|_| err("fraction must be a number"))?;
        if !(fraction.is_finite() && (0.0..=0.8).contains(&fraction)) {
            return Err(err("fraction must be in 0..=0.8"));
        }
        Ok(FractureSpec {
            label,
            kind,
            fraction,
        })
    }
}

impl fmt::Display for FractureSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.label, self.kind, self.fraction)
    }
}

/// Genant's three deformity shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FractureType {
    /// Anterior height lost (`Ha` lowered).
    Wedge,
    /// Middle height lost: both endplates depressed centrally (`Hm` lowered).
    Biconcave,
    /// Whole body lowered (`Ha`, `Hm`, `Hp` all lowered).
    Crush,
}

impl FromStr for FractureType {
    type Err = PhantomError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wedge" => Ok(FractureType::Wedge),
            "biconcave" => Ok(FractureType::Biconcave),
            "crush" => Ok(FractureType::Crush),
            _ => Err(PhantomError::Parse {
                what: "fracture type",
                text: s.to_string(),
                reason: "expected wedge, biconcave or crush".into(),
            }),
        }
    }
}

impl fmt::Display for FractureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FractureType::Wedge => "wedge",
            FractureType::Biconcave => "biconcave",
            FractureType::Crush => "crush",
        })
    }
}

/// Findings that fooled real services (Artyukova et al. 2024; see `shared/DETECTION.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confounder {
    /// Ring artefact: concentric arcs about the isocentre (±100–200 HU).
    Ring,
    /// A bright flattened ovoid inside a disc space.
    CalcifiedDisc,
    /// An anterior bony spur beyond the anterior cortex line.
    Osteophyte,
    /// A focal pit in an endplate (< 1/3 of the depth).
    Schmorl,
    /// Vertebroplasty cement (~2500 HU) in a body, with streaks.
    Cement,
}

impl FromStr for Confounder {
    type Err = PhantomError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ring" => Ok(Confounder::Ring),
            "calcified-disc" => Ok(Confounder::CalcifiedDisc),
            "osteophyte" => Ok(Confounder::Osteophyte),
            "schmorl" => Ok(Confounder::Schmorl),
            "cement" => Ok(Confounder::Cement),
            _ => Err(PhantomError::Parse {
                what: "confounder",
                text: s.to_string(),
                reason: "expected ring, calcified-disc, osteophyte, schmorl or cement".into(),
            }),
        }
    }
}

impl fmt::Display for Confounder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Confounder::Ring => "ring",
            Confounder::CalcifiedDisc => "calcified-disc",
            Confounder::Osteophyte => "osteophyte",
            Confounder::Schmorl => "schmorl",
            Confounder::Cement => "cement",
        })
    }
}

/// The most caudal vertebra in the study: a chest CT ends near L2; `--to L5` covers the lumbar spine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum LastVertebra {
    /// Chest CT: T1–L2.
    #[default]
    L2,
    /// Chest + abdomen: T1–L5.
    L5,
}

impl LastVertebra {
    /// Number of vertebrae generated, from T1.
    pub fn count(self) -> usize {
        match self {
            LastVertebra::L2 => 14,
            LastVertebra::L5 => 17,
        }
    }
}

impl FromStr for LastVertebra {
    type Err = PhantomError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "L2" => Ok(LastVertebra::L2),
            "L5" => Ok(LastVertebra::L5),
            _ => Err(PhantomError::Parse {
                what: "last vertebra",
                text: s.to_string(),
                reason: "expected L2 or L5".into(),
            }),
        }
    }
}

impl fmt::Display for LastVertebra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LastVertebra::L2 => "L2",
            LastVertebra::L5 => "L5",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fracture_text_parses() {
        let f: FractureSpec = "l1:Wedge:0.35".parse().unwrap();
        assert_eq!(f.label, "L1");
        assert_eq!(f.kind, FractureType::Wedge);
        assert_eq!(f.fraction, 0.35);
        assert_eq!(f.to_string().parse::<FractureSpec>().unwrap(), f);
    }

    #[test]
    fn bad_fracture_text_is_an_error_not_a_panic() {
        for bad in [
            "L1",
            "L1:wedge",
            "C3:wedge:0.3",
            "L1:snap:0.3",
            "L1:wedge:x",
            "L1:crush:0.95",
            "L1:crush:NaN",
        ] {
            assert!(bad.parse::<FractureSpec>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn confounders_parse_in_cli_spelling() {
        for c in [
            Confounder::Ring,
            Confounder::CalcifiedDisc,
            Confounder::Osteophyte,
            Confounder::Schmorl,
            Confounder::Cement,
        ] {
            assert_eq!(c.to_string().parse::<Confounder>().unwrap(), c);
        }
        assert!("metal".parse::<Confounder>().is_err());
    }

    #[test]
    fn coarse_preset_is_valid_and_covers_t1_to_l2() {
        let spec = PhantomSpec::coarse(3);
        assert!(spec.validate().is_ok());
        assert_eq!(spec.labels().first(), Some(&"T1"));
        assert_eq!(spec.labels().last(), Some(&"L2"));
        let ph = crate::generate(&spec).expect("coarse preset fits its field of view");
        assert_eq!(ph.truth.vertebrae.len(), 14);
    }

    #[test]
    fn fracture_outside_generated_levels_is_rejected() {
        let spec = PhantomSpec {
            fractures: vec!["L4:wedge:0.3".parse().unwrap()],
            ..PhantomSpec::default()
        };
        assert!(spec.validate().is_err());
        let spec = PhantomSpec {
            last_vertebra: LastVertebra::L5,
            ..spec
        };
        assert!(spec.validate().is_ok());
    }
}
