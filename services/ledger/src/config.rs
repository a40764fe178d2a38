//! `[ledger]`: where the study ledger lives and how often its station metrics are refreshed.
//!
//! ```toml
//! [ledger]
//! url = "postgres://spinescreen@postgres:5432/spinescreen"   # else DATABASE_URL
//! schema = "public"
//! metrics_refresh_secs = 60
//! ```

use serde::{Deserialize, Serialize};

/// Environment variable consulted when `[ledger] url` is not set.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// The ledger's configuration. Its `Debug` output hides the password in the URL.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LedgerConfig {
    /// PostgreSQL URL (`postgres://user:password@host:port/db`); `None` → `DATABASE_URL`.
    pub url: Option<String>,
    /// Schema holding the ledger's tables (created if missing).
    pub schema: String,
    /// Seconds between refreshes of the per-station metrics from the database.
    pub metrics_refresh_secs: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            url: None,
            schema: "public".into(),
            metrics_refresh_secs: 60,
        }
    }
}

impl std::fmt::Debug for LedgerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerConfig")
            .field(
                "url",
                &self
                    .url
                    .as_deref()
                    .map(spinescreen_runtime::config::redact_url),
            )
            .field("schema", &self.schema)
            .field("metrics_refresh_secs", &self.metrics_refresh_secs)
            .finish()
    }
}

impl LedgerConfig {
    /// The database URL: `[ledger] url`, else `DATABASE_URL`.
    pub fn database_url(&self) -> anyhow::Result<String> {
        self.database_url_with(std::env::var(DATABASE_URL_ENV).ok())
    }

    /// [`LedgerConfig::database_url`] with an explicit `DATABASE_URL` value.
    pub fn database_url_with(&self, env: Option<String>) -> anyhow::Result<String> {
        self.url
            .clone()
            .filter(|u| !u.is_empty())
            .or(env.filter(|u| !u.is_empty()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the study ledger needs a database: set [ledger] url (SPINESCREEN__LEDGER__URL) \
                     or {DATABASE_URL_ENV}"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_url_wins_over_database_url_and_one_is_required() {
        let mut c = LedgerConfig::default();
        assert!(c.database_url_with(None).is_err());
        assert_eq!(
            c.database_url_with(Some("postgres://a/b".into())).unwrap(),
            "postgres://a/b"
        );
        c.url = Some("postgres://u:pw@c/d".into());
        assert_eq!(
            c.database_url_with(Some("postgres://a/b".into())).unwrap(),
            "postgres://u:pw@c/d"
        );
        assert!(!format!("{c:?}").contains("pw"));
    }
}
