//! The operator console in a real browser: Debian's headless `chromium`, driven through
//! `chromedriver` (the W3C WebDriver protocol, spoken here over plain HTTP). It logs in with the
//! token, filters the list, opens a study and checks that the browser decoded its preview image,
//! then follows the nav to the monitoring page and reads a stored review's agreement.
//!
//! Needs `chromium` and `chromium-driver` (scripts/test.sh installs them) and PostgreSQL. The test
//! skips, saying why, only when one of the two programs is not installed; a browser that is
//! installed but fails is a failure. `SPINESCREEN_CONSOLE_SCREENSHOT=FILE.png` also saves a
//! screenshot of the study page (docs/img/console.png is made so), and
//! `SPINESCREEN_CONSOLE_DEMO=DIR` (the output of `spinescreen demo --out DIR`) gives the first
//! study that demo's result and preview instead of a fixture and a drawn image.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spinescreen_ledger::console::{serve, Console};
use spinescreen_proto::{SourceInfo, StudyStatus};
use spinescreen_runtime::{CancellationToken, StoreConfig, StudyStore};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "browser-test-token";
/// The WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A program on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// chromedriver, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to chromedriver (which refuses HTTP/1.0 and keeps the connection open
/// after answering, so the body is read by its Content-Length); the JSON answer's `value`, or the
/// WebDriver error.
async fn call(port: u16, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = vec![];
    let mut buf = [0u8; 8192];
    let body_start = loop {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("{method} {path}: connection closed: {raw:?}"));
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..body_start]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("{method} {path}: no Content-Length in {head}"))?;
    while raw.len() < body_start + length {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("{method} {path}: body cut short"));
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let v: Value = serde_json::from_slice(&raw[body_start..body_start + length]).map_err(|e| {
        format!(
            "{method} {path}: not JSON ({e}): {}",
            String::from_utf8_lossy(&raw)
        )
    })?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if value.get("error").is_some() {
        return Err(format!("{method} {path}: {value}"));
    }
    Ok(value)
}

struct Browser {
    port: u16,
    session: String,
}

