//! [`Ledger`]: the connection to the study ledger and every write to it.
//!
//! Writes are idempotent: an event is stored once under its deterministic id, a study row is
//! upserted, a result replaces the study's findings and stage times. A replay of the done queue
//! or the events feed after a crash therefore adds nothing twice. A study's row follows its
//! latest reception (`job_id`): a `studies retry` supersedes the previous run, and a late event
//! or result of an older reception does not move the row back.

use crate::migrate::migrate;
use anyhow::Context;
use spinescreen_proto::{EventKind, SourceInfo, StudyDone, StudyEvent, StudyResult};
use tokio_postgres::{Client, NoTls};

/// Unix milliseconds as PostgreSQL `BIGINT`.
pub(crate) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The SLA: a study must be back at the PACS within 6.5 minutes (the runtime's one definition).
pub fn sla_met(end_to_end_ms: u64) -> bool {
    end_to_end_ms as f64 <= spinescreen_runtime::metrics::SLA_SECONDS * 1000.0
}

/// A connection to the ledger, its schema migrated.
pub struct Ledger {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Whether `name` can be used as a schema name unquoted-safe (`[a-z_][a-z0-9_]*`, ≤ 63 bytes).
fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Ledger {
    /// Connect to `url`, create `schema` if missing, use it, and apply pending migrations.
    pub async fn connect(url: &str, schema: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            valid_schema(schema),
            "ledger schema {schema:?} must match [a-z_][a-z0-9_]*"
        );
        let (mut client, connection) =
            tokio_postgres::connect(url, NoTls).await.with_context(|| {
                format!(
                    "connect to the ledger at {}",
                    spinescreen_runtime::config::redact_url(url)
                )
            })?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "ledger database connection ended");
            }
        });
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
            ))
            .await
            .context("selecting the ledger schema")?;
        let applied = migrate(&mut client).await.context("migrating the ledger")?;
        if !applied.is_empty() {
            tracing::info!(?applied, schema, "ledger migrations applied");
        }
        Ok(Self { client, connection })
    }

    /// The database client (for queries).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The database client, for writes in a transaction.
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Whether the connection has been lost (the caller should connect again).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Store one event of the feed. Returns `false` when it was already stored (a replay).
    pub async fn record_event(&mut self, e: &StudyEvent) -> anyhow::Result<bool> {
        let tx = self.client.transaction().await?;
        let study = e.study_uid.as_ref().map(|u| u.as_str().to_string());
        let inserted = tx
            .execute(
                "INSERT INTO events (event_id, job_id, study_uid, stage, kind, attempt, at_ms,
                                     reason, destination)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (event_id) DO NOTHING",
                &[
                    &e.event_id,
                    &e.job_id,
                    &study,
                    &e.stage.name(),
                    &e.kind.as_str(),
                    &i32::try_from(e.attempt).unwrap_or(i32::MAX),
                    &ms(e.at_unix_ms),
                    &e.reason,
                    &e.destination,
                ],
            )
            .await?
            == 1;
        if !inserted {
            tx.commit().await?;
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO jobs (job_id, incoming_prefix, received_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (job_id) DO NOTHING",
            &[&e.job_id, &e.incoming_prefix, &ms(e.received_at_unix_ms)],
        )
        .await?;
        if let Some(study) = &study {
            tx.execute(
                "INSERT INTO studies (study_uid, job_id, incoming_prefix, received_at_ms)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (study_uid) DO UPDATE SET
                     job_id = EXCLUDED.job_id,
                     incoming_prefix = EXCLUDED.incoming_prefix,
                     received_at_ms = EXCLUDED.received_at_ms,
                     state = CASE WHEN studies.job_id IS NOT DISTINCT FROM EXCLUDED.job_id
                                  THEN studies.state ELSE 'in_progress' END,
                     finished_at_ms = CASE WHEN studies.job_id IS NOT DISTINCT FROM EXCLUDED.job_id
                                  THEN studies.finished_at_ms ELSE NULL END
                 WHERE studies.job_id IS NULL
                    OR studies.job_id = EXCLUDED.job_id
                    OR studies.received_at_ms IS NULL
                    OR EXCLUDED.received_at_ms > studies.received_at_ms",
                &[
                    study,
                    &e.job_id,
                    &e.incoming_prefix,
                    &ms(e.received_at_unix_ms),
                ],
            )
            .await?;
            match e.kind {
                EventKind::DeadLettered => {
                    tx.execute(
                        "UPDATE studies SET state = 'dead_lettered', reason_text = $3,
                                delivery = CASE WHEN $4 = 'publisher' THEN 'failed' ELSE delivery END
                         WHERE study_uid = $1 AND job_id = $2 AND state <> 'done'",
                        &[study, &e.job_id, &e.reason, &e.stage.name()],
                    )
                    .await?;
                }
                EventKind::Delivered => {
                    let destination = e.destination.clone().unwrap_or_default();
                    for instance in &e.instances {
                        tx.execute(
                            "INSERT INTO deliveries (study_uid, destination, sop_instance_uid,
                                                     job_id, delivered_at_ms)
                             VALUES ($1, $2, $3, $4, $5)
                             ON CONFLICT DO NOTHING",
                            &[study, &destination, instance, &e.job_id, &ms(e.at_unix_ms)],
                        )
                        .await?;
                    }
                }
                _ => {}
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Store where a study came from (scanner, chosen series, accession number).
    pub async fn record_source(&mut self, s: &SourceInfo) -> anyhow::Result<()> {
        self.client
            .execute(
                "INSERT INTO studies (study_uid, accession_number, station_name, manufacturer,
                                      model, series_uid, series_number, series_description)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (study_uid) DO UPDATE SET
                     accession_number = EXCLUDED.accession_number,
                     station_name = EXCLUDED.station_name,
                     manufacturer = EXCLUDED.manufacturer,
                     model = EXCLUDED.model,
                     series_uid = EXCLUDED.series_uid,
                     series_number = EXCLUDED.series_number,
                     series_description = EXCLUDED.series_description",
                &[
                    &s.study_instance_uid,
                    &s.accession_number,
                    &s.station_name,
                    &s.manufacturer,
                    &s.model,
                    &s.series_instance_uid,
                    &s.series_number,
                    &s.series_description,
                ],
            )
            .await?;
        Ok(())
    }

    /// Store a finished study: the done announcement and, when it could be read, its
    /// `result.json`. Returns `false` when a newer reception of the study already owns the row.
    pub async fn record_done(
        &mut self,
        done: &StudyDone,
        result: Option<&StudyResult>,
        now_unix_ms: u64,
    ) -> anyhow::Result<bool> {
        let tx = self.client.transaction().await?;
        let study = done.study_uid.as_str();
        let received: Option<i64> = tx
            .query_opt(
                "SELECT received_at_ms FROM jobs WHERE job_id = $1",
                &[&done.job_id],
            )
            .await?
            .map(|r| r.get(0));
        let received =
            received.unwrap_or_else(|| ms(now_unix_ms.saturating_sub(done.end_to_end_ms)));
        let reason = result.and_then(|r| r.reason.as_ref());
        let density = result.and_then(|r| r.bone_density.as_ref());
        let updated = tx
            .execute(
                "INSERT INTO studies (study_uid, job_id, received_at_ms, finished_at_ms, state,
                     status, reason_code, reason_text, has_fracture, fracture_probability,
                     max_deformity, bone_density_level, bone_density_hu, bone_density_category,
                     bone_density_band, end_to_end_ms, sla_met, delivery, result_key)
                 VALUES ($1, $2, $3, $4, 'done', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                         $15, $16, 'delivered', $17)
                 ON CONFLICT (study_uid) DO UPDATE SET
                     received_at_ms = CASE WHEN studies.job_id IS NOT DISTINCT FROM EXCLUDED.job_id
                         THEN COALESCE(studies.received_at_ms, EXCLUDED.received_at_ms)
                         ELSE EXCLUDED.received_at_ms END,
                     finished_at_ms = CASE WHEN studies.job_id IS NOT DISTINCT FROM EXCLUDED.job_id
                         THEN COALESCE(studies.finished_at_ms, EXCLUDED.finished_at_ms)
                         ELSE EXCLUDED.finished_at_ms END,
                     job_id = EXCLUDED.job_id,
                     state = 'done',
                     status = EXCLUDED.status,
                     reason_code = EXCLUDED.reason_code,
                     reason_text = EXCLUDED.reason_text,
                     has_fracture = EXCLUDED.has_fracture,
                     fracture_probability = EXCLUDED.fracture_probability,
                     max_deformity = EXCLUDED.max_deformity,
                     bone_density_level = EXCLUDED.bone_density_level,
                     bone_density_hu = EXCLUDED.bone_density_hu,
                     bone_density_category = EXCLUDED.bone_density_category,
                     bone_density_band = EXCLUDED.bone_density_band,
                     end_to_end_ms = EXCLUDED.end_to_end_ms,
                     sla_met = EXCLUDED.sla_met,
                     delivery = EXCLUDED.delivery,
                     result_key = EXCLUDED.result_key
                 WHERE studies.job_id IS NULL
                    OR studies.job_id = EXCLUDED.job_id
                    OR studies.received_at_ms IS NULL
                    OR EXCLUDED.received_at_ms >= studies.received_at_ms",
                &[
                    &study,
                    &done.job_id,
                    &received,
                    &ms(now_unix_ms),
                    &done.status.as_str(),
                    &reason.map(|r| r.code.clone()),
                    &reason.map(|r| r.text.clone()),
                    &result.and_then(|r| r.has_fracture),
                    &result.and_then(|r| r.fracture_probability),
                    &result.and_then(|r| r.max_deformity),
                    &density.map(|d| d.level.as_str()),
                    &density.map(|d| d.hu),
                    &density.map(|d| d.iscd_category.clone()),
                    &density.map(|d| d.pickhardt_category.clone()),
                    &ms(done.end_to_end_ms),
                    &sla_met(done.end_to_end_ms),
                    &done.result_key,
                ],
            )
            .await?
            == 1;
        if updated {
            if let Some(result) = result {
                tx.execute("DELETE FROM findings WHERE study_uid = $1", &[&study])
                    .await?;
                for v in &result.vertebrae {
                    let kind = serde_json::to_value(v.deformity_type)?
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    tx.execute(
                        "INSERT INTO findings (study_uid, level, genant_grade, deformity,
                                               deformity_type)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        &[
                            &study,
                            &v.label.as_str(),
                            &i16::from(u8::from(v.genant_grade)),
                            &v.deformity,
                            &kind,
                        ],
                    )
                    .await?;
                }
                tx.execute("DELETE FROM stage_times WHERE study_uid = $1", &[&study])
                    .await?;
                for (stage, took) in &result.timings_ms {
                    tx.execute(
                        "INSERT INTO stage_times (study_uid, stage, ms) VALUES ($1, $2, $3)",
                        &[&study, stage, &ms(*took)],
                    )
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(updated)
    }
}
