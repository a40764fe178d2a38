//! Times on the command line and in output: `--since 24h`, `--from 2026-12-01`, UTC text.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// Parse a point in time as Unix milliseconds: an age before `now` (`90m`, `24h`, `7d`), a UTC
/// date (`2026-12-01`, its midnight), a UTC date and time (`2026-12-01T08:30:00`), or RFC 3339
/// (`2026-12-01T08:30:00+03:00`).
pub fn parse_time(text: &str, now_unix_ms: u64) -> anyhow::Result<u64> {
    let t = text.trim();
    let unit_ms = match t.chars().last() {
        Some('m') => Some(60_000),
        Some('h') => Some(3_600_000),
        Some('d') => Some(86_400_000),
        _ => None,
    };
    if let (Some(unit), Ok(n)) = (unit_ms, t[..t.len().saturating_sub(1)].parse::<u64>()) {
        return Ok(now_unix_ms.saturating_sub(n.saturating_mul(unit)));
    }
    let at = if let Ok(d) = OffsetDateTime::parse(t, &Rfc3339) {
        d
    } else if let Ok(d) = PrimitiveDateTime::parse(
        t,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    ) {
        d.assume_utc()
    } else if let Ok(d) = Date::parse(t, format_description!("[year]-[month]-[day]")) {
        d.midnight().assume_utc()
    } else {
        anyhow::bail!(
            "cannot read {text:?} as a time: use an age (90m, 24h, 7d), a UTC date (2026-12-01), \
             a UTC date and time (2026-12-01T08:30:00) or RFC 3339"
        );
    };
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).map_err(|_| anyhow::anyhow!("{text:?} is before 1970"))
}

/// Unix milliseconds as `2026-12-07 03:55:12` (UTC); empty for `None`.
pub fn utc_text(unix_ms: Option<i64>) -> String {
    let Some(ms) = unix_ms else {
        return String::new();
    };
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|d| {
            d.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_dates_and_instants() {
        let now = 1_765_000_000_000;
        assert_eq!(parse_time("24h", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_time("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_time("1970-01-02", now).unwrap(), 86_400_000);
        assert_eq!(parse_time("1970-01-01T00:01:00", now).unwrap(), 60_000);
        assert_eq!(parse_time("1970-01-01T03:00:00+03:00", now).unwrap(), 0);
        assert!(parse_time("yesterday", now).is_err());
        assert_eq!(utc_text(Some(86_400_000 + 61_000)), "1970-01-02 00:01:01");
    }
}
