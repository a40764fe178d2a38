//! C-STORE SCP sessions: compressed instances over the network, the inactivity fallback, and
//! one reception per study.
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
use spinescreen_ingest::{build_volume, IngestConfig, IngestLimits, SourceFile};
use spinescreen_proto::{Job, Stage};
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::{Broker, CancellationToken, StudyStore};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

struct Scp {
    port: u16,
    store: StudyStore,
    broker: Arc<MemoryBroker>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), spinescreen_ingest::IngestError>>,
}

async fn start_scp(inactivity_s: u64) -> Scp {
    let store = StudyStore::new(Arc::new(object_store::memory::InMemory::new()));
    let broker = Arc::new(MemoryBroker::new());
    let config = IngestConfig {
        inactivity_timeout_s: inactivity_s,
        ..Default::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (store, broker, shutdown) = (store.clone(), broker.clone(), shutdown.clone());
        async move { run_scp_on(listener, &config, store, broker, shutdown).await }
    });
    Scp {
        port,
        store,
        broker,
        shutdown,
        task,
    }
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

async fn files_of(store: &StudyStore, job: &Job) -> Vec<SourceFile> {
    let mut files = vec![];
    for key in store.list(&job.incoming_prefix).await.unwrap() {
        let bytes = store.get(&key).await.unwrap();
        files.push(SourceFile { name: key, bytes });
    }
    files
}

fn limits() -> IngestLimits {
    IngestLimits {
        min_slices: 8,
        ..Default::default()
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_rle_and_jpeg_ls_instances_sent_with_storescu_decode_like_the_originals() {
    if !have("storescu") {
        return;
    }
    // 128 × 160 × 2 bytes per slice: larger than one PDU, so datasets arrive in fragments.
    let spec = SeriesSpec {
        rows: 128,
        columns: 160,
        ..Default::default()
    };
    let reference = build_volume(spec.files(), &limits()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    spec.write_dir(tmp.path());
    let scp = start_scp(10).await;
    let mut codecs = vec![("native", "-xe"), ("dcmcrle", "-xr")];
    if cfg!(feature = "jpeg-ls") {
        codecs.push(("dcmcjpls", "-xt"));
    }
    for (tool, propose) in codecs {
        if tool != "native" && !have(tool) {
            continue;
        }
        let mut paths = vec![];
        for f in spec.files() {
            let native = tmp.path().join(&f.name);
            if tool == "native" {
                paths.push(native);
                continue;
            }
            let coded = tmp.path().join(format!("{tool}-{}", f.name));
            assert!(Command::new(tool)
                .arg(&native)
                .arg(&coded)
                .status()
                .unwrap()
                .success());
            paths.push(coded);
        }
        let port = scp.port.to_string();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("storescu")
                .args(["-aec", "SPINESCREEN", propose, "127.0.0.1", &port])
                .args(&paths)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let jobs = jobs_within(&scp.broker, 1, Duration::from_secs(5)).await;
        assert_eq!(jobs.len(), 1);
        let files = files_of(&scp.store, &jobs[0]).await;
        assert_eq!(files.len(), spec.slices);
        let v = build_volume(&files, &limits()).unwrap();
        assert!(v.voxels == reference.voxels, "{tool}: voxels differ");
        assert_eq!(v.header, reference.header);
    }
    scp.shutdown.cancel();
    scp.task.await.unwrap().unwrap();
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

/// Send the given slices of each series on one association; keep it open for `hold` before
/// releasing. Returns the C-STORE response statuses.
fn send_raw(port: u16, series: &[(SeriesSpec, Vec<usize>)], hold: Duration) -> Vec<u16> {
    let mut association = ClientAssociationOptions::new()
        .with_presentation_context(CT_STORAGE, vec![EXPLICIT_LE])
        .calling_ae_title("SLOWPACS")
        .called_ae_title("SPINESCREEN")
        .establish(("127.0.0.1", port))
        .unwrap();
    let pc = association.presentation_contexts()[0].id;
    let mut statuses = vec![];
    let mut message_id = 1;
    for (spec, slices) in series {
        for &k in slices {
            let mut data = vec![];
            spec.slice(k)
                .write_dataset_with_ts(&mut data, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
                .unwrap();
            let command = c_store_rq(message_id, CT_STORAGE, &spec.sop_uid(k));
            message_id += 1;
            for (value_type, bytes) in [
                (PDataValueType::Command, command),
                (PDataValueType::Data, data),
            ] {
                association
                    .send(&Pdu::PData {
                        data: vec![PDataValue {
                            presentation_context_id: pc,
                            value_type,
                            is_last: true,
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
    }
    std::thread::sleep(hold);
    association.release().unwrap();
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_association_completes_its_reception_after_the_inactivity_timeout() {
    let scp = start_scp(1).await;
    let spec = SeriesSpec::default();
    let port = scp.port;
    let sender = {
        let spec = spec.clone();
        // Send everything, then stay silent for 4 s before releasing.
        std::thread::spawn(move || {
            send_raw(port, &[(spec, (0..24).collect())], Duration::from_secs(4))
        })
    };
    // The job arrives while the association is still open.
    let jobs = jobs_within(&scp.broker, 1, Duration::from_secs(3)).await;
    assert!(!sender.is_finished(), "the sender had already released");
    assert_eq!(jobs.len(), 1, "no job after the inactivity timeout");
    let statuses = tokio::task::spawn_blocking(move || sender.join().unwrap())
        .await
        .unwrap();
    assert_eq!(statuses, vec![0u16; 24]);
    let files = files_of(&scp.store, &jobs[0]).await;
    let v = build_volume(&files, &limits()).unwrap();
    assert_eq!(v.header.study.sop_instance_uids.len(), 24);
    // Nothing further arrived, so release publishes nothing more.
    assert!(jobs_within(&scp.broker, 1, Duration::from_millis(500))
        .await
        .is_empty());
    scp.shutdown.cancel();
    scp.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_studies_on_one_association_become_two_jobs() {
    let scp = start_scp(10).await;
    let a = SeriesSpec::default();
    let b = SeriesSpec {
        study_uid: "1.2.826.0.1.3680043.9.7433.2.1".into(),
        series_uid: "1.2.826.0.1.3680043.9.7433.2.1.2".into(),
        ..Default::default()
    };
    let port = scp.port;
    let (sa, sb) = (a.clone(), b.clone());
    let statuses = tokio::task::spawn_blocking(move || {
        send_raw(
            port,
            &[(sa, (0..12).collect()), (sb, (0..12).collect())],
            Duration::ZERO,
        )
    })
    .await
    .unwrap();
    assert_eq!(statuses.len(), 24);
    let jobs = jobs_within(&scp.broker, 2, Duration::from_secs(5)).await;
    assert_eq!(jobs.len(), 2);
    let mut studies = vec![];
    for job in &jobs {
        let files = files_of(&scp.store, job).await;
        assert_eq!(files.len(), 12);
        studies.push(
            build_volume(&files, &limits())
                .unwrap()
                .header
                .study
                .study_instance_uid,
        );
    }
    studies.sort();
    assert_eq!(studies, vec![a.study_uid.clone(), b.study_uid.clone()]);
    scp.shutdown.cancel();
    scp.task.await.unwrap().unwrap();
}