impl Browser {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    async fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url }))).await;
    }

    async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn source(&self) -> String {
        self.call("GET", "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call("POST", &format!("/element/{e}/clear"), Some(json!({})))
            .await;
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    async fn screenshot(&self) -> Vec<u8> {
        let v = self.call("GET", "/screenshot", None).await;
        base64_decode(v.as_str().unwrap_or_default()).expect("screenshot in base64")
    }

    async fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.script(script).await != Value::Bool(true) {
            assert!(Instant::now() < deadline, "{what}: {}", self.source().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A 320 × 240 grey PNG with a bright band (a stand-in for a rendered preview).
fn drawn_png() -> Vec<u8> {
    let (w, h) = (320u32, 240u32);
    let mut pixels = vec![0u8; (w * h) as usize];
    for y in 0..h {
        for x in 0..w {
            let band = (140..180).contains(&x);
            pixels[(y * w + x) as usize] = if band { 230 } else { (y / 2) as u8 };
        }
    }
    let mut out = vec![];
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    out
}

fn start_driver(chromedriver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    driver
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_logs_in_filters_opens_a_study_and_sees_its_preview() {
    let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
    else {
        eprintln!(
            "SKIPPED: chromium and chromedriver are not both installed (Debian: apt-get install \
             chromium chromium-driver; scripts/test.sh does)"
        );
        return;
    };
    let Some(mut db) = test_db().await else {
        return;
    };

    // The ledger: a fractured study, a ring-artefact defect at CT-3, one still in progress.
    let now = spinescreen_runtime::events::now_unix_ms();
    let dir = tempfile::tempdir().unwrap();
    let store = StudyStore::from_config(&StoreConfig::Local {
        root: dir.path().to_path_buf(),
    })
    .unwrap();
    let demo = std::env::var_os("SPINESCREEN_CONSOLE_DEMO").map(PathBuf::from);
    let preview = match &demo {
        Some(d) => std::fs::read(d.join("preview.png")).expect("the demo's preview.png"),
        None => drawn_png(),
    };
    let demo_result: Option<spinescreen_proto::StudyResult> = demo.as_ref().map(|d| {
        serde_json::from_slice(&std::fs::read(d.join("result.json")).expect("result.json"))
            .expect("the demo's result.json")
    });
    let studies = [
        (
            "1.2.826.0.1.3680043.9.7001",
            "A-10041",
            "CT-1",
            Some(StudyStatus::Ok),
            41_000,
        ),
        (
            "1.2.826.0.1.3680043.9.7002",
            "A-10042",
            "CT-3",
            Some(StudyStatus::TechnicalDefect),
            12_000,
        ),
        (
            "1.2.826.0.1.3680043.9.7003",
            "A-10043",
            "CT-1",
            Some(StudyStatus::Ok),
            430_000,
        ),
        ("1.2.826.0.1.3680043.9.7004", "A-10044", "CT-2", None, 0),
    ];
    for (i, (study, accession, station, status, e2e)) in studies.iter().enumerate() {
        let t0 = now - 3_000_000 + i as u64 * 600_000;
        let j = job(&format!("job-{accession}"), study, t0);
        let events = pipeline_events(&j, t0 + 10);
        let events = if status.is_some() {
            &events[..]
        } else {
            &events[..4]
        };
        for e in events {
            db.ledger.record_event(e).await.unwrap();
        }
        db.ledger
            .record_source(&SourceInfo {
                study_instance_uid: study.to_string(),
                accession_number: accession.to_string(),
                station_name: station.to_string(),
                manufacturer: "ACME".into(),
                model: "Helix 64".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let Some(status) = status else { continue };
        let result = match status {
            StudyStatus::Ok if i == 0 => match &demo_result {
                Some(r) => {
                    let mut r = r.clone();
                    r.study_instance_uid = study.to_string();
                    r
                }
                None => fracture_result(study),
            },
            StudyStatus::Ok => {
                let mut r = fracture_result(study);
                r.has_fracture = Some(false);
                r.vertebrae.truncate(1);
                r
            }
            _ => defect_result(study, "RING_ARTIFACTS"),
        };
        db.ledger
            .record_done(&done(&j, *status, *e2e), Some(&result), t0 + e2e)
            .await
            .unwrap();
        store
            .put(&uid(study).keys().preview_png(), preview.clone())
            .await
            .unwrap();
    }

    // A recorded review (`monitor report --record`): 4 of 5 agree with the conclusion.
    let reviews = "study_uid,station_name,status,agree_with_conclusion\n\
                   1,CT-1,ok,yes\n2,CT-1,ok,yes\n3,CT-1,ok,yes\n4,CT-3,ok,yes\n5,CT-3,ok,no\n";
    let report = spinescreen_ledger::monitor::report::review_report(reviews).unwrap();
    spinescreen_ledger::monitor::stored::record_report(
        &db.ledger,
        &report,
        "worksheet.csv",
        reviews,
        now,
    )
    .await
    .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        Console::new(database_url(), db.schema.clone(), Some(store), TOKEN),
        stop.clone(),
    ));

    let driver = start_driver(&chromedriver);
    let caps = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"]
        }
    }}});
    let session = call(driver.port, "POST", "/session", Some(caps))
        .await
        .unwrap_or_else(|e| panic!("chromium did not start under chromedriver: {e}"));
    let browser = Browser {
        port: driver.port,
        session: session["sessionId"].as_str().unwrap().to_string(),
    };

    // Not logged in: the console sends the browser to its login page.
    browser.go(&format!("{base}/")).await;
    assert!(
        browser.url().await.ends_with("/login"),
        "{}",
        browser.url().await
    );
    browser.type_into("#token", "not-the-token").await;
    browser.click("#login").await;
    // The refusal is a new page: wait for it rather than read the one the click left.
    browser
        .wait_for(
            "the wrong-token refusal",
            "return document.body !== null && document.body.innerText.includes('wrong token')",
        )
        .await;
    browser.type_into("#token", TOKEN).await;
    browser.click("#login").await;
    browser
        .wait_for(
            "the list after the login",
            "return document.getElementById('studies') !== null",
        )
        .await;
    let list = browser.source().await;
    for (_, accession, ..) in &studies {
        assert!(list.contains(accession), "{accession} listed: {list}");
    }
    assert!(
        list.contains("class=\"sla-missed\""),
        "the late study is red: {list}"
    );

    // Filter: technical defects only.
    browser
        .type_into("#filter input[name=status]", "technical_defect")
        .await;
    browser.click("#filter button").await;
    browser
        .wait_for(
            "the filtered list",
            "return location.search.includes('status=technical_defect')",
        )
        .await;
    let filtered = browser.source().await;
    assert!(filtered.contains("A-10042"), "{filtered}");
    assert!(
        !filtered.contains("A-10041") && !filtered.contains("A-10044"),
        "{filtered}"
    );
    // Then station CT-1, finished ones.
    browser.type_into("#filter input[name=status]", "ok").await;
    browser
        .type_into("#filter input[name=station]", "CT-1")
        .await;
    browser.click("#filter button").await;
    browser
        .wait_for(
            "the CT-1 list",
            "return location.search.includes('station=CT-1')",
        )
        .await;
    let ct1 = browser.source().await;
    assert!(ct1.contains("A-10041") && ct1.contains("A-10043"), "{ct1}");
    assert!(!ct1.contains("A-10042"), "{ct1}");

    // Open the fractured study and see its preview decoded by the browser.
    browser
        .click("a[href=\"/studies/1.2.826.0.1.3680043.9.7001\"]")
        .await;
    browser
        .wait_for(
            "the preview to load",
            "const i = document.getElementById('preview'); \
             return i !== null && i.complete && i.naturalWidth > 0",
        )
        .await;
    let page = browser.source().await;
    assert!(page.contains("Study 1.2.826.0.1.3680043.9.7001"), "{page}");
    assert!(
        page.contains("A-10041") && page.contains("fracture ") && page.contains("L1:"),
        "{page}"
    );
    let width = browser
        .script("return document.getElementById('preview').naturalWidth")
        .await;
    let expected = {
        let d = png::Decoder::new(std::io::Cursor::new(preview.clone()));
        d.read_info().unwrap().info().width
    };
    assert_eq!(
        width.as_u64(),
        Some(u64::from(expected)),
        "the preview's width"
    );
    assert!(page.contains("href=\"/studies/1.2.826.0.1.3680043.9.7001/sr.dcm\""));

    if let Some(out) = std::env::var_os("SPINESCREEN_CONSOLE_SCREENSHOT") {
        let png = browser.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(&out, png).expect("writing the screenshot");
        eprintln!("screenshot written to {}", PathBuf::from(out).display());
    }

    // The monitoring page, from the nav: the stored review's figures.
    browser.click("#nav-monitor").await;
    browser
        .wait_for(
            "the monitoring page",
            "return document.getElementById('figures') !== null",
        )
        .await;
    let agreement = browser
        .script("return document.getElementById('conclusion').innerText")
        .await;
    let agreement = agreement.as_str().unwrap_or_default();
    assert!(
        agreement.contains("0.80") && agreement.contains("4 of 5"),
        "{agreement}"
    );

    let _ = call(
        driver.port,
        "DELETE",
        &format!("/session/{}", browser.session),
        None,
    )
    .await;
    drop(driver);
    stop.cancel();
    server.await.unwrap().unwrap();
}
