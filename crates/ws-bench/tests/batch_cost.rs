//! `ws-bench batch-cost` against test-servers perf and the raw TCP baselines: its slice
//! flags, the rates of its three contenders and the ratios with their spread, one-way, echo
//! and `--resilient`. Small runs: correctness, not speed.

use integration::TestServer;
use serde_json::Value;

mod common;
use common::{Baseline, report};

/// Runs batch-cost with three short slices per contender and `extra` arguments.
fn batch_cost(url: &str, mode: &str, extra: &[&str]) -> Value {
    let mut args = vec!["batch-cost", url, "--mode", mode];
    args.extend("--size 64 --slices 3 --slice 40ms --gap 5ms".split(' '));
    args.extend_from_slice(extra);
    report(&args)
}

/// The report's fields: the slice plan as given, each contender's median rate, each
/// ratio's median within its quartiles and range, and a count with its bytes.
fn check(report: &Value, mode: &str, names: [&str; 3], ratios: [&str; 3]) {
    assert_eq!(report["scenario"], "batch-cost", "{report}");
    let params = &report["params"];
    assert_eq!(params["mode"], mode, "{report}");
    assert_eq!(params["size"], 64, "{report}");
    assert_eq!(params["slices"], 3, "{report}");
    assert_eq!(params["slice_ms"], 40, "{report}");
    assert_eq!(params["gap_ms"], 5, "{report}");
    let figures = &report["figures"];
    for name in names {
        let rate = figures[format!("{name}_rate")].as_f64();
        assert!(rate.is_some_and(|r| r > 0.0), "{name}: {report}");
    }
    for name in ratios {
        let spread = &figures[name];
        // A missing value is NaN, which fails both comparisons.
        let ordered: Vec<f64> = ["min", "p25", "median", "p75", "max"]
            .iter()
            .map(|key| spread[*key].as_f64().unwrap_or(f64::NAN))
            .collect();
        assert!(
            ordered[0] > 0.0 && ordered.windows(2).all(|w| w[0] <= w[1]),
            "{name}: {report}"
        );
        let keys = spread.as_object().map(|o| o.len());
        assert_eq!(keys, Some(5), "{name}: {report}");
    }
    // Those and nothing else.
    assert_eq!(figures.as_object().map(|o| o.len()), Some(6), "{report}");
    let count = report["count"].as_u64().unwrap_or(0);
    assert!(count > 0, "{report}");
    assert_eq!(report["bytes"], count * 64, "{report}");
}

#[test]
fn batch_cost_compares_the_queue_the_batch_and_tcp_one_way_and_echo() {
    let server = TestServer::start("perf");
    let names = ["queue", "batch", "tcp"];
    let ratios = ["batch_over_queue", "batch_over_tcp", "queue_over_tcp"];
    for (path, mode, baseline) in [
        ("sink", "one-way", "tcp-sink"),
        ("echo", "echo", "tcp-echo"),
    ] {
        let tcp = Baseline::start(baseline);
        let url = server.url_with_path(path);
        let report = batch_cost(&url, mode, &["--tcp-url", &tcp.url]);
        check(&report, mode, names, ratios);
        if mode == "echo" {
            assert_eq!(report["params"]["window"], 256, "{report}");
        }
    }
}

#[test]
fn batch_cost_resilient_compares_enqueue_enqueue_batch_and_the_plain_batch() {
    let server = TestServer::start("perf");
    let report = batch_cost(&server.url_with_path("echo"), "echo", &["--resilient"]);
    check(
        &report,
        "echo",
        ["enqueue", "enqueue_batch", "plain_batch"],
        [
            "enqueue_batch_over_enqueue",
            "enqueue_batch_over_plain_batch",
            "enqueue_over_plain_batch",
        ],
    );
}
