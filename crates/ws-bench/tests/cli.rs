//! The ws-bench binary against real servers (test-servers via the integration harness, and
//! its own baselines): JSON fields, thresholds, merging, resilient-cost's ratio. Small runs:
//! correctness, not speed.

use std::path::PathBuf;
use std::process::Output;

use integration::TestServer;
use serde_json::Value;

mod common;
use common::{Baseline, report, ws_bench};

/// expects exit status 3 and the threshold named on stderr; returns the output.
fn violating(args: &[&str], threshold: &str) -> Output {
    let mut all = args.to_vec();
    all.extend(["--threshold", threshold]);
    let output = ws_bench(&all);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "stderr: {stderr}");
    let named = format!("threshold violated: {threshold}");
    assert!(stderr.contains(&named), "{stderr}");
    output
}

fn assert_latency_fields(report: &Value) {
    let latency = &report["summary"]["latency"];
    for key in ["count", "min", "p50", "p90", "p99", "p99.9", "max", "mean"] {
        assert!(
            latency[key].is_number(),
            "summary.latency.{key} missing: {report}"
        );
    }
    assert!(latency["p50"].as_f64().unwrap() > 0.0, "{report}");
    let histogram = &report["histograms"]["latency"];
    assert_eq!(histogram["unit"], "ns");
    assert_eq!(histogram["encoding"], "hdrhistogram-v2-deflate-base64");
    assert!(
        !histogram["data"].as_str().unwrap_or("").is_empty(),
        "{report}"
    );
}

#[test]
fn rtt_json_has_the_promised_fields() {
    let server = TestServer::start("echo");
    let report = report(&["rtt", server.url(), "--count", "200", "--warmup", "10"]);
    assert_eq!(report["scenario"], "rtt");
    assert_eq!(report["client"], "ws-client");
    assert_eq!(report["url"], server.url());
    assert_eq!(report["params"]["size"], 16);
    assert_eq!(report["count"], 200);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["bytes"], 200 * 16);
    assert_eq!(report["rate_unit"], "msg/s");
    assert!(report["rate"].as_f64().unwrap() > 0.0);
    assert!(report["elapsed_s"].as_f64().unwrap() > 0.0);
    assert!(report["mb_per_s"].is_number());
    assert_latency_fields(&report);
    assert_eq!(report["summary"]["latency"]["count"], 200);
}

#[test]
fn rpc_json_has_the_promised_fields() {
    let server = TestServer::start("rpc");
    for client in ["ws-client", "tungstenite"] {
        let report = report(&[
            "rpc",
            server.url(),
            "--window",
            "8",
            "--count",
            "500",
            "--client",
            client,
        ]);
        assert_eq!(report["scenario"], "rpc");
        assert_eq!(report["client"], client);
        assert_eq!(report["params"]["window"], 8);
        assert_eq!(report["params"]["method"], "add");
        assert_eq!(report["count"], 500, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        assert_eq!(report["rate_unit"], "calls/s");
        assert_latency_fields(&report);
    }
}

#[test]
fn a_failed_threshold_exits_non_zero_with_a_message() {
    let server = TestServer::start("echo");
    let args = [
        "rtt",
        server.url(),
        "--count",
        "50",
        "--warmup",
        "0",
        "--threshold",
        "rate>1",
    ];
    let output = violating(&args, "p50<1ns");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("rate>1"),
        "a met threshold was reported: {stderr}"
    );
    // The report is printed all the same.
    assert!(String::from_utf8_lossy(&output.stdout).contains("latency"));
}

#[test]
fn merge_sums_the_counts_of_two_runs() {
    let server = TestServer::start("echo");
    let dir = std::env::temp_dir().join(format!("ws-bench-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut files: Vec<PathBuf> = Vec::new();
    for (name, count) in [("a.json", "120"), ("b.json", "80")] {
        let report = report(&["rtt", server.url(), "--count", count, "--warmup", "0"]);
        let path = dir.join(name);
        std::fs::write(&path, report.to_string()).expect("write report");
        files.push(path);
    }
    let merged = report(&[
        "merge",
        files[0].to_str().unwrap(),
        files[1].to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(merged["scenario"], "rtt");
    assert_eq!(merged["count"], 200, "{merged}");
    assert_eq!(merged["runs"], 2);
    assert_eq!(merged["bytes"], 200 * 16);
    assert_eq!(merged["summary"]["latency"]["count"], 200);
}

#[test]
fn baselines_serve_and_measure() {
    for (mode, client, scenario) in [
        ("tcp-echo", "tcp", "rtt"),
        ("tungstenite-echo", "tungstenite", "rtt"),
        ("tcp-sink", "tcp", "throughput"),
        ("tungstenite-sink", "ws-client", "throughput"),
    ] {
        let server = Baseline::start(mode);
        let report = report(&[scenario, &server.url, "--client", client, "--count", "300"]);
        drop(server);
        assert_eq!(report["count"], 300, "{mode}: {report}");
        assert_eq!(report["client"], client);
    }
}

#[test]
fn resilient_cost_alternates_slices_and_reports_the_ratio_with_its_spread() {
    let server = TestServer::start("perf");
    for (path, mode, size) in [("echo", "echo", 16), ("sink", "one-way", 65536)] {
        let url = server.url_with_path(path);
        let size_text = size.to_string();
        let report = report(&[
            "resilient-cost",
            &url,
            "--mode",
            mode,
            "--size",
            &size_text,
            "--slices",
            "3",
            "--slice",
            "40ms",
            "--gap",
            "5ms",
        ]);
        assert_eq!(report["scenario"], "resilient-cost", "{report}");
        assert_eq!(report["params"]["mode"], mode);
        assert_eq!(report["params"]["slices"], 3);
        let figures = &report["figures"];
        let list = |name: &str| -> Vec<f64> {
            let values = figures[name]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: {report}"));
            values.iter().map(|v| v.as_f64().unwrap()).collect()
        };
        let (ratios, plain, resilient) =
            (list("ratios"), list("plain_rates"), list("resilient_rates"));
        assert_eq!(
            (ratios.len(), plain.len(), resilient.len()),
            (3, 3, 3),
            "{report}"
        );
        for ((ratio, plain), resilient) in ratios.iter().zip(&plain).zip(&resilient) {
            assert!(*plain > 0.0 && *resilient > 0.0, "{report}");
            assert!((ratio - resilient / plain).abs() < 0.02 * ratio, "{report}");
        }
        let figure = |name: &str| {
            figures[name]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: {report}"))
        };
        let spread = [
            figure("ratio_min"),
            figure("ratio_p25"),
            figure("ratio"),
            figure("ratio_p75"),
            figure("ratio_max"),
        ];
        assert!(spread.windows(2).all(|w| w[0] <= w[1]), "{spread:?}");
        assert!(
            ratios.contains(&figure("ratio")),
            "the median of 3 is one of them"
        );
        assert!(report["count"].as_u64().unwrap() > 0);
        assert!(figures["plain_count"].as_u64().unwrap() > 0);
        assert_eq!(report["bytes"], report["count"].as_u64().unwrap() * size);
    }
    // The ratio can be held to a goal.
    let echo = server.url_with_path("echo");
    let args = ["resilient-cost", &echo, "--slices", "1", "--slice", "20ms"];
    violating(&args, "ratio>1000");
}
