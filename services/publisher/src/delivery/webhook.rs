//! JSON webhook: `POST {url}` with `result.json`, or with a FHIR R4 DiagnosticReport
//! (`application/fhir+json`). Any 2xx status is success.

/// Post a JSON document.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let rsp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = rsp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("POST {url}: HTTP {status}"))
    }
}
