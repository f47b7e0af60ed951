//! `ws-bench open-model` against real servers at a small scale: every message accounted for,
//! the tail percentiles present, the ramp-up's messages apart, the client's CPU time given.
//! Correctness of the report, not speed.

use std::process::Command;

use integration::TestServer;
use serde_json::Value;

mod common;
use common::{Baseline, RUN_TIMEOUT};

/// Runs `ws-bench open-model url args... --json`, expects success, returns the report.
fn open_model(url: &str, args: &[&str]) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ws-bench"));
    command.args(["open-model", url]).args(args).arg("--json");
    let output = integration::run_to_completion(command, RUN_TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ws-bench failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// 20 connections at 20 msg/s: ramp-up 0.5 s, then 1.01 s. Connection k (of 20) opens at
/// 25k ms and sends from one interval (50 ms) later until the end (1,510 ms after the
/// start: 10 ms from any due time, so rounding cannot move a message across it).
fn small_run(url: &str, client: &str) -> Value {
    let args = [
        "--connections",
        "20",
        "--rate",
        "20",
        "--ramp-up",
        "500ms",
        "--duration",
        "1010ms",
        "--client",
        client,
    ];
    open_model(url, &args)
}

/// Messages connection k sends: due at 25k + 50m ms for m >= 1, while before 1,510 ms.
fn expected_messages() -> u64 {
    (0..20_u64)
        .map(|k| (1..).take_while(|m| 25 * k + 50 * m < 1510).count() as u64)
        .sum()
}

fn assert_accounted_for(report: &Value) {
    let expected = expected_messages();
    assert_eq!(report["scenario"], "open-model");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["figures"]["connections_failed"], 0, "{report}");
    assert_eq!(report["figures"]["sent"], expected, "{report}");
    assert_eq!(report["count"], expected, "{report}");
    let steady = &report["summary"]["latency"];
    let ramp_up = &report["summary"]["ramp_up_latency"];
    for key in ["p50", "p99", "p99.9", "max"] {
        assert!(steady[key].as_f64().unwrap_or(0.0) > 0.0, "{key}: {report}");
    }
    let (steady_count, ramp_count) = (steady["count"].as_u64(), ramp_up["count"].as_u64());
    assert!(ramp_count.unwrap_or(0) > 0, "{report}");
    assert_eq!(
        steady_count.unwrap_or(0) + ramp_count.unwrap_or(0),
        expected,
        "{report}"
    );
    assert!(
        report["figures"]["client_cpu_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
}

#[test]
fn against_load_every_message_is_counted_and_the_tail_reported() {
    let server = TestServer::start("load");
    let report = small_run(server.url(), "ws-client");
    assert_eq!(report["client"], "ws-client");
    assert_accounted_for(&report);
}

#[test]
fn against_echo_every_message_is_counted_and_the_tail_reported() {
    let server = TestServer::start("echo");
    assert_accounted_for(&small_run(server.url(), "ws-client"));
}

#[test]
fn raw_tcp_runs_the_same_schedule() {
    let server = Baseline::start("tcp-echo");
    let report = small_run(&server.url, "tcp");
    assert_eq!(report["client"], "tcp");
    assert_accounted_for(&report);
}
