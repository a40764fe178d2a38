//! Worker memory as Prometheus gauges, read from `/proc/self/status` (proc(5)) at each scrape:
//! `process_resident_memory_bytes` (VmRSS, the name the Prometheus client libraries use) and
//! `spinescreen_process_peak_resident_memory_bytes` (VmHWM, the peak since start). On systems
//! without procfs both stay absent rather than report zero.
#![allow(
    clippy::expect_used,
    reason = "static metric definitions: a bad name or a second registration is a programming error, \
              caught on first use by the tests"
)]

use prometheus::{register_int_gauge, IntGauge};
use std::sync::LazyLock;

/// `process_resident_memory_bytes`: resident set size now.
pub static RESIDENT: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "process_resident_memory_bytes",
        "Resident memory size in bytes (VmRSS)"
    )
    .expect("metric registers once")
});

/// `spinescreen_process_peak_resident_memory_bytes`: the peak resident set size since start.
pub static PEAK_RESIDENT: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "spinescreen_process_peak_resident_memory_bytes",
        "Peak resident memory size in bytes since the process started (VmHWM)"
    )
    .expect("metric registers once")
});

/// `(VmRSS, VmHWM)` in bytes from the text of a `/proc/<pid>/status` file.
pub fn parse_status(status: &str) -> Option<(i64, i64)> {
    let kib = |key: &str| -> Option<i64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..]
            .split_whitespace()
            .next()?
            .parse::<i64>()
            .ok()
    };
    Some((kib("VmRSS:")? * 1024, kib("VmHWM:")? * 1024))
}

/// This process's `(VmRSS, VmHWM)` in bytes, from `/proc/self/status`; `None` where it cannot
/// be read.
pub fn read_own() -> Option<(i64, i64)> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(parse_status)
}

/// Refresh both gauges from `/proc/self/status` (a no-op where it cannot be read).
pub fn refresh() {
    if let Some((rss, peak)) = read_own() {
        RESIDENT.set(rss);
        PEAK_RESIDENT.set(peak);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_peak() {
        let status = "Name:\tspinescreen\nVmHWM:\t  409600 kB\nVmRSS:\t  204800 kB\n";
        assert_eq!(parse_status(status), Some((204800 * 1024, 409600 * 1024)));
        assert_eq!(parse_status("Name:\tx\nVmRSS:\tmany kB\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exported_on_linux() {
        let text = crate::metrics::render();
        let line = text
            .lines()
            .find(|l| l.starts_with("process_resident_memory_bytes "))
            .expect("gauge exported");
        let bytes: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(bytes > 1e6, "{line}");
        assert!(text.contains("spinescreen_process_peak_resident_memory_bytes "));
    }
}
