//! Review reports kept in the ledger: `monitor report --record` stores the figures of each
//! filled worksheet (table `monitor_reports`), and the console's monitoring page reads them.

use super::report::ReviewReport;
use crate::Ledger;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One recorded review report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredReport {
    /// Its number in the ledger.
    pub id: i64,
    /// When it was (last) recorded, Unix ms.
    pub recorded_at_ms: i64,
    /// The worksheet's file name.
    pub source: String,
    /// The report's figures.
    pub report: ReviewReport,
}

/// Store `report`, computed from the worksheet text `worksheet` read from a file named `source`
/// (its directory is dropped), as recorded at `now_unix_ms`. The same worksheet recorded again
/// replaces its earlier row. Returns the report's id.
pub async fn record_report(
    ledger: &Ledger,
    report: &ReviewReport,
    source: &str,
    worksheet: &str,
    now_unix_ms: u64,
) -> anyhow::Result<i64> {
    let digest = hex::encode(Sha256::digest(worksheet.as_bytes()));
    let name = std::path::Path::new(source)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let json = serde_json::to_string(report)?;
    let studies = i32::try_from(report.studies).unwrap_or(i32::MAX);
    let row = ledger
        .client()
        .query_one(
            "INSERT INTO monitor_reports (worksheet_sha256, source, recorded_at_ms, studies, report)
             VALUES ($1, $2, $3, $4, ($5::text)::jsonb)
             ON CONFLICT (worksheet_sha256) DO UPDATE SET
                 source = EXCLUDED.source,
                 recorded_at_ms = EXCLUDED.recorded_at_ms,
                 studies = EXCLUDED.studies,
                 report = EXCLUDED.report
             RETURNING id",
            &[
                &digest,
                &name,
                &crate::db::ms(now_unix_ms),
                &studies,
                &json,
            ],
        )
        .await?;
    Ok(row.get(0))
}

const COLUMNS: &str = "id, recorded_at_ms, source, report::text";

fn stored(row: &tokio_postgres::Row) -> anyhow::Result<StoredReport> {
    let id: i64 = row.get(0);
    let text: String = row.get(3);
    let report = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("stored review report {id} is unreadable: {e}"))?;
    Ok(StoredReport {
        id,
        recorded_at_ms: row.get(1),
        source: row.get(2),
        report,
    })
}

/// The `limit` most recently recorded reports, newest first.
pub async fn latest_reports(ledger: &Ledger, limit: i64) -> anyhow::Result<Vec<StoredReport>> {
    ledger
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS} FROM monitor_reports ORDER BY recorded_at_ms DESC, id DESC \
                 LIMIT $1"
            ),
            &[&limit],
        )
        .await?
        .iter()
        .map(stored)
        .collect()
}

/// The report numbered `id`, if there is one.
pub async fn report_by_id(ledger: &Ledger, id: i64) -> anyhow::Result<Option<StoredReport>> {
    ledger
        .client()
        .query_opt(
            &format!("SELECT {COLUMNS} FROM monitor_reports WHERE id = $1"),
            &[&id],
        )
        .await?
        .as_ref()
        .map(stored)
        .transpose()
}
