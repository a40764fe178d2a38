//! Delivery to real receivers: DCMTK storescp (C-STORE), a STOW-RS origin server and a webhook
//! (axum, in-process), a mock SCP answering with a chosen C-STORE status, and a directory.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use common::*;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use spinescreen_publisher::delivery::{self, Package};
use spinescreen_publisher::{
    build_sr_with, Destination, Instance, Language, PublisherConfig, RetryPolicy,
};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn cfg(destinations: Vec<Destination>) -> PublisherConfig {
    PublisherConfig {
        language: Language::En,
        destinations,
        retry: RetryPolicy {
            attempts: 3,
            initial_backoff_ms: 10,
            max_backoff_ms: 40,
        },
        timeout_s: 5,
        ..Default::default()
    }
}

fn package(sc_count: usize) -> Package {
    let sc: Vec<Instance> = (0..sc_count)
        .map(|i| Instance::from_part10(Bytes::from(sc_file(i)), &format!("sc/{i:04}.dcm")).unwrap())
        .collect();
    let refs: Vec<_> = sc.iter().map(Instance::reference).collect();
    let result = positive_result();
    let sr = build_sr_with(
        &result,
        &study_info(4),
        &cfg(vec![]),
        &service(),
        &refs,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    Package {
        study_uid: STUDY_UID.into(),
        sr: Instance::from_part10(Bytes::from(sr), "sr.dcm").unwrap(),
        sc,
        result_json: serde_json::to_vec(&result).unwrap(),
        fhir_json: None,
        preview_png: Some(Bytes::from_static(b"\x89PNG fake")),
    }
}

fn expected_uids(pkg: &Package) -> Vec<String> {
    let mut v: Vec<String> = pkg
        .instances()
        .iter()
        .map(|i| i.sop_instance_uid.clone())
        .collect();
    v.sort();
    v
}

async fn deliver(dest: &Destination, pkg: &Package, cfg: &PublisherConfig) -> Result<(), String> {
    let http = delivery::http_client(cfg).unwrap();
    delivery::deliver(dest, pkg, cfg, &http)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn cstore_delivers_sr_and_sc_to_storescp_without_duplicates_on_redelivery() {
    let scp = StoreScp::start(&[]);
    let pkg = package(3);
    let dest = scp.destination();
    deliver(&dest, &pkg, &cfg(vec![])).await.unwrap();
    assert_eq!(scp.received(), expected_uids(&pkg));

    // The same result published again (e.g. after a redelivered job) builds a fresh SR with
    // the same SOP Instance UID: the PACS sees the same instances, not new ones.
    let again = package(3);
    assert_eq!(again.sr.sop_instance_uid, pkg.sr.sop_instance_uid);
    deliver(&dest, &again, &cfg(vec![])).await.unwrap();
    let received = scp.received();
    assert_eq!(received, expected_uids(&pkg));
    let distinct: BTreeSet<_> = received.iter().collect();
    assert_eq!(distinct.len(), received.len());
}

#[tokio::test]
async fn large_instance_is_split_into_pdus_the_scp_accepts() {
    // storescp offers a 4 KiB maximum PDU; a 40 KiB secondary capture must arrive intact.
    let scp = StoreScp::start(&["--max-pdu", "4096"]);
    let mut pkg = package(1);
    let mut big = sc_file(0);
    // Replace the 64-byte pixel data with 40 KiB by rebuilding the instance.
    let mut obj = dicom_object::from_reader(&big[128..]).unwrap();
    obj.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::PIXEL_DATA,
        dicom_core::VR::OB,
        dicom_core::PrimitiveValue::from(vec![7u8; 40 * 1024]),
    ));
    obj.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::ROWS,
        dicom_core::VR::US,
        dicom_core::PrimitiveValue::from(160u16),
    ));
    obj.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::COLUMNS,
        dicom_core::VR::US,
        dicom_core::PrimitiveValue::from(256u16),
    ));
    big.clear();
    obj.write_all(&mut big).unwrap();
    pkg.sc = vec![Instance::from_part10(Bytes::from(big), "big").unwrap()];
    deliver(&scp.destination(), &pkg, &cfg(vec![]))
        .await
        .unwrap();
    assert_eq!(scp.received(), expected_uids(&pkg));
    let stored = std::fs::read_dir(scp.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("SC"))
        .unwrap();
    let pixels = dicom_object::open_file(stored)
        .unwrap()
        .element(dicom_dictionary_std::tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap()
        .len();
    assert_eq!(pixels, 40 * 1024);
}

