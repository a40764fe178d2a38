//! Hand-built fixtures: results, study modules and secondary-capture files.
#![allow(dead_code)]

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use spinescreen_proto::{
    BoneDensity, DeformityType, GenantGrade, Heights, Keypoints, Reason, ReasonCode, ServiceInfo,
    StudyInfo, StudyResult, StudyStatus, TrabecularHu, VertebraResult,
};
use spinescreen_publisher::Destination;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const STUDY_UID: &str = "1.2.826.0.1.3680043.8.498.10";
pub const SERIES_UID: &str = "1.2.826.0.1.3680043.8.498.10.1";
pub const SC_SERIES_UID: &str = "1.2.826.0.1.3680043.8.498.10.2";

pub fn service() -> ServiceInfo {
    ServiceInfo {
        name: "SpineScreen CT".into(),
        version: "0.1.0".into(),
    }
}

pub fn study_info(instances: usize) -> StudyInfo {
    StudyInfo {
        patient_name: "Иванова^Мария".into(),
        patient_id: "MRN-0042".into(),
        patient_birth_date: "19480315".into(),
        patient_sex: "F".into(),
        patient_age: "077Y".into(),
        study_instance_uid: STUDY_UID.into(),
        study_date: "20240105".into(),
        study_time: "101500".into(),
        study_id: "S42".into(),
        accession_number: "ACC42".into(),
        referring_physician_name: "Petrov^Ivan".into(),
        study_description: "CT CHEST".into(),
        series_instance_uid: SERIES_UID.into(),
        series_number: "3".into(),
        frame_of_reference_uid: "1.2.826.0.1.3680043.8.498.10.9".into(),
        sop_class_uid: uids::CT_IMAGE_STORAGE.into(),
        sop_instance_uids: (1..=instances)
            .map(|i| format!("{SERIES_UID}.{i}"))
            .collect(),
        contrast_agent: None,
    }
}

fn kp(z: f64) -> Keypoints {
    Keypoints {
        superior_anterior: [0.0, -15.0, z + 12.0],
        superior_middle: [0.0, 0.0, z + 12.0],
        superior_posterior: [0.0, 15.0, z + 12.0],
        inferior_anterior: [0.0, -15.0, z - 12.0],
        inferior_middle: [0.0, 0.0, z - 12.0],
        inferior_posterior: [0.0, 15.0, z - 12.0],
    }
}

pub fn vertebra(
    label: &str,
    heights: (f64, f64, f64),
    grade: GenantGrade,
    kind: DeformityType,
    hu: Option<f64>,
) -> VertebraResult {
    let (a, m, p) = heights;
    let max = a.max(m).max(p);
    let min = a.min(m).min(p);
    let label: spinescreen_proto::VertebraLevel = label.parse().unwrap();
    let z = -30.0 * label.index() as f64;
    VertebraResult {
        label,
        center_mm: [0.0, 0.0, z],
        keypoints_mm: kp(z),
        heights_mm: Heights {
            anterior: a,
            middle: m,
            posterior: p,
        },
        deformity: 1.0 - min / max,
        deformity_type: kind,
        genant_grade: grade,
        trabecular_hu: hu.map(|h| TrabecularHu {
            mean: h,
            median: h + 1.0,
            voxels: 800,
        }),
        confidence: 0.9,
        flags: vec![],
    }
}

fn base(status: StudyStatus) -> StudyResult {
    StudyResult {
        schema_version: spinescreen_proto::SCHEMA_VERSION,
        study_instance_uid: STUDY_UID.into(),
        status,
        reason: None,
        has_fracture: Some(false),
        fracture_probability: Some(0.1),
        max_deformity: Some(0.1),
        vertebrae: vec![],
        bone_density: None,
        timings_ms: BTreeMap::from([
            ("ingest".to_string(), 1200),
            ("inference".to_string(), 5300),
        ]),
        service: service(),
        detector: "phantom".into(),
        notes: vec![],
    }
}

