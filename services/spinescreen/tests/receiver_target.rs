//! `spinescreen worker receiver` is its own target: it listens on the DICOM ports and is ready
//! (`/readyz`) because it listens; `worker ingest`, given the same configuration, listens on
//! nothing but its metrics port; `all` still runs the receivers beside every stage. The processes
//! run on the in-memory broker and a local store, so no service is needed.
// Test code: a failed unwrap is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

fn listens(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// `(status, body)` of `GET path`, or None while nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// A `spinescreen` process, killed on drop.
struct Spinescreen {
    child: Child,
    metrics: u16,
}

impl Drop for Spinescreen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Spinescreen {
    fn start(config: &Path, args: &[&str]) -> Self {
        let metrics = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_spinescreen"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env("SPINESCREEN__METRICS_ADDR", format!("127.0.0.1:{metrics}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spinescreen starts");
        Self { child, metrics }
    }

    /// The `/readyz` body once it answers 200; panics with the process's stderr if it exits.
    fn wait_ready(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((200, body)) = http_get(self.metrics, "/readyz") {
                return body;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("spinescreen exited ({status}):\n{err}");
            }
            assert!(Instant::now() < deadline, "not ready within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One configuration for every process, both receivers on: the embedded broker, a local store.
fn config(dir: &Path, scp: u16, stow: u16, enabled: bool) -> std::path::PathBuf {
    let path = dir.join("spinescreen.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nkind = \"local\"\nroot = {root:?}\n\n\
             [ingest.scp]\nenabled = {enabled}\nbind_address = \"127.0.0.1\"\nport = {scp}\n\n\
             [ingest.stow]\nenabled = {enabled}\nbind_address = \"127.0.0.1\"\nport = {stow}\n",
            root = dir.join("store").display().to_string(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn worker_receiver_is_ready_once_it_listens_and_worker_ingest_listens_on_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (scp, stow) = (free_port(), free_port());
    let config = config(dir.path(), scp, stow, true);

    let mut ingest = Spinescreen::start(&config, &["worker", "ingest"]);
    assert_eq!(ingest.wait_ready(), "ready\ningest ready\n");
    assert!(!listens(scp), "worker ingest opened the C-STORE port");
    assert!(!listens(stow), "worker ingest opened the STOW-RS port");

    // The ports are free, so the receiver can take them while ingest runs.
    let mut receiver = Spinescreen::start(&config, &["worker", "receiver"]);
    assert_eq!(
        receiver.wait_ready(),
        "ready\nc-store-scp ready\nstow-rs ready\n"
    );
    assert!(listens(scp) && listens(stow));
    // Its metrics endpoint is the same as every worker's.
    let (status, _) = http_get(receiver.metrics, "/healthz").unwrap();
    assert_eq!(status, 200);
    assert_eq!(http_get(receiver.metrics, "/metrics").unwrap().0, 200);
}

#[test]
fn all_runs_the_receivers_beside_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let (scp, stow) = (free_port(), free_port());
    let config = config(dir.path(), scp, stow, true);
    let mut all = Spinescreen::start(&config, &["all"]);
    let body = all.wait_ready();
    for line in [
        "c-store-scp ready",
        "stow-rs ready",
        "ingest ready",
        "inference ready",
        "morphometry ready",
        "rendering ready",
        "publisher ready",
    ] {
        assert!(body.lines().any(|l| l == line), "{line:?} missing:\n{body}");
    }
    assert!(listens(scp) && listens(stow));
}

#[test]
fn worker_receiver_with_both_receivers_disabled_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), free_port(), free_port(), false);
    let out = Command::new(env!("CARGO_BIN_EXE_spinescreen"))
        .arg("--config")
        .arg(&config)
        .args(["worker", "receiver"])
        .env(
            "SPINESCREEN__METRICS_ADDR",
            format!("127.0.0.1:{}", free_port()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing to run"), "{err}");
}
