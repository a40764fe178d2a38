//! Issue 23, items 1, 3 and 6 over the network: hostile clients against the C-STORE SCP and
//! STOW-RS. Garbage and hostile data sets get a failure status and the server keeps serving;
//! idle connections are closed; STOW-RS authenticates before it reads a body and refuses an
//! oversized one before reading it.
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
use spinescreen_ingest::receive::{run_scp_on, run_stow_on};
use spinescreen_ingest::IngestConfig;
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::{CancellationToken, StudyStore};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

fn store() -> StudyStore {
    StudyStore::new(Arc::new(object_store::memory::InMemory::new()))
}

fn config() -> IngestConfig {
    let mut c = IngestConfig {
        inactivity_timeout_s: 1,
        ..Default::default()
    };
    c.scp.idle_timeout_s = 2;
    c.stow.header_timeout_s = 2;
    c.stow.bearer_token = Some("right-token".into());
    c.stow.max_request_bytes = 1 << 20;
    c.limits.max_bytes_per_file = 256 * 1024;
    c
}

async fn start_scp(config: IngestConfig) -> (u16, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        run_scp_on(listener, &config, store(), Arc::new(MemoryBroker::new()), s).await
    });
    (port, shutdown)
}

async fn start_stow(config: IngestConfig) -> (u16, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        run_stow_on(listener, &config, store(), Arc::new(MemoryBroker::new()), s).await
    });
    (port, shutdown)
}

fn c_store_rq(message_id: u16, sop_instance: &str) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag, vr, v: PrimitiveValue| obj.put(DataElement::new(tag, vr, v));
    put(
        tags::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(CT_STORAGE),
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
    let mut out = vec![];
    obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    out
}

/// Send each data set as one C-STORE on one association; the response statuses.
fn send_datasets(port: u16, datasets: &[Vec<u8>]) -> Vec<u16> {
    let mut association = ClientAssociationOptions::new()
        .with_presentation_context(CT_STORAGE, vec![EXPLICIT_LE])
        .calling_ae_title("HOSTILE")
        .called_ae_title("SPINESCREEN")
        .establish(("127.0.0.1", port))
        .unwrap();
    let pc = association.presentation_contexts()[0].id;
    let mut statuses = vec![];
    for (i, data) in datasets.iter().enumerate() {
        let command = c_store_rq(i as u16 + 1, &format!("1.2.826.0.1.3680043.9.7433.5.{i}"));
        association
            .send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: pc,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: command,
                }],
            })
            .unwrap();
        let chunks: Vec<&[u8]> = data.chunks(16 * 1024).collect();
        for (j, chunk) in chunks.iter().enumerate() {
            association
                .send(&Pdu::PData {
                    data: vec![PDataValue {
                        presentation_context_id: pc,
                        value_type: PDataValueType::Data,
                        is_last: j + 1 == chunks.len(),
                        data: chunk.to_vec(),
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

/// A data set nested `depth` deep in explicit VR little endian (what `storescu` sent).
fn nested_dataset(depth: usize) -> Vec<u8> {
    let mut out = vec![];
    for _ in 0..depth {
        out.extend_from_slice(&[
            0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    }
    for _ in 0..depth {
        out.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        out.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    }
    out
}

fn good_dataset() -> Vec<u8> {
    let mut data = vec![];
    SeriesSpec::default()
        .slice(0)
        .write_dataset_with_ts(&mut data, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scp_refuses_garbage_deep_nesting_and_oversize_and_keeps_serving() {
    let (port, shutdown) = start_scp(config()).await;
    let mut lying_length = good_dataset();
    lying_length.extend_from_slice(&[0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0]);
    lying_length.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let statuses = tokio::task::spawn_blocking(move || {
        send_datasets(
            port,
            &[
                b"this is not a DICOM data set at all".to_vec(),
                nested_dataset(2_000),
                lying_length,
                vec![0u8; 300 * 1024], // over max_bytes_per_file
                good_dataset(),
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(statuses, vec![0xC000, 0xC000, 0xC000, 0xA700, 0x0000]);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scp_closes_an_idle_connection() {
    let (port, shutdown) = start_scp(config()).await;
    let started = Instant::now();
    let closed = tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        // EOF (0) or a reset: the server hung up. A timeout means it did not.
        match socket.read(&mut buf) {
            Ok(n) => n == 0,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    })
    .await
    .unwrap();
    assert!(closed, "the idle connection was left open");
    assert!(started.elapsed() < Duration::from_secs(6));
    shutdown.cancel();
}

/// Write `request` to the STOW-RS port and read what comes back within `wait`.
fn http(port: u16, request: &[u8], wait: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.write_all(request).unwrap();
    let mut out = vec![];
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stow_answers_a_wrong_token_and_an_oversized_body_before_reading_it() {
    let (port, shutdown) = start_stow(config()).await;
    let wrong = tokio::task::spawn_blocking(move || {
        http(
            port,
            b"POST /studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\
              Content-Type: multipart/related; type=\"application/dicom\"; boundary=b\r\n\
              Content-Length: 268435456\r\n\r\n--b\r\n",
            Duration::from_secs(5),
        )
    })
    .await
    .unwrap();
    assert!(wrong.0.starts_with("HTTP/1.1 401"), "{:?}", wrong.0);
    assert!(wrong.1 < Duration::from_secs(3));
    let big = tokio::task::spawn_blocking(move || {
        http(
            port,
            b"POST /studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer right-token\r\n\
              Content-Type: multipart/related; type=\"application/dicom\"; boundary=b\r\n\
              Content-Length: 2147483648\r\n\r\n",
            Duration::from_secs(5),
        )
    })
    .await
    .unwrap();
    assert!(big.0.starts_with("HTTP/1.1 413"), "{:?}", big.0);
    assert!(big.1 < Duration::from_secs(3));
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stow_closes_a_connection_with_unfinished_headers() {
    let (port, shutdown) = start_stow(config()).await;
    let (_, waited) = tokio::task::spawn_blocking(move || {
        http(
            port,
            b"POST /studies HTTP/1.1\r\nHost: x\r\n",
            Duration::from_secs(15),
        )
    })
    .await
    .unwrap();
    assert!(waited < Duration::from_secs(8), "open for {waited:?}");
    shutdown.cancel();
}
