//! The study ledger's commands: `worker ledger`, `studies list | show | retry`,
//! `monitor sample | report`, `console` (the ledger itself is `spinescreen-ledger`).

use crate::config::AppConfig;
use crate::fleet;
use anyhow::Context;
use clap::{Args, Subcommand};
use spinescreen_ledger::monitor::report::{
    record_reviews, render_markdown, review_report, study_reviews,
};
use spinescreen_ledger::monitor::sample::{sample, SampleOptions};
use spinescreen_ledger::monitor::stored::record_report;
use spinescreen_ledger::query::{find, list, timeline, ListFilter};
use spinescreen_ledger::studies::{render_list, render_timeline, retry};
use spinescreen_ledger::when::parse_time;
use spinescreen_ledger::Ledger;
use spinescreen_runtime::events::now_unix_ms;
use spinescreen_runtime::StudyStore;
use std::path::PathBuf;

/// `spinescreen studies …`
#[derive(Debug, Subcommand)]
pub enum StudiesCommand {
    /// Studies in the ledger, newest first.
    List(ListArgs),
    /// One study (by Study Instance UID or Accession Number): source, conclusion, stage times,
    /// deliveries and its timeline.
    Show {
        /// Study Instance UID or Accession Number.
        key: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a study again from its received files (a new reception).
    Retry {
        /// Study Instance UID.
        uid: String,
    },
}

/// Filters of `studies list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Received since: an age (90m, 24h, 7d), a UTC date (2026-12-01) or RFC 3339.
    #[arg(long)]
    pub since: Option<String>,
    /// ok | technical_defect | abstained | in_progress | done | dead_lettered
    #[arg(long)]
    pub status: Option<String>,
    /// Scanner Station Name, exactly.
    #[arg(long)]
    pub station: Option<String>,
    /// At most this many studies.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `spinescreen monitor …`
#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Draw a reproducible random sample of finished studies and write the review worksheet
    /// (OUT/worksheet.csv, OUT/worksheet.html with previews).
    Sample {
        /// Receptions from (UTC date, date-time, RFC 3339 or an age such as 28d).
        #[arg(long)]
        from: String,
        /// Receptions until, exclusive (same forms).
        #[arg(long)]
        to: String,
        /// Studies to draw (the experiment: 20 in the pilot, 80 in operation).
        #[arg(long, default_value_t = 20)]
        n: usize,
        /// Seed of the draw; the same ledger, window and seed give the same sample.
        #[arg(long)]
        seed: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Agreement with the conclusion and the localisation (Wilson 95 % CIs, verdict bands),
    /// defects by reason and station, processing time and SLA share of a filled worksheet.
    Report {
        /// The filled worksheet (CSV).
        #[arg(long)]
        reviews: PathBuf,
        /// Print JSON instead of Markdown.
        #[arg(long)]
        json: bool,
        /// Also store the reviewed rows (table `reviews`: Grafana's monthly agreement panel)
        /// and the report (table `monitor_reports`: the console's monitoring page) in the
        /// ledger; recording the same worksheet again replaces both.
        #[arg(long)]
        record: bool,
    },
}

async fn connect(config: &AppConfig) -> anyhow::Result<Ledger> {
    let url = config.ledger.database_url()?;
    Ledger::connect(&url, &config.ledger.schema).await
}

/// `worker ledger`: consume the done queue and the events feed into the ledger, serving
/// `/metrics` (with the per-station gauges) until SIGTERM/SIGINT.
pub async fn serve_ledger(config: &AppConfig) -> anyhow::Result<()> {
    let shutdown = spinescreen_runtime::shutdown::cancel_on_signal();
    let (broker, store) = fleet::connect(config).await?;
    let metrics = tokio::spawn(spinescreen_runtime::http::serve_metrics(
        config.runtime.metrics_addr,
        shutdown.clone(),
    ));
    tracing::info!("spinescreen ledger started");
    let outcome =
        spinescreen_ledger::run_ledger(&config.ledger, broker, store, shutdown.clone()).await;
    shutdown.cancel();
    metrics.await.context("the metrics server panicked")??;
    outcome
}

/// `studies …`
pub async fn studies(config: &AppConfig, command: &StudiesCommand) -> anyhow::Result<()> {
    let ledger = connect(config).await?;
    match command {
        StudiesCommand::List(args) => {
            let now = now_unix_ms();
            let filter = ListFilter {
                since_ms: args
                    .since
                    .as_deref()
                    .map(|s| parse_time(s, now))
                    .transpose()?,
                until_ms: None,
                status: args.status.clone(),
                station: args.station.clone(),
                limit: args.limit,
            };
            let rows = list(&ledger, &filter).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", render_list(&rows));
            }
        }
        StudiesCommand::Show { key, json } => {
            let found = find(&ledger, key).await?;
            anyhow::ensure!(
                !found.is_empty(),
                "no study with UID or accession number {key:?}"
            );
            for (i, study) in found.into_iter().enumerate() {
                let t = timeline(&ledger, study).await?;
                if *json {
                    println!("{}", serde_json::to_string_pretty(&t)?);
                } else {
                    if i > 0 {
                        println!();
                    }
                    print!("{}", render_timeline(&t));
                }
            }
        }
        StudiesCommand::Retry { uid } => {
            let study = find(&ledger, uid)
                .await?
                .into_iter()
                .find(|s| s.study_uid == *uid)
                .ok_or_else(|| anyhow::anyhow!("no study with UID {uid:?} in the ledger"))?;
            let (broker, store) = fleet::connect(config).await?;
            let job = retry(&study, &*broker, &store, now_unix_ms()).await?;
            println!(
                "study {uid} queued again from {} as job {}",
                job.incoming_prefix, job.job_id
            );
        }
    }
    Ok(())
}

