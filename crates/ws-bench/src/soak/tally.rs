//! What a soak run counts: the echo clients' messages and the RPC clients' calls (atomic
//! counters, serialized as they stand), latency histograms of fixed size (so the client's own
//! memory does not grow with the run), and the process's resident memory.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

use crate::report;

/// Lowest latency told apart: 1 µs (histograms hold nanoseconds).
const LOWEST_NS: u64 = 1_000;
/// Highest latency recorded as itself: 10 minutes; longer ones count as this.
const HIGHEST_NS: u64 = 600_000_000_000;

/// The echo clients' messages. Each message is one sequence number: `sent` once, however
/// often it is written again after a reconnect, then resolved once as `delivered` (its echo
/// came back) or `failed` (handed back with `SendFailed` and given up on). What is neither
/// at the end is lost silently.
#[derive(Debug, Default, Serialize)]
pub(crate) struct EchoTally {
    /// Distinct messages handed to the connections.
    pub(crate) sent: AtomicU64,
    /// Distinct messages whose echo came back.
    pub(crate) delivered: AtomicU64,
    /// Messages handed back (`SendFailed`) and given up on.
    pub(crate) failed: AtomicU64,
    /// Copies written again after a reconnect because no echo had come back.
    pub(crate) resent: AtomicU64,
    /// Echoes of a message already resolved (a resent copy's, or a late one).
    pub(crate) duplicates: AtomicU64,
    /// Echoes that match no message sent (wrong size, content or sequence number).
    pub(crate) corrupt: AtomicU64,
    /// Sends skipped because too many messages were unacknowledged (not counted in `sent`).
    pub(crate) skipped: AtomicU64,
    /// New connections after the first, summed over the clients.
    pub(crate) reconnects: AtomicU64,
}

impl EchoTally {
    /// Messages neither delivered nor given up on (yet).
    pub(crate) fn unresolved(&self) -> u64 {
        get(&self.sent).saturating_sub(get(&self.delivered) + get(&self.failed))
    }
}

/// The RPC clients' calls: each call ends as exactly one of `ok`, `wrong`, `interrupted`,
/// `errors`, `timeouts` or `lost`.
#[derive(Debug, Default, Serialize)]
pub(crate) struct RpcTally {
    /// Calls made.
    pub(crate) calls: AtomicU64,
    /// Answered with the right result.
    pub(crate) ok: AtomicU64,
    /// Answered with a result that is not the one expected.
    pub(crate) wrong: AtomicU64,
    /// Non-idempotent calls failed with `CallInterrupted` (a drop under them).
    pub(crate) interrupted: AtomicU64,
    /// Failed with any other error (an error object, the connection lost, not connected).
    pub(crate) errors: AtomicU64,
    /// Failed with the call's own timeout.
    pub(crate) timeouts: AtomicU64,
    /// Did not resolve at all within the timeout plus a margin.
    pub(crate) lost: AtomicU64,
    /// Connections made after the first, summed over the clients.
    pub(crate) reconnects: AtomicU64,
}

impl RpcTally {
    /// Calls not resolved yet.
    pub(crate) fn in_flight(&self) -> u64 {
        let done = [
            &self.ok,
            &self.wrong,
            &self.interrupted,
            &self.errors,
            &self.timeouts,
            &self.lost,
        ]
        .into_iter()
        .map(get)
        .sum::<u64>();
        get(&self.calls).saturating_sub(done)
    }
}

/// Everything the clients of one run count.
#[derive(Debug)]
pub(crate) struct Tally {
    pub(crate) echo: EchoTally,
    pub(crate) rpc: RpcTally,
    echo_latency: Mutex<Histogram<u64>>,
    rpc_latency: Mutex<Histogram<u64>>,
}

impl Tally {
    pub(crate) fn new() -> Self {
        let histogram = || {
            Mutex::new(
                Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, 3)
                    .expect("valid fixed histogram bounds"),
            )
        };
        Self {
            echo: EchoTally::default(),
            rpc: RpcTally::default(),
            echo_latency: histogram(),
            rpc_latency: histogram(),
        }
    }

    /// Records an echo's latency, from the message's intended send time.
    pub(crate) fn echo_latency(&self, latency: Duration) {
        report::record(&mut lock(&self.echo_latency), latency);
    }

    /// Records an answered call's latency, from its intended time.
    pub(crate) fn rpc_latency(&self, latency: Duration) {
        report::record(&mut lock(&self.rpc_latency), latency);
    }

    /// The `progress` line: counters as they stand, `t_s` seconds into the run.
    pub(crate) fn progress(&self, t_s: f64) -> Value {
        json!({
            "event": "progress",
            "t_s": round(t_s),
            "echo": self.echo_json(),
            "rpc": self.rpc_json(),
            "rss_bytes": rss_bytes(),
        })
    }

    /// The echo counters with the unresolved count and, at the end, `lost`.
    pub(crate) fn echo_json(&self) -> Value {
        let mut value = json!(self.echo);
        value["unresolved"] = self.echo.unresolved().into();
        value
    }

    /// The RPC counters with the count in flight.
    pub(crate) fn rpc_json(&self) -> Value {
        let mut value = json!(self.rpc);
        value["in_flight"] = self.rpc.in_flight().into();
        value
    }

    /// Percentiles of the echo latencies, microseconds.
    pub(crate) fn echo_percentiles(&self) -> Value {
        percentiles(&lock(&self.echo_latency))
    }

    /// Percentiles of the answered calls' latencies, microseconds.
    pub(crate) fn rpc_percentiles(&self) -> Value {
        percentiles(&lock(&self.rpc_latency))
    }
}

/// Adds one to `counter`.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The value of `counter`.
pub(crate) fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Count, p50, p99 and max in microseconds (nulls when nothing was recorded).
fn percentiles(histogram: &Histogram<u64>) -> Value {
    let us = |nanos: u64| (!histogram.is_empty()).then(|| round(nanos as f64 / 1000.0));
    json!({
        "count": histogram.len(),
        "p50_us": us(histogram.value_at_quantile(0.50)),
        "p99_us": us(histogram.value_at_quantile(0.99)),
        "max_us": us(histogram.max()),
    })
}

/// Three decimals are plenty for seconds and microseconds.
fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// This process's resident set size, from `/proc/self/status` (`None` off Linux).
pub(crate) fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_serialize_with_what_is_derived_from_them() {
        let tally = Tally::new();
        for _ in 0..5 {
            bump(&tally.echo.sent);
        }
        bump(&tally.echo.delivered);
        bump(&tally.echo.delivered);
        bump(&tally.echo.failed);
        assert_eq!(tally.echo_json()["unresolved"], 2);
        assert_eq!(tally.echo_json()["sent"], 5);
        bump(&tally.rpc.calls);
        bump(&tally.rpc.calls);
        bump(&tally.rpc.timeouts);
        assert_eq!(tally.rpc_json()["in_flight"], 1);
        assert!(tally.echo_percentiles()["p50_us"].is_null());
        tally.echo_latency(Duration::from_millis(3));
        tally.echo_latency(Duration::from_secs(3600));
        let latency = tally.echo_percentiles();
        assert_eq!(latency["count"], 2);
        let p50 = latency["p50_us"].as_f64().unwrap();
        assert!((2990.0..3010.0).contains(&p50), "{latency}");
        // Beyond the highest bound: counted at the bound, not lost.
        assert!(latency["max_us"].as_f64().unwrap() >= 599e6, "{latency}");
        assert!(cfg!(not(target_os = "linux")) || rss_bytes().unwrap() > 0);
    }
}
