//! `monitor sample` on a real ledger: the same window and seed draw the same studies, the
//! worksheet has one row per drawn study with empty expert columns, previews are copied, and
//! the worksheet read back by `monitor report` counts what the experts wrote.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use spinescreen_ledger::monitor::report::{record_reviews, review_report, study_reviews};
use spinescreen_ledger::monitor::sample::{sample, SampleOptions};
use spinescreen_ledger::monitor::worksheet::{header, parse_csv};
use spinescreen_proto::{EventKind, SourceInfo, Stage, StudyEvent, StudyStatus};
use spinescreen_runtime::{StoreConfig, StudyStore};

const T0: u64 = 1_765_000_000_000;

#[tokio::test]
async fn the_sample_is_reproducible_and_its_worksheet_round_trips_into_the_report() {
    let Some(mut db) = test_db().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = StudyStore::from_config(&StoreConfig::Local {
        root: dir.path().join("store"),
    })
    .unwrap();
    for i in 0..30u64 {
        let study = format!("1.2.7.{i}");
        let j = job(&format!("job-{i}"), &study, T0 + i * 60_000);
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
            .record_source(&SourceInfo {
                study_instance_uid: study.clone(),
                accession_number: format!("A{i}"),
                station_name: if i % 3 == 0 { "CT-3" } else { "CT-1" }.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let (status, result) = if i % 10 == 9 {
            (
                StudyStatus::TechnicalDefect,
                defect_result(&study, "RING_ARTIFACTS"),
            )
        } else {
            (StudyStatus::Ok, fracture_result(&study))
        };
        db.ledger
            .record_done(&done(&j, status, 40_000 + i * 1000), Some(&result), T0)
            .await
            .unwrap();
        store
            .put(
                &j.study_uid.clone().unwrap().keys().preview_png(),
                b"\x89PNG fake".to_vec(),
            )
            .await
            .unwrap();
    }
    // One study outside the window and one not finished are never drawn.
    let late = job("job-late", "1.2.7.99", T0 + 90 * 86_400_000);
    db.ledger
        .record_event(&StudyEvent::new(
            &late,
            Stage::Ingest,
            EventKind::Received,
            1,
            T0,
        ))
        .await
        .unwrap();

    let opts = |out: &std::path::Path, seed| SampleOptions {
        from_ms: T0,
        to_ms: T0 + 86_400_000,
        n: 20,
        seed,
        out: out.to_path_buf(),
    };
    let a = sample(&db.ledger, Some(&store), &opts(&dir.path().join("a"), 7))
        .await
        .unwrap();
    let b = sample(&db.ledger, Some(&store), &opts(&dir.path().join("b"), 7))
        .await
        .unwrap();
    let c = sample(&db.ledger, Some(&store), &opts(&dir.path().join("c"), 8))
        .await
        .unwrap();
    assert_eq!(a.population, 30);
    assert_eq!(a.studies.len(), 20);
    assert_eq!(a.studies, b.studies, "same seed, same sample");
    assert_ne!(a.studies, c.studies, "another seed, another sample");
    let text = std::fs::read_to_string(&a.csv).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b.csv).unwrap());
    let rows = parse_csv(&text).unwrap();
    assert_eq!(rows[0], header());
    assert_eq!(rows.len(), 21);
    let col = |name: &str| header().iter().position(|c| *c == name).unwrap();
    for row in &rows[1..] {
        assert!(row[col("agree_with_conclusion")].is_empty());
        let preview = &row[col("preview")];
        assert!(dir.path().join("a").join(preview).exists(), "{preview}");
    }
    let html = std::fs::read_to_string(&a.html).unwrap();
    assert_eq!(html.matches("<section").count(), 20);
    assert!(html.contains("fracture"));

    // The experts agree with every conclusion but the first two.
    let mut filled = rows.clone();
    for (i, row) in filled[1..].iter_mut().enumerate() {
        row[col("agree_with_conclusion")] = if i < 2 { "no" } else { "yes" }.into();
    }
    let csv: String = filled
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| spinescreen_eval::audit::csv_field(c))
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        })
        .collect();
    let report = review_report(&csv).unwrap();
    assert_eq!(
        (
            report.conclusion_agreement.successes,
            report.conclusion_agreement.n
        ),
        (18, 20)
    );
    let defects = rows[1..]
        .iter()
        .filter(|r| r[col("status")] == "technical_defect")
        .count();
    assert_eq!(report.not_analysed.successes, defects);
    assert_eq!(report.processing_n, 20);

    // `--record`: the reviews go into the ledger, where Grafana's monthly panel reads them; a
    // second recording of the same sheet replaces, never adds.
    let reviews = study_reviews(&csv).unwrap();
    assert_eq!(reviews.len(), 20);
    for _ in 0..2 {
        let n = record_reviews(&mut db.ledger, &reviews, T0 + 40 * 86_400_000)
            .await
            .unwrap();
        assert_eq!(n, 20);
    }
    assert_eq!(count(&db, "reviews").await, 20);
    let month: Vec<(f64, i64)> = db
        .ledger
        .client()
        .query(
            "SELECT avg(agree_conclusion::int)::float8, count(*) FROM reviews
             GROUP BY date_trunc('month', to_timestamp(reviewed_at_ms / 1000.0))",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(month, vec![(0.9, 20)]);
    let unreviewed = study_reviews(&text).unwrap();
    assert!(unreviewed.is_empty(), "an empty sheet has no reviews");
}
