//! The operator console over HTTP: the token login, the list with its filters, a study's page by
//! accession number with its preview and SR from the store, 404 for an unknown study, JSON, the
//! stations page, markup in DICOM text escaped, the monitoring page from stored review reports,
//! failed logins limited per client address, sessions that expire.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use spinescreen_ledger::console::{serve, Console, LoginPolicy};
use spinescreen_ledger::monitor::report::review_report;
use spinescreen_ledger::monitor::stored::{latest_reports, record_report};
use spinescreen_proto::{EventKind, SourceInfo, Stage, StudyEvent, StudyStatus};
use spinescreen_runtime::CancellationToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "console-test-token";

/// One HTTP/1.0 exchange: `(status, head, body)` (the body as lossy text).
async fn exchange(addr: std::net::SocketAddr, request: String) -> (u16, String, Vec<u8>) {
    exchange_from("127.0.0.1", addr, request).await
}

/// One HTTP/1.0 exchange from the client address `from` (any of 127.0.0.0/8).
async fn exchange_from(
    from: &str,
    addr: std::net::SocketAddr,
    request: String,
) -> (u16, String, Vec<u8>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = vec![];
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head, body)
}

/// Log in with `token`: `(status, head)`.
async fn login(addr: std::net::SocketAddr, token: &str) -> (u16, String) {
    login_from("127.0.0.1", addr, token).await
}

