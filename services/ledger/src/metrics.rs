//! Scanner health from the ledger, as Prometheus gauges: studies and defects per station since
//! 00:00 UTC, so an alert names a faulty scanner the day it starts ("scanner CT-3: ring
//! artefacts in 4 studies today"). Gauges are recomputed from the database, so a replay, a
//! restart or a second ledger replica never counts a study twice.

use crate::db::{ms, Ledger};
use spinescreen_proto::ReasonCode;
use spinescreen_runtime::metrics::{STATION_DEFECTS_TODAY, STATION_STUDIES_TODAY};

/// Reason codes that point at the scanner rather than the patient or the protocol: the
/// experiment traced ring artefacts to a faulty detector; broken geometry, missing slices and
/// undecodable pixels come from the scanner or its export too.
pub const SCANNER_FAULT_CODES: [&str; 7] = [
    ReasonCode::RING_ARTIFACTS,
    ReasonCode::INCONSISTENT_GEOMETRY,
    ReasonCode::NON_UNIFORM_SPACING,
    ReasonCode::DUPLICATE_SLICES,
    ReasonCode::ZERO_SPACING,
    ReasonCode::MISSING_PIXEL_DATA,
    ReasonCode::DECODE_FAILURE,
];

/// Whether `code` is a scanner fault (see [`SCANNER_FAULT_CODES`]).
pub fn is_scanner_fault(code: &str) -> bool {
    SCANNER_FAULT_CODES.contains(&code)
}

/// The station label of a study: its Station Name, or `unknown`.
pub fn station_label(name: &str) -> &str {
    if name.is_empty() {
        "unknown"
    } else {
        name
    }
}

/// Start of the UTC day containing `now_unix_ms`.
pub fn utc_midnight(now_unix_ms: u64) -> u64 {
    now_unix_ms - now_unix_ms % 86_400_000
}

/// Per-station counts of one day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StationDay {
    /// `(station, studies)`.
    pub studies: Vec<(String, i64)>,
    /// `(station, reason code, studies)` of studies not analysed.
    pub defects: Vec<(String, String, i64)>,
}

/// Studies and defects per station received since 00:00 UTC of `now_unix_ms`.
pub async fn station_day(ledger: &Ledger, now_unix_ms: u64) -> anyhow::Result<StationDay> {
    let since = ms(utc_midnight(now_unix_ms));
    let studies = ledger
        .client()
        .query(
            "SELECT station_name, count(*) FROM studies WHERE received_at_ms >= $1
             GROUP BY station_name ORDER BY station_name",
            &[&since],
        )
        .await?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect();
    let defects = ledger
        .client()
        .query(
            "SELECT station_name, reason_code, count(*) FROM studies
             WHERE received_at_ms >= $1 AND status IN ('technical_defect', 'abstained')
               AND reason_code IS NOT NULL
             GROUP BY station_name, reason_code ORDER BY station_name, reason_code",
            &[&since],
        )
        .await?
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, i64>(2),
            )
        })
        .collect();
    Ok(StationDay { studies, defects })
}

/// Recompute the station gauges from the ledger (series of stations quiet today disappear).
pub async fn refresh_station_metrics(ledger: &Ledger, now_unix_ms: u64) -> anyhow::Result<()> {
    let day = station_day(ledger, now_unix_ms).await?;
    STATION_STUDIES_TODAY.reset();
    STATION_DEFECTS_TODAY.reset();
    for (station, n) in &day.studies {
        STATION_STUDIES_TODAY
            .with_label_values(&[station_label(station)])
            .set(*n);
    }
    for (station, reason, n) in &day.defects {
        let fault = if is_scanner_fault(reason) {
            "true"
        } else {
            "false"
        };
        STATION_DEFECTS_TODAY
            .with_label_values(&[station_label(station), reason, fault])
            .set(*n);
    }
    Ok(())
}
