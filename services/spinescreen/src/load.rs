//! `spinescreen load`: push studies through a running fleet and measure it.
//!
//! **Takes** a fleet configuration (the same file the workers read: broker and store), and either
//! `--count` phantom studies generated in-process (seeds `seed..seed+count`, a share of them with
//! a vertebral fracture) or `--studies DIR`, a directory of study folders. **Gives** a table on
//! stdout (and optionally `--json FILE`): throughput in studies per hour, end-to-end latency
//! p50/p95/p99 as the fleet measured it (first instance received → last destination
//! acknowledged, the SLA clock of [`StudyDone::end_to_end_ms`]), the per-stage breakdown (mean
//! and p95 of each stage's `timings_ms` in the final `result.json`), the time spent outside any
//! stage (queues, transfers), and the peak resident memory (`VmHWM`, see proc(5)) of the worker
//! processes named with `--worker-pids`. **Why**: the SLA (390 s per study) and the capacity of a
//! deployment are properties of the whole fleet — broker, store, receivers and workers together —
//! and can only be shown by driving it the way a PACS would.
//!
//! Studies are sent either as a PACS does, by C-STORE (PS3.4 Annex B) with dcmtk's `storescu` to
//! the receivers' SCP (`worker receiver`), one association per study (`--send cstore`), or by staging the files in the
//! store and publishing the ingest job directly (`--send direct`,
//! [`spinescreen_ingest::stage_directory`]), which leaves the DICOM network out. At most
//! `--concurrency` studies are in flight at once (a closed loop): a new study is sent only when
//! an earlier one has been announced done on [`DONE_QUEUE`]. Announcements left on that queue by
//! an earlier run are drained before the first study is sent.
//!
//! Phantom studies are generated before the clock starts, so generation never competes with the
//! fleet for the CPU.

use crate::config::AppConfig;
use anyhow::{bail, Context};
use serde::Serialize;
use spinescreen_proto::job::{StudyDone, DONE_QUEUE};
use spinescreen_proto::{Stage, StudyResult, StudyStatus};
use spinescreen_runtime::broker::Consumer;
use spinescreen_runtime::{Broker, Message, StudyStore};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How studies enter the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// C-STORE with dcmtk `storescu` to the receivers' SCP, one association per study.
    Cstore,
    /// Store the files in the object store and publish the ingest job (no DICOM network).
    Direct,
}

/// Options of `spinescreen load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Number of phantom studies to generate and send (ignored with `--studies`).
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Seed of the first phantom; study i uses seed + i.
    #[arg(long, default_value_t = 1000)]
    pub seed: u64,
    /// Phantom matrix (rows = columns).
    #[arg(long, default_value_t = 512)]
    pub matrix: usize,
    /// Phantom slices.
    #[arg(long, default_value_t = 400)]
    pub slices: usize,
    /// Phantom slice thickness (= spacing), mm.
    #[arg(long, default_value_t = 1.0)]
    pub slice_thickness: f64,
    /// Phantom pixel spacing, mm (default: a 360 mm field of view).
    #[arg(long)]
    pub pixel_spacing: Option<f64>,
    /// Share of phantoms with a vertebral fracture (0..=1), spread evenly over the run.
    #[arg(long, default_value_t = 0.25)]
    pub fracture_share: f64,
    /// Send the study folders in this directory (each subdirectory is one study) instead of
    /// phantoms.
    #[arg(long)]
    pub studies: Option<PathBuf>,
    /// Where generated phantoms are written (default: a temporary directory, removed after).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// How studies are sent.
    #[arg(long, value_enum, default_value = "cstore")]
    pub send: SendMode,
    /// Host of the receivers' C-STORE SCP (`--send cstore`).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the receivers' C-STORE SCP (`--send cstore`).
    #[arg(long, default_value_t = 11112)]
    pub port: u16,
    /// Called AE title of the receivers' C-STORE SCP.
    #[arg(long, default_value = "SPINESCREEN")]
    pub called_ae: String,
    /// Our calling AE title.
    #[arg(long, default_value = "SPINELOAD")]
    pub calling_ae: String,
    /// The `storescu` program (dcmtk).
    #[arg(long, default_value = "storescu")]
    pub storescu: PathBuf,
    /// Studies in flight at once (sent but not yet announced done).
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Give up when no study has finished for this many seconds.
    #[arg(long, default_value_t = 390)]
    pub timeout: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Process ids of the workers whose peak resident memory (VmHWM) is reported.
    #[arg(long, value_delimiter = ',')]
    pub worker_pids: Vec<u32>,
}

