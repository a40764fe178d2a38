//! The fleet with the study ledger (issue 21's end-to-end test): one process per stage plus
//! `spinescreen worker ledger` on a real RabbitMQ, s3s-fs and PostgreSQL. The batch holds an
//! analysable study, a ring-artefact study, a technical defect (slices missing) and a job that
//! is dead-lettered. The ledger worker is killed with SIGKILL mid-batch and started again;
//! afterwards every event of every job is in the ledger exactly once, every study has its
//! record, `spinescreen.done` still holds every announcement for its other reader (the ledger
//! reads its own copy) and `spinescreen studies show` prints the whole timeline.
//!
//! Needs what fleet_distributed.rs needs, plus PostgreSQL (`SPINESCREEN_TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`); the ledger works in a schema of its own,
//! dropped at the end. `SPINESCREEN_SKIP_SERVICES=1` skips it.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;

use fleet::{
    binary, phantom_study, phantom_study_with, skip_services, Fleet, FleetOptions, LEDGER, SKIP_ENV,
};
use spinescreen_ledger::query::find;
use spinescreen_ledger::Ledger;
use spinescreen_phantom::Confounder;
use spinescreen_proto::job::DONE_LEDGER_QUEUE;
use spinescreen_proto::{Job, Stage, StudyUid, EVENTS_QUEUE};
use spinescreen_runtime::broker::dlq_name;
use spinescreen_runtime::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn database_url() -> String {
    std::env::var("SPINESCREEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The ledger's schema, dropped when the test ends (pass or fail).
struct Schema {
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (database_url(), self.name.clone());
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
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Remove `n` slices from the middle of a study folder: the series then has a gap, which ingest
/// reports as a technical defect (NON_UNIFORM_SPACING).
fn drop_middle_slices(study: &Path, n: usize) {
    let mut files: Vec<_> = std::fs::read_dir(study)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    let mid = files.len() / 2;
    for f in &files[mid..mid + n] {
        std::fs::remove_file(f).unwrap();
    }
}

async fn scalar(
    ledger: &Ledger,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> i64 {
    ledger.client().query_one(sql, params).await.unwrap().get(0)
}

/// `(stage, kind) → events` of one job.
async fn job_events(ledger: &Ledger, job_id: &str) -> BTreeMap<(String, String), i64> {
    ledger
        .client()
        .query(
            "SELECT stage, kind, count(*) FROM events WHERE job_id = $1 GROUP BY stage, kind",
            &[&job_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect()
}

fn spinescreen(schema: &str, args: &[&str]) -> String {
    let out = Command::new(binary())
        .args(args)
        .env("DATABASE_URL", database_url())
        .env("SPINESCREEN__LEDGER__SCHEMA", schema)
        .output()
        .expect("spinescreen runs");
    assert!(
        out.status.success(),
        "spinescreen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn the_ledger_records_every_event_once_across_a_kill_9_of_its_worker() {
    if skip_services() {
        eprintln!("{SKIP_ENV}=1: skipping the fleet ledger test");
        return;
    }
    let schema = Schema {
        name: format!(
            "ledger_e2e_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        ),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ledger = rt
        .block_on(Ledger::connect(&database_url(), &schema.name))
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is needed ({e:#}); run scripts/test.sh or set {SKIP_ENV}=1",
                database_url()
            )
        });
    let fleet = Fleet::start(FleetOptions {
        ledger: Some((database_url(), schema.name.clone())),
        ..Default::default()
    });
    assert_eq!(fleet.worker(LEDGER).stage, "ledger");
    let dir = fleet.dir.path().join("studies");
    let (plain_dir, plain) = phantom_study(&dir, 101, None);
    let (ring_dir, ring) = phantom_study_with(&dir, 102, None, |s| {
        s.confounders = vec![Confounder::Ring];
    });
    let (defect_dir, defect) = phantom_study(&dir, 103, None);
    drop_middle_slices(&defect_dir, 3);
    let broker = rt.block_on(fleet.broker());

    // The first study; once the ledger has some of its events, kill -9 the ledger.
    fleet.send(&plain_dir);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut before_kill = 0;
    while before_kill < 3 {
        assert!(
            Instant::now() < deadline,
            "no events recorded\n{}",
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
        before_kill = rt.block_on(scalar(&ledger, "SELECT count(*) FROM events", &[]));
    }
    fleet.worker(LEDGER).kill9();

    // While it is down: the ring-artefact study, the defect, and a job that cannot succeed (an
    // inference job whose volume is not in the store: dead-lettered at once).
    fleet.send(&ring_dir);
    fleet.send(&defect_dir);
    let dead_uid = "1.2.826.0.1.3680043.9.21021";
    let mut dead = Job::ingest(
        "e2e-dead-letter".into(),
        "incoming/e2e-dead-letter/".into(),
        1,
    );
    dead.received_at_unix_ms = spinescreen_runtime::events::now_unix_ms();
    dead.study_uid = Some(StudyUid::new(dead_uid).unwrap());
    rt.block_on(broker.publish(
        Stage::Inference.queue(),
        Message {
            body: dead.to_bytes(),
            headers: Default::default(),
        },
    ))
    .expect("dead-letter job published");
    std::thread::sleep(Duration::from_secs(3));
    {
        let mut w = fleet.worker(LEDGER);
        w.start();
        w.wait_ready(Duration::from_secs(60));
    }

    // spinescreen.done still has every announcement for its own reader.
    let studies = BTreeSet::from([plain.clone(), ring.clone(), defect.clone()]);
    let announced = rt.block_on(fleet.wait_done(&studies, Duration::from_secs(600)));
    assert_eq!(announced.keys().cloned().collect::<BTreeSet<_>>(), studies);

    // The ledger catches up: every study done, the dead job dead-lettered, its queues drained.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = rt.block_on(scalar(
            &ledger,
            "SELECT count(*) FROM studies WHERE state = 'done'",
            &[],
        ));
        let dead_lettered = rt.block_on(scalar(
            &ledger,
            "SELECT count(*) FROM studies WHERE study_uid = $1 AND state = 'dead_lettered'",
            &[&dead_uid],
        ));
        let pending = rt.block_on(async {
            let mut n = 0;
            for q in [EVENTS_QUEUE, DONE_LEDGER_QUEUE] {
                n += broker.queue_depth(q).await.unwrap_or(1);
            }
            n
        });
        if done == 3 && dead_lettered == 1 && pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ledger behind: {done} done, dead job recorded {dead_lettered}, {pending} queued\n{}",
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Let the ledger settle anything still unacknowledged, then read.
    std::thread::sleep(Duration::from_secs(2));
    let after = rt.block_on(scalar(&ledger, "SELECT count(*) FROM events", &[]));
    assert!(
        after > before_kill,
        "events were recorded after the restart"
    );
    for q in [EVENTS_QUEUE, DONE_LEDGER_QUEUE] {
        assert_eq!(
            rt.block_on(broker.queue_depth(&dlq_name(q))).unwrap(),
            0,
            "nothing dead-lettered by the ledger on {q}"
        );
    }

    // Each study: its record and every event of its pipeline, exactly once.
    let row = |uid: &str| {
        let found = rt.block_on(find(&ledger, uid)).unwrap();
        assert_eq!(found.len(), 1, "{uid}");
        found.into_iter().next().unwrap()
    };
    let plain_row = row(&plain);
    assert_eq!(plain_row.status.as_deref(), Some("ok"));
    assert_eq!(plain_row.delivery.as_deref(), Some("delivered"));
    assert!(plain_row.has_fracture.is_some() && plain_row.end_to_end_ms.is_some());
    let ring_row = row(&ring);
    assert!(ring_row.status.is_some(), "{ring_row:?}");
    let defect_row = row(&defect);
    assert_eq!(defect_row.status.as_deref(), Some("technical_defect"));
    assert_eq!(
        defect_row.reason_code.as_deref(),
        Some("NON_UNIFORM_SPACING")
    );
    assert_eq!(
        defect_row.delivery.as_deref(),
        Some("delivered"),
        "a defect still gets its SR"
    );
    for s in [&plain_row, &ring_row, &defect_row] {
        // source.json recorded (a rejected series has no chosen series, but its accession).
        assert!(
            !s.accession_number.is_empty(),
            "source.json recorded: {s:?}"
        );
        let job_id = s.job_id.clone().unwrap();
        let events = rt.block_on(job_events(&ledger, &job_id));
        let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
        for stage in Stage::ALL {
            expected.insert((stage.name().into(), "started".into()), 1);
            expected.insert((stage.name().into(), "finished".into()), 1);
        }
        expected.insert(("ingest".into(), "received".into()), 1);
        expected.insert(("publisher".into(), "delivered".into()), 1);
        assert_eq!(
            events, expected,
            "study {}: events of job {job_id}",
            s.study_uid
        );
    }
    let dead_events = rt.block_on(job_events(&ledger, "e2e-dead-letter"));
    assert_eq!(
        dead_events,
        BTreeMap::from([
            (("inference".into(), "started".into()), 1),
            (("inference".into(), "dead_lettered".into()), 1),
        ]),
        "the dead-lettered job"
    );
    let total: i64 = rt.block_on(scalar(&ledger, "SELECT count(*) FROM events", &[]));
    assert_eq!(total, 3 * 12 + 2, "nothing else, nothing twice");

    // `studies show` prints the whole timeline.
    let shown = spinescreen(&schema.name, &["studies", "show", &plain]);
    assert!(
        shown.contains(&format!("study          {plain}")),
        "{shown}"
    );
    assert!(shown.contains("status         ok"), "{shown}");
    let timeline = shown.split("timeline (UTC)").nth(1).expect("a timeline");
    for stage in Stage::ALL {
        for kind in ["started", "finished"] {
            let line = format!(" {:<11} {:<15} attempt 1", stage.name(), kind);
            assert_eq!(
                timeline.matches(&line).count(),
                1,
                "{line:?} once in\n{shown}"
            );
        }
    }
    assert!(timeline.contains(" ingest      received "), "{shown}");
    assert!(timeline.contains(" publisher   delivered "), "{shown}");
    let shown = spinescreen(&schema.name, &["studies", "show", &defect]);
    assert!(shown.contains("NON_UNIFORM_SPACING"), "{shown}");
    let shown = spinescreen(&schema.name, &["studies", "show", dead_uid]);
    assert!(shown.contains("status         dead_lettered"), "{shown}");
    assert!(shown.contains("dead_lettered"), "{shown}");
    let listed = spinescreen(
        &schema.name,
        &["studies", "list", "--status", "technical_defect", "--json"],
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["study_uid"], defect.as_str());
}