#[tokio::test]
async fn implicit_only_scp_gets_reencoded_instances() {
    let scp = StoreScp::start(&["+xi"]);
    let pkg = package(2);
    deliver(&scp.destination(), &pkg, &cfg(vec![]))
        .await
        .unwrap();
    assert_eq!(scp.received(), expected_uids(&pkg));
}

#[tokio::test]
async fn scp_that_aborts_every_store_is_retried_then_fails() {
    let scp = StoreScp::start(&["--abort-after"]);
    let pkg = package(1);
    let err = deliver(&scp.destination(), &pkg, &cfg(vec![]))
        .await
        .unwrap_err();
    assert!(err.contains("3 attempt(s)"), "{err}");
    assert!(scp.received().is_empty());
}

#[tokio::test]
async fn unreachable_pacs_fails_after_bounded_retries() {
    let dest = Destination::Cstore {
        host: "127.0.0.1".into(),
        port: free_port(),
        called_ae: "NOBODY".into(),
        calling_ae: "SPINESCREEN".into(),
    };
    let started = Instant::now();
    let err = deliver(&dest, &package(0), &cfg(vec![])).await.unwrap_err();
    assert!(
        err.contains("3 attempt(s)") && err.contains("association"),
        "{err}"
    );
    // Backoff 10 + 20 ms: bounded, not endless.
    assert!(started.elapsed() < Duration::from_secs(5));
}

// --- a mock SCP that answers every C-STORE with a chosen status ---

fn put(buf: &mut Vec<u8>, element: u16, value: &[u8]) {
    let padded = value.len() + value.len() % 2;
    buf.extend_from_slice(&0u16.to_le_bytes());
    buf.extend_from_slice(&element.to_le_bytes());
    buf.extend_from_slice(&(padded as u32).to_le_bytes());
    buf.extend_from_slice(value);
    if value.len() % 2 == 1 {
        buf.push(0);
    }
}

fn field(cmd: &[u8], wanted: u16) -> Option<Vec<u8>> {
    let mut pos = 0;
    while pos + 8 <= cmd.len() {
        let element = u16::from_le_bytes([cmd[pos + 2], cmd[pos + 3]]);
        let len = u32::from_le_bytes(cmd[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let value = cmd[pos + 8..pos + 8 + len].to_vec();
        if element == wanted {
            return Some(value);
        }
        pos += 8 + len;
    }
    None
}

/// Listens on a free port; answers each C-STORE-RQ with `status`; counts the requests.
fn status_scp(status: u16) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let opts = dicom_ul::ServerAssociationOptions::new()
                .accept_any()
                .promiscuous(true)
                .ae_title("MOCK");
            let Ok(mut assoc) = opts.establish(stream) else {
                continue;
            };
            let mut command = vec![];
            loop {
                match assoc.receive() {
                    Ok(Pdu::PData { data }) => {
                        for pdv in data {
                            if pdv.value_type == PDataValueType::Command {
                                command = pdv.data.clone();
                                seen.fetch_add(1, Ordering::SeqCst);
                            } else if pdv.is_last {
                                let mut rsp = vec![];
                                let class = field(&command, 0x0002).unwrap_or_default();
                                let msg = field(&command, 0x0110).unwrap_or_default();
                                let inst = field(&command, 0x1000).unwrap_or_default();
                                put(&mut rsp, 0x0002, &class);
                                put(&mut rsp, 0x0100, &0x8001u16.to_le_bytes());
                                put(&mut rsp, 0x0120, &msg);
                                put(&mut rsp, 0x0800, &0x0101u16.to_le_bytes());
                                put(&mut rsp, 0x0900, &status.to_le_bytes());
                                put(&mut rsp, 0x1000, &inst);
                                let mut full = vec![];
                                put(&mut full, 0x0000, &(rsp.len() as u32).to_le_bytes());
                                full.extend_from_slice(&rsp);
                                let _ = assoc.send(&Pdu::PData {
                                    data: vec![PDataValue {
                                        presentation_context_id: pdv.presentation_context_id,
                                        value_type: PDataValueType::Command,
                                        is_last: true,
                                        data: full,
                                    }],
                                });
                            }
                        }
                    }
                    Ok(Pdu::ReleaseRQ) => {
                        let _ = assoc.send(&Pdu::ReleaseRP);
                        break;
                    }
                    _ => break,
                }
            }
        }
    });
    (port, count)
}