/// One study to send.
#[derive(Debug, Clone)]
struct StudyToSend {
    dir: PathBuf,
    /// Study Instance UID when known (phantoms), used to match announcements.
    study_uid: Option<String>,
    /// Ground truth when known (phantoms): does the study hold a fracture?
    fractured: Option<bool>,
}

/// Mean and percentiles of a set of durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median (nearest rank).
    pub p50_ms: u64,
    /// 95th percentile (nearest rank).
    pub p95_ms: u64,
    /// 99th percentile (nearest rank).
    pub p99_ms: u64,
    /// Largest value.
    pub max_ms: u64,
}

/// Nearest-rank percentile `p` (0..=100) of sorted values; `None` when empty.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Summarise values (ms); `None` when empty.
pub fn summarise(values: &[u64]) -> Option<Summary> {
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    Some(Summary {
        n,
        mean_ms: v.iter().sum::<u64>() as f64 / n.max(1) as f64,
        p50_ms: percentile(&v, 50.0)?,
        p95_ms: percentile(&v, 95.0)?,
        p99_ms: percentile(&v, 99.0)?,
        max_ms: *v.last()?,
    })
}

/// Peak and current resident memory of one process (proc(5), `/proc/<pid>/status`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessMemory {
    /// Process id.
    pub pid: u32,
    /// Command line, for telling the workers apart.
    pub command: String,
    /// Peak resident set size (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// Current resident set size (`VmRSS`), MiB.
    pub rss_mib: f64,
}

/// Read `VmHWM` and `VmRSS` of `pid`.
pub fn process_memory(pid: u32) -> anyhow::Result<ProcessMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .with_context(|| format!("no {key} for process {pid}"))?;
        let value = line
            .split_whitespace()
            .nth(1)
            .with_context(|| format!("malformed {key} line for process {pid}"))?;
        Ok(value.parse::<f64>()?)
    };
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Ok(ProcessMemory {
        pid,
        command,
        peak_rss_mib: kib("VmHWM:")? / 1024.0,
        rss_mib: kib("VmRSS:")? / 1024.0,
    })
}

/// One finished study as the load generator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Completion {
    /// Study Instance UID.
    pub study_uid: String,
    /// Final status.
    pub status: StudyStatus,
    /// End-to-end latency measured by the fleet (ms).
    pub end_to_end_ms: u64,
    /// From the start of sending to the announcement reaching us (ms).
    pub client_ms: u64,
    /// How long sending took (ms).
    pub send_ms: u64,
    /// Stage timings from the final result.json (ms), when it could be read.
    pub timings_ms: BTreeMap<String, u64>,
    /// Whether the result flags a fracture.
    pub has_fracture: Option<bool>,
    /// Ground truth, for phantoms.
    pub fractured_truth: Option<bool>,
}

/// What `spinescreen load` measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// How studies were sent.
    pub send: SendMode,
    /// Studies in flight at once.
    pub concurrency: usize,
    /// Studies sent.
    pub sent: usize,
    /// Studies announced done (each counted once).
    pub completed: usize,
    /// Repeated announcements of a study already done (at-least-once delivery).
    pub duplicate_announcements: usize,
    /// From the first send to the last announcement (s).
    pub wall_s: f64,
    /// Completed studies per hour over `wall_s`.
    pub studies_per_hour: f64,
    /// End-to-end latency as the fleet measured it.
    pub end_to_end: Option<Summary>,
    /// Latency from the start of sending to our receipt of the announcement.
    pub client_latency: Option<Summary>,
    /// Sending time per study.
    pub send_time: Option<Summary>,
    /// Per stage (and `end_to_end`): mean and percentiles of `timings_ms`.
    pub stages: BTreeMap<String, Summary>,
    /// End-to-end minus the sum of stage times: queues, transfers, reception.
    pub outside_stages: Option<Summary>,
    /// Count of each final status.
    pub statuses: BTreeMap<String, usize>,
    /// Phantoms with a fracture that were flagged / all phantoms with a fracture.
    pub fractures_flagged: (usize, usize),
    /// Phantoms without a fracture that were flagged.
    pub false_flags: usize,
    /// Peak memory of the given worker processes.
    pub workers: Vec<ProcessMemory>,
    /// Every finished study.
    pub studies: Vec<Completion>,
}

