//! The conclusion a radiologist reads, for positive, negative, defect and abstained studies.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use spinescreen_proto::{GenantGrade, Reason, ReasonCode, StudyResult, StudyStatus, VertebraFlag};
use spinescreen_publisher::text::conclusion;
use spinescreen_publisher::Language;

#[test]
fn positive_study_names_each_fracture_most_severe_first_with_bone_density() {
    assert_eq!(
        conclusion(&positive_result(), Language::En),
        "Compression deformity L1, Genant 3 (45%); T12, Genant 2 (31%). \
         L1 trabecular attenuation 87 HU: suggests osteoporosis."
    );
    assert_eq!(
        conclusion(&positive_result(), Language::Ru),
        "Компрессионная деформация L1, Genant 3 (45%); T12, Genant 2 (31%). \
         Трабекулярная плотность L1 87 HU: признаки остеопороза."
    );
}

#[test]
fn negative_study_says_target_pathology_not_detected_plus_bone_density() {
    assert_eq!(
        conclusion(&negative_result(), Language::En),
        "Target pathology not detected. L1 trabecular attenuation 185 HU: osteoporosis not suggested."
    );
    assert_eq!(
        conclusion(&negative_result(), Language::Ru),
        "Целевая патология не выявлена. Трабекулярная плотность L1 185 HU: признаков остеопороза нет."
    );
}

#[test]
fn mild_genant_1_is_mentioned_but_is_not_the_target_finding() {
    let mut r = negative_result();
    r.vertebrae[1].genant_grade = GenantGrade::Mild;
    r.vertebrae[1].deformity = 0.22;
    r.bone_density.as_mut().unwrap().hu = 130.0;
    r.bone_density.as_mut().unwrap().iscd_category = "not_suggested".into();
    r.bone_density.as_mut().unwrap().pickhardt_category = "indeterminate".into();
    r.bone_density.as_mut().unwrap().contrast_agent = Some("IOPAMIDOL".into());
    let text = conclusion(&r, Language::En);
    assert!(
        text.starts_with("Target pathology not detected. Mild deformity (Genant 1): T10 (22%)."),
        "{text}"
    );
    assert!(
        text.contains("130 HU: indeterminate for osteoporosis."),
        "{text}"
    );
    assert!(text.contains("Contrast-enhanced"), "{text}");
}

#[test]
fn technical_defect_gives_its_reason_and_code_in_both_languages() {
    let en = conclusion(&defect_result(), Language::En);
    assert_eq!(
        en,
        "Technical defect: No CT image series among the received instances [NO_CT_SERIES]. \
         The study was not analysed; target pathology was not assessed."
    );
    let ru = conclusion(&defect_result(), Language::Ru);
    assert!(
        ru.starts_with("Технический дефект: нет серии КТ-изображений [NO_CT_SERIES]."),
        "{ru}"
    );
    assert!(!ru.contains("trabecular"));
}

#[test]
fn abstained_study_says_why_and_keeps_bone_density_when_measured() {
    let mut r: StudyResult = positive_result();
    r.status = StudyStatus::Abstained;
    r.reason = Some(Reason::new(
        ReasonCode::SPINE_NOT_TRACEABLE,
        "Severe scoliosis",
    ));
    let en = conclusion(&r, Language::En);
    assert!(
        en.starts_with("Analysis declined: Severe scoliosis [SPINE_NOT_TRACEABLE]."),
        "{en}"
    );
    assert!(!en.contains("Compression deformity"), "{en}");
    assert!(
        en.ends_with("L1 trabecular attenuation 87 HU: suggests osteoporosis."),
        "{en}"
    );
    let ru = conclusion(&r, Language::Ru);
    assert!(
        ru.starts_with("Анализ не выполнен: не удалось проследить позвоночник"),
        "{ru}"
    );
}

#[test]
fn unknown_reason_code_falls_back_to_the_english_text() {
    let mut r = defect_result();
    r.reason = Some(Reason::new("NEW_CODE", "Something new."));
    assert!(conclusion(&r, Language::Ru).contains("Something new [NEW_CODE]"));
    r.reason = None;
    assert!(conclusion(&r, Language::En).contains("reason not recorded"));
}

#[test]
fn ok_study_without_measured_vertebrae_is_not_called_negative() {
    let mut r = negative_result();
    r.vertebrae.clear();
    let text = conclusion(&r, Language::En);
    assert!(!text.contains("not detected"), "{text}");
    assert!(text.starts_with("No vertebra could be measured"), "{text}");
}

#[test]
fn a_body_cut_by_the_scan_is_named_as_partially_imaged() {
    let mut r = negative_result();
    r.vertebrae[0].flags = vec![VertebraFlag::Truncated, VertebraFlag::NotGradable];
    let label = r.vertebrae[0].label;
    let en = conclusion(&r, Language::En);
    assert!(
        en.contains(&format!("Not assessable: {label} (partially imaged).")),
        "{en}"
    );
    let ru = conclusion(&r, Language::Ru);
    assert!(
        ru.contains(&format!(
            "Не оценены: {label} (частично в зоне сканирования)."
        )),
        "{ru}"
    );
}

#[test]
fn a_negative_finding_names_the_levels_it_holds_for_when_some_were_not_assessable() {
    let mut r = negative_result();
    let labels: Vec<String> = r.vertebrae.iter().map(|v| v.label.to_string()).collect();
    assert!(labels.len() >= 3, "fixture has {labels:?}");
    r.vertebrae[1].flags = vec![VertebraFlag::EndplatesNotTraced, VertebraFlag::NotGradable];
    let en = conclusion(&r, Language::En);
    assert!(en.starts_with("Target pathology not detected."), "{en}");
    let rest: Vec<&str> = labels
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l.as_str())
        .collect();
    assert!(en.contains(&format!("Assessed: {}", rest[0])), "{en}");
    assert!(
        en.contains(&format!("Not assessable: {}.", labels[1])),
        "{en}"
    );
    // With every level assessed, no list is added.
    assert!(!conclusion(&negative_result(), Language::En).contains("Assessed"));
}
