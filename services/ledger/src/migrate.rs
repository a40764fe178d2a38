//! Schema migrations, applied on start: the SQL files under `migrations/`, embedded in the
//! binary, each applied once in its own transaction and recorded in `ledger_migrations`.
//! Concurrent starters (several ledger replicas) serialise on an advisory lock.

use tokio_postgres::Client;

/// Every migration, in order. Append only: an applied migration is never edited.
pub const MIGRATIONS: [(i32, &str, &str); 3] = [
    (1, "ledger", include_str!("../migrations/0001_ledger.sql")),
    (2, "reviews", include_str!("../migrations/0002_reviews.sql")),
    (
        3,
        "monitor_reports",
        include_str!("../migrations/0003_monitor_reports.sql"),
    ),
];

/// Advisory lock key that serialises migrations ("spinescr" in ASCII).
const LOCK_KEY: i64 = 0x7370_696e_6573_6372;

/// Apply the migrations `client`'s schema lacks; returns the versions applied now.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS ledger_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM ledger_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut now = vec![];
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO ledger_migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await?;
        now.push(version);
    }
    tx.commit().await?;
    Ok(now)
}