fn mock_destination(port: u16) -> Destination {
    Destination::Cstore {
        host: "127.0.0.1".into(),
        port,
        called_ae: "MOCK".into(),
        calling_ae: "SPINESCREEN".into(),
    }
}

#[tokio::test]
async fn cstore_warning_status_b007_is_not_success() {
    let (port, requests) = status_scp(0xB007);
    let err = deliver(&mock_destination(port), &package(2), &cfg(vec![]))
        .await
        .unwrap_err();
    assert!(err.contains("0xB007"), "{err}");
    // Each of the 3 attempts stops at the first instance that was not stored cleanly.
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn cstore_failure_status_a700_is_not_success_and_success_status_is() {
    let (port, _) = status_scp(0xA700);
    let err = deliver(&mock_destination(port), &package(1), &cfg(vec![]))
        .await
        .unwrap_err();
    assert!(
        err.contains("0xA700") && err.contains("out of resources"),
        "{err}"
    );

    let (port, requests) = status_scp(0x0000);
    deliver(&mock_destination(port), &package(2), &cfg(vec![]))
        .await
        .unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 3); // 2 SC + 1 SR, one attempt
}

// --- STOW-RS and webhook receivers ---

#[derive(Clone, Default)]
struct Received {
    stow_uids: Arc<Mutex<Vec<String>>>,
    requests: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    auth: Arc<Mutex<Vec<String>>>,
}

/// A minimal STOW-RS origin server: splits multipart/related, parses every part as DICOM.
async fn stow(
    State((rx, status)): State<(Received, StatusCode)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    rx.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(a) = headers.get("authorization") {
        rx.auth
            .lock()
            .unwrap()
            .push(a.to_str().unwrap().to_string());
    }
    if status != StatusCode::OK {
        return (status, "{}".into());
    }
    let ct = headers["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("multipart/related") && ct.contains("type=\"application/dicom\""));
    let boundary = ct
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_string();
    let delim = format!("--{boundary}");
    let text = body.as_ref();
    let mut starts = vec![];
    let mut i = 0;
    while let Some(p) = find(&text[i..], delim.as_bytes()) {
        starts.push(i + p);
        i += p + delim.len();
    }
    for w in starts.windows(2) {
        let part = &text[w[0] + delim.len()..w[1]];
        let header_end = find(part, b"\r\n\r\n").unwrap() + 4;
        let payload = &part[header_end..part.len() - 2];
        let inst = Instance::from_part10(Bytes::copy_from_slice(payload), "part").unwrap();
        rx.stow_uids.lock().unwrap().push(inst.sop_instance_uid);
    }
    (
        StatusCode::OK,
        "{\"00081199\":{\"vr\":\"SQ\",\"Value\":[]}}".into(),
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn hook(
    State((rx, _)): State<(Received, StatusCode)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let ct = headers["content-type"].to_str().unwrap().to_string();
    rx.bodies
        .lock()
        .unwrap()
        .push((ct, serde_json::from_slice(&body).unwrap()));
    StatusCode::NO_CONTENT
}

async fn serve(status: StatusCode) -> (String, Received) {
    let rx = Received::default();
    let app = axum::Router::new()
        .route("/dicom-web/studies", post(stow))
        .route("/hook", post(hook))
        .with_state((rx.clone(), status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), rx)
}

#[tokio::test]
async fn stow_rs_receiver_gets_every_instance_with_bearer_token() {
    let (base, rx) = serve(StatusCode::OK).await;
    let pkg = package(3);
    let dest = Destination::Stow {
        url: format!("{base}/dicom-web/studies"),
        bearer_token: Some("s3cret".into()),
    };
    deliver(&dest, &pkg, &cfg(vec![])).await.unwrap();
    let mut got = rx.stow_uids.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, expected_uids(&pkg));
    assert_eq!(rx.auth.lock().unwrap().as_slice(), ["Bearer s3cret"]);
}

