//! Coded concepts used in the structured report, each with its source.
//!
//! Standard codes come from DICOM PS3.16 (coding schemes DCM, SCT, LN, UCUM, UMLS, RFC5646) as
//! the DCMTK code tables (`dcmsr/codes/*.h`, `dcmsr/libcmr/cid*.cc`) list them. Where no standard
//! concept exists (vertebral body heights, Genant grade, deformity type, the service's own text
//! items) the private coding scheme [`PRIVATE_SCHEME`] is used, as PS3.16 §8.2 allows, and
//! declared in the Coding Scheme Identification Sequence of every SR (PS3.3 C.12.1.1.2).

use spinescreen_proto::VertebraLevel;

/// A coded entry: Code Value, Coding Scheme Designator, Code Meaning (PS3.3 Table 8.8-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// (0008,0100) Code Value.
    pub value: &'static str,
    /// (0008,0102) Coding Scheme Designator.
    pub scheme: &'static str,
    /// (0008,0104) Code Meaning.
    pub meaning: &'static str,
}

const fn code(value: &'static str, scheme: &'static str, meaning: &'static str) -> Code {
    Code {
        value,
        scheme,
        meaning,
    }
}

/// Designator of spinescreen's private coding scheme (PS3.16 §8.2: private designators start
/// with "99").
pub const PRIVATE_SCHEME: &str = "99SPINESCREEN";
/// Human-readable name of [`PRIVATE_SCHEME`], written to the Coding Scheme Identification
/// Sequence.
pub const PRIVATE_SCHEME_NAME: &str = "spinescreen vertebral morphometry codes";

// --- Document structure (TID 1500, TID 1501, TID 1600, TID 1204, TID 1002/1004) ---

/// TID 1500 root: CID 7021 "Imaging Measurement Report".
pub const IMAGING_MEASUREMENT_REPORT: Code = code("126000", "DCM", "Imaging Measurement Report");
/// TID 1204 row 1: language of content item and descendants.
pub const LANGUAGE_OF_CONTENT: Code =
    code("121049", "DCM", "Language of Content Item and Descendants");
/// CID 5000 English.
pub const LANG_ENGLISH: Code = code("eng", "RFC5646", "English");
/// CID 5000 Russian (ISO 639-2 code, as CID 5000 spells its languages).
pub const LANG_RUSSIAN: Code = code("rus", "RFC5646", "Russian");
/// TID 1002 row 1: observer type.
pub const OBSERVER_TYPE: Code = code("121005", "DCM", "Observer Type");
/// CID 270 observer type "Device".
pub const DEVICE: Code = code("121007", "DCM", "Device");
/// TID 1004 row 1.
pub const DEVICE_OBSERVER_UID: Code = code("121012", "DCM", "Device Observer UID");
/// TID 1004 row 2.
pub const DEVICE_OBSERVER_NAME: Code = code("121013", "DCM", "Device Observer Name");
/// TID 1004 row 3.
pub const DEVICE_OBSERVER_MANUFACTURER: Code =
    code("121014", "DCM", "Device Observer Manufacturer");
/// TID 1004 row 4.
pub const DEVICE_OBSERVER_MODEL_NAME: Code = code("121015", "DCM", "Device Observer Model Name");
/// TID 1500 row 4: procedure reported.
pub const PROCEDURE_REPORTED: Code = code("121058", "DCM", "Procedure reported");
/// CID 100 (Quantitative Diagnostic Imaging Procedure) "CT unspecified body region".
pub const CT_UNSPECIFIED_BODY_REGION: Code = code("25045-6", "LN", "CT unspecified body region");
/// TID 1600 row 1.
pub const IMAGE_LIBRARY: Code = code("111028", "DCM", "Image Library");
/// TID 1600 row 2.
pub const IMAGE_LIBRARY_GROUP: Code = code("126200", "DCM", "Image Library Group");
/// TID 1500 row 6.
pub const IMAGING_MEASUREMENTS: Code = code("126010", "DCM", "Imaging Measurements");
/// TID 1501 row 1.
pub const MEASUREMENT_GROUP: Code = code("125007", "DCM", "Measurement Group");
/// TID 1501 row 2.
pub const TRACKING_IDENTIFIER: Code = code("112039", "DCM", "Tracking Identifier");
/// TID 1501 row 3.
pub const TRACKING_UNIQUE_IDENTIFIER: Code = code("112040", "DCM", "Tracking Unique Identifier");
/// TID 1501 row 6.
pub const FINDING_SITE: Code = code("363698007", "SCT", "Finding Site");
/// TID 1500 row 12: container of the report-level qualitative evaluations.
pub const QUALITATIVE_EVALUATIONS: Code = code("C0034375", "UMLS", "Qualitative Evaluations");
/// Conclusion (DCM 121077; 121076 "Conclusions" is retired).
pub const CONCLUSION: Code = code("121077", "DCM", "Conclusion");

