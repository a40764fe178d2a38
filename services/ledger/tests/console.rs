//! The operator console over HTTP: the list with its filters, a study's page by accession
//! number, 404 for an unknown study, JSON, and markup in DICOM text escaped.

mod common;

use common::*;
use spinescreen_ledger::console::{serve, Console};
use spinescreen_proto::{EventKind, SourceInfo, Stage, StudyEvent, StudyStatus};
use spinescreen_runtime::CancellationToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: console\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_studies_and_shows_a_timeline_by_accession() {
    let Some(mut db) = test_db().await else {
        return;
    };
    let t0 = spinescreen_runtime::events::now_unix_ms() - 3_600_000;
    for (study, accession, station, status) in [
        ("1.2.5.1", "ACC-1", "CT-3", StudyStatus::Ok),
        (
            "1.2.5.2",
            "ACC-2",
            "<script>x</script>",
            StudyStatus::TechnicalDefect,
        ),
    ] {
        let j = job(&format!("job-{study}"), study, t0);
        for e in pipeline_events(&j, t0 + 10) {
            db.ledger.record_event(&e).await.unwrap();
        }
        db.ledger
            .record_source(&SourceInfo {
                study_instance_uid: study.into(),
                accession_number: accession.into(),
                station_name: station.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let result = match status {
            StudyStatus::Ok => fracture_result(study),
            _ => defect_result(study, "NON_UNIFORM_SPACING"),
        };
        db.ledger
            .record_done(&done(&j, status, 45_000), Some(&result), t0 + 45_000)
            .await
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        Console::new(database_url(), db.schema.clone()),
        stop.clone(),
    ));

    let (status, page) = get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("ACC-1") && page.contains("ACC-2"), "{page}");
    assert!(page.contains("href=\"/studies/1.2.5.1\""), "{page}");
    assert!(!page.contains("<script>x"), "DICOM text is escaped: {page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");

    let (_, filtered) = get(addr, "/?status=technical_defect&since=1d").await;
    assert!(
        filtered.contains("ACC-2") && !filtered.contains("ACC-1"),
        "{filtered}"
    );

    let (status, study) = get(addr, "/studies/ACC-1").await;
    assert_eq!(status, 200);
    assert!(study.contains("Study 1.2.5.1"), "{study}");
    assert!(study.contains("fracture L1:2"), "{study}");
    assert!(study.contains("<td>finished</td>"), "{study}");

    // `studies retry` ran it again and the new run failed once: the page says so.
    let j = job("job-retry", "1.2.5.1", t0 + 60_000);
    db.ledger
        .record_event(
            &StudyEvent::new(&j, Stage::Inference, EventKind::Failed, 1, t0 + 61_000)
                .with_reason("transient: store"),
        )
        .await
        .unwrap();

    let (_, study) = get(addr, "/studies/ACC-1").await;
    assert!(study.contains("<td>in_progress</td>"), "{study}");
    assert!(
        study.contains("transient: store"),
        "the retry's failure is on the timeline: {study}"
    );

    let (status, _) = get(addr, "/studies/NOPE").await;
    assert_eq!(status, 404);
    let (status, _) = get(addr, "/?since=yesterday").await;
    assert_eq!(status, 400);

    let (status, json) = get(addr, "/api/studies?station=CT-3").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["accession_number"], "ACC-1");
    let (_, json) = get(addr, "/api/studies/1.2.5.2").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["study"]["reason_code"], "NON_UNIFORM_SPACING");

    stop.cancel();
    server.await.unwrap().unwrap();
}