#[tokio::test]
async fn stow_rs_conflict_or_server_error_is_retried_then_fails() {
    for status in [
        StatusCode::CONFLICT,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::ACCEPTED,
    ] {
        let (base, rx) = serve(status).await;
        let dest = Destination::Stow {
            url: format!("{base}/dicom-web/studies"),
            bearer_token: None,
        };
        let err = deliver(&dest, &package(1), &cfg(vec![])).await.unwrap_err();
        assert!(err.contains(&status.as_u16().to_string()), "{err}");
        assert_eq!(rx.requests.load(Ordering::SeqCst), 3, "{status}");
    }
}

#[tokio::test]
async fn webhook_posts_result_json_or_a_fhir_diagnostic_report() {
    let (base, rx) = serve(StatusCode::OK).await;
    let mut pkg = package(0);
    let report = spinescreen_publisher::fhir::diagnostic_report(
        &positive_result(),
        &study_info(2),
        &cfg(vec![]),
        &service(),
        &pkg.sr.sop_instance_uid,
        "2024-01-05T10:30:00Z",
    );
    pkg.fhir_json = Some(serde_json::to_vec(&report).unwrap());
    for fhir in [false, true] {
        let dest = Destination::Webhook {
            url: format!("{base}/hook"),
            fhir,
        };
        deliver(&dest, &pkg, &cfg(vec![])).await.unwrap();
    }
    let bodies = rx.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0].0, "application/json");
    assert_eq!(bodies[0].1["study_instance_uid"], STUDY_UID);
    assert_eq!(bodies[1].0, "application/fhir+json");
    let r = &bodies[1].1;
    assert_eq!(r["resourceType"], "DiagnosticReport");
    assert_eq!(r["status"], "preliminary");
    assert!(r["conclusion"]
        .as_str()
        .unwrap()
        .starts_with("Compression deformity L1"));
    assert_eq!(r["contained"].as_array().unwrap().len(), 5);
    let l1 = &r["contained"][3];
    assert_eq!(l1["bodySite"]["coding"][0]["code"], "66794005");
    assert_eq!(l1["valueQuantity"]["code"], "%");
    assert_eq!(
        r["identifier"][0]["value"],
        format!("urn:oid:{}", pkg.sr.sop_instance_uid)
    );
}

#[tokio::test]
async fn directory_destination_writes_sr_sc_result_and_preview() {
    let root = tempfile::tempdir().unwrap();
    let dest = Destination::Directory {
        path: PathBuf::from(root.path()),
    };
    let pkg = package(2);
    deliver(&dest, &pkg, &cfg(vec![])).await.unwrap();
    let dir = root.path().join(STUDY_UID);
    for f in [
        "sr.dcm",
        "sc/0000.dcm",
        "sc/0001.dcm",
        "result.json",
        "preview.png",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(
        std::fs::read(dir.join("sr.dcm")).unwrap(),
        pkg.sr.file.as_ref()
    );
    let mut uids = received_in(&dir);
    uids.extend(received_in(&dir.join("sc")));
    uids.sort();
    assert_eq!(uids, expected_uids(&pkg));
}