// --- Measurements (TID 300 inside TID 1501) ---

/// Mean trabecular attenuation in the central ROI (DCM 112181).
pub const MEAN_ATTENUATION: Code = code("112181", "DCM", "Mean Attenuation Coefficient");
/// Median trabecular attenuation in the central ROI (DCM 112182).
pub const MEDIAN_ATTENUATION: Code = code("112182", "DCM", "Median Attenuation Coefficient");
/// Anterior vertebral body height Ha (no standard concept: private).
pub const ANTERIOR_HEIGHT: Code = code("HA", PRIVATE_SCHEME, "Anterior vertebral body height");
/// Middle vertebral body height Hm (private).
pub const MIDDLE_HEIGHT: Code = code("HM", PRIVATE_SCHEME, "Middle vertebral body height");
/// Posterior vertebral body height Hp (private).
pub const POSTERIOR_HEIGHT: Code = code("HP", PRIVATE_SCHEME, "Posterior vertebral body height");
/// Largest relative height loss, 1 − min/max of (Ha, Hm, Hp) (private).
pub const HEIGHT_LOSS: Code = code("HLOSS", PRIVATE_SCHEME, "Vertebral body height loss");
/// Genant semiquantitative grade (Genant et al., JBMR 1993) (private concept name).
pub const GENANT_GRADE: Code = code("GENANT", PRIVATE_SCHEME, "Genant semiquantitative grade");
/// Which height is lost most (private concept name).
pub const DEFORMITY_TYPE: Code = code("DEFTYPE", PRIVATE_SCHEME, "Vertebral deformity type");

/// Genant grade 0–3 values (private).
pub const GENANT_VALUES: [Code; 4] = [
    code("G0", PRIVATE_SCHEME, "Genant grade 0, normal"),
    code("G1", PRIVATE_SCHEME, "Genant grade 1, mild (20-25%)"),
    code("G2", PRIVATE_SCHEME, "Genant grade 2, moderate (25-40%)"),
    code("G3", PRIVATE_SCHEME, "Genant grade 3, severe (40% or more)"),
];
/// Deformity type "none" (private).
pub const DEFORMITY_NONE: Code = code("NONE", PRIVATE_SCHEME, "No deformity");
/// Deformity type "wedge": anterior height loss (private).
pub const DEFORMITY_WEDGE: Code = code("WEDGE", PRIVATE_SCHEME, "Wedge deformity");
/// Deformity type "biconcave": middle height loss (private).
pub const DEFORMITY_BICONCAVE: Code = code("BICONCAVE", PRIVATE_SCHEME, "Biconcave deformity");
/// Deformity type "crush": whole-body height loss (private).
pub const DEFORMITY_CRUSH: Code = code("CRUSH", PRIVATE_SCHEME, "Crush deformity");

// --- The experiment's mandatory text items (private concept names, except Conclusion) ---

/// Name of the service that produced the report.
pub const SERVICE_NAME: Code = code("SERVICE", PRIVATE_SCHEME, "Service name");
/// What the service does.
pub const SERVICE_DESCRIPTION: Code = code("DESCRIPTION", PRIVATE_SCHEME, "Service description");
/// How to read the report.
pub const USER_GUIDE: Code = code("GUIDE", PRIVATE_SCHEME, "User guide");

