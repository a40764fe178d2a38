//! Harness for `fleet_distributed.rs`: a spinescreen fleet as separate processes — one per stage,
//! two for inference, and the DICOM receivers (`worker receiver`) — on a real RabbitMQ (a fresh
//! vhost per fleet), its own s3s-fs and a dcmtk `storescp` standing in for the PACS. Every child process is killed when the [`Fleet`] is
//! dropped, also when a test fails.

#![allow(dead_code)] // each test uses a different part of the harness

use spinescreen_proto::job::{StudyDone, DONE_QUEUE};
use spinescreen_proto::StudyResult;
use spinescreen_runtime::{connect_broker, Broker, BrokerConfig, StoreConfig, StudyStore};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Set to `1` to skip these tests where RabbitMQ, s3s-fs or dcmtk are missing.
pub const SKIP_ENV: &str = "SPINESCREEN_SKIP_SERVICES";
/// Called AE title of the receivers' C-STORE SCP.
pub const INGEST_AE: &str = "SPINESCREEN";
/// AE title of the PACS (storescp).
pub const PACS_AE: &str = "PACS";
const BUCKET: &str = "spinescreen";
const ACCESS_KEY: &str = "e2e-access";
const SECRET_KEY: &str = "e2e-secret-key";

/// Whether the caller asked to skip tests that need the external services.
pub fn skip_services() -> bool {
    std::env::var(SKIP_ENV).is_ok_and(|v| v == "1")
}

/// The workspace root (parent of the `tests` crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate sits in the workspace")
        .to_path_buf()
}

/// Build the `spinescreen` binary once per test process and return its path.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "-p", "spinescreen", "--bin", "spinescreen"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the spinescreen binary failed");
        let target = match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
            Some(t) if t.is_absolute() => t,
            Some(t) => workspace_root().join(t),
            None => workspace_root().join("target"),
        };
        let bin = target.join("debug").join("spinescreen");
        assert!(bin.is_file(), "{} missing after the build", bin.display());
        bin
    })
    .clone()
}

/// A program from PATH (or `~/.cargo/bin`), or a failed test naming what is missing.
pub fn require(program: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is not installed (scripts/test.sh installs the services; set {SKIP_ENV}=1 to skip)")
        })
}

