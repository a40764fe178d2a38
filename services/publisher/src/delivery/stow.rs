//! DICOMweb STOW-RS (PS3.18 §10.5): `POST {studies-url}` with a `multipart/related;
//! type="application/dicom"` body, one part per instance.
//!
//! Only `200 OK` without a Failed SOP Sequence (0008,1198) is success. `202 Accepted` means some
//! instances failed or were stored with warnings (PS3.18 §10.5.3.1), `409 Conflict` that none
//! were stored; both, like any other status, fail the delivery.

use crate::instance::Instance;
use sha2::{Digest, Sha256};

/// Tag of the Failed SOP Sequence in a DICOM JSON response (PS3.18 F.2).
const FAILED_SOP_SEQUENCE: &str = "00081198";

/// A boundary that does not depend on chance, derived from the instances' UIDs.
fn boundary(instances: &[&Instance]) -> String {
    let mut h = Sha256::new();
    for i in instances {
        h.update(i.sop_instance_uid.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let hex: String = d[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("spinescreen-{hex}")
}

/// The multipart/related body and its Content-Type header value.
pub fn multipart_body(instances: &[&Instance]) -> (String, Vec<u8>) {
    let b = boundary(instances);
    let mut body = Vec::with_capacity(instances.iter().map(|i| i.file.len() + 128).sum());
    for i in instances {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&i.file);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    let content_type = format!("multipart/related; type=\"application/dicom\"; boundary={b}");
    (content_type, body)
}

/// Store the instances; `Err` says why the origin server did not store all of them.
pub async fn store_all(
    client: &reqwest::Client,
    url: &str,
    bearer_token: Option<&str>,
    instances: &[&Instance],
) -> Result<(), String> {
    if instances.is_empty() {
        return Ok(());
    }
    let (content_type, body) = multipart_body(instances);
    let mut rq = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(reqwest::header::ACCEPT, "application/dicom+json")
        .body(body);
    if let Some(token) = bearer_token {
        rq = rq.bearer_auth(token);
    }
    let rsp = rq.send().await.map_err(|e| format!("POST {url}: {e}"))?;
    let status = rsp.status();
    let text = rsp.text().await.unwrap_or_default();
    if status != reqwest::StatusCode::OK {
        return Err(format!(
            "POST {url}: HTTP {status}{}",
            if text.is_empty() {
                String::new()
            } else {
                format!(": {}", text.chars().take(300).collect::<String>())
            }
        ));
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
        let failed = json
            .get(FAILED_SOP_SEQUENCE)
            .and_then(|f| f.get("Value"))
            .and_then(|v| v.as_array())
            .map_or(0, |a| a.len());
        if failed > 0 {
            return Err(format!(
                "POST {url}: HTTP 200 but {failed} instance(s) in the Failed SOP Sequence"
            ));
        }
    }
    Ok(())
}
