//! Test support: a private schema per test in the test PostgreSQL (127.0.0.1:5432, database
//! `test`, or `SPINESCREEN_TEST_DATABASE_URL`), dropped when the test ends, pass or fail, so
//! tests run in parallel and leave nothing behind. `SPINESCREEN_SKIP_SERVICES=1` skips them.
#![allow(dead_code)]

use spinescreen_ledger::Ledger;
use spinescreen_proto::{
    BoneDensity, DeformityType, EventKind, GenantGrade, Heights, Job, Keypoints, Point3, Reason,
    ServiceInfo, Stage, StudyDone, StudyEvent, StudyResult, StudyStatus, StudyUid, VertebraResult,
    SCHEMA_VERSION,
};
use std::collections::BTreeMap;

pub fn database_url() -> String {
    std::env::var("SPINESCREEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A ledger in a fresh schema; the schema is dropped with the value.
pub struct TestDb {
    pub ledger: Ledger,
    pub schema: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (url, schema) = (database_url(), self.schema.clone());
        // Drop is synchronous and may run inside a runtime: do it on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A migrated ledger in a new schema, or `None` when services are skipped.
pub async fn test_db() -> Option<TestDb> {
    if std::env::var("SPINESCREEN_SKIP_SERVICES").is_ok_and(|v| v == "1") {
        eprintln!("SPINESCREEN_SKIP_SERVICES=1: skipping a PostgreSQL test");
        return None;
    }
    let schema = format!("ledger_test_{}", uuid::Uuid::new_v4().simple());
    let ledger = Ledger::connect(&database_url(), &schema)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is needed ({e:#}); run scripts/test.sh, or set \
                 SPINESCREEN_SKIP_SERVICES=1 to skip service tests",
                database_url()
            )
        });
    Some(TestDb { ledger, schema })
}

pub fn uid(s: &str) -> StudyUid {
    StudyUid::new(s).unwrap()
}

/// A job of `study` received at `received_ms`.
pub fn job(job_id: &str, study: &str, received_ms: u64) -> Job {
    let mut j = Job::ingest(job_id.into(), format!("incoming/{job_id}/"), received_ms);
    j.study_uid = Some(uid(study));
    j
}

/// The events of one clean pass through the pipeline, the first (ingest started) before the
/// study is known.
pub fn pipeline_events(job: &Job, start_ms: u64) -> Vec<StudyEvent> {
    let mut before = job.clone();
    before.study_uid = None;
    let mut events = vec![StudyEvent::new(
        &before,
        Stage::Ingest,
        EventKind::Started,
        1,
        start_ms,
    )];
    events.push(StudyEvent::new(
        job,
        Stage::Ingest,
        EventKind::Received,
        1,
        job.received_at_unix_ms,
    ));
    let mut t = start_ms;
    for stage in Stage::ALL {
        if stage != Stage::Ingest {
            events.push(StudyEvent::new(job, stage, EventKind::Started, 1, t));
        }
        t += 1000;
        events.push(StudyEvent::new(job, stage, EventKind::Finished, 1, t));
    }
    events.push(
        StudyEvent::new(job, Stage::Publisher, EventKind::Delivered, 1, t).with_destination(
            "cstore PACS@pacs:104",
            vec![
                format!("{}.90", job.study_uid.as_ref().unwrap()),
                format!("{}.91", job.study_uid.as_ref().unwrap()),
            ],
        ),
    );
    events
}

fn vertebra(label: &str, grade: GenantGrade, deformity: f64) -> VertebraResult {
    let p: Point3 = [0.0; 3];
    VertebraResult {
        label: label.parse().unwrap(),
        center_mm: [0.0; 3],
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
            posterior: 25.0,
        },
        deformity,
        deformity_type: DeformityType::Wedge,
        genant_grade: grade,
        trabecular_hu: None,
        confidence: 0.9,
        flags: vec![],
    }
}

/// An `ok` result with an L1 Genant 2 fracture.
pub fn fracture_result(study: &str) -> StudyResult {
    let mut timings = BTreeMap::new();
    timings.insert("ingest".to_string(), 1200);
    timings.insert("inference".to_string(), 30_000);
    StudyResult {
        schema_version: SCHEMA_VERSION,
        study_instance_uid: study.into(),
        status: StudyStatus::Ok,
        reason: None,
        has_fracture: Some(true),
        fracture_probability: Some(0.82),
        max_deformity: Some(0.31),
        vertebrae: vec![
            vertebra("T12", GenantGrade::Normal, 0.1),
            vertebra("L1", GenantGrade::Moderate, 0.31),
        ],
        bone_density: Some(BoneDensity {
            level: spinescreen_proto::VertebraLevel::L1,
            hu: 95.0,
            iscd_category: "osteoporosis_suggested".into(),
            pickhardt_category: "low".into(),
            contrast_agent: None,
        }),
        timings_ms: timings,
        service: ServiceInfo {
            name: "spinescreen".into(),
            version: "0.1.0".into(),
        },
        detector: "classical".into(),
        notes: vec![],
    }
}

/// A technical-defect result with `code`.
pub fn defect_result(study: &str, code: &str) -> StudyResult {
    StudyResult::not_analysed(
        study.into(),
        StudyStatus::TechnicalDefect,
        Reason::new(code, "defect"),
        ServiceInfo {
            name: "spinescreen".into(),
            version: "0.1.0".into(),
        },
    )
}

pub fn done(job: &Job, status: StudyStatus, end_to_end_ms: u64) -> StudyDone {
    let study = job.study_uid.clone().unwrap();
    StudyDone {
        schema_version: SCHEMA_VERSION,
        job_id: job.job_id.clone(),
        result_key: study.keys().result(),
        study_uid: study,
        status,
        end_to_end_ms,
    }
}

/// Rows in `table` of the test's schema.
pub async fn count(db: &TestDb, table: &str) -> i64 {
    db.ledger
        .client()
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}
