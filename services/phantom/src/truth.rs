//! The ground truth written beside every phantom (`truth.json`): per vertebra its label,
//! centre, six keypoints, three heights, deformity, type and Genant grade, computed from the
//! generated geometry with the same definitions morphometry uses (issue 6): wedge
//! `1 − Ha/Hp`, biconcave `1 − Hm/Hp`, crush `1 − Hp/expected Hp` (expected from the nearest
//! unfractured neighbours above and below, scaled by the nominal level heights); deformity is
//! the largest, graded after Genant et al. (J Bone Miner Res 1993;8:1137–48).

use crate::geom::V3;
use crate::scene::{ConfounderSite, Scene};
use crate::spec::{FractureType, PhantomSpec};
use crate::spine::ratios;
use serde::{Deserialize, Serialize};
use spinescreen_proto::{DeformityType, GenantGrade, Heights, Keypoints, VertebraFlag};

/// Study-level truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Any vertebra with deformity > 0.25 (Genant grade ≥ 2).
    pub positive: bool,
    /// The largest deformity of any reported vertebra.
    pub max_deformity: f64,
    /// The spec that generated the study.
    pub options: PhantomSpec,
    /// (0020,000D) of the written series.
    pub study_instance_uid: String,
    /// (0020,000E) of the written series.
    pub series_instance_uid: String,
    /// Fake patient's age in years (55–85 classic; 40–95 drawn with `--population`).
    pub patient_age: u32,
    /// `F` or `M`.
    pub patient_sex: String,
    /// Reported vertebrae, cranial to caudal (T1..last).
    pub vertebrae: Vec<TruthVertebra>,
    /// Where each requested confounder was placed.
    pub confounders: Vec<ConfounderSite>,
    /// Population studies: slice thickness (= spacing) actually used, mm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice_thickness_mm: Option<f64>,
    /// Population studies: the first and last levels (C5…S2) with any of their body in view;
    /// `vertebrae` lists only the T1–L5 bodies wholly in view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels_in_view: Option<[String; 2]>,
}

impl Truth {
    /// The reported vertebra with this label, if generated.
    pub fn vertebra(&self, label: &str) -> Option<&TruthVertebra> {
        self.vertebrae.iter().find(|v| v.label == label)
    }
}

/// Truth for one vertebra.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthVertebra {
    /// `T1`…`L5`.
    pub label: String,
    /// Centre of the body, patient mm (LPS).
    pub center_mm: V3,
    /// Ha, Hm, Hp along the vertebra's own axis, endplate to endplate, mm.
    pub heights_mm: Heights,
    /// max(wedge, biconcave, crush), 0–1.
    pub deformity: f64,
    /// The three ratios whose maximum is `deformity`.
    pub ratios: Ratios,
    /// Which ratio is largest, or `none` below grade 1.
    #[serde(rename = "type")]
    pub deformity_type: DeformityType,
    /// Genant grade from `deformity`.
    pub genant_grade: GenantGrade,
    /// Mean trabecular attenuation of the body's core, HU (before noise).
    pub trabecular_hu: f64,
    /// The six endplate keypoints, patient mm, in the vertebra's mid-sagittal plane.
    pub keypoints_mm: Keypoints,
    /// Unit anterior direction of the vertebra.
    pub anterior_dir: V3,
    /// Unit cranial direction (axis) of the vertebra.
    pub cranial_dir: V3,
    /// Antero-posterior depth of the body at mid-height, mm (the 15/50/85 % columns refer to it).
    pub depth_mm: f64,
    /// Width of the body, mm.
    pub width_mm: f64,
    /// The imposed fracture, if any.
    pub fracture: Option<FractureTruth>,
    /// Confounders at this level: `cement`, `osteophyte`, `schmorl_node`, `calcified_disc_below`.
    pub flags: Vec<String>,
}

/// Genant's three ratios.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    /// 1 − Ha/Hp.
    pub wedge: f64,
    /// 1 − Hm/Hp.
    pub biconcave: f64,
    /// 1 − Hp/expected Hp.
    pub crush: f64,
}

/// An imposed fracture as requested.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FractureTruth {
    /// Shape.
    pub kind: FractureType,
    /// Requested height loss.
    pub fraction: f64,
}

/// Smallest wedge ratio (1 − Ha/Hp) flagged `physiological_wedge` on an unfractured T5–T10
/// body of a population study.
pub const PHYSIOLOGICAL_WEDGE_MIN: f64 = 0.03;

/// Genant grade of a deformity: 0 (< 20 %), 1 (20–25 %), 2 (25–40 %), 3 (≥ 40 %).
pub fn genant_grade(deformity: f64) -> GenantGrade {
    if deformity < 0.20 {
        GenantGrade::Normal
    } else if deformity < 0.25 {
        GenantGrade::Mild
    } else if deformity < 0.40 {
        GenantGrade::Moderate
    } else {
        GenantGrade::Severe
    }
}

