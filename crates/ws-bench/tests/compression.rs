//! `ws-bench compression` against real `test-servers perf` processes (started by ws-bench
//! itself from the harness's binary, or given by URL): every message accounted for by the
//! server, the JSON smaller on the wire with deflate and byte for byte the payload without
//! it, CPU time on both sides. Short runs: correctness, not speed.

use std::process::Command;
use std::time::Duration;

use integration::TestServer;
use serde_json::Value;

/// Longest any ws-bench run in these tests may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `ws-bench compression args... --json`; returns its exit status, report and stderr.
fn compression(args: &[&str]) -> (bool, Value, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ws-bench"));
    command.arg("compression").args(args).arg("--json");
    let output = integration::run_to_completion(command, RUN_TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.success(), report, stderr)
}

/// A run on servers ws-bench starts from the harness's test-servers.
fn started(args: &[&str]) -> Value {
    let bin = integration::test_servers_bin()
        .to_str()
        .expect("a UTF-8 path");
    let mut all = vec!["--server-bin", bin, "--slices", "2", "--slice", "60ms"];
    all.extend_from_slice(args);
    let (ok, report, stderr) = compression(&all);
    assert!(ok, "ws-bench compression {all:?} failed: {stderr}");
    assert_eq!(report["scenario"], "compression", "{report}");
    report
}

fn cases(report: &Value) -> &Vec<Value> {
    report["figures"]["cases"]
        .as_array()
        .expect("figures.cases")
}

fn u64_of(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

/// The server counted every message the contender sent, each of the payload's size, and
/// (echo) sent each back.
fn assert_accounted(case: &Value, echoed: bool) {
    let size = u64_of(&case["size"]);
    let sent = u64_of(&case["sent_with_warmup"]);
    let server = &case["server"];
    assert!(u64_of(&case["messages"]) > 0, "{case}");
    assert!(sent >= u64_of(&case["messages"]), "{case}");
    assert_eq!(u64_of(&server["messages_in"]), sent, "{case}");
    assert_eq!(u64_of(&server["bytes_in"]), sent * size, "{case}");
    let out = if echoed { sent } else { 0 };
    assert_eq!(u64_of(&server["messages_out"]), out, "{case}");
    assert_eq!(u64_of(&server["bytes_out"]), out * size, "{case}");
}

/// CPU per message is known and positive where this OS lets it be read.
fn assert_cpu(case: &Value) {
    if cfg!(unix) {
        let client = case["client_cpu_us_per_msg"].as_f64().unwrap_or(0.0);
        assert!(client > 0.0, "{case}");
    }
    if cfg!(target_os = "linux") {
        let server = case["server_cpu_us_per_msg"].as_f64().unwrap_or(0.0);
        assert!(server > 0.0, "{case}");
    }
}

#[test]
fn one_way_json_shrinks_on_the_wire_with_deflate_and_every_message_is_counted() {
    let report = started(&[]);
    assert_eq!(report["params"]["mode"], "one-way");
    let cases = cases(&report);
    assert_eq!(cases.len(), 6, "two sizes, three contenders: {report}");
    for case in cases {
        assert_accounted(case, false);
        assert_cpu(case);
        let server = &case["server"];
        let (wire, payload) = (
            u64_of(&server["wire_bytes_in"]),
            u64_of(&server["bytes_in"]),
        );
        let ratio = case["wire_ratio"].as_f64().expect("a wire ratio");
        assert_eq!(case["slices"]["mb_per_s"].as_array().map(Vec::len), Some(2));
        match case["deflate"].as_str() {
            Some("off") => {
                // Uncompressed: exactly the payload bytes (the server counts payloads).
                assert_eq!(wire, payload, "{case}");
                assert_eq!(ratio, 1.0, "{case}");
                assert!(case["vs_off"].is_null(), "{case}");
            }
            Some("on" | "no-context-takeover") => {
                assert!(ratio < 0.7, "JSON should compress: {case}");
                assert!(wire < payload * 7 / 10, "{case}");
                let versus = &case["vs_off"];
                for figure in ["mb_per_s", "client_cpu_per_msg"] {
                    assert!(
                        versus[figure]["median"].as_f64().unwrap_or(0.0) > 0.0,
                        "{case}"
                    );
                    assert_eq!(versus[figure]["count"], 2, "{case}");
                }
            }
            other => panic!("unexpected contender {other:?}: {case}"),
        }
    }
    // Small messages gain most from the window the previous ones left.
    let ratio_of = |deflate: &str| {
        cases
            .iter()
            .find(|c| c["size"] == 1024 && c["deflate"] == deflate)
            .and_then(|c| c["wire_ratio"].as_f64())
            .expect("a 1 KiB case")
    };
    assert!(ratio_of("on") < ratio_of("no-context-takeover"), "{report}");
}

#[test]
fn echo_counts_both_ways_and_the_server_compresses_its_answers() {
    let report = started(&[
        "--mode",
        "echo",
        "--sizes",
        "1024",
        "--contenders",
        "off,on",
    ]);
    let cases = cases(&report);
    assert_eq!(cases.len(), 2, "{report}");
    for case in cases {
        assert_accounted(case, true);
        assert_cpu(case);
        let (ratio_in, ratio_out) = (&case["wire_ratio"], &case["wire_ratio_out"]);
        if case["deflate"] == "off" {
            assert_eq!(
                (ratio_in.as_f64(), ratio_out.as_f64()),
                (Some(1.0), Some(1.0))
            );
        } else {
            assert!(ratio_in.as_f64().unwrap_or(1.0) < 0.6, "{case}");
            assert!(ratio_out.as_f64().unwrap_or(1.0) < 0.6, "{case}");
        }
    }
}

#[test]
fn a_server_given_by_url_leaves_its_cpu_and_wire_bytes_unknown() {
    let server = TestServer::start("perf");
    let url = server.url_with_path("sink");
    let args = [
        "--url", &url, "--sizes", "1024", "--slices", "1", "--slice", "40ms",
    ];
    let (ok, report, stderr) = compression(&args);
    assert!(ok, "{stderr}");
    assert_eq!(report["params"]["server_cpu"], "unknown", "{report}");
    for case in cases(&report) {
        assert!(
            case["server"].is_null() && case["wire_ratio"].is_null(),
            "{case}"
        );
        assert!(case["server_cpu_us_per_msg"].is_null(), "{case}");
        assert!(u64_of(&case["messages"]) > 0, "{case}");
    }
    let (_, stopped) = server.stop();
    let sent: u64 = cases(&report)
        .iter()
        .map(|c| u64_of(&c["sent_with_warmup"]))
        .sum();
    assert_eq!(u64_of(&stopped["messages_in"]), sent, "{stopped}");
}

#[test]
fn a_server_that_declines_deflate_fails_the_run() {
    let server = TestServer::start_with("perf", &["--no-deflate"]);
    let url = server.url_with_path("sink");
    let args = [
        "--url", &url, "--sizes", "1024", "--slices", "1", "--slice", "20ms",
    ];
    let (ok, _, stderr) = compression(&args);
    assert!(!ok, "a run that compares nothing succeeded");
    assert!(stderr.contains("declined permessage-deflate"), "{stderr}");
}
