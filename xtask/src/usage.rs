//! The heaviest tests by what their `test-servers` children cost: reads the JSON lines the
//! integration harness appends to `$TEST_SERVERS_USAGE_LOG` and prints a short table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cargo;

/// The environment variable the harness reads (`integration::USAGE_LOG_ENV`).
pub(crate) const USAGE_LOG_ENV: &str = "TEST_SERVERS_USAGE_LOG";

/// A fresh (removed) usage log under `target/` for the task `name`.
pub(crate) fn fresh_log(name: &str) -> PathBuf {
    let path = cargo::workspace_root()
        .join("target")
        .join(format!("{name}-server-usage.jsonl"));
    let _ = std::fs::remove_file(&path);
    path
}

/// What one test's servers cost: the largest peak RSS of any of them, CPU time summed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TestUsage {
    pub(crate) servers: u32,
    pub(crate) peak_rss_bytes: u64,
    pub(crate) cpu_ms: u64,
}

/// Per-test totals from the log's lines; lines that are not records are skipped.
pub(crate) fn by_test(log: &str) -> BTreeMap<String, TestUsage> {
    let mut tests: BTreeMap<String, TestUsage> = BTreeMap::new();
    for line in log.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(test) = record["test"].as_str() else {
            continue;
        };
        let entry = tests.entry(test.to_owned()).or_default();
        entry.servers += 1;
        entry.peak_rss_bytes = entry
            .peak_rss_bytes
            .max(record["peak_rss_bytes"].as_u64().unwrap_or(0));
        entry.cpu_ms += record["cpu_ms"].as_u64().unwrap_or(0);
    }
    tests
}

/// Prints the `count` tests whose servers had the largest peak RSS, with their CPU time.
/// Says so, instead of failing, when the log is missing (e.g. not on Linux).
pub(crate) fn print_heaviest(log: &Path, count: usize) {
    let Ok(text) = std::fs::read_to_string(log) else {
        println!("server usage: no records (no test spawned a server, or not on Linux)");
        return;
    };
    let tests = by_test(&text);
    let mut ranked: Vec<_> = tests.iter().collect();
    ranked.sort_by(|a, b| {
        b.1.peak_rss_bytes
            .cmp(&a.1.peak_rss_bytes)
            .then(a.0.cmp(b.0))
    });
    println!(
        "heaviest tests by test-servers peak memory ({} tests spawned servers):",
        tests.len()
    );
    println!("  {:>9}  {:>8}  {:>7}  test", "peak RSS", "CPU", "servers");
    for (test, usage) in ranked.into_iter().take(count) {
        println!(
            "  {:>6.1} MB  {:>7.2}s  {:>7}  {test}",
            usage.peak_rss_bytes as f64 / 1e6,
            usage.cpu_ms as f64 / 1e3,
            usage.servers,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_grouped_per_test() {
        let log = r#"{"test":"load::idle","server":"load","peak_rss_bytes":50000000,"cpu_ms":900}
{"test":"echo::text","server":"echo","peak_rss_bytes":4000000,"cpu_ms":10}
not a record
{"test":"load::idle","server":"load","peak_rss_bytes":7000000,"cpu_ms":100}
"#;
        let tests = by_test(log);
        assert_eq!(tests.len(), 2);
        assert_eq!(
            tests["load::idle"],
            TestUsage {
                servers: 2,
                peak_rss_bytes: 50_000_000,
                cpu_ms: 1000
            }
        );
    }
}
