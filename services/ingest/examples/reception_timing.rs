//! Time one study through the C-STORE receiver and the ingest stage, the two layouts side by
//! side: each instance stored as its own object before its C-STORE response (no spool), and the
//! write-ahead spool uploaded as bundles (`[ingest.scp] spool_dir`).
//!
//! `cargo run -p spinescreen-ingest --example reception_timing -- DIR [RUNS]` sends the `.dcm`
//! files of `DIR` (e.g. `spinescreen phantom --out DIR --seed 1`, 512² × 400; written there
//! when `DIR` holds none) with dcmtk's `storescu` to an in-process SCP — the way
//! `spinescreen load --send cstore` sends to `worker receiver` — and times: the send (storescu
//! start to exit, every C-STORE answered and the association released), the reception's
//! completion (release to the ingest job published), and the ingest worker's stage (list, read,
//! build, write `volume.zst`). The store is a local directory, or an S3 bucket when
//! `SPINESCREEN_BENCH_S3_ENDPOINT` is set (with `SPINESCREEN_BENCH_S3_BUCKET`, `…_ACCESS_KEY`,
//! `…_SECRET_KEY`), as for the `volume_round_trip` bench. Best of `RUNS` (3) per layout;
//! `RECEPTION_LAYOUTS` picks the layouts (`per-instance,spool` by default; also
//! `spool-nofsync`; `RECEPTION_SEGMENT_MIB` sets `spool_segment_mib`;
//! `RECEPTION_STORE_LATENCY_MS` delays every store request, as a store across a network does). The SCP completes a reception before it answers A-RELEASE, so the send
//! includes storing the last bundles and publishing the job.
// Example code: a failed unwrap is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_ingest::receive::run_scp_on;
use spinescreen_ingest::{IngestConfig, IngestWorker};
use spinescreen_proto::{Job, ServiceInfo, Stage};
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::{Broker, CancellationToken, StageContext, StageWorker, StudyStore};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn store(local: &Path) -> StudyStore {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let inner: Arc<dyn object_store::ObjectStore> =
        match std::env::var("SPINESCREEN_BENCH_S3_ENDPOINT") {
            Ok(endpoint) => Arc::new(
                object_store::aws::AmazonS3Builder::new()
                    .with_endpoint(endpoint)
                    .with_bucket_name(env("SPINESCREEN_BENCH_S3_BUCKET"))
                    .with_region("us-east-1")
                    .with_access_key_id(env("SPINESCREEN_BENCH_S3_ACCESS_KEY"))
                    .with_secret_access_key(env("SPINESCREEN_BENCH_S3_SECRET_KEY"))
                    .with_virtual_hosted_style_request(false)
                    .with_allow_http(true)
                    .build()
                    .unwrap(),
            ),
            Err(_) => {
                std::fs::create_dir_all(local).unwrap();
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(local).unwrap())
            }
        };
    // A store across a network: each request waits this long first (object_store's
    // ThrottledStore), as a PUT or GET to an S3 service a few milliseconds away does.
    let latency_ms: u64 = env("RECEPTION_STORE_LATENCY_MS").parse().unwrap_or(0);
    if latency_ms == 0 {
        return StudyStore::new(inner);
    }
    let wait = Duration::from_millis(latency_ms);
    let config = object_store::throttle::ThrottleConfig {
        wait_put_per_call: wait,
        wait_get_per_call: wait,
        wait_delete_per_call: wait,
        wait_list_per_call: wait,
        ..Default::default()
    };
    StudyStore::new(Arc::new(object_store::throttle::ThrottledStore::new(
        inner, config,
    )))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

struct Timing {
    send: Duration,
    complete: Duration,
    ingest: Duration,
    objects: usize,
}

