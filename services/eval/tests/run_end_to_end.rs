//! `run()` over tiny fake studies: every file is written and the figures match the cases.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_eval::{run, EvalArgs};
use spinescreen_proto::{
    DeformityType, GenantGrade, Heights, Keypoints, Reason, ReasonCode, ServiceInfo, StudyResult,
    StudyStatus, VertebraResult,
};
use std::collections::BTreeMap;
use std::path::Path;

fn service() -> ServiceInfo {
    ServiceInfo {
        name: "spinescreen".into(),
        version: "0.1.0".into(),
    }
}

fn vertebra(label: &str, grade: u8, deformity: f64) -> VertebraResult {
    let p = [0.0; 3];
    VertebraResult {
        label: label.parse().unwrap(),
        center_mm: p,
        keypoints_mm: Keypoints {
            superior_anterior: p,
            superior_middle: p,
            superior_posterior: p,
            inferior_anterior: p,
            inferior_middle: p,
            inferior_posterior: p,
        },
        heights_mm: Heights {
            anterior: 20.0,
            middle: 20.0,
            posterior: 20.0,
        },
        deformity,
        deformity_type: if grade == 0 {
            DeformityType::None
        } else {
            DeformityType::Wedge
        },
        genant_grade: GenantGrade::try_from(grade).unwrap(),
        trabecular_hu: None,
        confidence: 0.9,
        flags: vec![],
    }
}

/// An ok result whose L1 has `deformity`, T12 normal.
fn ok_result(uid: &str, deformity: f64, ms: u64) -> StudyResult {
    let grade = match deformity {
        d if d >= 0.40 => 3,
        d if d >= 0.25 => 2,
        d if d >= 0.20 => 1,
        _ => 0,
    };
    let z = (deformity - 0.25) / 0.03;
    StudyResult {
        schema_version: 1,
        study_instance_uid: uid.into(),
        status: StudyStatus::Ok,
        reason: None,
        has_fracture: Some(grade >= 2),
        fracture_probability: Some(1.0 / (1.0 + (-z).exp())),
        max_deformity: Some(deformity),
        vertebrae: vec![vertebra("T12", 0, 0.05), vertebra("L1", grade, deformity)],
        bone_density: None,
        timings_ms: BTreeMap::from([("end_to_end".to_string(), ms)]),
        service: service(),
        detector: "test".into(),
        notes: vec![],
    }
}

fn write(dir: &Path, case: &str, r: &StudyResult) {
    let d = dir.join(case);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("result.json"), serde_json::to_vec(r).unwrap()).unwrap();
}

