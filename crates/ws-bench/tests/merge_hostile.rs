//! `ws-bench merge` given report files that are not what they should be (made by hand, as
//! an edited or mixed-up file would be): counts that overflow, a segment index outside its
//! run, a negative elapsed time; and a whole run that asks for nothing, which `--segment`
//! must not turn into a usage error.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

mod common;
use common::{assert_refused, ws_bench};

/// A fresh directory for one test's report files.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("merge-hostile-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// A `connect` report of `count` connections against `url`, segment `segment` (I, N) if
/// given, as ws-bench writes it.
fn connect_report(url: &str, count: u64, segment: Option<(u32, u32)>) -> Value {
    let mut report = json!({
        "scenario": "connect",
        "client": "ws-client",
        "url": url,
        "params": {"count": 10, "concurrency": 4, "source_addrs": 1},
        "count": count,
        "errors": 0,
        "bytes": 0,
        "elapsed_s": 1.0,
        "rate": count as f64,
        "rate_unit": "conn/s",
        "figures": {"sent": count},
        "runs": 1,
    });
    if let Some((index, count)) = segment {
        report["segment"] = json!({"index": index, "count": count});
    }
    report
}

/// Writes each report to `dir` and runs `ws-bench merge --json` over the files.
fn merge(dir: &Path, reports: &[Value]) -> Output {
    let files: Vec<String> = reports
        .iter()
        .enumerate()
        .map(|(k, report)| {
            let path = dir.join(format!("report-{k}.json"));
            std::fs::write(&path, report.to_string()).expect("write a report file");
            path.display().to_string()
        })
        .collect();
    let mut args = vec!["merge", "--json"];
    args.extend(files.iter().map(String::as_str));
    ws_bench(&args)
}

#[test]
fn counts_that_overflow_are_an_error_not_a_panic() {
    let dir = scratch("overflow");
    let huge = connect_report("ws://a/", u64::MAX, None);
    let output = merge(&dir, &[huge.clone(), connect_report("ws://a/", 5, None)]);
    assert_refused(&output, "too large");
    let mut figure = connect_report("ws://a/", 1, None);
    figure["figures"]["sent"] = json!(u64::MAX);
    let output = merge(&dir, &[figure, connect_report("ws://a/", 1, None)]);
    assert_refused(&output, "too large");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_segment_outside_its_run_is_not_a_report() {
    let dir = scratch("index");
    let reports = [0, 1, 2].map(|index| connect_report("ws://a/", 5, Some((index, 2))));
    let output = merge(&dir, &reports);
    assert_refused(&output, "index 2 is not below the count 2");
    let zero = [connect_report("ws://a/", 5, Some((0, 0)))];
    assert_refused(&merge(&dir, &zero), "the count must be at least 1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_negative_elapsed_time_is_not_a_report() {
    let dir = scratch("elapsed");
    let mut reports = [0, 1].map(|index| connect_report("ws://a/", 5, Some((index, 2))));
    for report in &mut reports {
        report["elapsed_s"] = json!(-1.0);
    }
    assert_refused(&merge(&dir, &reports), "elapsed_s");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_whole_run_of_nothing_is_not_a_segment_error() {
    // A listener that never accepts: nothing is to be opened anyway.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let runs: [&[&str]; 2] = [
        &["connect", &url, "--count", "0", "--json"],
        &["idle", &url, "--connections", "0", "--hold", "0s", "--json"],
    ];
    for args in runs {
        let output = ws_bench(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
        assert_eq!(report["count"], 0, "{report}");
    }
}