/// Log in with `token` from the client address `from`: `(status, head)`.
async fn login_from(from: &str, addr: std::net::SocketAddr, token: &str) -> (u16, String) {
    let body = format!("token={token}");
    let (status, head, _) = exchange_from(
        from,
        addr,
        format!(
            "POST /login HTTP/1.0\r\nHost: console\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    (status, head)
}

/// The session cookie a successful login sets.
async fn session(addr: std::net::SocketAddr) -> String {
    let (status, head) = login(addr, TOKEN).await;
    assert_eq!(status, 303, "{head}");
    assert!(head.lines().any(|l| l == "location: /"), "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("Max-Age="), "the session expires: {cookie}");
    assert!(
        !cookie.contains(TOKEN),
        "the cookie never carries the token"
    );
    cookie.split(';').next().unwrap().to_string()
}

/// GET `path` with the session `cookie` (empty: none): `(status, head, body bytes)`.
async fn get_raw(addr: std::net::SocketAddr, path: &str, cookie: &str) -> (u16, String, Vec<u8>) {
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    exchange(
        addr,
        format!("GET {path} HTTP/1.0\r\nHost: console\r\n{cookie}\r\n"),
    )
    .await
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let cookie = SESSION.get().cloned().unwrap_or_default();
    let (status, _, body) = get_raw(addr, path, &cookie).await;
    (status, String::from_utf8_lossy(&body).to_string())
}

static SESSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_studies_and_shows_a_timeline_by_accession() {
    let Some(mut db) = test_db().await else {
        return;
    };
    let t0 = spinescreen_runtime::events::now_unix_ms() - 3_600_000;
    for (study, accession, station, status) in [
        ("1.2.5.1", "ACC-1", "CT-3", StudyStatus::Ok),
        (
            "1.2.5.2",
            "ACC-2",
            "<script>x</script>",
            StudyStatus::TechnicalDefect,
        ),
    ] {
        let j = job(&format!("job-{study}"), study, t0);
        for e in pipeline_events(&j, t0 + 10) {
            db.ledger.record_event(&e).await.unwrap();
        }
        db.ledger
            .record_source(&SourceInfo {
                study_instance_uid: study.into(),
                accession_number: accession.into(),
                station_name: station.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let result = match status {
            StudyStatus::Ok => fracture_result(study),
            _ => defect_result(study, "NON_UNIFORM_SPACING"),
        };
        db.ledger
            .record_done(&done(&j, status, 45_000), Some(&result), t0 + 45_000)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store =
        spinescreen_runtime::StudyStore::from_config(&spinescreen_runtime::StoreConfig::Local {
            root: dir.path().to_path_buf(),
        })
        .unwrap();
    let keys = uid("1.2.5.1").keys();
    store
        .put(&keys.preview_png(), b"\x89PNG fake".to_vec())
        .await
        .unwrap();
    store
        .put(&keys.structured_report(), b"DICM sr".to_vec())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        Console::new(database_url(), db.schema.clone(), Some(store), TOKEN),
        stop.clone(),
    ));

    // Nothing without the token: pages send to the login, the API answers 401.
    let (status, head, _) = get_raw(addr, "/", "").await;
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /login"), "{head}");
    let (status, _, _) = get_raw(addr, "/api/studies", "").await;
    assert_eq!(status, 401);
    let (status, _, _) = get_raw(addr, "/studies/1.2.5.1/preview.png", "").await;
    assert_eq!(status, 303);
    let (status, _, _) = get_raw(addr, "/", "spinescreen_console=forged").await;
    assert_eq!(status, 303);
    let (status, _) = login(addr, "wrong").await;
    assert_eq!(status, 401);
    let (status, _, login_page) = get_raw(addr, "/login", "").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&login_page).contains("name=\"token\""));
    let (status, _, json) = exchange(
        addr,
        format!("GET /api/studies HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&json));
    SESSION.set(session(addr).await).unwrap();

    let (status, page) = get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("ACC-1") && page.contains("ACC-2"), "{page}");
    assert!(page.contains("href=\"/studies/1.2.5.1\""), "{page}");
    assert!(!page.contains("<script>x"), "DICOM text is escaped: {page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");

    let (_, filtered) = get(addr, "/?status=technical_defect&since=1d").await;
    assert!(
        filtered.contains("ACC-2") && !filtered.contains("ACC-1"),
        "{filtered}"
    );

    let (status, study) = get(addr, "/studies/ACC-1").await;
    assert_eq!(status, 200);
    assert!(study.contains("Study 1.2.5.1"), "{study}");
    assert!(study.contains("fracture L1:2"), "{study}");
    assert!(study.contains("<td>finished</td>"), "{study}");
    assert!(
        study.contains("href=\"/monitor\" id=\"nav-monitor\""),
        "the monitoring page is in the nav: {study}"
    );
    assert!(
        study.contains("<img id=\"preview\" src=\"/studies/1.2.5.1/preview.png\""),
        "{study}"
    );
    assert!(
        study.contains("href=\"/studies/1.2.5.1/sr.dcm\""),
        "{study}"
    );
    let cookie = SESSION.get().unwrap().clone();
    let (status, head, png) = get_raw(addr, "/studies/1.2.5.1/preview.png", &cookie).await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: image/png"), "{head}");
    assert_eq!(png, b"\x89PNG fake");
    let (status, head, sr) = get_raw(addr, "/studies/1.2.5.1/sr.dcm", &cookie).await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/dicom"), "{head}");
    assert_eq!(sr, b"DICM sr");
    let (status, _) = get(addr, "/studies/1.2.5.2/preview.png").await;
    assert_eq!(status, 404, "no preview of the defect study in the store");
    let (status, _) = get(addr, "/studies/..%2F..%2Fetc/preview.png").await;
    assert_eq!(status, 404, "only Study Instance UIDs name objects");

    let (status, study) = get(addr, "/studies/ACC-2").await;
    assert_eq!(status, 200);
    assert!(
        !study.contains("<script>x") && study.contains("&lt;script&gt;x"),
        "the station name is escaped on the study page: {study}"
    );

    let (status, stations) = get(addr, "/stations").await;
    assert_eq!(status, 200);
    assert!(
        !stations.contains("<script>x"),
        "escaped on the stations page: {stations}"
    );
    // The stations page lists today's studies: received an hour ago, they are still today
    // unless the test runs in the first hour after midnight UTC.
    if spinescreen_ledger::metrics::utc_midnight(t0)
        == spinescreen_ledger::metrics::utc_midnight(t0 + 3_600_000)
    {
        assert!(
            stations.contains("station=%3Cscript%3Ex"),
            "the station is linked, escaped, on the stations page: {stations}"
        );
        assert!(
            stations.contains(">CT-3</a></td><td>1</td><td>0</td>"),
            "{stations}"
        );
    }

    // `studies retry` ran it again and the new run failed once: the page says so.
    let j = job("job-retry", "1.2.5.1", t0 + 60_000);
    db.ledger
        .record_event(
            &StudyEvent::new(&j, Stage::Inference, EventKind::Failed, 1, t0 + 61_000)
                .with_reason("transient: store"),
        )
        .await
        .unwrap();

    let (_, study) = get(addr, "/studies/ACC-1").await;
    assert!(study.contains("<td>in_progress</td>"), "{study}");
    assert!(
        study.contains("transient: store"),
        "the retry's failure is on the timeline: {study}"
    );

    let (status, _) = get(addr, "/studies/NOPE").await;
    assert_eq!(status, 404);
    let (status, _) = get(addr, "/?since=yesterday").await;
    assert_eq!(status, 400);

    let (status, json) = get(addr, "/api/studies?station=CT-3").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["accession_number"], "ACC-1");
    let (_, json) = get(addr, "/api/studies/1.2.5.2").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["study"]["reason_code"], "NON_UNIFORM_SPACING");

    stop.cancel();
    server.await.unwrap().unwrap();
}

/// A filled worksheet: `agree` of the 4 studies agree with the conclusion; one ring artefact
/// at a station named in markup.
fn worksheet(agree: usize) -> String {
    let mut csv = String::from(
        "study_uid,station_name,received_at_utc,status,reason_code,processing_s,sla_met,\
         agree_with_conclusion,agree_with_localisation\n",
    );
    for i in 0..4 {
        let (station, status, reason) = if i == 3 {
            (
                "<script>alert(1)</script>",
                "technical_defect",
                "RING_ARTIFACTS",
            )
        } else {
            ("CT-1", "ok", "")
        };
        let yes = if i < agree { "yes" } else { "no" };
        csv.push_str(&format!(
            "1.2.9.{i},\"{station}\",2026-11-0{} 09:00:00,{status},{reason},{},yes,{yes},yes\n",
            i + 1,
            30 + 10 * i
        ));
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitoring_page_shows_the_figures_of_the_stored_reports() {
    let Some(db) = test_db().await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        Console::new(database_url(), db.schema.clone(), None, TOKEN),
        stop.clone(),
    ));
    let (status, _, _) = get_raw(addr, "/monitor", "").await;
    assert_eq!(status, 303, "behind the login");
    let cookie = session(addr).await;
    let page = |path: String| {
        let cookie = cookie.clone();
        async move {
            let (status, _, body) = get_raw(addr, &path, &cookie).await;
            (status, String::from_utf8_lossy(&body).to_string())
        }
    };

    let (status, empty) = page("/monitor".into()).await;
    assert_eq!(status, 200);
    assert!(empty.contains("id=\"no-report\""), "{empty}");

    // Two reviews recorded (`monitor report --record`), the second one later; the first
    // recorded twice stays one row.
    let t0 = 1_765_000_000_000;
    let first = worksheet(2);
    let id1 = record_report(
        &db.ledger,
        &review_report(&first).unwrap(),
        "/home/someone/november.csv",
        &first,
        t0,
    )
    .await
    .unwrap();
    let again = record_report(
        &db.ledger,
        &review_report(&first).unwrap(),
        "november.csv",
        &first,
        t0 + 1,
    )
    .await
    .unwrap();
    assert_eq!(again, id1, "the same worksheet replaces its row");
    let second = worksheet(3);
    let id2 = record_report(
        &db.ledger,
        &review_report(&second).unwrap(),
        "december.csv",
        &second,
        t0 + 86_400_000,
    )
    .await
    .unwrap();
    assert_eq!(count(&db, "monitor_reports").await, 2);
    let stored = latest_reports(&db.ledger, 10).await.unwrap();
    assert_eq!(stored[0].id, id2);
    assert_eq!(
        stored[1].source, "november.csv",
        "the file name, no directory"
    );
    assert_eq!(stored[0].report, review_report(&second).unwrap());

    // The latest in full: 3 of 4 agree (0.75, Wilson 0.30–0.95, needs work), one ring
    // artefact, 30–60 s, every study within the SLA.
    let (status, latest) = page("/monitor".into()).await;
    assert_eq!(status, 200);
    for expected in [
        &format!("Review {id2}: recorded 2025-12-07 05:46:40 (UTC)"),
        "4 studies from december.csv, received 2026-11-01 09:00:00 – 2026-11-04 09:00:00 (UTC)",
        "<th>agreement with the conclusion</th><td>0.75</td><td>3 of 4</td><td>0.30–0.95</td>\
         <td class=\"verdict-needs_work\">needs work (0.61–0.80)</td>",
        "<th>agreement with the localisation</th><td>1.00</td><td>4 of 4</td>",
        "<th>within the 390 s SLA</th><td>1.00</td><td>4 of 4</td>",
        "45.0 ± 12.9 s (n = 4)",
        "<td>RING_ARTIFACTS</td><td>1</td><td>25.0 %</td>",
        "<td>CT-1</td><td>3</td><td>0</td><td>0.0 %</td>",
        &format!("<a href=\"/monitor/{id1}\">{id1}</a>"),
    ] {
        assert!(latest.contains(expected), "{expected:?} in {latest}");
    }
    assert!(
        !latest.contains("<script>") && latest.contains("&lt;script&gt;alert(1)"),
        "the station name from DICOM is escaped: {latest}"
    );

    // An earlier one by its number.
    let (status, earlier) = page(format!("/monitor/{id1}")).await;
    assert_eq!(status, 200);
    assert!(
        earlier.contains("<td>0.50</td><td>2 of 4</td>") && earlier.contains("november.csv"),
        "{earlier}"
    );
    assert_eq!(page("/monitor/999999".into()).await.0, 404);
    assert_eq!(page("/monitor/x".into()).await.0, 404);

    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_address_and_sessions_expire() {
    let Some(db) = test_db().await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let window = std::time::Duration::from_secs(2);
    let server = tokio::spawn(serve(
        listener,
        Console::with_policy(
            database_url(),
            db.schema.clone(),
            None,
            TOKEN,
            LoginPolicy {
                max_failures: 5,
                window,
                session_ttl: std::time::Duration::from_secs(3),
            },
        ),
        stop.clone(),
    ));

    // Five wrong tokens are answered 401; then the address is refused, the right token too,
    // on the form and on the API, while another address still logs in.
    for _ in 0..5 {
        assert_eq!(login(addr, "guess").await.0, 401);
    }
    let (status, head) = login(addr, TOKEN).await;
    assert_eq!(status, 429, "{head}");
    assert!(
        head.lines().any(|l| l.starts_with("retry-after: ")),
        "{head}"
    );
    let (status, _, _) = exchange(
        addr,
        format!("GET /api/studies HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 429, "a bearer token is a login too");
    let (status, head) = login_from("127.0.0.2", addr, TOKEN).await;
    assert_eq!(status, 303, "another address is not limited: {head}");

    // Once the failures leave the window, the address logs in again.
    tokio::time::sleep(window + std::time::Duration::from_millis(200)).await;
    let cookie = session(addr).await;
    assert_eq!(
        cookie.len(),
        "spinescreen_console=".len() + 64,
        "a session id of 64 hex digits: {cookie}"
    );
    let (status, _, _) = get_raw(addr, "/api/studies", &cookie).await;
    assert_eq!(status, 200);

    // Logging out ends the session on the server, not only in the browser.
    let other = session(addr).await;
    assert_ne!(other, cookie, "every login draws its own session");
    let (status, _, _) = exchange(
        addr,
        format!("POST /logout HTTP/1.0\r\nCookie: {other}\r\nContent-Length: 0\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 303);
    let (status, _, _) = get_raw(addr, "/api/studies", &other).await;
    assert_eq!(status, 401, "a logged-out session is dead");

    // The session expires.
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let (status, _, _) = get_raw(addr, "/api/studies", &cookie).await;
    assert_eq!(status, 401, "an expired session is refused");
    let (status, head, _) = get_raw(addr, "/", &cookie).await;
    assert_eq!(status, 303);
    assert!(head.contains("location: /login"), "{head}");

    stop.cancel();
    server.await.unwrap().unwrap();
}