/// A study sent and not yet announced done.
struct InFlight {
    sent_at: Instant,
    /// Set once sending has finished.
    send_ms: Arc<AtomicU64>,
    fractured: Option<bool>,
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Pending {
    /// By Study Instance UID (phantoms) or job id (direct sending).
    by_key: HashMap<String, InFlight>,
    /// Studies whose identity we do not know (C-STORE of `--studies` folders): matched in order.
    anonymous: VecDeque<InFlight>,
    /// Sending failures.
    errors: Vec<String>,
}

/// Run the load: prepare the studies, send them, collect announcements, print the report.
pub async fn run(config: &AppConfig, args: &LoadArgs) -> anyhow::Result<LoadReport> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.fracture_share) {
        bail!("--fracture-share must be in 0..=1");
    }
    let tmp;
    let studies = match &args.studies {
        Some(dir) => study_folders(dir)?,
        None => {
            let root = match &args.work_dir {
                Some(d) => d.clone(),
                None => {
                    tmp = tempfile::Builder::new()
                        .prefix("spinescreen-load-")
                        .tempdir()
                        .context("creating a work directory")?;
                    tmp.path().to_path_buf()
                }
            };
            generate_phantoms(args, &root).await?
        }
    };
    if studies.is_empty() {
        bail!("no studies to send");
    }

    let (broker, store) = crate::fleet::connect(config).await?;
    broker.declare(DONE_QUEUE).await?;
    if args.send == SendMode::Direct {
        broker.declare(Stage::Ingest.queue()).await?;
    }
    let prefetch = u16::try_from(args.concurrency.saturating_mul(4)).unwrap_or(u16::MAX);
    let mut consumer = broker.consume(DONE_QUEUE, prefetch.max(8)).await?;
    let stale = drain(&mut *consumer).await?;
    if stale > 0 {
        eprintln!("drained {stale} announcement(s) left from an earlier run");
    }

    let total = studies.len();
    let pending = Arc::new(Mutex::new(Pending::default()));
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let sender = tokio::spawn(send_all(
        studies.clone(),
        args.clone(),
        broker.clone(),
        store.clone(),
        pending.clone(),
        slots.clone(),
    ));

    let progress = indicatif::ProgressBar::new(total as u64);
    let mut done: Vec<(StudyDone, u64, u64, Option<bool>)> = vec![];
    let mut seen: HashSet<String> = HashSet::new();
    let mut duplicates = 0;
    let mut last_done = started;
    let idle_limit = Duration::from_secs(args.timeout);
    while done.len() < total {
        if let Some(e) = pending
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .errors
            .first()
        {
            bail!("sending failed: {e}");
        }
        let next = tokio::time::timeout(Duration::from_secs(1), consumer.next()).await;
        let delivery = match next {
            Err(_) => {
                if last_done.elapsed() > idle_limit {
                    progress.abandon();
                    bail!(
                        "no study finished for {} s; {} of {total} done",
                        args.timeout,
                        done.len()
                    );
                }
                continue;
            }
            Ok(None) => bail!("the broker closed the {DONE_QUEUE} consumer"),
            Ok(Some(d)) => d?,
        };
        let parsed = serde_json::from_slice::<StudyDone>(&delivery.message.body);
        delivery.acker.ack().await?;
        let Ok(announcement) = parsed else {
            eprintln!("ignoring an undecodable message on {DONE_QUEUE}");
            continue;
        };
        if !seen.insert(announcement.study_uid.to_string()) {
            duplicates += 1;
            continue;
        }
        let flight = {
            let mut p = pending.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            p.by_key
                .remove(announcement.study_uid.as_str())
                .or_else(|| p.by_key.remove(&announcement.job_id))
                .or_else(|| p.anonymous.pop_front())
        };
        let Some(flight) = flight else {
            eprintln!("ignoring an announcement for a study this run did not send");
            continue;
        };
        last_done = Instant::now();
        let client_ms = flight.sent_at.elapsed().as_millis() as u64;
        done.push((
            announcement,
            client_ms,
            flight.send_ms.load(Ordering::Relaxed),
            flight.fractured,
        ));
        progress.inc(1);
    }
    let wall = last_done.duration_since(started);
    progress.finish_and_clear();
    sender.await.context("sender task")??;

    let mut completions = Vec::with_capacity(done.len());
    for (announcement, client_ms, send_ms, fractured_truth) in done {
        let result = read_result(&store, &announcement.result_key).await;
        let (timings_ms, has_fracture) = match result {
            Ok(r) => (r.timings_ms, r.has_fracture),
            Err(e) => {
                eprintln!("{e:#}");
                (BTreeMap::new(), None)
            }
        };
        completions.push(Completion {
            study_uid: announcement.study_uid.to_string(),
            status: announcement.status,
            end_to_end_ms: announcement.end_to_end_ms,
            client_ms,
            send_ms,
            timings_ms,
            has_fracture,
            fractured_truth,
        });
    }
    let workers = args
        .worker_pids
        .iter()
        .map(|&pid| process_memory(pid))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = build_report(args, total, duplicates, wall, completions, workers);
    print!("{}", render(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// Each subdirectory of `dir` is one study; `dir` itself when it has none.
fn study_folders(dir: &Path) -> anyhow::Result<Vec<StudyToSend>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        dirs.push(dir.to_path_buf());
    }
    Ok(dirs
        .into_iter()
        .map(|dir| StudyToSend {
            dir,
            study_uid: None,
            fractured: None,
        })
        .collect())
}

