//! The ledger against a real PostgreSQL: idempotent writes, lookups by UID and accession
//! number, list filters, retries superseding earlier runs, migrations applied once.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use spinescreen_ledger::query::{find, list, timeline, ListFilter};
use spinescreen_ledger::studies::{render_list, render_timeline};
use spinescreen_proto::{EventKind, SourceInfo, Stage, StudyEvent, StudyStatus};

const T0: u64 = 1_765_000_000_000;

fn source(study: &str, accession: &str, station: &str) -> SourceInfo {
    SourceInfo {
        study_instance_uid: study.into(),
        accession_number: accession.into(),
        station_name: station.into(),
        manufacturer: "ACME".into(),
        model: "Scan 64".into(),
        series_instance_uid: format!("{study}.2"),
        series_number: "2".into(),
        series_description: "Chest 1mm".into(),
    }
}

/// One study through the whole pipeline: events, source, done with its result.
async fn record_study(db: &mut TestDb, study: &str, accession: &str, station: &str, t: u64) {
    let j = job(&format!("job-{study}"), study, t);
    for e in pipeline_events(&j, t + 100) {
        db.ledger.record_event(&e).await.unwrap();
    }
    db.ledger
        .record_source(&source(study, accession, station))
        .await
        .unwrap();
    db.ledger
        .record_done(
            &done(&j, StudyStatus::Ok, 60_000),
            Some(&fracture_result(study)),
            t + 60_000,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_replayed_feed_adds_nothing_twice() {
    let Some(mut db) = test_db().await else {
        return;
    };
    let j = job("j1", "1.2.840.1", T0);
    let events = pipeline_events(&j, T0 + 100);
    for e in &events {
        assert!(
            db.ledger.record_event(e).await.unwrap(),
            "first time stored"
        );
    }
    let d = done(&j, StudyStatus::Ok, 60_000);
    let result = fracture_result("1.2.840.1");
    db.ledger
        .record_done(&d, Some(&result), T0 + 60_000)
        .await
        .unwrap();
    let before = (
        count(&db, "events").await,
        count(&db, "findings").await,
        count(&db, "stage_times").await,
        count(&db, "deliveries").await,
        count(&db, "studies").await,
    );
    assert_eq!(before, (events.len() as i64, 2, 2, 2, 1));
    // A crash before the acks: the broker delivers everything again, later.
    for e in &events {
        assert!(
            !db.ledger.record_event(e).await.unwrap(),
            "a replay is recognised"
        );
    }
    db.ledger
        .record_done(&d, Some(&result), T0 + 999_000)
        .await
        .unwrap();
    let after = (
        count(&db, "events").await,
        count(&db, "findings").await,
        count(&db, "stage_times").await,
        count(&db, "deliveries").await,
        count(&db, "studies").await,
    );
    assert_eq!(before, after);
    let row = &find(&db.ledger, "1.2.840.1").await.unwrap()[0];
    assert_eq!(
        row.finished_at_ms,
        Some((T0 + 60_000) as i64),
        "first finish time kept"
    );
    assert_eq!(row.state, "done");
}

#[tokio::test]
async fn show_by_accession_finds_the_study_and_its_whole_timeline() {
    let Some(mut db) = test_db().await else {
        return;
    };
    record_study(&mut db, "1.2.840.7", "12345", "CT-3", T0).await;
    record_study(&mut db, "1.2.840.8", "99999", "CT-1", T0).await;
    let found = find(&db.ledger, "12345").await.unwrap();
    assert_eq!(found.len(), 1);
    let s = &found[0];
    assert_eq!(s.study_uid, "1.2.840.7");
    assert_eq!(
        (s.station_name.as_str(), s.model.as_str()),
        ("CT-3", "Scan 64")
    );
    assert_eq!(s.status.as_deref(), Some("ok"));
    assert_eq!(s.has_fracture, Some(true));
    assert_eq!(
        s.bone_density_category.as_deref(),
        Some("osteoporosis_suggested")
    );
    assert_eq!(s.sla_met, Some(true));
    assert_eq!(s.received_at_ms, Some(T0 as i64));
    let t = timeline(&db.ledger, s.clone()).await.unwrap();
    // Received first; ingest's `started` came before the study was known: the job id links it.
    let first = t
        .events
        .first()
        .map(|e| (e.stage.as_str(), e.kind.as_str()));
    assert_eq!(first, Some(("ingest", "received")));
    assert!(t
        .events
        .iter()
        .any(|e| e.stage == "ingest" && e.kind == "started"));
    assert!(t
        .events
        .iter()
        .any(|e| e.stage == "publisher" && e.kind == "finished"));
    assert_eq!(
        t.findings
            .iter()
            .map(|f| f.level.as_str())
            .collect::<Vec<_>>(),
        ["T12", "L1"]
    );
    assert_eq!(t.deliveries.len(), 1);
    assert_eq!(t.deliveries[0].instances, 2);
    let text = render_timeline(&t);
    assert!(text.contains("fracture L1:2"), "{text}");
    assert!(text.contains("CT-3"), "{text}");
    // By UID too; an unknown key finds nothing.
    assert_eq!(find(&db.ledger, "1.2.840.7").await.unwrap().len(), 1);
    assert!(find(&db.ledger, "nope").await.unwrap().is_empty());
}

#[tokio::test]
async fn list_filters_by_since_status_and_station() {
    let Some(mut db) = test_db().await else {
        return;
    };
    record_study(&mut db, "1.2.1", "A1", "CT-3", T0).await;
    record_study(&mut db, "1.2.2", "A2", "CT-1", T0 + 86_400_000).await;
    // A defect at CT-3, and a study still in progress.
    let j = job("j-def", "1.2.3", T0 + 2 * 86_400_000);
    db.ledger
        .record_event(&StudyEvent::new(
            &j,
            Stage::Ingest,
            EventKind::Received,
            1,
            T0,
        ))
        .await
        .unwrap();
    db.ledger
        .record_source(&source("1.2.3", "A3", "CT-3"))
        .await
        .unwrap();
    db.ledger
        .record_done(
            &done(&j, StudyStatus::TechnicalDefect, 5_000),
            Some(&defect_result("1.2.3", "DECODE_FAILURE")),
            T0,
        )
        .await
        .unwrap();
    let k = job("j-run", "1.2.4", T0 + 3 * 86_400_000);
    db.ledger
        .record_event(&StudyEvent::new(
            &k,
            Stage::Inference,
            EventKind::Started,
            1,
            T0,
        ))
        .await
        .unwrap();

    let all = ListFilter {
        limit: 100,
        ..Default::default()
    };
    let uids = |rows: Vec<spinescreen_ledger::query::StudyRow>| {
        rows.into_iter().map(|r| r.study_uid).collect::<Vec<_>>()
    };
    assert_eq!(
        uids(list(&db.ledger, &all).await.unwrap()),
        ["1.2.4", "1.2.3", "1.2.2", "1.2.1"]
    );
    let ct3 = ListFilter {
        station: Some("CT-3".into()),
        ..all.clone()
    };
    assert_eq!(
        uids(list(&db.ledger, &ct3).await.unwrap()),
        ["1.2.3", "1.2.1"]
    );
    let defects = ListFilter {
        status: Some("technical_defect".into()),
        ..all.clone()
    };
    let rows = list(&db.ledger, &defects).await.unwrap();
    assert_eq!(rows[0].reason_code.as_deref(), Some("DECODE_FAILURE"));
    assert_eq!(uids(rows), ["1.2.3"]);
    let running = ListFilter {
        status: Some("in_progress".into()),
        ..all.clone()
    };
    assert_eq!(uids(list(&db.ledger, &running).await.unwrap()), ["1.2.4"]);
    let recent = ListFilter {
        since_ms: Some(T0 + 86_400_000),
        ..all.clone()
    };
    assert_eq!(
        uids(list(&db.ledger, &recent).await.unwrap()),
        ["1.2.4", "1.2.3", "1.2.2"]
    );
    let table = render_list(&list(&db.ledger, &all).await.unwrap());
    assert!(
        table.contains("DECODE_FAILURE") && table.contains("4 studies"),
        "{table}"
    );
}

#[tokio::test]
async fn a_retry_supersedes_the_earlier_run_and_late_old_news_does_not_regress_it() {
    let Some(mut db) = test_db().await else {
        return;
    };
    record_study(&mut db, "1.2.9", "R1", "CT-2", T0).await;
    // `studies retry`: a new reception of the same study starts.
    let again = job("job-retry", "1.2.9", T0 + 3_600_000);
    db.ledger
        .record_event(&StudyEvent::new(
            &again,
            Stage::Ingest,
            EventKind::Received,
            1,
            T0 + 3_600_000,
        ))
        .await
        .unwrap();
    let row = &find(&db.ledger, "1.2.9").await.unwrap()[0];
    assert_eq!(
        (row.state.as_str(), row.job_id.as_deref()),
        ("in_progress", Some("job-retry"))
    );
    // A late event of the first run changes nothing.
    let old = job("job-1.2.9", "1.2.9", T0);
    db.ledger
        .record_event(&StudyEvent::new(
            &old,
            Stage::Publisher,
            EventKind::Retried,
            2,
            T0 + 7,
        ))
        .await
        .unwrap();
    let row = &find(&db.ledger, "1.2.9").await.unwrap()[0];
    assert_eq!(
        (row.state.as_str(), row.job_id.as_deref()),
        ("in_progress", Some("job-retry"))
    );
    // The retry dead-letters at the publisher: the study says so.
    db.ledger
        .record_event(
            &StudyEvent::new(
                &again,
                Stage::Publisher,
                EventKind::DeadLettered,
                3,
                T0 + 3_700_000,
            )
            .with_reason("transient: PACS refused"),
        )
        .await
        .unwrap();
    let row = &find(&db.ledger, "1.2.9").await.unwrap()[0];
    assert_eq!(row.state, "dead_lettered");
    assert_eq!(row.delivery.as_deref(), Some("failed"));
    assert_eq!(row.reason_text.as_deref(), Some("transient: PACS refused"));
}

#[tokio::test]
async fn migrations_are_applied_once_per_schema() {
    let Some(db) = test_db().await else { return };
    let again = spinescreen_ledger::Ledger::connect(&database_url(), &db.schema)
        .await
        .unwrap();
    let versions: Vec<i32> = again
        .client()
        .query(
            "SELECT version FROM ledger_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    assert!(
        spinescreen_ledger::Ledger::connect(&database_url(), "Bad-Schema")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn no_patient_identifier_has_a_column() {
    let Some(db) = test_db().await else { return };
    let columns: Vec<String> = db
        .ledger
        .client()
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1",
            &[&db.schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(columns.contains(&"accession_number".to_string()));
    for c in &columns {
        assert!(!c.contains("patient") && !c.contains("birth"), "column {c}");
    }
}

#[tokio::test]
async fn retry_queues_the_received_files_again_as_a_new_reception() {
    use spinescreen_ledger::studies::retry;
    use spinescreen_runtime::broker::MemoryBroker;
    use spinescreen_runtime::{Broker, StoreConfig, StudyStore};
    let Some(mut db) = test_db().await else {
        return;
    };
    record_study(&mut db, "1.2.840.77", "ACC-77", "CT-3", T0).await;
    let dir = tempfile::tempdir().unwrap();
    let store = StudyStore::from_config(&StoreConfig::Local {
        root: dir.path().into(),
    })
    .unwrap();
    let broker = MemoryBroker::new();
    let study = find(&db.ledger, "ACC-77").await.unwrap().remove(0);
    assert_eq!(
        study.incoming_prefix.as_deref(),
        Some("incoming/job-1.2.840.77/")
    );
    // The received files are gone: nothing to run again.
    let err = retry(&study, &broker, &store, T0 + 5).await.unwrap_err();
    assert!(err.to_string().contains("no longer in the store"), "{err}");
    store
        .put("incoming/job-1.2.840.77/1.dcm", b"DICM".to_vec())
        .await
        .unwrap();
    let job = retry(&study, &broker, &store, T0 + 5).await.unwrap();
    assert_eq!(job.incoming_prefix, "incoming/job-1.2.840.77/");
    assert_ne!(job.job_id, "job-1.2.840.77");
    assert_eq!(job.received_at_unix_ms, T0 + 5);
    assert_eq!(broker.queue_depth(Stage::Ingest.queue()).await.unwrap(), 1);
}