/// `monitor …`
pub async fn monitor(config: &AppConfig, command: &MonitorCommand) -> anyhow::Result<()> {
    match command {
        MonitorCommand::Sample {
            from,
            to,
            n,
            seed,
            out,
        } => {
            let now = now_unix_ms();
            let opts = SampleOptions {
                from_ms: parse_time(from, now)?,
                to_ms: parse_time(to, now)?,
                n: *n,
                seed: *seed,
                out: out.clone(),
            };
            let ledger = connect(config).await?;
            let store =
                StudyStore::from_config(&config.runtime.store).context("opening the store")?;
            let drawn = sample(&ledger, Some(&store), &opts).await?;
            println!(
                "{} of {} finished studies drawn (seed {seed}); worksheet: {} and {}",
                drawn.studies.len(),
                drawn.population,
                drawn.csv.display(),
                drawn.html.display()
            );
        }
        MonitorCommand::Report {
            reviews,
            json,
            record,
        } => {
            let text = std::fs::read_to_string(reviews)
                .with_context(|| format!("reading {}", reviews.display()))?;
            let report = review_report(&text)?;
            if *record {
                let mut ledger = connect(config).await?;
                let rows = study_reviews(&text)?;
                let now = now_unix_ms();
                let n = record_reviews(&mut ledger, &rows, now).await?;
                let source = reviews.to_string_lossy();
                let id = record_report(&ledger, &report, &source, &text, now).await?;
                eprintln!("{n} reviews and the report (review {id}) recorded in the ledger");
            }
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render_markdown(&report));
            }
        }
    }
    Ok(())
}

/// `console`: the read-only operator console on `listen` until SIGTERM/SIGINT. The login token
/// comes from `SPINESCREEN_CONSOLE_TOKEN`; without it one is drawn and printed.
pub async fn console(config: &AppConfig, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    use spinescreen_ledger::console::{Console, TOKEN_ENV};
    let shutdown = spinescreen_runtime::shutdown::cancel_on_signal();
    let url = config.ledger.database_url()?;
    let store = StudyStore::from_config(&config.runtime.store).context("opening the store")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the console to {listen}"))?;
    let token = match std::env::var(TOKEN_ENV) {
        Ok(t) if !t.trim().is_empty() => {
            println!(
                "operator console on http://{} (token from {TOKEN_ENV})",
                listener.local_addr()?
            );
            t.trim().to_string()
        }
        _ => {
            let t = uuid::Uuid::new_v4().simple().to_string();
            println!(
                "operator console on http://{} — log in with the token {t} (set {TOKEN_ENV} to choose one)",
                listener.local_addr()?
            );
            t
        }
    };
    let console = Console::new(url, config.ledger.schema.clone(), Some(store), &token);
    spinescreen_ledger::console::serve(listener, console, shutdown).await
}
