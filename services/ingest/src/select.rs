//! Series selection: out of everything a reception holds, the one axial CT series best suited to
//! follow the spine, with a note on why every other series was passed over.
//!
//! Eligible: Modality CT (PS3.3 C.7.3.1.1.1), a CT image SOP class (CT, Enhanced CT, Legacy
//! Converted Enhanced CT, PS3.4 B.5), not a LOCALIZER (Image Type value 3, PS3.3 C.8.2.1.1.1),
//! axial (slice normal within ~37° of the patient's long axis). Ranked by: ORIGINAL before
//! DERIVED; slices ≤ 3 mm before thicker ones; longer craniocaudal coverage (in 10 mm steps);
//! thinner slices; more slices.

use crate::instance::{
    Instance, CT_IMAGE_STORAGE, ENHANCED_CT_IMAGE_STORAGE, LEGACY_ENHANCED_CT_IMAGE_STORAGE,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// Preferred maximum slice thickness, mm.
const THIN_MM: f64 = 3.0;
/// Minimum |normal · z| for a series to count as axial (cos 37°).
const AXIAL_MIN_COS: f64 = 0.8;

/// A frame of one instance: `(instance index, frame index in Instance::frames)`.
pub(crate) type FrameRef = (usize, usize);

/// The frames of one series, in arrival order.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// (0020,000D).
    pub study_uid: String,
    /// (0020,000E).
    pub series_uid: String,
    /// (0020,0011).
    pub series_number: String,
    /// Modality of the first instance.
    pub modality: String,
    /// Instances (indices into the reception) in this series.
    pub instances: Vec<usize>,
    /// All frames.
    pub frames: Vec<FrameRef>,
}

/// What happened to one series of the reception.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesNote {
    /// Study Instance UID (may be empty).
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// Series Number (may be empty).
    pub series_number: String,
    /// Modality.
    pub modality: String,
    /// Number of instances.
    pub instances: usize,
    /// `selected`, or why it was skipped or failed.
    pub outcome: String,
}

/// Outcome of selection: candidates best first, and notes on the ineligible.
pub(crate) struct Selection {
    /// Eligible series, best first.
    pub candidates: Vec<Series>,
    /// Ineligible series with the reason.
    pub skipped: Vec<(Series, String)>,
    /// Whether any series had modality CT.
    pub any_ct: bool,
}