/// Whether study `i` of a run gets a fracture: `share` of the studies, spread evenly.
pub fn is_fractured(i: usize, share: f64) -> bool {
    ((i + 1) as f64 * share).floor() > (i as f64 * share).floor()
}

const FRACTURES: [&str; 4] = [
    "L1:wedge:0.40",
    "T12:biconcave:0.35",
    "T8:wedge:0.35",
    "L2:crush:0.35",
];

async fn generate_phantoms(args: &LoadArgs, root: &Path) -> anyhow::Result<Vec<StudyToSend>> {
    let mut out = vec![];
    let started = Instant::now();
    for i in 0..args.count {
        let seed = args.seed + i as u64;
        let fractured = is_fractured(i, args.fracture_share);
        let mut spec = spinescreen_phantom::PhantomSpec {
            seed,
            matrix: args.matrix,
            slices: args.slices,
            slice_thickness_mm: args.slice_thickness,
            pixel_spacing_mm: args.pixel_spacing,
            ..Default::default()
        };
        if fractured {
            spec.fractures = vec![FRACTURES[i % FRACTURES.len()].parse()?];
        }
        let dir = root.join(format!("study-{seed}"));
        let dir2 = dir.clone();
        let uid = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
            let phantom = spinescreen_phantom::generate(&spec)?;
            spinescreen_phantom::write_dicom_series(&phantom, &dir2)?;
            // The ground truth stays with us; only the CT series is sent.
            let _ = std::fs::remove_file(dir2.join("truth.json"));
            Ok(phantom.volume.header.study.study_instance_uid.clone())
        })
        .await
        .context("phantom task")??;
        eprintln!(
            "generated phantom {}/{} (seed {seed}{}) in {:.0} s total",
            i + 1,
            args.count,
            if fractured { ", fractured" } else { "" },
            started.elapsed().as_secs_f64()
        );
        out.push(StudyToSend {
            dir,
            study_uid: Some(uid),
            fractured: Some(fractured),
        });
    }
    Ok(out)
}

/// Ack and discard every message waiting on the consumer's queue.
async fn drain(consumer: &mut dyn Consumer) -> anyhow::Result<usize> {
    let mut n = 0;
    while let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(500), consumer.next()).await
    {
        d?.acker.ack().await?;
        n += 1;
    }
    Ok(n)
}

