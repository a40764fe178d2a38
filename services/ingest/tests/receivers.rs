//! Receivers end to end: a phantom study sent from a directory, with dcmtk `storescu` to the
//! C-STORE SCP, and over STOW-RS, gives the same volume; defects still flow on as results.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_ingest::receive::{run_scp_on, run_stow_on};
use spinescreen_ingest::{stage_directory, IngestConfig, IngestWorker};
use spinescreen_phantom::{generate, write_dicom_series, PhantomSpec};
use spinescreen_proto::{HuVolume, Job, ReasonCode, ServiceInfo, Stage, StudyResult, StudyStatus};
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::{Broker, CancellationToken, StageContext, StageWorker, StudyStore};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

fn context() -> (StageContext, Arc<MemoryBroker>) {
    let store = StudyStore::new(Arc::new(object_store::memory::InMemory::new()));
    let broker = Arc::new(MemoryBroker::new());
    let ctx = StageContext {
        store,
        broker: broker.clone(),
        service: ServiceInfo {
            name: "spinescreen".into(),
            version: "test".into(),
        },
    };
    (ctx, broker)
}

fn small_phantom(dir: &Path) -> HuVolume {
    let spec = PhantomSpec {
        seed: 11,
        matrix: 96,
        slices: 76,
        slice_thickness_mm: 5.0,
        pixel_spacing_mm: Some(3.5),
        ..Default::default()
    };
    let phantom = generate(&spec).unwrap();
    write_dicom_series(&phantom, dir).unwrap();
    phantom.volume
}

/// Run the ingest worker on a job and read back the stored volume.
async fn ingest(ctx: &StageContext, job: Job) -> (Job, Option<HuVolume>) {
    let worker = IngestWorker::new(&IngestConfig::default());
    let mut out = worker.process(job, ctx).await.unwrap();
    assert_eq!(out.len(), 1);
    let job = out.remove(0);
    let uid = job.study_uid.clone().expect("ingest sets the study UID");
    let keys = uid.keys();
    if job.status != StudyStatus::Ok {
        return (job, None);
    }
    // Ingest writes volume format 2 (zstd frames), never the raw format-1 object.
    assert!(!ctx.store.exists(&keys.volume_voxels()).await.unwrap());
    let volume = spinescreen_runtime::volumes::read_volume(&ctx.store, &keys)
        .await
        .unwrap();
    (job, Some(volume))
}

/// The next ingest job on the broker, within `timeout`.
async fn next_job(broker: &MemoryBroker, timeout: Duration) -> Option<Job> {
    broker.declare(Stage::Ingest.queue()).await.unwrap();
    let mut consumer = broker.consume(Stage::Ingest.queue(), 10).await.unwrap();
    let delivery = tokio::time::timeout(timeout, consumer.next())
        .await
        .ok()??
        .ok()?;
    delivery.acker.ack().await.unwrap();
    Some(Job::from_bytes(&delivery.message.body).unwrap())
}