fn normal(o: &[f64; 6]) -> [f64; 3] {
    let (r, c) = ([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
    let n = [
        r[1] * c[2] - r[2] * c[1],
        r[2] * c[0] - r[0] * c[2],
        r[0] * c[1] - r[1] * c[0],
    ];
    let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    if len > 1e-9 {
        n.map(|v| v / len)
    } else {
        [0.0, 0.0, 0.0]
    }
}

/// Unit normal of an Image Orientation (Patient) (row × column), PS3.3 C.7.6.2.1.1.
pub(crate) fn slice_normal(o: &[f64; 6]) -> [f64; 3] {
    normal(o)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// Ranking figures of an eligible series.
#[derive(Debug, Clone, Copy)]
struct Rank {
    original: bool,
    thin: bool,
    coverage_mm: f64,
    thickness_mm: f64,
    frames: usize,
}

fn rank(series: &Series, instances: &[Instance]) -> Rank {
    let frames: Vec<_> = series
        .frames
        .iter()
        .map(|&(i, f)| &instances[i].frames[f])
        .collect();
    let n = frames
        .iter()
        .find_map(|f| f.orientation)
        .map(|o| normal(&o))
        .unwrap_or([0.0, 0.0, 1.0]);
    let mut along: Vec<f64> = frames
        .iter()
        .filter_map(|f| f.position)
        .map(|p| p[0] * n[0] + p[1] * n[1] + p[2] * n[2])
        .collect();
    along.sort_by(|a, b| a.total_cmp(b));
    let gaps: Vec<f64> = along
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 1e-3)
        .collect();
    let thickness_mm = median(
        frames
            .iter()
            .filter_map(|f| f.thickness)
            .filter(|t| *t > 0.0)
            .collect(),
    )
    .or_else(|| median(gaps.clone()))
    .unwrap_or(f64::INFINITY);
    let coverage_mm = match (along.first(), along.last()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let original = series
        .instances
        .first()
        .is_some_and(|&i| instances[i].image_type.first().map(String::as_str) == Some("ORIGINAL"));
    Rank {
        original,
        thin: thickness_mm <= THIN_MM + 1e-3,
        coverage_mm,
        thickness_mm,
        frames: series.frames.len(),
    }
}

fn ineligibility(series: &Series, instances: &[Instance]) -> Option<String> {
    if series.modality != "CT" {
        let m = if series.modality.is_empty() {
            "none"
        } else {
            &series.modality
        };
        return Some(format!("modality {m}, not CT"));
    }
    let classes: HashSet<&str> = series
        .instances
        .iter()
        .map(|&i| instances[i].sop_class_uid.as_str())
        .collect();
    if let Some(other) = classes.iter().find(|c| {
        ![
            CT_IMAGE_STORAGE,
            ENHANCED_CT_IMAGE_STORAGE,
            LEGACY_ENHANCED_CT_IMAGE_STORAGE,
        ]
        .contains(c)
    }) {
        return Some(format!("SOP class {other} is not a CT image"));
    }
    if series
        .instances
        .iter()
        .any(|&i| instances[i].image_type.iter().any(|t| t == "LOCALIZER"))
    {
        return Some("localizer (scout) images".into());
    }
    let orientation = series
        .frames
        .iter()
        .find_map(|&(i, f)| instances[i].frames[f].orientation);
    if let Some(o) = orientation {
        let n = normal(&o);
        if n[2].abs() < AXIAL_MIN_COS {
            return Some(format!(
                "not axial (slice normal {:.2}, {:.2}, {:.2})",
                n[0], n[1], n[2]
            ));
        }
    }
    None
}

/// Group instances into series (duplicate SOP Instance UIDs, i.e. resent instances, count once)
/// and rank the eligible ones.
pub(crate) fn select(instances: &[Instance]) -> Selection {
    let mut by_series: BTreeMap<(String, String), Series> = BTreeMap::new();
    let mut seen = HashSet::new();
    for (i, inst) in instances.iter().enumerate() {
        if !inst.sop_instance_uid.is_empty() && !seen.insert(inst.sop_instance_uid.as_str()) {
            continue;
        }
        let s = by_series
            .entry((inst.study_uid.clone(), inst.series_uid.clone()))
            .or_insert_with(|| Series {
                study_uid: inst.study_uid.clone(),
                series_uid: inst.series_uid.clone(),
                series_number: inst.series_number.clone(),
                modality: inst.modality.clone(),
                instances: vec![],
                frames: vec![],
            });
        s.instances.push(i);
        s.frames.extend((0..inst.frames.len()).map(|f| (i, f)));
    }
    let mut any_ct = false;
    let mut ranked = vec![];
    let mut skipped = vec![];
    for series in by_series.into_values() {
        any_ct |= series.modality == "CT";
        match ineligibility(&series, instances) {
            Some(why) => skipped.push((series, why)),
            None => {
                let r = rank(&series, instances);
                ranked.push((series, r));
            }
        }
    }
    ranked.sort_by(|(_, a), (_, b)| {
        b.original
            .cmp(&a.original)
            .then(b.thin.cmp(&a.thin))
            .then(((b.coverage_mm / 10.0).floor()).total_cmp(&(a.coverage_mm / 10.0).floor()))
            .then(a.thickness_mm.total_cmp(&b.thickness_mm))
            .then(b.frames.cmp(&a.frames))
    });
    Selection {
        candidates: ranked.into_iter().map(|(s, _)| s).collect(),
        skipped,
        any_ct,
    }
}

impl Series {
    /// A note for the report.
    pub(crate) fn note(&self, outcome: impl Into<String>) -> SeriesNote {
        SeriesNote {
            study_uid: self.study_uid.clone(),
            series_uid: self.series_uid.clone(),
            series_number: self.series_number.clone(),
            modality: self.modality.clone(),
            instances: self.instances.len(),
            outcome: outcome.into(),
        }
    }
}
