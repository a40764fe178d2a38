//! Receptions stored as bundles: the C-STORE SCP's write-ahead spool, its recovery after the
//! receiver was killed, and ingest reading bundles and the per-instance layout alike.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::{
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::{ClientAssociationOptions, Pdu};
use spinescreen_ingest::receive::run_scp_on;
use spinescreen_ingest::{
    build_volume, stage_directory, IngestConfig, IngestLimits, IngestWorker, SourceFile,
};
use spinescreen_proto::bundle::{record_header, BUNDLE_MAGIC};
use spinescreen_proto::uid::is_bundle_key;
use spinescreen_proto::{HuVolume, Job, ServiceInfo, Stage, StudyStatus};
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::{Broker, CancellationToken, StageContext, StageWorker, StudyStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

fn limits() -> IngestLimits {
    IngestLimits {
        min_slices: 8,
        ..Default::default()
    }
}

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

/// A series of 24 slices of 256 × 256 (128 KiB each, 3 MiB in all: several 1 MiB segments).
fn big_series() -> SeriesSpec {
    SeriesSpec {
        rows: 256,
        columns: 256,
        ..Default::default()
    }
}

fn spool_config(spool: &Path) -> IngestConfig {
    let mut config = IngestConfig {
        limits: limits(),
        inactivity_timeout_s: 10,
        ..Default::default()
    };
    config.scp.spool_dir = Some(spool.to_path_buf());
    config.scp.spool_segment_mib = 1;
    config.scp.spool_recovery_delay_s = 1;
    config
}

/// Run the ingest worker on a job; the job it passes on and the stored volume.
async fn ingest(ctx: &StageContext, job: Job) -> (Job, HuVolume) {
    let worker = IngestWorker::new(&IngestConfig {
        limits: limits(),
        ..Default::default()
    });
    let mut out = worker.process(job, ctx).await.unwrap();
    assert_eq!(out.len(), 1);
    let job = out.remove(0);
    assert_eq!(job.status, StudyStatus::Ok, "{job:?}");
    let uid = job.study_uid.clone().unwrap();
    let volume = spinescreen_runtime::volumes::read_volume(&ctx.store, &uid.keys())
        .await
        .unwrap();
    (job, volume)
}

/// The volume ingest makes of `files` stored the way receptions were before bundles: one object
/// per instance.
async fn per_instance_volume(files: &[SourceFile]) -> HuVolume {
    let (ctx, _) = context();
    for f in files {
        ctx.store
            .put(&format!("incoming/old/{}", f.name), f.bytes.clone())
            .await
            .unwrap();
    }
    let (_, volume) = ingest(&ctx, Job::ingest("old".into(), "incoming/old/".into(), 1)).await;
    volume
}

/// Wait (up to 5 s) until the spool holds nothing but its lock: the receiver removes a
/// reception's spool right after publishing its job.
async fn spool_emptied(spool: &Path) -> Vec<String> {
    for _ in 0..50 {
        if spool_contents(spool).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    spool_contents(spool)
}

async fn jobs_within(broker: &MemoryBroker, n: usize, timeout: Duration) -> Vec<Job> {
    broker.declare(Stage::Ingest.queue()).await.unwrap();
    let mut consumer = broker.consume(Stage::Ingest.queue(), 100).await.unwrap();
    let mut jobs = vec![];
    while jobs.len() < n {
        let Ok(Some(Ok(d))) = tokio::time::timeout(timeout, consumer.next()).await else {
            break;
        };
        d.acker.ack().await.unwrap();
        jobs.push(Job::from_bytes(&d.message.body).unwrap());
    }
    jobs
}

/// Encode a C-STORE-RQ command set (PS3.7 §9.3.1.1) in implicit VR little endian.
fn c_store_rq(message_id: u16, sop_class: &str, sop_instance: &str) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag, vr, v: PrimitiveValue| {
        obj.put(DataElement::new(tag, vr, v));
    };
    put(
        tags::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(sop_class),
    );
    put(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0001u16));
    put(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id));
    put(tags::PRIORITY, VR::US, PrimitiveValue::from(0u16));
    put(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(0u16),
    );
    put(
        tags::AFFECTED_SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sop_instance),
    );
    let mut body = vec![];
    obj.write_dataset_with_ts(&mut body, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    obj.put(DataElement::new(
        tags::COMMAND_GROUP_LENGTH,
        VR::UL,
        PrimitiveValue::from(body.len() as u32),
    ));
    let mut out = vec![];
    obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    out
}

