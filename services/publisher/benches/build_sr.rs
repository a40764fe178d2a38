//! SR building time for a full study: 17 vertebrae (T1–L5) and a 600-slice source series.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use spinescreen_proto::{
    BoneDensity, DeformityType, GenantGrade, Heights, Keypoints, ServiceInfo, StudyInfo,
    StudyResult, StudyStatus, TrabecularHu, VertebraResult,
};
use spinescreen_publisher::{build_sr, PublisherConfig};
use std::collections::BTreeMap;

fn fixture() -> (StudyResult, StudyInfo, ServiceInfo) {
    let study_uid = "1.2.826.0.1.3680043.8.498.77";
    let k = Keypoints {
        superior_anterior: [0.0; 3],
        superior_middle: [0.0; 3],
        superior_posterior: [0.0; 3],
        inferior_anterior: [0.0; 3],
        inferior_middle: [0.0; 3],
        inferior_posterior: [0.0; 3],
    };
    let vertebrae = spinescreen_proto::VertebraLevel::ALL[7..24]
        .iter()
        .enumerate()
        .map(|(i, l)| VertebraResult {
            label: *l,
            center_mm: [0.0, 0.0, -25.0 * i as f64],
            keypoints_mm: k,
            heights_mm: Heights {
                anterior: 20.0 + i as f64 * 0.3,
                middle: 21.0,
                posterior: 23.0,
            },
            deformity: 0.1,
            deformity_type: DeformityType::None,
            genant_grade: GenantGrade::Normal,
            trabecular_hu: (i >= 10).then_some(TrabecularHu {
                mean: 140.0,
                median: 141.0,
                voxels: 900,
            }),
            confidence: 0.9,
            flags: vec![],
        })
        .collect();
    let result = StudyResult {
        schema_version: spinescreen_proto::SCHEMA_VERSION,
        study_instance_uid: study_uid.into(),
        status: StudyStatus::Ok,
        reason: None,
        has_fracture: Some(false),
        fracture_probability: Some(0.1),
        max_deformity: Some(0.16),
        vertebrae,
        bone_density: Some(BoneDensity {
            level: spinescreen_proto::VertebraLevel::L1,
            hu: 140.0,
            iscd_category: "not_suggested".into(),
            pickhardt_category: "indeterminate".into(),
            contrast_agent: None,
        }),
        timings_ms: BTreeMap::new(),
        service: ServiceInfo {
            name: "SpineScreen CT".into(),
            version: "0.1.0".into(),
        },
        detector: String::new(),
        notes: vec![],
    };
    let study = StudyInfo {
        study_instance_uid: study_uid.into(),
        series_instance_uid: format!("{study_uid}.1"),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        sop_instance_uids: (1..=600).map(|i| format!("{study_uid}.1.{i}")).collect(),
        ..Default::default()
    };
    let service = result.service.clone();
    (result, study, service)
}

fn bench(c: &mut Criterion) {
    let (result, study, service) = fixture();
    let cfg = PublisherConfig::default();
    let bytes = build_sr(&result, &study, &cfg, &service).expect("SR builds");
    eprintln!("SR size: {} bytes", bytes.len());
    c.bench_function("build_sr 17 vertebrae + 600 source images", |b| {
        b.iter(|| build_sr(&result, &study, &cfg, &service).expect("SR builds"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
