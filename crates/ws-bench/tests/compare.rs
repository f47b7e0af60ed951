//! `ws-bench compare` against the real servers it starts (test-servers perf from the
//! harness's binary, ws-bench's own baseline servers): every scenario's contenders take
//! their slices, every message is accounted for by its server, and every ratio comes with
//! its spread, finite. Short runs: correctness, not speed.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// Longest any ws-bench run in these tests may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Measured rounds per run.
const ROUNDS: usize = 2;

/// Runs `ws-bench compare args... --json` on servers it starts; returns the report.
fn compare(args: &[&str]) -> Value {
    let bin = integration::test_servers_bin();
    let bin = bin.to_str().expect("a UTF-8 path");
    let rounds = ROUNDS.to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ws-bench"));
    command
        .arg("compare")
        .args(args)
        .args(["--server-bin", bin, "--slices", &rounds, "--slice", "50ms"])
        .args(["--gap", "5ms", "--json"]);
    let output = integration::run_to_completion(command, RUN_TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "compare {args:?} failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON report");
    assert_eq!(report["scenario"], "compare", "{report}");
    report
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// Every contender did some work; every other contender has, for each metric, ws-client's
/// ratio to it with a finite median, quartiles and range, and one value per round.
fn assert_ratios(report: &Value, metrics: &[&str]) {
    let figures = &report["figures"];
    let names: Vec<&str> = report["params"]["contenders"]
        .as_array()
        .expect("params.contenders")
        .iter()
        .map(|n| n.as_str().expect("a name"))
        .collect();
    assert_eq!(names[0], "ws-client", "{report}");
    for name in &names {
        let own = &figures["contenders"][name];
        assert!(number(&own["count"]) > 0.0, "{name}: {report}");
        for metric in metrics {
            assert!(
                number(&own[metric]["median"]) > 0.0,
                "{name} {metric}: {report}"
            );
        }
    }
    for name in &names[1..] {
        for metric in metrics {
            let ratio = &figures["ratios"][name][metric];
            for field in ["median", "p25", "p75", "min", "max"] {
                let value = number(&ratio[field]);
                assert!(
                    value.is_finite() && value > 0.0,
                    "{name} {metric}: {report}"
                );
            }
            assert!(
                number(&ratio["min"]) <= number(&ratio["median"]),
                "{report}"
            );
            assert!(
                number(&ratio["median"]) <= number(&ratio["max"]),
                "{report}"
            );
            let rounds = ratio["rounds"].as_array().expect("rounds");
            assert_eq!(rounds.len(), ROUNDS, "{name} {metric}: {report}");
        }
    }
}

/// Each WebSocket server counted exactly what its contenders sent (warm-up included) and,
/// echoing, sent each back.
fn assert_accounted(report: &Value, echoed: bool) {
    let figures = &report["figures"];
    let sent = |names: &[&str]| -> u64 {
        names
            .iter()
            .filter_map(|n| figures["contenders"][n]["sent_with_warmup"].as_u64())
            .sum()
    };
    for (role, names) in [
        ("perf", &["ws-client", "tungstenite", "fastwebsockets"][..]),
        ("fws", &["ws-client@fws-server"][..]),
    ] {
        let server = &figures["servers"][role];
        if server.is_null() {
            continue;
        }
        let expected = sent(names);
        assert!(expected > 0, "{report}");
        assert_eq!(server["messages_in"].as_u64(), Some(expected), "{report}");
        let out = if echoed { expected } else { 0 };
        assert_eq!(server["messages_out"].as_u64(), Some(out), "{report}");
    }
}

#[test]
fn rtt_gives_p50_and_p99_ratios_against_every_contender() {
    let report = compare(&["rtt"]);
    assert_ratios(&report, &["p50_us", "p99_us"]);
    assert_accounted(&report, true);
}

#[test]
fn one_way_counts_are_confirmed_by_every_sink() {
    let all = "ws-client,tcp,tungstenite,fastwebsockets,ws-client@fws-server";
    let report = compare(&["one-way", "--contenders", all]);
    assert_ratios(&report, &["rate"]);
    assert_accounted(&report, false);
    let tcp = &report["figures"]["servers"]["tcp"];
    let tcp_sent = report["figures"]["contenders"]["tcp"]["sent_with_warmup"].as_u64();
    assert_eq!(tcp["messages_in"].as_u64(), tcp_sent, "{report}");
}

#[test]
fn echo_with_a_window_and_large_messages_is_accounted_for() {
    let all = "ws-client,tcp,tungstenite,fastwebsockets,ws-client@fws-server";
    let report = compare(&["echo", "--contenders", all, "--window", "8"]);
    assert_ratios(&report, &["rate"]);
    assert_accounted(&report, true);
    let report = compare(&["echo", "--size", "65536", "--window", "4"]);
    assert_ratios(&report, &["rate", "mb_per_s"]);
    assert_accounted(&report, true);
}

#[test]
fn connect_times_each_contenders_upgrade() {
    let report = compare(&["connect"]);
    assert_ratios(&report, &["p50_us"]);
    assert_eq!(report["rate_unit"], "conn/s", "{report}");
}

#[test]
fn wss_compares_ws_client_with_tungstenite_over_rustls() {
    let contenders = ["--tls", "--contenders", "ws-client,tungstenite"];
    let report = compare(&[&["rtt"][..], &contenders].concat());
    assert_eq!(report["params"]["tls"], true, "{report}");
    assert_ratios(&report, &["p50_us", "p99_us"]);
    assert_accounted(&report, true);
    let report = compare(&[&["one-way", "--size", "65536"][..], &contenders].concat());
    assert_ratios(&report, &["rate"]);
    assert_accounted(&report, false);
}

#[test]
fn contenders_are_checked_before_anything_starts() {
    for args in [
        &["rtt", "--contenders", "tcp,ws-client"][..],
        &["rtt", "--contenders", "ws-client,tcp,tcp"],
        &["rtt", "--tls", "--contenders", "ws-client,fastwebsockets"],
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ws-bench"));
        command.arg("compare").args(args);
        let output = integration::run_to_completion(command, RUN_TIMEOUT);
        assert!(!output.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--contenders") || stderr.contains("--tls"),
            "{stderr}"
        );
    }
}
