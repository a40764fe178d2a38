//! `spinescreen`: one binary for every role.
//!
//! - `worker <stage>` runs one stage against the configured broker and store (a fleet member);
//!   `worker receiver` runs the DICOM receivers (C-STORE SCP, STOW-RS) that hand received
//!   studies to ingest's queue; `worker ledger` runs the study ledger (PostgreSQL) on the done
//!   queue and the events feed;
//! - `studies list | show | retry` query the ledger; `monitor sample | report` run the periodic
//!   expert review on it; `console` serves a read-only web page over it;
//! - `all` runs every stage in one process (embedded by default: in-memory queues, local store);
//! - `analyze DIR --out OUT` and `demo --out OUT` run one study through the embedded pipeline;
//! - `phantom` writes synthetic CT studies with exact ground truth; `eval` runs calibration testing.

use anyhow::Context;
use clap::{Parser, Subcommand};
use spinescreen::ledger::{MonitorCommand, StudiesCommand};
use spinescreen::{analyze, config::AppConfig, demo, fleet, ledger, load};
use spinescreen_proto::Stage;
use spinescreen_runtime::CancellationToken;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::task::JoinSet;

#[derive(Parser)]
#[command(
    name = "spinescreen",
    version,
    about = "Screens chest CT for vertebral compression fractures and low bone density"
)]
struct Cli {
    /// TOML configuration file (environment overrides: SPINESCREEN__SECTION__KEY=value).
    #[arg(long, global = true, env = "SPINESCREEN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one stage's worker, the DICOM receivers (C-STORE SCP, STOW-RS) or the study ledger.
    Worker {
        /// ingest | inference | morphometry | rendering | publisher | receiver | ledger
        #[arg(value_parser = parse_role)]
        stage: Role,
    },
    /// The study ledger: where each study is, what was concluded, its timeline.
    Studies {
        #[command(subcommand)]
        command: StudiesCommand,
    },
    /// The experiment's periodic quality review: sample studies, report on the experts' review.
    Monitor {
        #[command(subcommand)]
        command: MonitorCommand,
    },
    /// The read-only operator console (web page) over the study ledger.
    Console {
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: std::net::SocketAddr,
    },
    /// Run every stage in one process.
    All,
    /// Analyse one study directory on the embedded pipeline and write OUT/result.json, sr.dcm,
    /// sc/*.dcm and preview.png.
    Analyze {
        /// Directory of DICOM files (searched recursively).
        dicom_dir: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Keep intermediate objects (volume, detection) in this directory.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Seconds to wait for the result.
        #[arg(long, default_value_t = 390)]
        timeout: u64,
    },
    /// Generate a phantom chest CT with a fracture and analyse it (no servers needed).
    Demo {
        /// Output directory (the phantom study goes to OUT/study).
        #[arg(long)]
        out: PathBuf,
        /// Phantom seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Write a synthetic DICOM CT study with exact ground truth.
    Phantom(spinescreen_phantom::cli::PhantomArgs),
    /// Calibration testing: sensitivity, specificity, accuracy, ROC AUC with 95 % CIs.
    Eval(spinescreen_eval::EvalArgs),
    /// Push studies through a running fleet; print studies/hour and end-to-end latency
    /// percentiles with the per-stage breakdown.
    Load(load::LoadArgs),
}

/// What `worker` runs: one stage, the DICOM receivers, or the study ledger.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Stage(Stage),
    Receiver,
    Ledger,
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "ledger" => return Ok(Role::Ledger),
        "receiver" => return Ok(Role::Receiver),
        _ => {}
    }
    Stage::from_name(s).map(Role::Stage).ok_or_else(|| {
        format!(
            "unknown worker {s:?}; expected ingest, inference, morphometry, rendering, publisher, \
             receiver or ledger"
        )
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = AppConfig::load(cli.config.as_deref())?;
    let interactive = !matches!(
        cli.command,
        Command::Worker { .. } | Command::All | Command::Console { .. }
    );
    if interactive && std::env::var_os("RUST_LOG").is_none() {
        // Tools print their own summary; keep stage logs for warnings unless asked.
        std::env::set_var("RUST_LOG", "warn");
    }
    let telemetry = config
        .runtime
        .telemetry
        .clone()
        .with_env(|k| std::env::var(k).ok())?;
    let _telemetry =
        spinescreen_runtime::telemetry::init_tracing(&config.runtime.service_name, &telemetry)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Worker {
            stage: Role::Stage(stage),
        } => runtime.block_on(serve(&config, &[stage], Receivers::Off)),
        Command::Worker {
            stage: Role::Receiver,
        } => runtime.block_on(serve(&config, &[], Receivers::Required)),
        Command::Worker {
            stage: Role::Ledger,
        } => runtime.block_on(ledger::serve_ledger(&config)),
        Command::Studies { command } => runtime.block_on(ledger::studies(&config, &command)),
        Command::Monitor { command } => runtime.block_on(ledger::monitor(&config, &command)),
        Command::Console { listen } => runtime.block_on(ledger::console(&config, listen)),
        Command::All => runtime.block_on(serve(&config, &Stage::ALL, Receivers::Enabled)),
        Command::Analyze {
            dicom_dir,
            out,
            store,
            timeout,
        } => {
            let opts = analyze::AnalyzeOptions {
                input: dicom_dir,
                out,
                store_dir: store,
                timeout: Duration::from_secs(timeout),
            };
            let analysis = runtime.block_on(analyze::analyze(&config, &opts))?;
            print!("{}", analyze::summary(&analysis.result));
            println!(
                "wrote {} files to {}",
                analysis.files.len(),
                opts.out.display()
            );
            Ok(())
        }
        Command::Demo { out, seed } => runtime.block_on(demo::demo(&config, &out, seed)),
        Command::Phantom(args) => spinescreen_phantom::cli::run(&args),
        Command::Load(args) => runtime.block_on(load::run(&config, &args)).map(|_| ()),
        Command::Eval(args) => {
            let analyze_case = |dir: &Path| {
                let out = tempfile::tempdir()?;
                let opts = analyze::AnalyzeOptions {
                    input: dir.to_path_buf(),
                    out: out.path().to_path_buf(),
                    store_dir: None,
                    timeout: Duration::from_secs(390),
                };
                Ok(runtime.block_on(analyze::analyze(&config, &opts))?.result)
            };
            let report = spinescreen_eval::run(&args, &analyze_case)?;
            let show = |name: &str, m: &spinescreen_eval::report::Metric| match m.value {
                Some(v) => format!("{name} {v:.2}"),
                None => format!("{name} n/a"),
            };
            let m = &report.metrics;
            println!(
                "{} cases: {}, {}, {}, {}; {} technical defects, {} abstentions; report in {}",
                report.cases_total,
                show("sensitivity", &m.sensitivity),
                show("specificity", &m.specificity),
                show("accuracy", &m.accuracy),
                show("ROC AUC", &m.roc_auc),
                report.technical_defects,
                report.abstentions,
                args.out.display()
            );
            Ok(())
        }
    }
}

