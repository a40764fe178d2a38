//! Reading the ledger: the study list with its filters, and one study's record and timeline.

use crate::db::{ms, Ledger};
use tokio_postgres::Row;

/// The columns of [`StudyRow`], in one place for every query that returns studies.
const STUDY_COLUMNS: &str = "study_uid, job_id, incoming_prefix, accession_number, station_name,
    manufacturer, model, series_uid, series_number, series_description, received_at_ms,
    finished_at_ms, state, status, reason_code, reason_text, has_fracture, fracture_probability,
    max_deformity, bone_density_level, bone_density_hu, bone_density_category, bone_density_band,
    end_to_end_ms, sla_met, delivery, result_key";

/// One study as the ledger knows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StudyRow {
    /// Study Instance UID.
    pub study_uid: String,
    /// Pipeline job that carried the study.
    pub job_id: Option<String>,
    /// Object-store prefix of the received instances (for a retry).
    pub incoming_prefix: Option<String>,
    /// Accession number from the RIS.
    pub accession_number: String,
    /// Station Name of the scanner that sent it.
    pub station_name: String,
    /// Scanner manufacturer.
    pub manufacturer: String,
    /// Scanner model name.
    pub model: String,
    /// Series Instance UID of the CT series chosen.
    pub series_uid: String,
    /// Series Number of the series chosen.
    pub series_number: String,
    /// Series Description of the series chosen.
    pub series_description: String,
    /// When the study was received (Unix ms).
    pub received_at_ms: Option<i64>,
    /// When its result was published (Unix ms).
    pub finished_at_ms: Option<i64>,
    /// `in_progress`, `done` or `dead_lettered`.
    pub state: String,
    /// `ok`, `technical_defect` or `abstained` once done.
    pub status: Option<String>,
    /// Coded reason of a technical defect or abstention.
    pub reason_code: Option<String>,
    /// That reason in words.
    pub reason_text: Option<String>,
    /// Whether a Genant 2–3 deformity was found.
    pub has_fracture: Option<bool>,
    /// The study's fracture probability.
    pub fracture_probability: Option<f64>,
    /// Largest height loss of a graded vertebra (0–1).
    pub max_deformity: Option<f64>,
    /// Level whose trabecular HU was read.
    pub bone_density_level: Option<String>,
    /// Trabecular HU read there.
    pub bone_density_hu: Option<f64>,
    /// Bone density category from that HU.
    pub bone_density_category: Option<String>,
    /// HU band of that category.
    pub bone_density_band: Option<String>,
    /// Reception to publication, ms.
    pub end_to_end_ms: Option<i64>,
    /// Whether the end-to-end time met the SLA.
    pub sla_met: Option<bool>,
    /// Delivery outcome to the destinations.
    pub delivery: Option<String>,
    /// Object-store key of the result JSON.
    pub result_key: Option<String>,
}

impl StudyRow {
    fn from_row(r: &Row) -> Self {
        Self {
            study_uid: r.get("study_uid"),
            job_id: r.get("job_id"),
            incoming_prefix: r.get("incoming_prefix"),
            accession_number: r.get("accession_number"),
            station_name: r.get("station_name"),
            manufacturer: r.get("manufacturer"),
            model: r.get("model"),
            series_uid: r.get("series_uid"),
            series_number: r.get("series_number"),
            series_description: r.get("series_description"),
            received_at_ms: r.get("received_at_ms"),
            finished_at_ms: r.get("finished_at_ms"),
            state: r.get("state"),
            status: r.get("status"),
            reason_code: r.get("reason_code"),
            reason_text: r.get("reason_text"),
            has_fracture: r.get("has_fracture"),
            fracture_probability: r.get("fracture_probability"),
            max_deformity: r.get("max_deformity"),
            bone_density_level: r.get("bone_density_level"),
            bone_density_hu: r.get("bone_density_hu"),
            bone_density_category: r.get("bone_density_category"),
            bone_density_band: r.get("bone_density_band"),
            end_to_end_ms: r.get("end_to_end_ms"),
            sla_met: r.get("sla_met"),
            delivery: r.get("delivery"),
            result_key: r.get("result_key"),
        }
    }

    /// The study's status when done, else where it is (`in_progress`, `dead_lettered`).
    pub fn status_or_state(&self) -> &str {
        match (&self.status, self.state.as_str()) {
            (Some(status), "done") => status,
            (_, state) => state,
        }
    }
}

/// Filters of `studies list`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    /// Received at or after (Unix ms).
    pub since_ms: Option<u64>,
    /// Received before (Unix ms).
    pub until_ms: Option<u64>,
    /// `ok`, `technical_defect`, `abstained` (final status) or `in_progress`, `done`,
    /// `dead_lettered` (where the study is).
    pub status: Option<String>,
    /// Station Name, exactly.
    pub station: Option<String>,
    /// At most this many rows, newest first.
    pub limit: i64,
}

/// Studies matching `filter`, newest reception first.
pub async fn list(ledger: &Ledger, filter: &ListFilter) -> anyhow::Result<Vec<StudyRow>> {
    let sql = format!(
        "SELECT {STUDY_COLUMNS} FROM studies
         WHERE ($1::bigint IS NULL OR received_at_ms >= $1)
           AND ($2::bigint IS NULL OR received_at_ms < $2)
           AND ($3::text IS NULL OR status = $3 OR state = $3)
           AND ($4::text IS NULL OR station_name = $4)
         ORDER BY received_at_ms DESC NULLS LAST, study_uid
         LIMIT $5"
    );
    let rows = ledger
        .client()
        .query(
            &sql,
            &[
                &filter.since_ms.map(ms),
                &filter.until_ms.map(ms),
                &filter.status,
                &filter.station,
                &filter.limit.max(0),
            ],
        )
        .await?;
    Ok(rows.iter().map(StudyRow::from_row).collect())
}