/// Send `slices` of `spec` on one association and release it; the C-STORE statuses. A slice
/// listed twice is sent twice (a sender's retry).
fn send(port: u16, spec: &SeriesSpec, slices: &[usize]) -> Vec<u16> {
    let mut association = ClientAssociationOptions::new()
        .with_presentation_context(CT_STORAGE, vec![EXPLICIT_LE])
        .calling_ae_title("MODALITY")
        .called_ae_title("SPINESCREEN")
        .establish(("127.0.0.1", port))
        .unwrap();
    let pc = association.presentation_contexts()[0].id;
    let mut statuses = vec![];
    for (i, &k) in slices.iter().enumerate() {
        let mut data = vec![];
        spec.slice(k)
            .write_dataset_with_ts(&mut data, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
            .unwrap();
        let command = c_store_rq(i as u16 + 1, CT_STORAGE, &spec.sop_uid(k));
        // Fragments within the default maximum PDU length.
        let fragments = std::iter::once((PDataValueType::Command, command, true)).chain({
            let chunks: Vec<Vec<u8>> = data.chunks(16_000).map(<[u8]>::to_vec).collect();
            let n = chunks.len();
            chunks
                .into_iter()
                .enumerate()
                .map(move |(j, c)| (PDataValueType::Data, c, j + 1 == n))
        });
        for (value_type, bytes, is_last) in fragments {
            association
                .send(&Pdu::PData {
                    data: vec![PDataValue {
                        presentation_context_id: pc,
                        value_type,
                        is_last,
                        data: bytes,
                    }],
                })
                .unwrap();
        }
        match association.receive().unwrap() {
            Pdu::PData { data } => {
                let rsp = InMemDicomObject::read_dataset_with_ts(
                    &data[0].data[..],
                    &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
                )
                .unwrap();
                statuses.push(rsp.element(tags::STATUS).unwrap().to_int::<u16>().unwrap());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    association.release().unwrap();
    statuses
}

/// What is left in a spool directory besides its lock.
fn spool_contents(spool: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != ".lock")
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spooled_c_store_reception_is_stored_as_bundles_and_ingested_to_the_same_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    let (ctx, broker) = context();
    let config = spool_config(&spool);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let scp = tokio::spawn({
        let (store, broker, shutdown) = (ctx.store.clone(), ctx.broker.clone(), shutdown.clone());
        async move { run_scp_on(listener, &config, store, broker, shutdown).await }
    });
    let spec = big_series();
    // Every slice, and slice 3 a second time (a sender's retry): one instance, not two.
    let mut slices: Vec<usize> = (0..spec.slices).collect();
    slices.push(3);
    let sent = spec.clone();
    let statuses = tokio::task::spawn_blocking(move || send(port, &sent, &slices))
        .await
        .unwrap();
    assert_eq!(statuses, vec![0u16; spec.slices + 1]);
    let jobs = jobs_within(&broker, 1, Duration::from_secs(10)).await;
    assert_eq!(jobs.len(), 1, "no ingest job after the release");
    let keys = ctx.store.list(&jobs[0].incoming_prefix).await.unwrap();
    assert!(
        keys.len() >= 3 && keys.iter().all(|k| is_bundle_key(k)),
        "3 MiB in 1 MiB segments should be several bundles and nothing else: {keys:?}"
    );
    // The spool is emptied once the job is published.
    let left = spool_emptied(&spool).await;
    assert!(left.is_empty(), "{left:?}");

    let (_, volume) = ingest(&ctx, jobs[0].clone()).await;
    assert_eq!(volume.header.study.sop_instance_uids.len(), spec.slices);
    let truth = per_instance_volume(&spec.files()).await;
    assert_eq!(volume, truth, "bundled reception differs from the series");
    shutdown.cancel();
    scp.await.unwrap().unwrap();
}

/// Write a spool as a receiver killed mid-association leaves it: `reception.json`, a full
/// segment, and a last segment whose final record was cut off by the kill.
fn killed_receivers_spool(spool: &Path, batch: &str, files: &[SourceFile], received_at: u64) {
    let dir = spool.join(batch);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("reception.json"),
        format!("{{\"received_at_unix_ms\":{received_at}}}"),
    )
    .unwrap();
    let segment = |files: &[SourceFile]| {
        let mut seg = BUNDLE_MAGIC.to_vec();
        for f in files {
            seg.extend(record_header(&f.name, f.bytes.len() as u64));
            seg.extend_from_slice(&f.bytes);
        }
        seg
    };
    let half = files.len() / 2;
    std::fs::write(dir.join("00000.seg"), segment(&files[..half])).unwrap();
    let mut last = segment(&files[half..]);
    // An instance being written when the receiver died: never acknowledged.
    let mut torn = record_header("1.2.826.0.1.3680043.9.7433.99.1", 100_000);
    torn.extend_from_slice(&[7u8; 1000]);
    last.extend(torn);
    std::fs::write(dir.join("00001.seg"), last).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_left_by_a_killed_receiver_is_completed_on_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    let spec = SeriesSpec::default();
    // Records named by SOP Instance UID, as the receiver names them (files are `s2-<k>.dcm`).
    let files: Vec<SourceFile> = spec
        .files()
        .into_iter()
        .map(|f| {
            let k: usize = f.name[3..7].parse().unwrap();
            SourceFile {
                name: spec.sop_uid(k),
                bytes: f.bytes,
            }
        })
        .collect();
    let batch = "3f0c5a52-8d1e-4b8e-9a57-2f5d8c1e0b11";
    killed_receivers_spool(&spool, batch, &files, 1_700_000_000_000);
    // A reception that died before its first instance was acknowledged: removed, no job.
    std::fs::create_dir_all(spool.join("9d2b7e40-1111-4c3a-8e2f-000000000000")).unwrap();

    let (ctx, broker) = context();
    let mut config = spool_config(&spool);
    config.scp.spool_recovery_delay_s = 2;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
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
    // Not at once: a sender's re-send of the cut-off study goes first.
    let early = jobs_within(&broker, 1, Duration::from_millis(1000)).await;
    assert!(early.is_empty(), "recovered before the delay: {early:?}");
    let jobs = jobs_within(&broker, 2, Duration::from_secs(5)).await;
    assert_eq!(jobs.len(), 1, "one job for the spooled reception: {jobs:?}");
    assert_eq!(jobs[0].job_id, batch, "the batch keeps its id");
    assert_eq!(jobs[0].received_at_unix_ms, 1_700_000_000_000);
    let left = spool_emptied(&spool).await;
    assert!(left.is_empty(), "{left:?}");

    // A second receiver cannot take a spool in use.
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        run_scp_on(
            other,
            &config,
            ctx.store.clone(),
            ctx.broker.clone(),
            CancellationToken::new(),
        ),
    )
    .await
    .expect("a second receiver on the same spool must fail, not serve");
    assert!(refused.unwrap_err().to_string().contains("in use"));

    // Every acknowledged instance is there, the torn one is not.
    let (_, volume) = ingest(&ctx, jobs[0].clone()).await;
    assert_eq!(volume.header.study.sop_instance_uids.len(), spec.slices);
    assert_eq!(volume, per_instance_volume(&spec.files()).await);
    shutdown.cancel();
    scp.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_stopping_before_the_recovery_delay_completes_the_left_spool_first() {
    // Its spool may be an emptyDir that goes with the pod: nothing left there may wait.
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    let spec = SeriesSpec::default();
    let files: Vec<SourceFile> = spec
        .files()
        .into_iter()
        .map(|f| {
            let k: usize = f.name[3..7].parse().unwrap();
            SourceFile {
                name: spec.sop_uid(k),
                bytes: f.bytes,
            }
        })
        .collect();
    let batch = "0b7d1e9a-5c2f-4e8d-a1b3-6f4c2d9e8a70";
    killed_receivers_spool(&spool, batch, &files, 1);
    let (ctx, broker) = context();
    let mut config = spool_config(&spool);
    config.scp.spool_recovery_delay_s = 3600;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let scp = tokio::spawn({
        let (store, broker, shutdown) = (ctx.store.clone(), ctx.broker.clone(), shutdown.clone());
        async move { run_scp_on(listener, &config, store, broker, shutdown).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), scp)
        .await
        .expect("the receiver stops")
        .unwrap()
        .unwrap();
    let jobs = jobs_within(&broker, 1, Duration::from_secs(1)).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job_id, batch);
    assert!(spool_contents(&spool).is_empty());
}

#[tokio::test]
async fn old_and_new_layouts_give_the_same_volume() {
    let spec = SeriesSpec::default();
    // The layout before bundles (a reception stored by an older receiver during a rolling
    // upgrade): every slice, decoded.
    let old = per_instance_volume(&spec.files()).await;
    assert_eq!(old.header.study.sop_instance_uids.len(), spec.slices);
    let truth = build_volume(spec.files(), &limits()).unwrap();
    assert_eq!(old.voxels, truth.voxels);

    // A directory staged as bundles.
    let (ctx, _) = context();
    let tmp = tempfile::tempdir().unwrap();
    spec.write_dir(tmp.path());
    let job = stage_directory(&ctx.store, tmp.path()).await.unwrap();
    let keys = ctx.store.list(&job.incoming_prefix).await.unwrap();
    assert_eq!(keys.len(), 1, "24 small files make one bundle: {keys:?}");
    assert!(is_bundle_key(&keys[0]));
    let (_, new) = ingest(&ctx, job).await;
    assert_eq!(new, old);
}

#[tokio::test]
async fn a_study_sent_in_two_bundled_parts_is_analysed_whole() {
    // The second reception's ingest reads the first one's instances back out of its bundle
    // (received.json names them by bundle and byte range).
    let spec = SeriesSpec::default();
    let (ctx, _) = context();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    // The first part is the lower half of the stack (files are `s2-<k>.dcm`).
    for f in spec.files() {
        let k: usize = f.name[3..7].parse().unwrap();
        let dir = if k < spec.slices / 2 { &a } else { &b };
        std::fs::write(dir.join(&f.name), &f.bytes).unwrap();
    }
    let first = stage_directory(&ctx.store, &a).await.unwrap();
    let (_, part) = ingest(&ctx, first).await;
    assert_eq!(part.header.study.sop_instance_uids.len(), spec.slices / 2);
    let second = stage_directory(&ctx.store, &b).await.unwrap();
    let (_, whole) = ingest(&ctx, second).await;
    assert_eq!(whole.header.study.sop_instance_uids.len(), spec.slices);
    assert_eq!(whole, per_instance_volume(&spec.files()).await);
}

#[tokio::test]
async fn a_damaged_bundle_is_a_permanent_error_and_the_reception_stays() {
    let (ctx, _) = context();
    let mut bundle = BUNDLE_MAGIC.to_vec();
    bundle.extend(record_header("1.2.3", 1_000));
    bundle.extend_from_slice(&[0u8; 10]);
    ctx.store
        .put("incoming/bad/bundle-00000.bundle", bundle)
        .await
        .unwrap();
    let worker = IngestWorker::new(&IngestConfig::default());
    let err = worker
        .process(Job::ingest("bad".into(), "incoming/bad/".into(), 1), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(err, spinescreen_runtime::StageError::Permanent(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("bundle-00000.bundle"), "{err}");
    assert!(ctx
        .store
        .exists("incoming/bad/bundle-00000.bundle")
        .await
        .unwrap());
}