fn dicom_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    v.sort();
    v
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_scp_and_stow_receptions_give_the_same_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("study");
    let truth = small_phantom(&dir);
    let (ctx, broker) = context();

    // Directory (truth.json rides along and is ignored as not DICOM).
    let job = stage_directory(&ctx.store, &dir).await.unwrap();
    let (job, from_dir) = ingest(&ctx, job).await;
    let from_dir = from_dir.unwrap();
    assert_eq!(job.status, StudyStatus::Ok);
    assert_eq!(
        from_dir.voxels, truth.voxels,
        "ingest must reproduce the phantom's HU"
    );
    for a in 0..3 {
        assert!((from_dir.header.spacing_mm[a] - truth.header.spacing_mm[a]).abs() < 1e-4);
        assert!((from_dir.header.origin_mm[a] - truth.header.origin_mm[a]).abs() < 1e-3);
    }
    assert_eq!(
        from_dir.header.study.sop_instance_uids,
        truth.header.study.sop_instance_uids
    );

    let shutdown = CancellationToken::new();
    let mut config = IngestConfig::default();
    config.stow.bearer_token = Some("s3cret".into());

    // C-STORE SCP with dcmtk storescu.
    if have("storescu") {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let scp = tokio::spawn({
            let (config, store, broker, shutdown) = (
                config.clone(),
                ctx.store.clone(),
                ctx.broker.clone(),
                shutdown.clone(),
            );
            async move { run_scp_on(listener, &config, store, broker, shutdown).await }
        });
        let files = dicom_files(&dir);
        let out = tokio::task::spawn_blocking(move || {
            Command::new("storescu")
                .args(["-aet", "MODALITY", "-aec", "SPINESCREEN", "-xs"])
                .arg("127.0.0.1")
                .arg(port.to_string())
                .args(&files)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "storescu: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let job = next_job(&broker, Duration::from_secs(5))
            .await
            .expect("job after release");
        let (_, from_scp) = ingest(&ctx, job).await;
        assert_eq!(
            from_scp.unwrap(),
            from_dir,
            "C-STORE volume differs from the directory's"
        );

        // C-ECHO.
        let echo = Command::new("echoscu")
            .args(["-aec", "SPINESCREEN", "127.0.0.1", &port.to_string()])
            .output()
            .unwrap();
        assert!(echo.status.success());
        // A wrong called AE title is rejected.
        let wrong = Command::new("echoscu")
            .args(["-aec", "SOMEONE", "127.0.0.1", &port.to_string()])
            .output()
            .unwrap();
        assert!(!wrong.status.success());
        shutdown.cancel();
        scp.await.unwrap().unwrap();
    }

    // STOW-RS.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stow_shutdown = CancellationToken::new();
    let stow = tokio::spawn({
        let (config, store, broker, shutdown) = (
            config.clone(),
            ctx.store.clone(),
            ctx.broker.clone(),
            stow_shutdown.clone(),
        );
        async move { run_stow_on(listener, &config, store, broker, shutdown).await }
    });
    let boundary = "spinescreen-test-boundary";
    let mut body = Vec::new();
    for f in dicom_files(&dir) {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&std::fs::read(f).unwrap());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/studies");
    let content_type =
        format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
    // A wrong token is refused before the body is read (and the connection closed), so the
    // refused request carries no study: with megabytes behind it, the client may still be writing
    // when the server closes, and see a broken pipe instead of the 401.
    let denied = client
        .post(&url)
        .header("Content-Type", &content_type)
        .header("Authorization", "Bearer wrong")
        .body(format!("--{boundary}--\r\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    let response = client
        .post(&url)
        .header("Content-Type", &content_type)
        .header("Authorization", "Bearer s3cret")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let json: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(
        json["00081199"]["Value"].as_array().unwrap().len(),
        truth.header.dims[2]
    );
    assert!(json.get("00081198").is_none());
    let job = next_job(&broker, Duration::from_secs(5))
        .await
        .expect("job after the request");
    let (_, from_stow) = ingest(&ctx, job).await;
    assert_eq!(
        from_stow.unwrap(),
        from_dir,
        "STOW-RS volume differs from the directory's"
    );
    stow_shutdown.cancel();
    stow.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_directory_without_dicom_still_yields_a_defect_result() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("report.pdf"), b"%PDF-1.4 not an image").unwrap();
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    std::fs::write(tmp.path().join("sub/readme.txt"), b"hello").unwrap();
    let (ctx, _) = context();
    let job = stage_directory(&ctx.store, tmp.path()).await.unwrap();
    // Both files are kept (in the reception's one bundle), so ingest can report them.
    let keys = ctx.store.list(&job.incoming_prefix).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let bundle = ctx.store.get(&keys[0]).await.unwrap();
    assert_eq!(
        spinescreen_proto::bundle::parse_bundle(&bundle)
            .unwrap()
            .len(),
        2
    );
    let job_id = job.job_id.clone();
    let (job, volume) = ingest(&ctx, job).await;
    assert!(volume.is_none());
    assert_eq!(job.status, StudyStatus::TechnicalDefect);
    let uid = job.study_uid.unwrap();
    assert!(uid.as_str().starts_with("2.25."));
    let result: StudyResult =
        serde_json::from_slice(&ctx.store.get(&uid.keys().result()).await.unwrap()).unwrap();
    assert_eq!(result.status, StudyStatus::TechnicalDefect);
    assert_eq!(result.reason.unwrap().code, ReasonCode::NO_DICOM);
    assert_eq!(result.service.name, "spinescreen");
    // Redelivery gives the same UID (idempotent).
    let again = Job::ingest(job_id, job.incoming_prefix.clone(), 0);
    let (job2, _) = ingest(&ctx, again).await;
    assert_eq!(job2.study_uid.unwrap(), uid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_outside_the_accepted_calling_aes_is_rejected() {
    if !have("echoscu") {
        return;
    }
    let (ctx, _) = context();
    let mut config = IngestConfig::default();
    config.scp.accepted_calling_aes = vec!["PACS1".into()];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let shutdown = CancellationToken::new();
    let scp = tokio::spawn({
        let (config, store, broker, shutdown) = (
            config.clone(),
            ctx.store.clone(),
            ctx.broker.clone(),
            shutdown.clone(),
        );
        async move { run_scp_on(listener, &config, store, broker, shutdown).await }
    });
    let echo = |aet: &'static str| {
        let port = port.clone();
        tokio::task::spawn_blocking(move || {
            Command::new("echoscu")
                .args(["-aet", aet, "-aec", "SPINESCREEN", "127.0.0.1", &port])
                .output()
                .unwrap()
                .status
                .success()
        })
    };
    assert!(echo("PACS1").await.unwrap());
    assert!(!echo("INTRUDER").await.unwrap());
    shutdown.cancel();
    scp.await.unwrap().unwrap();
}