async fn one_run(dir: &Path, store: &StudyStore, spool: Option<&Path>, fsync: bool) -> Timing {
    let broker = Arc::new(MemoryBroker::new());
    broker.declare(Stage::Ingest.queue()).await.unwrap();
    let mut consumer = broker.consume(Stage::Ingest.queue(), 10).await.unwrap();
    let mut config = IngestConfig::default();
    config.scp.spool_dir = spool.map(Path::to_path_buf);
    config.scp.spool_fsync = fsync;
    if let Some(mib) = std::env::var("RECEPTION_SEGMENT_MIB")
        .ok()
        .and_then(|m| m.parse().ok())
    {
        config.scp.spool_segment_mib = mib;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let scp = tokio::spawn({
        let (store, broker, shutdown, config) = (
            store.clone(),
            broker.clone() as Arc<dyn Broker>,
            shutdown.clone(),
            config.clone(),
        );
        async move { run_scp_on(listener, &config, store, broker, shutdown).await }
    });
    let dir = dir.to_path_buf();
    let start = Instant::now();
    let sent = tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("storescu")
            .args(["-aet", "MODALITY", "-aec", "SPINESCREEN", "+sd", "+r"])
            .args(["-xs", "127.0.0.1"])
            .arg(port.to_string())
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "storescu: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Instant::now()
    })
    .await
    .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(120), consumer.next())
        .await
        .expect("an ingest job")
        .unwrap()
        .unwrap();
    let published = Instant::now();
    delivery.acker.ack().await.unwrap();
    let job = Job::from_bytes(&delivery.message.body).unwrap();
    let objects = store.list(&job.incoming_prefix).await.unwrap().len();
    let ctx = StageContext {
        store: store.clone(),
        broker: broker.clone(),
        service: ServiceInfo {
            name: "spinescreen".into(),
            version: "timing".into(),
        },
    };
    let worker = IngestWorker::new(&IngestConfig::default());
    let t = Instant::now();
    let out = worker.process(job, &ctx).await.unwrap();
    let ingest = t.elapsed();
    assert_eq!(out.len(), 1, "ingest passes the job on");
    shutdown.cancel();
    scp.await.unwrap().unwrap();
    Timing {
        send: sent - start,
        complete: published.saturating_duration_since(sent),
        ingest,
        objects,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(args.first().expect("usage: reception_timing DIR [RUNS]"));
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    let has_dicom = std::fs::read_dir(dir).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "dcm")))
    });
    if !has_dicom {
        eprintln!(
            "writing the 512² × 400 phantom (seed 1) into {}",
            dir.display()
        );
        let phantom = spinescreen_phantom::generate(&Default::default()).unwrap();
        spinescreen_phantom::write_dicom_series(&phantom, dir).unwrap();
        let _ = std::fs::remove_file(dir.join("truth.json"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("load average before: {}", load_average());
    let spool_dir = tmp.path().join("spool");
    // RECEPTION_LAYOUTS: a comma-separated choice of per-instance, spool, spool-nofsync.
    let layouts = std::env::var("RECEPTION_LAYOUTS").unwrap_or("per-instance,spool".into());
    for layout in layouts.split(',') {
        let (label, spool, fsync) = match layout {
            "per-instance" => ("per instance (no spool)", None, true),
            "spool" => ("spool + bundles", Some(spool_dir.clone()), true),
            "spool-nofsync" => (
                "spool + bundles, spool_fsync = false",
                Some(spool_dir.clone()),
                false,
            ),
            other => panic!("unknown layout {other}"),
        };
        let mut best: Option<Timing> = None;
        for run in 1..=runs {
            let t = rt.block_on(one_run(dir, &store, spool.as_deref(), fsync));
            println!(
                "{label} run {run}: send {:.2} s, release to job {:.2} s, ingest {:.2} s, {} objects (load {})",
                t.send.as_secs_f64(),
                t.complete.as_secs_f64(),
                t.ingest.as_secs_f64(),
                t.objects,
                load_average()
            );
            if best
                .as_ref()
                .is_none_or(|b| t.send + t.complete < b.send + b.complete)
            {
                best = Some(t);
            }
        }
        if let Some(b) = best {
            println!(
                "BEST {label}: send {:.2} s, release to job {:.2} s, ingest {:.2} s, {} objects",
                b.send.as_secs_f64(),
                b.complete.as_secs_f64(),
                b.ingest.as_secs_f64(),
                b.objects
            );
        }
    }
    println!("load average after: {}", load_average());
}
