//! `spinescreen monitor sample`: a reproducible random sample of finished studies and its
//! review worksheet (`worksheet.csv`, and `worksheet.html` with each study's preview and
//! conclusion for the experts to read beside it).
//!
//! The population is every study the ledger finished with a reception in `[from, to)`, in
//! Study UID order; the draw is eval's seeded partial Fisher–Yates
//! ([`spinescreen_eval::audit::sample_indices`]), so the same ledger, window and seed always
//! give the same studies.

use super::worksheet::{header, to_csv};
use crate::db::Ledger;
use crate::query::{done_between, timeline, StudyRow};
use crate::studies::{conclusion, fracture_levels};
use crate::when::utc_text;
use anyhow::Context;
use spinescreen_eval::audit::sample_indices;
use spinescreen_proto::StudyUid;
use spinescreen_runtime::storage::StorageError;
use spinescreen_runtime::StudyStore;
use std::path::{Path, PathBuf};

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// Receptions at or after (Unix ms).
    pub from_ms: u64,
    /// Receptions before (Unix ms).
    pub to_ms: u64,
    /// Studies to draw (the experiment: 20 in the pilot, 80 in operation).
    pub n: usize,
    /// Seed of the draw.
    pub seed: u64,
    /// Output directory.
    pub out: PathBuf,
}

/// What was drawn and written.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Finished studies in the window.
    pub population: usize,
    /// Study UIDs drawn, in worksheet order.
    pub studies: Vec<String>,
    /// `worksheet.csv`.
    pub csv: PathBuf,
    /// `worksheet.html`.
    pub html: PathBuf,
}

fn worksheet_row(study: &StudyRow, levels: &str, preview: &str) -> Vec<String> {
    let density = match (&study.bone_density_level, study.bone_density_hu) {
        (Some(level), Some(hu)) => format!(
            "{level} {hu:.0} HU {}",
            study.bone_density_category.clone().unwrap_or_default()
        ),
        _ => String::new(),
    };
    vec![
        study.study_uid.clone(),
        study.accession_number.clone(),
        study.station_name.clone(),
        utc_text(study.received_at_ms),
        study.status.clone().unwrap_or_default(),
        study.reason_code.clone().unwrap_or_default(),
        conclusion(study, ""),
        levels.replace(' ', ";"),
        study
            .fracture_probability
            .map(|p| format!("{p:.3}"))
            .unwrap_or_default(),
        density,
        study
            .end_to_end_ms
            .map(|m| format!("{:.1}", m as f64 / 1000.0))
            .unwrap_or_default(),
        match study.sla_met {
            Some(true) => "yes".into(),
            Some(false) => "no".into(),
            None => String::new(),
        },
        preview.to_string(),
    ]
}

/// Copy the study's preview into `dir`; the file name relative to the worksheet, or empty when
/// the study has none (technical defects) or no store was given.
async fn copy_preview(store: Option<&StudyStore>, uid: &str, out: &Path) -> anyhow::Result<String> {
    let (Some(store), Ok(uid)) = (store, StudyUid::new(uid)) else {
        return Ok(String::new());
    };
    match store.get(&uid.keys().preview_png()).await {
        Ok(bytes) => {
            let name = format!("previews/{uid}.png");
            tokio::fs::write(out.join(&name), &bytes)
                .await
                .with_context(|| format!("writing {name}"))?;
            Ok(name)
        }
        Err(StorageError::NotFound(_)) => Ok(String::new()),
        Err(e) => Err(e.into()),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTML page: one section per study with its preview, conclusion and service columns.
fn html(rows: &[Vec<String>], opts: &SampleOptions, population: usize) -> String {
    let columns = header();
    let mut page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>spinescreen review worksheet</title>\
         <style>body{{font-family:sans-serif;margin:2em}}section{{border-top:1px solid #999;\
         padding:1em 0}}img{{max-width:480px;float:right;margin-left:1em}}td{{padding:0 1em 0 0}}\
         </style></head><body>\n<h1>Review worksheet</h1>\n<p>{} of {} finished studies \
         received {} – {} (UTC), seed {}. Record your review in <code>worksheet.csv</code>: \
         {}.</p>\n",
        rows.len(),
        population,
        escape(&utc_text(Some(crate::db::ms(opts.from_ms)))),
        escape(&utc_text(Some(crate::db::ms(opts.to_ms)))),
        opts.seed,
        escape(&columns[super::worksheet::SERVICE_COLUMNS.len()..].join(", "))
    );
    for (i, row) in rows.iter().enumerate() {
        page.push_str(&format!(
            "<section id=\"s{}\"><h2>{}. {}</h2>\n",
            i + 1,
            i + 1,
            escape(&row[6])
        ));
        let preview = &row[12];
        if !preview.is_empty() {
            page.push_str(&format!(
                "<img src=\"{}\" alt=\"preview of study {}\">\n",
                escape(preview),
                i + 1
            ));
        }
        page.push_str("<table>\n");
        for (name, value) in super::worksheet::SERVICE_COLUMNS.iter().zip(row).take(12) {
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td></tr>\n",
                escape(name),
                escape(value)
            ));
        }
        page.push_str("</table></section>\n");
    }
    page.push_str("</body></html>\n");
    page
}

/// Draw the sample and write the worksheet under `opts.out` (previews from `store`, if given).
pub async fn sample(
    ledger: &Ledger,
    store: Option<&StudyStore>,
    opts: &SampleOptions,
) -> anyhow::Result<Sample> {
    anyhow::ensure!(opts.from_ms < opts.to_ms, "--from must be before --to");
    let population = done_between(ledger, opts.from_ms, opts.to_ms).await?;
    let chosen = sample_indices(population.len(), opts.n, opts.seed);
    tokio::fs::create_dir_all(opts.out.join("previews"))
        .await
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let mut rows = vec![];
    let mut studies = vec![];
    for i in chosen {
        let study = population[i].clone();
        let uid = study.study_uid.clone();
        let preview = copy_preview(store, &uid, &opts.out).await?;
        let t = timeline(ledger, study).await?;
        rows.push(worksheet_row(&t.study, &fracture_levels(&t), &preview));
        studies.push(uid);
    }
    let csv = opts.out.join("worksheet.csv");
    let html_path = opts.out.join("worksheet.html");
    tokio::fs::write(&csv, to_csv(&rows))
        .await
        .with_context(|| format!("writing {}", csv.display()))?;
    tokio::fs::write(&html_path, html(&rows, opts, population.len()))
        .await
        .with_context(|| format!("writing {}", html_path.display()))?;
    Ok(Sample {
        population: population.len(),
        studies,
        csv,
        html: html_path,
    })
}