fn round(x: f64, d: i32) -> f64 {
    let f = 10f64.powi(d);
    (x * f).round() / f
}

fn round3(p: V3, d: i32) -> V3 {
    [round(p[0], d), round(p[1], d), round(p[2], d)]
}

/// Compute the truth of a scene.
pub fn compute(scene: &Scene, study_uid: &str, series_uid: &str) -> Truth {
    let vs = &scene.spine.vertebrae;
    let mut out = Vec::new();
    for (i, v) in vs.iter().enumerate() {
        if !v.reported {
            continue;
        }
        let [hp, hm, ha] = v.heights();
        let r = ratios(vs, i);
        let deformity = r[0].max(r[1]).max(r[2]).max(0.0);
        let grade = genant_grade(deformity);
        let deformity_type = if grade == GenantGrade::Normal {
            DeformityType::None
        } else if r[0] >= r[1] && r[0] >= r[2] {
            DeformityType::Wedge
        } else if r[1] >= r[2] {
            DeformityType::Biconcave
        } else {
            DeformityType::Crush
        };
        let [sup, inf] = v.keypoints_local();
        let kp = |l: V3| round3(v.frame.to_patient(l), 3);
        let mut flags = Vec::new();
        if v.cement {
            flags.push(VertebraFlag::Cement.to_string());
        }
        if v.osteophyte {
            flags.push("osteophyte".to_string());
        }
        if v.pit.is_some() {
            flags.push(VertebraFlag::SchmorlNode.to_string());
        }
        // Population: the natural anterior wedge of a mid-thoracic body is marked, so nobody
        // takes its Ha/Hp < 1 for a fracture; it stays below 20 % (Genant 0).
        if scene.spec.population.is_some()
            && v.fracture.is_none()
            && (5..=10).contains(&v.level)
            && r[0] >= PHYSIOLOGICAL_WEDGE_MIN
        {
            flags.push("physiological_wedge".to_string());
        }
        for s in &scene.sites {
            if s.kind == crate::spec::Confounder::CalcifiedDisc
                && s.label.as_deref() == Some(v.label)
            {
                flags.push("calcified_disc_below".to_string());
            }
        }
        out.push(TruthVertebra {
            label: v.label.to_string(),
            center_mm: round3(v.frame.to_patient(v.centre_local()), 3),
            heights_mm: Heights {
                anterior: round(ha, 3),
                middle: round(hm, 3),
                posterior: round(hp, 3),
            },
            deformity: round(deformity, 4),
            ratios: Ratios {
                wedge: round(r[0], 4),
                biconcave: round(r[1], 4),
                crush: round(r[2], 4),
            },
            deformity_type,
            genant_grade: grade,
            trabecular_hu: round(v.trabecular_hu, 1),
            keypoints_mm: Keypoints {
                superior_anterior: kp(sup[2]),
                superior_middle: kp(sup[1]),
                superior_posterior: kp(sup[0]),
                inferior_anterior: kp(inf[2]),
                inferior_middle: kp(inf[1]),
                inferior_posterior: kp(inf[0]),
            },
            anterior_dir: round3(v.frame.ev, 6),
            cranial_dir: round3(v.frame.ew, 6),
            depth_mm: round(2.0 * v.b, 3),
            width_mm: round(2.0 * v.a, 3),
            fracture: v
                .fracture
                .map(|(kind, fraction)| FractureTruth { kind, fraction }),
            flags,
        });
    }
    let max_deformity = out.iter().map(|v| v.deformity).fold(0.0, f64::max);
    Truth {
        positive: out.iter().any(|v| v.deformity > 0.25),
        max_deformity,
        options: scene.spec.clone(),
        study_instance_uid: study_uid.to_string(),
        series_instance_uid: series_uid.to_string(),
        patient_age: scene.patient.age,
        patient_sex: scene.patient.sex.to_string(),
        vertebrae: out,
        confounders: scene.sites.clone(),
        slice_thickness_mm: scene.spec.population.as_ref().map(|_| scene.grid.dz),
        levels_in_view: scene.spec.population.as_ref().map(|_| {
            let (a, b) = scene.levels_in_view();
            [a, b]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genant_boundaries() {
        assert_eq!(genant_grade(0.199), GenantGrade::Normal);
        assert_eq!(genant_grade(0.20), GenantGrade::Mild);
        assert_eq!(genant_grade(0.25), GenantGrade::Moderate);
        assert_eq!(genant_grade(0.35), GenantGrade::Moderate);
        assert_eq!(genant_grade(0.40), GenantGrade::Severe);
    }
}
