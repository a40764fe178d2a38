//! A FHIR R4 DiagnosticReport for the webhook destination (hl7.org/fhir/R4/diagnosticreport.html),
//! with one contained Observation per vertebra (body site coded in SNOMED CT, as in the SR).
//!
//! Status is `preliminary`: like the SR (VerificationFlag UNVERIFIED) nobody has signed it yet.

use crate::codes;
use crate::config::PublisherConfig;
use crate::text;
use serde_json::{json, Value};
use spinescreen_proto::{ServiceInfo, StudyInfo, StudyResult};

const SCT: &str = "http://snomed.info/sct";
const UCUM: &str = "http://unitsofmeasure.org";
const LOINC: &str = "http://loinc.org";

fn quantity(value: f64, code: &str, unit: &str) -> Value {
    json!({ "value": (value * 100.0).round() / 100.0, "unit": unit, "system": UCUM, "code": code })
}

fn component(text: &str, value: Value) -> Value {
    json!({ "code": { "text": text }, "valueQuantity": value })
}

/// Build the DiagnosticReport. `sr_sop_instance_uid` identifies it (the same UID as the SR, so
/// a receiver can de-duplicate redeliveries); `issued` is an RFC 3339 instant.
pub fn diagnostic_report(
    result: &StudyResult,
    study: &StudyInfo,
    cfg: &PublisherConfig,
    service: &ServiceInfo,
    sr_sop_instance_uid: &str,
    issued: &str,
) -> Value {
    let mut observations = vec![];
    for v in &result.vertebrae {
        let h = v.heights_mm;
        let mut components = vec![
            component(
                codes::ANTERIOR_HEIGHT.meaning,
                quantity(h.anterior, "mm", "mm"),
            ),
            component(codes::MIDDLE_HEIGHT.meaning, quantity(h.middle, "mm", "mm")),
            component(
                codes::POSTERIOR_HEIGHT.meaning,
                quantity(h.posterior, "mm", "mm"),
            ),
            json!({
                "code": { "text": codes::GENANT_GRADE.meaning },
                "valueInteger": u8::from(v.genant_grade),
            }),
        ];
        if let Some(t) = v.trabecular_hu {
            components.push(component(
                codes::MEAN_ATTENUATION.meaning,
                quantity(t.mean, "[hnsf'U]", "HU"),
            ));
        }
        let mut obs = json!({
            "resourceType": "Observation",
            "id": format!("vertebra-{}", v.label),
            "status": "preliminary",
            "code": { "text": codes::HEIGHT_LOSS.meaning },
            "valueQuantity": quantity(v.deformity * 100.0, "%", "%"),
            "component": components,
        });
        if let Some(site) = codes::vertebra_code(v.label) {
            obs["bodySite"] = json!({
                "coding": [{ "system": SCT, "code": site.value, "display": site.meaning }],
                "text": v.label,
            });
        }
        observations.push(obs);
    }
    let results: Vec<Value> = observations
        .iter()
        .map(|o| json!({ "reference": format!("#{}", o["id"].as_str().unwrap_or_default()) }))
        .collect();

    let mut report = json!({
        "resourceType": "DiagnosticReport",
        "identifier": [{ "system": "urn:dicom:uid", "value": format!("urn:oid:{sr_sop_instance_uid}") }],
        "status": "preliminary",
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
            "code": "RAD", "display": "Radiology"
        }]}],
        "code": {
            "coding": [{
                "system": LOINC,
                "code": codes::CT_UNSPECIFIED_BODY_REGION.value,
                "display": codes::CT_UNSPECIFIED_BODY_REGION.meaning
            }],
            "text": service.name,
        },
        "issued": issued,
        "performer": [{ "display": format!("{} {} ({})", service.name, service.version, cfg.manufacturer) }],
        "imagingStudy": [{ "identifier": {
            "system": "urn:dicom:uid",
            "value": format!("urn:oid:{}", result.study_instance_uid)
        }}],
        "conclusion": text::conclusion(result, cfg.language),
        "extension": [{
            "url": "urn:spinescreen:status",
            "valueCode": result.status.as_str()
        }],
        "contained": observations,
        "result": results,
    });
    if !study.patient_id.is_empty() {
        report["subject"] = json!({ "identifier": { "value": study.patient_id } });
    }
    if study.study_date.len() == 8 && study.study_date.bytes().all(|b| b.is_ascii_digit()) {
        let d = &study.study_date;
        report["effectiveDateTime"] = json!(format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]));
    }
    report
}