/// Studies finished (done) with a reception in `[from, to)`, in Study UID order — the
/// population the monthly audit samples from.
pub async fn done_between(
    ledger: &Ledger,
    from_ms: u64,
    to_ms: u64,
) -> anyhow::Result<Vec<StudyRow>> {
    let sql = format!(
        "SELECT {STUDY_COLUMNS} FROM studies
         WHERE state = 'done' AND received_at_ms >= $1 AND received_at_ms < $2
         ORDER BY study_uid"
    );
    let rows = ledger
        .client()
        .query(&sql, &[&ms(from_ms), &ms(to_ms)])
        .await?;
    Ok(rows.iter().map(StudyRow::from_row).collect())
}

/// The studies whose Study Instance UID or Accession Number is `key`.
pub async fn find(ledger: &Ledger, key: &str) -> anyhow::Result<Vec<StudyRow>> {
    let sql = format!(
        "SELECT {STUDY_COLUMNS} FROM studies
         WHERE study_uid = $1 OR (accession_number = $1 AND accession_number <> '')
         ORDER BY received_at_ms DESC NULLS LAST"
    );
    let rows = ledger.client().query(&sql, &[&key]).await?;
    Ok(rows.iter().map(StudyRow::from_row).collect())
}

/// A graded vertebra.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// Vertebral level (T1…L5).
    pub level: String,
    /// Genant grade 0–3.
    pub genant_grade: i16,
    /// Height loss (0–1).
    pub deformity: f64,
    /// Deformity type (wedge, biconcave, crush, none).
    pub deformity_type: String,
}

/// One event of a study's timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TimelineEvent {
    /// When it happened (Unix ms).
    pub at_ms: i64,
    /// Pipeline job that carried the study.
    pub job_id: String,
    /// Pipeline stage that reported it.
    pub stage: String,
    /// What happened (received, started, finished, failed, …).
    pub kind: String,
    /// Which attempt of the job the event belongs to (redeliveries count up).
    pub attempt: i32,
    /// Why, for a failure, retry or dead letter.
    pub reason: Option<String>,
    /// Destination of a delivery.
    pub destination: Option<String>,
}

/// What reached one destination.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeliverySummary {
    /// Destination of a delivery.
    pub destination: String,
    /// Instances delivered.
    pub instances: i64,
    /// Last delivery (Unix ms).
    pub last_at_ms: i64,
}

/// One study with everything the ledger holds about it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Timeline {
    /// The study row.
    pub study: StudyRow,
    /// Graded vertebrae, cranial to caudal.
    pub findings: Vec<Finding>,
    /// Milliseconds per stage (and `end_to_end`).
    pub stage_times: Vec<(String, i64)>,
    /// Every event of every reception of the study, oldest first (ingest's events before it
    /// knew the study are joined through the reception's job id).
    pub events: Vec<TimelineEvent>,
    /// Deliveries per destination.
    pub deliveries: Vec<DeliverySummary>,
}

/// The timeline of `study`.
pub async fn timeline(ledger: &Ledger, study: StudyRow) -> anyhow::Result<Timeline> {
    let c = ledger.client();
    let uid = &study.study_uid;
    let mut findings: Vec<Finding> = c
        .query(
            "SELECT level, genant_grade, deformity, deformity_type FROM findings
             WHERE study_uid = $1",
            &[uid],
        )
        .await?
        .iter()
        .map(|r| Finding {
            level: r.get(0),
            genant_grade: r.get(1),
            deformity: r.get(2),
            deformity_type: r.get(3),
        })
        .collect();
    findings.sort_by_key(|f| {
        // A level this build does not know (none is written today) sorts last.
        f.level
            .parse::<spinescreen_proto::VertebraLevel>()
            .map_or(usize::MAX, |l| l.index())
    });
    let stage_times = c
        .query(
            "SELECT stage, ms FROM stage_times WHERE study_uid = $1 ORDER BY stage",
            &[uid],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let events = c
        .query(
            "SELECT at_ms, job_id, stage, kind, attempt, reason, destination FROM events
             WHERE study_uid = $1
                OR job_id IN (SELECT job_id FROM events WHERE study_uid = $1)
             ORDER BY at_ms, event_id",
            &[uid],
        )
        .await?
        .iter()
        .map(|r| TimelineEvent {
            at_ms: r.get(0),
            job_id: r.get(1),
            stage: r.get(2),
            kind: r.get(3),
            attempt: r.get(4),
            reason: r.get(5),
            destination: r.get(6),
        })
        .collect();
    let deliveries = c
        .query(
            "SELECT destination, count(*), max(delivered_at_ms) FROM deliveries
             WHERE study_uid = $1 GROUP BY destination ORDER BY destination",
            &[uid],
        )
        .await?
        .iter()
        .map(|r| DeliverySummary {
            destination: r.get(0),
            instances: r.get(1),
            last_at_ms: r.get(2),
        })
        .collect();
    Ok(Timeline {
        study,
        findings,
        stage_times,
        events,
        deliveries,
    })
}