#[test]
fn run_reads_results_and_writes_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    // p1..p3 positive (p3 missed at 0.22), n1..n3 negative (n3 a false positive at 0.30),
    // n4 a technical defect, p4 with no result.json at all.
    write(&results, "p1", &ok_result("1.1", 0.45, 40_000));
    write(&results, "p2", &ok_result("1.2", 0.31, 60_000));
    write(&results, "p3", &ok_result("1.3", 0.22, 50_000));
    write(&results, "n1", &ok_result("1.4", 0.05, 30_000));
    write(&results, "n2", &ok_result("1.5", 0.12, 70_000));
    write(&results, "n3", &ok_result("1.6", 0.30, 50_000));
    let mut defect = StudyResult::not_analysed(
        "1.7".into(),
        StudyStatus::TechnicalDefect,
        Reason::new(ReasonCode::NO_CT_SERIES, "no CT"),
        service(),
    );
    defect.timings_ms.insert("end_to_end".into(), 50_000);
    write(&results, "n4", &defect);
    let truth = tmp.path().join("truth.csv");
    std::fs::write(
        &truth,
        "case_id,positive,grades\np1,1,L1=3\np2,1,L1=2\np3,1,L1=2\nn1,0,\nn2,0,\nn3,0,\nn4,0,\np4,1,L2=2\n",
    )
    .unwrap();
    let out = tmp.path().join("report");
    let args = EvalArgs {
        studies: None,
        truth,
        out: out.clone(),
        results: Some(results),
        audit: 5,
        seed: 42,
    };
    let never = |_: &Path| -> anyhow::Result<StudyResult> { panic!("must read results") };
    let report = run(&args, &never).unwrap();

    for f in ["report.md", "report.json", "roc.png", "audit.csv"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert_eq!(report.cases_total, 8);
    assert_eq!(
        (report.technical_defects, report.abstentions, report.errors),
        (1, 0, 1)
    );
    // Counting rule: p4 (error) is a false negative, n4 (defect) a false positive.
    let c = report.metrics.counts;
    assert_eq!(
        (
            c.true_positive,
            c.false_negative,
            c.true_negative,
            c.false_positive
        ),
        (2, 2, 2, 2)
    );
    assert_eq!(report.metrics.sensitivity.value, Some(0.5));
    assert_eq!(report.analysed_only.n, 6);
    assert!((report.analysed_only.sensitivity.value.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    // AUC over all 8, scores σ((d − 0.25)/0.03): positives 0.999 (0.45), 0.881 (0.31),
    // 0.269 (0.22), 0.5 (error); negatives 0.001 (0.05), 0.013 (0.12), 0.841 (0.30),
    // 0.5 (defect). Pairs won: 4 + 4 + 2 + (2 + ½ tie) = 12.5 of 16.
    let auc = report.metrics.roc_auc.value.unwrap();
    assert!((auc - 12.5 / 16.0).abs() < 1e-9, "{auc}");
    // Times: end_to_end of the 7 stored results (40, 60, 50, 30, 70, 50, 50 s): mean 50 s.
    let t = report.processing_time.as_ref().unwrap();
    assert_eq!(t.n, 7);
    assert!((t.mean_s - 50.0).abs() < 1e-9);
    // Genant confusion: L1 3→3, L1 2→2, L1 2→1, n3's L1 truth 0 → 2, T12s truth 0 → 0 (6),
    // n1/n2 L1 0→0; p4's L2 not reported.
    let g = report.genant_confusion.as_ref().unwrap();
    assert_eq!(g.matrix[3][3], 1);
    assert_eq!(g.matrix[2][2], 1);
    assert_eq!(g.matrix[2][1], 1);
    assert_eq!(g.matrix[0][2], 1);
    assert_eq!(g.matrix[0][0], 8);
    assert_eq!(g.not_reported[2], 1);

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| spinescreen 0.1.0 | 8 | 0.50 | 0.50 | 0.50 |"),
        "{md}"
    );
    assert!(md.contains("50±"), "{md}");
    assert!(md.contains("NO_CT_SERIES"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["metrics"]["sensitivity"]["verdict"], "unfit");
    assert!(json["metrics"]["roc_auc"]["ci95"]["lower"].is_number());

    let audit = std::fs::read_to_string(out.join("audit.csv")).unwrap();
    assert_eq!(audit.lines().count(), 6);
    assert_eq!(report.audit_cases.len(), 5);
    // Same seed, same sheet.
    let again = run(&args, &never).unwrap();
    assert_eq!(again.audit_cases, report.audit_cases);

    let png = std::fs::read(out.join("roc.png")).unwrap();
    assert_roc_png_draws(&png, &report);
}

/// `roc.png` decodes as an RGB PNG of the plot's size, and every segment of the report's ROC
/// curve (away from the operating-point disc) is drawn in the curve's colour at its middle.
fn assert_roc_png_draws(png_bytes: &[u8], report: &spinescreen_eval::EvalReport) {
    use spinescreen_eval::plot::{to_pixel, CURVE, OPERATING_POINT, SIZE};
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), (SIZE, SIZE));
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    let at = |(x, y): (f64, f64)| {
        let i = (y as usize * SIZE as usize + x as usize) * 3;
        [pixels[i], pixels[i + 1], pixels[i + 2]]
    };
    let op = report.metrics.operating_point.map(|(f, t)| to_pixel(f, t));
    if let Some(p) = op {
        assert_eq!(at(p), OPERATING_POINT);
    }
    let curve = &report.metrics.roc_curve;
    assert!(curve.len() >= 3, "{curve:?}");
    let mut checked = 0;
    for w in curve.windows(2) {
        let mid = to_pixel((w[0].0 + w[1].0) / 2.0, (w[0].1 + w[1].1) / 2.0);
        let near_op = op.is_some_and(|p| (p.0 - mid.0).hypot(p.1 - mid.1) < 12.0);
        if w[0] != w[1] && !near_op {
            assert_eq!(at(mid), CURVE, "segment {w:?}");
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} segments checked");
}

#[test]
fn run_analyses_studies_through_the_callback_and_saves_results() {
    let tmp = tempfile::tempdir().unwrap();
    let studies = tmp.path().join("studies");
    for c in ["a", "b", "c", "d"] {
        std::fs::create_dir_all(studies.join(c)).unwrap();
    }
    let truth = tmp.path().join("truth.csv");
    std::fs::write(&truth, "case_id,positive\na,1\nb,1\nc,0\nd,0\n").unwrap();
    let out = tmp.path().join("out");
    let args = EvalArgs {
        studies: Some(studies),
        truth,
        out: out.clone(),
        results: None,
        audit: 20,
        seed: 1,
    };
    let analyze = |p: &Path| -> anyhow::Result<StudyResult> {
        let name = p.file_name().unwrap().to_str().unwrap();
        match name {
            "a" => Ok(ok_result("2.1", 0.35, 0)),
            "b" => Ok(ok_result("2.2", 0.41, 0)),
            "c" => Ok(ok_result("2.3", 0.10, 0)),
            "d" => anyhow::bail!("decoder exploded"),
            _ => unreachable!(),
        }
    };
    let report = run(&args, &analyze).unwrap();
    assert_eq!(report.errors, 1);
    assert_eq!(report.metrics.counts.true_positive, 2);
    assert_eq!(report.metrics.counts.false_positive, 1);
    assert_eq!(report.audit_cases.len(), 4);
    assert!(out.join("results/a/result.json").is_file());
    assert!(!out.join("results/d").exists());
    assert!(report.genant_confusion.is_none());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("decoder exploded"));
}

#[test]
fn run_rejects_a_bad_truth_file() {
    let tmp = tempfile::tempdir().unwrap();
    let truth = tmp.path().join("truth.csv");
    std::fs::write(&truth, "case_id,positive\n../etc,1\n").unwrap();
    let args = EvalArgs {
        studies: Some(tmp.path().to_path_buf()),
        truth,
        out: tmp.path().join("out"),
        results: None,
        audit: 20,
        seed: 1,
    };
    let analyze = |_: &Path| -> anyhow::Result<StudyResult> { unreachable!() };
    let e = run(&args, &analyze).unwrap_err();
    assert!(format!("{e:#}").contains("line 2"), "{e:#}");
}