// --- Units (UCUM, CID 7181 / CID 82) ---

/// Millimetre.
pub const UCUM_MM: Code = code("mm", "UCUM", "millimeter");
/// Percent.
pub const UCUM_PERCENT: Code = code("%", "UCUM", "percent");
/// Hounsfield unit.
pub const UCUM_HU: Code = code("[hnsf'U]", "UCUM", "Hounsfield unit");

/// SNOMED CT body-structure concepts "Bone structure of T1" … "… of L5", the concepts DICOM
/// PS3.16 uses for individual vertebrae (e.g. L1 = 66794005, T12 = 23215003); the same codes
/// TotalSegmentator writes into its DICOM-SEG output (`totalsegmentator_snomed_mapping.csv`).
pub const VERTEBRAE: [(VertebraLevel, Code); 17] = [
    (VertebraLevel::T1, code("64864005", "SCT", "T1 vertebra")),
    (VertebraLevel::T2, code("53733008", "SCT", "T2 vertebra")),
    (VertebraLevel::T3, code("1626008", "SCT", "T3 vertebra")),
    (VertebraLevel::T4, code("73071006", "SCT", "T4 vertebra")),
    (VertebraLevel::T5, code("56401006", "SCT", "T5 vertebra")),
    (VertebraLevel::T6, code("45296009", "SCT", "T6 vertebra")),
    (VertebraLevel::T7, code("62487009", "SCT", "T7 vertebra")),
    (VertebraLevel::T8, code("11068009", "SCT", "T8 vertebra")),
    (VertebraLevel::T9, code("82687006", "SCT", "T9 vertebra")),
    (VertebraLevel::T10, code("7610001", "SCT", "T10 vertebra")),
    (VertebraLevel::T11, code("12989004", "SCT", "T11 vertebra")),
    (VertebraLevel::T12, code("23215003", "SCT", "T12 vertebra")),
    (VertebraLevel::L1, code("66794005", "SCT", "L1 vertebra")),
    (VertebraLevel::L2, code("14293000", "SCT", "L2 vertebra")),
    (VertebraLevel::L3, code("36470004", "SCT", "L3 vertebra")),
    (VertebraLevel::L4, code("11994002", "SCT", "L4 vertebra")),
    (VertebraLevel::L5, code("49668003", "SCT", "L5 vertebra")),
];

/// The SNOMED CT code of a vertebra label (`T1` … `L5`), `None` for other labels.
pub fn vertebra_code(label: VertebraLevel) -> Option<Code> {
    VERTEBRAE.iter().find(|(l, _)| *l == label).map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_graded_level_has_a_distinct_snomed_code() {
        let mut seen = std::collections::BTreeSet::new();
        for label in &VertebraLevel::ALL[7..24] {
            let c = vertebra_code(*label).expect("T1-L5 coded");
            assert_eq!(c.scheme, "SCT");
            assert!(seen.insert(c.value), "{label} shares a code");
        }
        assert_eq!(vertebra_code(VertebraLevel::L1).unwrap().value, "66794005");
        assert_eq!(vertebra_code(VertebraLevel::T12).unwrap().value, "23215003");
        assert!(vertebra_code(VertebraLevel::S1).is_none());
    }

    #[test]
    fn code_meanings_fit_lo() {
        // Code Meaning is LO: at most 64 characters (PS3.5 Table 6.2-1).
        let all = [
            IMAGING_MEASUREMENT_REPORT,
            LANGUAGE_OF_CONTENT,
            DEVICE_OBSERVER_MANUFACTURER,
            GENANT_GRADE,
            GENANT_VALUES[3],
            HEIGHT_LOSS,
        ];
        assert!(all
            .iter()
            .all(|c| c.meaning.len() <= 64 && c.value.len() <= 16));
        assert!(PRIVATE_SCHEME.len() <= 16 && PRIVATE_SCHEME.starts_with("99"));
    }
}