/// Whether a process runs the DICOM receivers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Receivers {
    /// Not in this process (`worker <stage>`: scaling ingest never opens or closes a port).
    Off,
    /// Those enabled in `[ingest.scp]` / `[ingest.stow]` (`all`).
    Enabled,
    /// Those enabled, at least one (`worker receiver`).
    Required,
}

/// Run the given stages and receivers until SIGTERM/SIGINT, serving `/metrics`, `/healthz` and
/// `/readyz`.
async fn serve(config: &AppConfig, stages: &[Stage], receivers: Receivers) -> anyhow::Result<()> {
    let shutdown = spinescreen_runtime::shutdown::cancel_on_signal();
    let names: Vec<&'static str> = stages.iter().map(|s| s.name()).collect();
    // `/readyz` answers 200 only once every one of these stages consumes (and each receiver
    // listens, registered when it binds).
    spinescreen_runtime::http::expect_stages(&names);
    // A long-running process: what each study frees must leave it before the next.
    spinescreen_runtime::allocator::fix_mmap_threshold();
    let (broker, store) = fleet::connect(config).await?;
    let mut tasks = JoinSet::new();
    tasks.spawn(spinescreen_runtime::http::serve_metrics(
        config.runtime.metrics_addr,
        shutdown.clone(),
    ));
    if receivers != Receivers::Off {
        fleet::spawn_receivers(
            config,
            broker.clone(),
            store.clone(),
            shutdown.clone(),
            &mut tasks,
            receivers == Receivers::Required,
        )
        .await?;
    } else if stages.contains(&Stage::Ingest) {
        tracing::info!("the DICOM receivers run in `spinescreen worker receiver`, not here");
    }
    fleet::spawn_stages(stages, config, broker, store, shutdown.clone(), &mut tasks).await?;
    tracing::info!(stages = ?names, receivers = ?receivers, "spinescreen started");
    wait_all(tasks, shutdown).await
}

async fn wait_all(
    mut tasks: JoinSet<anyhow::Result<()>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.context("a task panicked").and_then(|r| r);
        if let Err(e) = outcome {
            tracing::error!("{e:#}");
            shutdown.cancel();
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