/// L1 Genant 3 (45 %), T12 Genant 2 (31 %), L1 87 HU.
pub fn positive_result() -> StudyResult {
    let mut r = base(StudyStatus::Ok);
    r.vertebrae = vec![
        vertebra(
            "T10",
            (22.0, 21.5, 22.5),
            GenantGrade::Normal,
            DeformityType::None,
            None,
        ),
        vertebra(
            "T11",
            (23.0, 22.0, 24.0),
            GenantGrade::Normal,
            DeformityType::None,
            Some(95.0),
        ),
        vertebra(
            "T12",
            (17.25, 22.0, 25.0),
            GenantGrade::Moderate,
            DeformityType::Wedge,
            Some(90.0),
        ),
        vertebra(
            "L1",
            (14.3, 20.0, 26.0),
            GenantGrade::Severe,
            DeformityType::Wedge,
            Some(87.0),
        ),
        vertebra(
            "L2",
            (27.0, 26.0, 27.5),
            GenantGrade::Normal,
            DeformityType::None,
            Some(92.0),
        ),
    ];
    r.has_fracture = Some(true);
    r.fracture_probability = Some(0.97);
    r.max_deformity = Some(0.45);
    r.bone_density = Some(BoneDensity {
        level: spinescreen_proto::VertebraLevel::L1,
        hu: 87.0,
        iscd_category: "osteoporosis_suggested".into(),
        pickhardt_category: "low".into(),
        contrast_agent: None,
    });
    r
}

pub fn negative_result() -> StudyResult {
    let mut r = base(StudyStatus::Ok);
    r.vertebrae = ["T9", "T10", "T11", "T12", "L1", "L2"]
        .iter()
        .map(|l| {
            vertebra(
                l,
                (24.0, 23.0, 25.0),
                GenantGrade::Normal,
                DeformityType::None,
                Some(185.0),
            )
        })
        .collect();
    r.bone_density = Some(BoneDensity {
        level: spinescreen_proto::VertebraLevel::L1,
        hu: 185.0,
        iscd_category: "not_suggested".into(),
        pickhardt_category: "normal".into(),
        contrast_agent: None,
    });
    r
}

pub fn defect_result() -> StudyResult {
    StudyResult::not_analysed(
        STUDY_UID.into(),
        StudyStatus::TechnicalDefect,
        Reason::new(
            ReasonCode::NO_CT_SERIES,
            "No CT image series among the received instances",
        ),
        service(),
    )
}

/// A tiny secondary-capture Part-10 file of the study (8×8 MONOCHROME2).
pub fn sc_file(index: usize) -> Vec<u8> {
    let sop = format!("{SC_SERIES_UID}.{}", index + 1);
    let s = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
    let obj = InMemDicomObject::from_element_iter([
        s(
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
        ),
        s(tags::SOP_INSTANCE_UID, VR::UI, &sop),
        s(tags::STUDY_INSTANCE_UID, VR::UI, STUDY_UID),
        s(tags::SERIES_INSTANCE_UID, VR::UI, SC_SERIES_UID),
        s(tags::MODALITY, VR::CS, "OT"),
        s(tags::CONVERSION_TYPE, VR::CS, "WSD"),
        s(tags::PATIENT_ID, VR::LO, "MRN-0042"),
        s(tags::INSTANCE_NUMBER, VR::IS, &(index + 1).to_string()),
        s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(8u16)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(8u16)),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(8u16)),
        DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(8u16)),
        DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(7u16)),
        DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
        DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PrimitiveValue::from(vec![index as u8; 64]),
        ),
    ]);
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .unwrap();
    let mut out = vec![];
    file.write_all(&mut out).unwrap();
    out
}

/// A port nobody listens on (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// DCMTK storescp (AE title `STORESCP`) on a free port writing into a temporary directory;
/// killed on drop.
pub struct StoreScp {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl StoreScp {
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("storescp")
            .args(["-aet", "STORESCP", "-od"])
            .arg(dir.path())
            .args(extra)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("storescp runs");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "storescp did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port, dir }
    }

    pub fn destination(&self) -> Destination {
        Destination::Cstore {
            host: "127.0.0.1".into(),
            port: self.port,
            called_ae: "STORESCP".into(),
            calling_ae: "SPINESCREEN".into(),
        }
    }

    /// SOP Instance UIDs of the received files, one per file, sorted.
    pub fn received(&self) -> Vec<String> {
        received_in(self.dir.path())
    }
}

impl Drop for StoreScp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SOP Instance UIDs of the DICOM files directly in `dir`, sorted.
pub fn received_in(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let not_dicom = name.starts_with('.') || name.ends_with(".png") || name.ends_with(".json");
        if p.is_file() && !not_dicom {
            let obj = dicom_object::open_file(&p).unwrap();
            out.push(obj.meta().media_storage_sop_instance_uid().to_string());
        }
    }
    out.sort();
    out
}