/// Check every external service this harness needs; panics (fails the test) when one is absent.
pub fn require_services() {
    for p in ["rabbitmqctl", "s3s-fs", "storescu", "storescp"] {
        require(p);
    }
    assert!(
        TcpStream::connect_timeout(&"127.0.0.1:5672".parse().unwrap(), Duration::from_secs(2))
            .is_ok(),
        "RabbitMQ is not listening on 127.0.0.1:5672 (set {SKIP_ENV}=1 to skip)"
    );
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

fn wait_port(port: u16, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run `rabbitmqctl` with `args`; panics on failure.
pub fn rabbitmqctl(args: &[&str]) {
    let out = Command::new(require("rabbitmqctl"))
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc {
    /// The process.
    pub child: Child,
}

impl Proc {
    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A RabbitMQ vhost of its own, deleted on drop.
pub struct Vhost {
    /// Its name.
    pub name: String,
}

impl Vhost {
    /// Create a fresh vhost with full permissions for `guest`.
    pub fn create() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "spinescreen-e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        rabbitmqctl(&["add_vhost", &name]);
        let vhost = Self { name };
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            &vhost.name,
            "guest",
            ".*",
            ".*",
            ".*",
        ]);
        vhost
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The broker node is stopped (`rabbitmqctl stop_app`) while this lives; dropping it starts it
/// again, also when the test fails in between.
pub struct BrokerStopped;

impl BrokerStopped {
    /// Stop the RabbitMQ application on this node.
    pub fn stop() -> Self {
        rabbitmqctl(&["stop_app"]);
        BrokerStopped
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .arg("start_app")
            .stdout(Stdio::null())
            .status();
        let _ = Command::new("rabbitmqctl")
            .args(["await_startup", "--timeout", "60"])
            .stdout(Stdio::null())
            .status();
    }
}

/// s3s-fs on a fixed port and directory, so it can be killed and started again.
pub struct S3 {
    /// TCP port.
    pub port: u16,
    /// Data directory (the bucket is a folder in it).
    pub root: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
}

impl S3 {
    fn new(root: PathBuf, log: PathBuf) -> Self {
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let mut s3 = Self {
            port: free_port(),
            root,
            log,
            proc: None,
        };
        s3.start();
        s3
    }

    /// Start (again) on the same port and directory.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(require("s3s-fs"))
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("s3s-fs starts");
        self.proc = Some(Proc { child });
        wait_port(self.port, "s3s-fs", Duration::from_secs(10));
    }

    /// SIGKILL the server: the store is unavailable until [`S3::start`].
    pub fn kill(&mut self) {
        self.proc.take();
    }

    /// The store configuration the workers use.
    pub fn config(&self) -> StoreConfig {
        StoreConfig::S3 {
            endpoint: format!("http://127.0.0.1:{}", self.port),
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            allow_http: true,
            unsigned_payload: false,
        }
    }

    /// `result.json` of a study, read straight from s3s-fs's directory.
    pub fn result(&self, study_uid: &str) -> StudyResult {
        let path = self
            .root
            .join(BUCKET)
            .join("studies")
            .join(study_uid)
            .join("result.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&bytes).expect("result.json parses")
    }
}

/// One worker process and how to start it again.
pub struct Worker {
    /// Stage name.
    pub stage: &'static str,
    /// Port of `/metrics`, `/readyz`.
    pub metrics_port: u16,
    config: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    proc: Option<Proc>,
}

impl Worker {
    /// Start the process (again), appending to its log.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(binary())
            .arg("--config")
            .arg(&self.config)
            .args(["worker", self.stage])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("worker starts");
        self.proc = Some(Proc { child });
    }

    /// SIGKILL (`kill -9`) the process.
    pub fn kill9(&mut self) {
        self.proc.take();
    }

    /// Process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.child.id())
    }

    /// Whether `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        http_get(self.metrics_port, "/readyz").is_some_and(|(status, _)| status == 200)
    }

    /// Wait until ready; panics with the log's tail after `timeout`.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.ready() {
            if let Some(p) = self.proc.as_mut() {
                if let Ok(Some(status)) = p.child.try_wait() {
                    panic!(
                        "{} worker exited ({status}):\n{}",
                        self.stage,
                        tail(&self.log, 30)
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} worker not ready:\n{}",
                self.stage,
                tail(&self.log, 30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Value of a metric sample (`name{labels}`) on this worker, 0 when absent or unreachable.
    pub fn metric(&self, sample: &str) -> f64 {
        http_get(self.metrics_port, "/metrics")
            .map(|(_, body)| metric_value(&body, sample))
            .unwrap_or(0.0)
    }

    /// Jobs this worker is processing right now.
    pub fn in_flight(&self) -> f64 {
        self.metric(&format!(
            "spinescreen_jobs_in_flight{{stage=\"{}\"}}",
            self.stage
        ))
    }
}

/// Sum of every sample of `name` whose labels contain all of `labels` (`k="v"` pairs).
pub fn metric_sum(body: &str, name: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn metric_value(body: &str, sample: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// A plain HTTP/1.1 GET on 127.0.0.1: status and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
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
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// An HTTP endpoint that answers every request after `delay`: a slow webhook destination, so
/// that publisher jobs last long enough to be killed mid-job.
pub fn slow_webhook(delay: Duration) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // Read the head, then the body by Content-Length.
                let body_len = loop {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(end) = find(&buf, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break end + 4 + len;
                    }
                };
                while buf.len() < body_len {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                std::thread::sleep(delay);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    port
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the PACS holds for one study.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Received {
    /// SOP Instance UIDs of structured reports.
    pub sr: BTreeSet<String>,
    /// SOP Instance UIDs of secondary captures.
    pub sc: BTreeSet<String>,
    /// Files (a repeated C-STORE of one SOP instance overwrites its file).
    pub files: usize,
}

/// Options of a fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Attempts before a failing job is dead-lettered (also the queues' x-delivery-limit).
    pub delivery_limit: u32,
    /// Also deliver every study to this slow webhook (port), after the PACS.
    pub webhook_port: Option<u16>,
    /// Also run `worker ledger` (the last of [`Fleet::workers`]) on this PostgreSQL URL and
    /// schema.
    pub ledger: Option<(String, String)>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            delivery_limit: 5,
            webhook_port: None,
            ledger: None,
        }
    }
}

/// The fleet: vhost, s3s-fs, storescp, one process per stage (two for inference) and the
/// receivers.
pub struct Fleet {
    /// Workers: ingest, inference ×2, morphometry, rendering, publisher, receiver (then the
    /// ledger, when asked for). Dropped first.
    pub workers: Vec<Arc<Mutex<Worker>>>,
    /// Each worker's stage and log file, in the order of `workers`.
    pub worker_logs: Vec<(&'static str, PathBuf)>,
    /// The PACS.
    pacs: Proc,
    /// Where the PACS writes (`<dir>/st_<StudyInstanceUID>/…`).
    pub pacs_dir: PathBuf,
    /// Object store.
    pub s3: S3,
    /// Port of the receivers' C-STORE SCP.
    pub scp_port: u16,
    /// Port of the receivers' STOW-RS endpoint.
    pub stow_port: u16,
    /// AMQP URL of the vhost.
    pub amqp_url: String,
    /// Delivery limit the queues were declared with.
    pub delivery_limit: u32,
    /// The vhost (deleted after the processes are gone).
    pub vhost: Vhost,
    /// Config, logs, data.
    pub dir: tempfile::TempDir,
}

/// The `worker` argument of the study ledger, after [`WORKER_STAGES`] when asked for.
pub const LEDGER_WORKER: &str = "ledger";

/// `worker` arguments in the order of [`Fleet::workers`]: the stages, then the receivers.
pub const WORKER_STAGES: [&str; 7] = [
    "ingest",
    "inference",
    "inference",
    "morphometry",
    "rendering",
    "publisher",
    RECEIVER_WORKER,
];

/// The `worker` argument of the DICOM receivers (C-STORE SCP, STOW-RS).
pub const RECEIVER_WORKER: &str = "receiver";
/// Index of the receivers in [`Fleet::workers`].
pub const RECEIVER: usize = 6;
/// Index of the study ledger in [`Fleet::workers`], when asked for.
pub const LEDGER: usize = WORKER_STAGES.len();

impl Fleet {
    /// Start everything and wait until every worker is ready.
    pub fn start(opts: FleetOptions) -> Self {
        require_services();
        let bin = binary();
        assert!(bin.is_file());
        let dir = tempfile::Builder::new()
            .prefix("spinescreen-fleet-")
            .tempdir()
            .unwrap();
        let vhost = Vhost::create();
        let s3 = S3::new(dir.path().join("s3"), dir.path().join("s3s-fs.log"));
        let pacs_dir = dir.path().join("pacs");
        std::fs::create_dir_all(&pacs_dir).unwrap();
        let pacs_port = free_port();
        let pacs = Proc {
            child: Command::new(require("storescp"))
                .args(["-aet", PACS_AE, "-od"])
                .arg(&pacs_dir)
                .args(["-su", "st"])
                .arg(pacs_port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("storescp starts"),
        };
        wait_port(pacs_port, "storescp", Duration::from_secs(10));
        let scp_port = free_port();
        let stow_port = free_port();
        let amqp_url = format!("amqp://guest:guest@127.0.0.1:5672/{}", vhost.name);
        let spool_dir = dir.path().join("receiver-spool").display().to_string();
        let webhook = opts
            .webhook_port
            .map(|p| {
                format!("[[publisher.destinations]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{p}/hook\"\n")
            })
            .unwrap_or_default();
        let StoreConfig::S3 { endpoint, .. } = s3.config() else {
            unreachable!()
        };
        let config = format!(
            r#"service_name = "spinescreen"
shutdown_grace_secs = 5

[broker]
kind = "amqp"
url = "{amqp_url}"
prefetch = 1
delivery_limit = {limit}

[store]
kind = "s3"
endpoint = "{endpoint}"
bucket = "{BUCKET}"
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
allow_http = true

[ingest]
inactivity_timeout_s = 5

[ingest.scp]
enabled = true
bind_address = "127.0.0.1"
ae_title = "{INGEST_AE}"
port = {scp_port}
# The receiver's write-ahead spool (small segments: a study is several bundles).
spool_dir = "{spool_dir}"
spool_segment_mib = 1

[ingest.stow]
enabled = true
bind_address = "127.0.0.1"
port = {stow_port}

[publisher]
timeout_s = 10

[publisher.retry]
attempts = 3
initial_backoff_ms = 200
max_backoff_ms = 1000

[[publisher.destinations]]
kind = "cstore"
host = "127.0.0.1"
port = {pacs_port}
called_ae = "{PACS_AE}"
calling_ae = "SPINESCREEN"
{webhook}"#,
            limit = opts.delivery_limit,
        );
        let config_path = dir.path().join("spinescreen.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut workers = vec![];
        let ledger = opts.ledger.as_ref().map(|_| LEDGER_WORKER);
        for (i, stage) in WORKER_STAGES.into_iter().chain(ledger).enumerate() {
            let metrics_port = free_port();
            let mut env = vec![(
                "SPINESCREEN__METRICS_ADDR".to_string(),
                format!("127.0.0.1:{metrics_port}"),
            )];
            if let (Some((url, schema)), LEDGER_WORKER) = (&opts.ledger, stage) {
                env.push(("DATABASE_URL".to_string(), url.clone()));
                env.push(("SPINESCREEN__LEDGER__SCHEMA".to_string(), schema.clone()));
                env.push((
                    "SPINESCREEN__LEDGER__METRICS_REFRESH_SECS".to_string(),
                    "1".to_string(),
                ));
            }
            let mut w = Worker {
                stage,
                metrics_port,
                config: config_path.clone(),
                env,
                log: dir.path().join(format!("{i}-{stage}.log")),
                proc: None,
            };
            w.start();
            workers.push(w);
        }
        for w in &mut workers {
            w.wait_ready(Duration::from_secs(60));
        }
        // Every process reads the receivers' ports from the one config file: were the ingest
        // worker to listen too, one of them would fail to bind.
        wait_port(scp_port, "receiver SCP", Duration::from_secs(10));
        wait_port(stow_port, "receiver STOW-RS", Duration::from_secs(10));
        Self {
            worker_logs: workers.iter().map(|w| (w.stage, w.log.clone())).collect(),
            workers: workers
                .into_iter()
                .map(|w| Arc::new(Mutex::new(w)))
                .collect(),
            pacs,
            pacs_dir,
            s3,
            scp_port,
            stow_port,
            amqp_url,
            delivery_limit: opts.delivery_limit,
            vhost,
            dir,
        }
    }

    /// The worker at `index` of [`WORKER_STAGES`].
    pub fn worker(&self, index: usize) -> std::sync::MutexGuard<'_, Worker> {
        self.workers[index]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Send a study folder's `*.dcm` files to the receivers with dcmtk `storescu` (one
    /// association).
    pub fn send(&self, study: &Path) {
        let out = Command::new(require("storescu"))
            .args(["-aet", "MODALITY", "-aec", INGEST_AE])
            .args(["+sd", "+r", "+sp", "*.dcm"])
            .arg("127.0.0.1")
            .arg(self.scp_port.to_string())
            .arg(study)
            .output()
            .expect("storescu runs");
        assert!(
            out.status.success(),
            "storescu failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
    }

    /// [`Fleet::send`], repeated until it succeeds (the receivers may be restarting).
    pub fn send_retrying(&self, study: &Path, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let out = Command::new(require("storescu"))
                .args(["-aet", "MODALITY", "-aec", INGEST_AE])
                .args(["+sd", "+r", "+sp", "*.dcm"])
                .arg("127.0.0.1")
                .arg(self.scp_port.to_string())
                .arg(study)
                .output()
                .expect("storescu runs");
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "storescu kept failing: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Send a study folder's `*.dcm` files to the receivers' STOW-RS endpoint in one
    /// `multipart/related` request; panics unless every instance is stored (200).
    pub fn send_stow(&self, study: &Path) {
        let mut files = vec![];
        collect(study, &mut files);
        files.retain(|f| f.extension().is_some_and(|e| e == "dcm"));
        assert!(!files.is_empty(), "no .dcm files in {}", study.display());
        let boundary = "spinescreen-e2e-boundary";
        let mut body = Vec::new();
        for f in &files {
            write!(
                body,
                "--{boundary}\r\nContent-Type: application/dicom\r\n\r\n"
            )
            .unwrap();
            body.extend_from_slice(&std::fs::read(f).unwrap());
            body.extend_from_slice(b"\r\n");
        }
        write!(body, "--{boundary}--\r\n").unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", self.stow_port)).expect("STOW-RS listens");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "POST /studies HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: multipart/related; type=\"application/dicom\"; boundary={boundary}\r\n\
             Accept: application/dicom+json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "STOW-RS answered {}\n{}",
            response.lines().next().unwrap_or(""),
            self.logs()
        );
    }

    /// Instances in the receiver's spool: acknowledged, in receptions not yet handed to ingest.
    pub fn spooled_instances(&self) -> usize {
        let mut files = vec![];
        collect(&self.dir.path().join("receiver-spool"), &mut files);
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .filter_map(|p| std::fs::read(p).ok())
            .map(|b| {
                let whole = spinescreen_proto::bundle::whole_records_len(&b);
                spinescreen_proto::bundle::parse_bundle(&b[..whole]).map_or(0, |e| e.len())
            })
            .sum()
    }

    /// A broker client on the fleet's vhost, declaring queues as the workers do.
    pub async fn broker(&self) -> Arc<dyn Broker> {
        connect_broker(&BrokerConfig::Amqp {
            url: self.amqp_url.clone(),
            prefetch: 16,
            delivery_limit: self.delivery_limit,
        })
        .await
        .expect("connect to the fleet's vhost")
    }

    /// The object store, as a worker sees it.
    pub fn store(&self) -> StudyStore {
        StudyStore::from_config(&self.s3.config()).unwrap()
    }

    /// What the PACS received, by Study Instance UID.
    pub fn pacs(&self) -> BTreeMap<String, Received> {
        use dicom_dictionary_std::tags;
        let mut out: BTreeMap<String, Received> = BTreeMap::new();
        let mut files = vec![];
        collect(&self.pacs_dir, &mut files);
        for path in files {
            // storescp writes to a temporary name first; only finished files count.
            let Ok(obj) = dicom_object::open_file(&path) else {
                continue;
            };
            let text = |tag| {
                obj.element(tag)
                    .ok()
                    .and_then(|e| e.to_str().ok())
                    .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                    .unwrap_or_default()
            };
            let study = text(tags::STUDY_INSTANCE_UID);
            let sop = text(tags::SOP_INSTANCE_UID);
            let class = text(tags::SOP_CLASS_UID);
            let entry = out.entry(study).or_default();
            entry.files += 1;
            if class.starts_with("1.2.840.10008.5.1.4.1.1.88.") {
                entry.sr.insert(sop);
            } else {
                entry.sc.insert(sop);
            }
        }
        out
    }

    /// Tail of every worker's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for (i, (stage, log)) in self.worker_logs.iter().enumerate() {
            s.push_str(&format!("--- {stage} #{i}\n{}\n", tail(log, 8)));
        }
        s
    }

    /// Sum of a metric over every worker.
    pub fn metric_sum(&self, name: &str, labels: &[&str]) -> f64 {
        (0..self.workers.len())
            .map(|i| {
                let port = self.worker(i).metrics_port;
                http_get(port, "/metrics")
                    .map(|(_, body)| metric_sum(&body, name, labels))
                    .unwrap_or(0.0)
            })
            .sum()
    }

    /// Wait until every study in `expected` has been announced on `spinescreen.done`; returns
    /// the announcements (repeats included). Survives a broker restart by consuming again.
    pub async fn wait_done(
        &self,
        expected: &BTreeSet<String>,
        timeout: Duration,
    ) -> BTreeMap<String, Vec<StudyDone>> {
        let deadline = Instant::now() + timeout;
        let mut done: BTreeMap<String, Vec<StudyDone>> = BTreeMap::new();
        'outer: while !expected.iter().all(|uid| done.contains_key(uid)) {
            assert!(
                Instant::now() < deadline,
                "studies not announced within {timeout:?}: {:?}\n{}",
                expected
                    .iter()
                    .filter(|u| !done.contains_key(*u))
                    .collect::<Vec<_>>(),
                self.logs()
            );
            let consumer = async {
                let broker = self.broker().await;
                broker.declare(DONE_QUEUE).await.ok()?;
                broker.consume(DONE_QUEUE, 16).await.ok()
            };
            let Ok(Some(mut consumer)) =
                tokio::time::timeout(Duration::from_secs(10), consumer).await
            else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            while !expected.iter().all(|uid| done.contains_key(uid)) {
                if Instant::now() >= deadline {
                    continue 'outer;
                }
                match tokio::time::timeout(Duration::from_secs(1), consumer.next()).await {
                    Err(_) => continue,
                    Ok(Some(Ok(d))) => {
                        let a: StudyDone =
                            serde_json::from_slice(&d.message.body).expect("StudyDone JSON");
                        let _ = d.acker.ack().await;
                        done.entry(a.study_uid.to_string()).or_default().push(a);
                    }
                    Ok(_) => continue 'outer,
                }
            }
        }
        done
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A small phantom study written as DICOM into `dir/study-<seed>` (ground truth removed, so only
/// the CT series is sent); returns the folder and its Study Instance UID.
pub fn phantom_study(dir: &Path, seed: u64, fracture: Option<&str>) -> (PathBuf, String) {
    phantom_study_with(dir, seed, fracture, |_| {})
}

/// [`phantom_study`] with the phantom's specification changed by `adjust` first (e.g. a
/// confounder added).
pub fn phantom_study_with(
    dir: &Path,
    seed: u64,
    fracture: Option<&str>,
    adjust: impl FnOnce(&mut spinescreen_phantom::PhantomSpec),
) -> (PathBuf, String) {
    let mut spec = spinescreen_phantom::PhantomSpec {
        seed,
        fractures: fracture
            .map(|f| vec![f.parse().unwrap()])
            .unwrap_or_default(),
        matrix: 256,
        pixel_spacing_mm: Some(1.4),
        slices: 200,
        slice_thickness_mm: 2.0,
        ..Default::default()
    };
    adjust(&mut spec);
    let phantom = spinescreen_phantom::generate(&spec).expect("phantom");
    let out = dir.join(format!("study-{seed}"));
    spinescreen_phantom::write_dicom_series(&phantom, &out).expect("write phantom");
    std::fs::remove_file(out.join("truth.json")).expect("truth.json written");
    (out, phantom.volume.header.study.study_instance_uid.clone())
}
