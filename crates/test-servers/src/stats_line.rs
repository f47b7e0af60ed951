//! Periodic `stats` lines on stdout (`--stats-interval`): every counter, rates over the last
//! interval, the process's resident memory and any counters the mode adds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::events;
use crate::stats::{Counters, Stats};

/// Counters a mode adds to each `stats` line, by name (e.g. `broadcast_lagged`).
pub type ExtraCounters = BTreeMap<&'static str, u64>;

/// One `stats` line.
#[derive(Debug, Serialize)]
pub struct StatsLine<'a> {
    /// Always `"stats"`.
    pub event: &'static str,
    /// The server mode.
    pub mode: &'a str,
    /// Milliseconds since the server started listening.
    pub elapsed_ms: u64,
    /// The server's counters (totals since start).
    #[serde(flatten)]
    pub counters: Counters,
    /// Rates over the last interval.
    #[serde(flatten)]
    pub rates: Rates,
    /// Resident memory of the whole process in bytes (`null` where it cannot be read).
    pub rss_bytes: Option<u64>,
    /// Counters the mode adds.
    #[serde(flatten)]
    pub extra: ExtraCounters,
}

/// Per-second rates between two snapshots of the counters.
#[derive(Debug, Clone, Copy, Serialize)]
#[allow(missing_docs)]
pub struct Rates {
    pub accepts_per_sec: f64,
    pub msgs_in_per_sec: f64,
    pub bytes_in_per_sec: f64,
    pub msgs_out_per_sec: f64,
    pub bytes_out_per_sec: f64,
}

impl Rates {
    /// The rates from `before` to `now`, `seconds` apart.
    pub fn between(before: &Counters, now: &Counters, seconds: f64) -> Self {
        let rate = |old: u64, new: u64| {
            if seconds > 0.0 {
                // One decimal is plenty for a human and keeps the lines short.
                (new.saturating_sub(old) as f64 / seconds * 10.0).round() / 10.0
            } else {
                0.0
            }
        };
        Self {
            accepts_per_sec: rate(before.connections_accepted, now.connections_accepted),
            msgs_in_per_sec: rate(before.messages_in, now.messages_in),
            bytes_in_per_sec: rate(before.bytes_in, now.bytes_in),
            msgs_out_per_sec: rate(before.messages_out, now.messages_out),
            bytes_out_per_sec: rate(before.bytes_out, now.bytes_out),
        }
    }
}

/// Shortest interval between two lines, so a typo such as `1ns` cannot make a busy loop.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// Prints a `stats` line every `interval` (at least [`MIN_INTERVAL`]) until `shutdown` is
/// cancelled. `extra` is asked for the mode's own counters each time.
pub async fn report(
    mode: &'static str,
    interval: Duration,
    stats: Arc<Stats>,
    extra: impl Fn() -> ExtraCounters,
    shutdown: CancellationToken,
) {
    let interval = interval.max(MIN_INTERVAL);
    let started = Instant::now();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut before = stats.snapshot();
    let mut before_at = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let now = stats.snapshot();
        let now_at = Instant::now();
        let seconds = now_at.duration_since(before_at).as_secs_f64();
        events::emit(&StatsLine {
            event: "stats",
            mode,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            counters: now,
            rates: Rates::between(&before, &now, seconds),
            rss_bytes: resident_bytes(),
            extra: extra(),
        });
        before = now;
        before_at = now_at;
    }
}

/// Resident memory of this process in bytes: `VmRSS` from `/proc/self/status` on Linux,
/// `None` elsewhere or if it cannot be read.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// The `VmRSS:` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\ttest-servers\nVmPeak:\t  9000 kB\nVmRSS:\t    4196 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(4196 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_resident_memory_is_known_on_linux() {
        assert!(resident_bytes().is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn rates_are_per_second_over_the_interval() {
        let mut before = Stats::default().snapshot();
        before.messages_in = 100;
        let mut now = before;
        now.messages_in = 400;
        now.bytes_out = 1000;
        let rates = Rates::between(&before, &now, 2.0);
        assert_eq!(rates.msgs_in_per_sec, 150.0);
        assert_eq!(rates.bytes_out_per_sec, 500.0);
        assert_eq!(rates.accepts_per_sec, 0.0);
        assert_eq!(Rates::between(&before, &now, 0.0).msgs_in_per_sec, 0.0);
    }
}