async fn send_all(
    studies: Vec<StudyToSend>,
    args: LoadArgs,
    broker: Arc<dyn Broker>,
    store: StudyStore,
    pending: Arc<Mutex<Pending>>,
    slots: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for study in studies {
        let permit = slots.clone().acquire_owned().await?;
        let (args, broker, store, pending) =
            (args.clone(), broker.clone(), store.clone(), pending.clone());
        tasks.spawn(async move {
            if let Err(e) = send_one(&study, &args, &*broker, &store, &pending, permit).await {
                if let Ok(mut p) = pending.lock() {
                    p.errors.push(format!("{}: {e:#}", study.dir.display()));
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn send_one(
    study: &StudyToSend,
    args: &LoadArgs,
    broker: &dyn Broker,
    store: &StudyStore,
    pending: &Mutex<Pending>,
    permit: OwnedSemaphorePermit,
) -> anyhow::Result<()> {
    let sent_at = Instant::now();
    let lock = || pending.lock().map_err(|_| anyhow::anyhow!("poisoned"));
    match args.send {
        SendMode::Cstore => {
            // Registered before sending: the SCP publishes the ingest job on A-RELEASE, so the
            // announcement may arrive before storescu has even exited.
            let send_ms = Arc::new(AtomicU64::new(0));
            let flight = InFlight {
                sent_at,
                send_ms: send_ms.clone(),
                fractured: study.fractured,
                _permit: permit,
            };
            {
                let mut p = lock()?;
                match &study.study_uid {
                    Some(uid) => {
                        p.by_key.insert(uid.clone(), flight);
                    }
                    None => p.anonymous.push_back(flight),
                }
            }
            let output = tokio::process::Command::new(&args.storescu)
                .args(["-aet", &args.calling_ae, "-aec", &args.called_ae])
                .args(["+sd", "+r", "+sp", "*.dcm"])
                .arg(&args.host)
                .arg(args.port.to_string())
                .arg(&study.dir)
                .kill_on_drop(true)
                .output()
                .await
                .with_context(|| format!("running {}", args.storescu.display()))?;
            send_ms.store(sent_at.elapsed().as_millis() as u64, Ordering::Relaxed);
            if !output.status.success() {
                bail!(
                    "storescu failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
            }
        }
        SendMode::Direct => {
            let job = spinescreen_ingest::stage_directory(store, &study.dir).await?;
            let key = study
                .study_uid
                .clone()
                .unwrap_or_else(|| job.job_id.clone());
            lock()?.by_key.insert(
                key,
                InFlight {
                    sent_at,
                    send_ms: Arc::new(AtomicU64::new(sent_at.elapsed().as_millis() as u64)),
                    fractured: study.fractured,
                    _permit: permit,
                },
            );
            let message = Message {
                body: job.to_bytes(),
                headers: BTreeMap::new(),
            };
            broker.publish(Stage::Ingest.queue(), message).await?;
        }
    }
    Ok(())
}

async fn read_result(store: &StudyStore, key: &str) -> anyhow::Result<StudyResult> {
    let bytes = store
        .get(key)
        .await
        .with_context(|| format!("reading {key}"))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {key}"))
}

/// Aggregate the completions into the report.
fn build_report(
    args: &LoadArgs,
    sent: usize,
    duplicates: usize,
    wall: Duration,
    studies: Vec<Completion>,
    workers: Vec<ProcessMemory>,
) -> LoadReport {
    let e2e: Vec<u64> = studies.iter().map(|c| c.end_to_end_ms).collect();
    let client: Vec<u64> = studies.iter().map(|c| c.client_ms).collect();
    let send: Vec<u64> = studies.iter().map(|c| c.send_ms).collect();
    let mut per_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut outside = vec![];
    for c in &studies {
        for (k, v) in &c.timings_ms {
            per_key.entry(k.clone()).or_default().push(*v);
        }
        let in_stages: u64 = Stage::ALL
            .iter()
            .filter_map(|s| c.timings_ms.get(s.name()))
            .sum();
        if !c.timings_ms.is_empty() {
            outside.push(c.end_to_end_ms.saturating_sub(in_stages));
        }
    }
    let stages = per_key
        .into_iter()
        .filter_map(|(k, v)| summarise(&v).map(|s| (k, s)))
        .collect();
    let mut statuses = BTreeMap::new();
    for c in &studies {
        *statuses.entry(c.status.as_str().to_string()).or_insert(0) += 1;
    }
    let positives = studies
        .iter()
        .filter(|c| c.fractured_truth == Some(true))
        .count();
    let flagged = studies
        .iter()
        .filter(|c| c.fractured_truth == Some(true) && c.has_fracture == Some(true))
        .count();
    let false_flags = studies
        .iter()
        .filter(|c| c.fractured_truth == Some(false) && c.has_fracture == Some(true))
        .count();
    let wall_s = wall.as_secs_f64();
    LoadReport {
        send: args.send,
        concurrency: args.concurrency,
        sent,
        completed: studies.len(),
        duplicate_announcements: duplicates,
        wall_s,
        studies_per_hour: if wall_s > 0.0 {
            studies.len() as f64 * 3600.0 / wall_s
        } else {
            0.0
        },
        end_to_end: summarise(&e2e),
        client_latency: summarise(&client),
        send_time: summarise(&send),
        stages,
        outside_stages: summarise(&outside),
        statuses,
        fractures_flagged: (flagged, positives),
        false_flags,
        workers,
        studies,
    }
}

fn secs(ms: f64) -> String {
    format!("{:.2}", ms / 1000.0)
}

/// The report as a text table.
pub fn render(r: &LoadReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} of {} studies done in {:.1} s ({:?}, concurrency {}): {:.0} studies/hour",
        r.completed, r.sent, r.wall_s, r.send, r.concurrency, r.studies_per_hour
    );
    let statuses: Vec<String> = r.statuses.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        s,
        "status: {}; duplicate announcements: {}",
        statuses.join(", "),
        r.duplicate_announcements
    );
    if r.fractures_flagged.1 > 0 || r.false_flags > 0 {
        let _ = writeln!(
            s,
            "fractured phantoms flagged: {}/{}; unfractured phantoms flagged: {}",
            r.fractures_flagged.0, r.fractures_flagged.1, r.false_flags
        );
    }
    let _ = writeln!(
        s,
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "seconds", "mean", "p50", "p95", "p99", "max"
    );
    let mut row = |name: &str, sum: &Summary| {
        let _ = writeln!(
            s,
            "{:<22} {:>8} {:>8} {:>8} {:>8} {:>8}",
            name,
            secs(sum.mean_ms),
            secs(sum.p50_ms as f64),
            secs(sum.p95_ms as f64),
            secs(sum.p99_ms as f64),
            secs(sum.max_ms as f64)
        );
    };
    if let Some(e) = &r.end_to_end {
        row("end-to-end (fleet)", e);
    }
    if let Some(c) = &r.client_latency {
        row("send → done (client)", c);
    }
    if let Some(c) = &r.send_time {
        row("sending", c);
    }
    for stage in Stage::ALL {
        if let Some(sum) = r.stages.get(stage.name()) {
            row(&format!("  {}", stage.name()), sum);
        }
    }
    for (k, sum) in &r.stages {
        if k != "end_to_end" && Stage::from_name(k).is_none() {
            row(&format!("  {k}"), sum);
        }
    }
    if let Some(o) = &r.outside_stages {
        row("  outside stages", o);
    }
    for w in &r.workers {
        let _ = writeln!(
            s,
            "pid {:>7}: peak RSS {:>7.1} MiB (now {:>7.1} MiB)  {}",
            w.pid, w.peak_rss_mib, w.rss_mib, w.command
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        let s = summarise(&[300, 100, 200]).unwrap();
        assert_eq!((s.p50_ms, s.p95_ms, s.max_ms), (200, 300, 300));
        assert!((s.mean_ms - 200.0).abs() < 1e-9);
    }

    #[test]
    fn fracture_share_is_spread_evenly() {
        let flagged: Vec<usize> = (0..8).filter(|&i| is_fractured(i, 0.25)).collect();
        assert_eq!(flagged, vec![3, 7]);
        assert_eq!((0..10).filter(|&i| is_fractured(i, 0.0)).count(), 0);
        assert_eq!((0..10).filter(|&i| is_fractured(i, 1.0)).count(), 10);
    }

    #[test]
    fn own_process_memory_is_readable() {
        let m = process_memory(std::process::id()).unwrap();
        assert!(m.peak_rss_mib >= m.rss_mib && m.rss_mib > 0.0, "{m:?}");
    }

    #[test]
    fn outside_stage_time_is_end_to_end_minus_stages() {
        let timings: BTreeMap<String, u64> = [
            ("ingest", 1000),
            ("inference", 2000),
            ("morphometry", 100),
            ("rendering", 400),
            ("publisher", 500),
            ("end_to_end", 5000),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let c = Completion {
            study_uid: "1.2".into(),
            status: StudyStatus::Ok,
            end_to_end_ms: 5000,
            client_ms: 5200,
            send_ms: 300,
            timings_ms: timings,
            has_fracture: Some(true),
            fractured_truth: Some(true),
        };
        let args = LoadArgs {
            count: 1,
            seed: 1,
            matrix: 64,
            slices: 16,
            slice_thickness: 1.0,
            pixel_spacing: None,
            fracture_share: 1.0,
            studies: None,
            work_dir: None,
            send: SendMode::Direct,
            host: String::new(),
            port: 0,
            called_ae: String::new(),
            calling_ae: String::new(),
            storescu: PathBuf::new(),
            concurrency: 1,
            timeout: 1,
            json: None,
            worker_pids: vec![],
        };
        let r = build_report(&args, 1, 0, Duration::from_secs(10), vec![c], vec![]);
        assert_eq!(r.outside_stages.as_ref().map(|s| s.p50_ms), Some(1000));
        assert!((r.studies_per_hour - 360.0).abs() < 1e-9);
        assert_eq!(r.fractures_flagged, (1, 1));
        assert_eq!(r.stages["inference"].mean_ms, 2000.0);
        assert!(render(&r).contains("outside stages"));
    }
}
