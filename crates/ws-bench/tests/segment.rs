//! `ws-bench --segment I/N` and `ws-bench merge` against a real test-servers: four segment
//! processes running side by side make up the single-process run (count, histogram, rate),
//! a missing or duplicated segment is refused, a bad split is a usage error. Small runs.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::mpsc;

use integration::TestServer;
use serde_json::Value;

mod common;
use common::{RUN_TIMEOUT, assert_refused, report, ws_bench};

/// 200 connections at 5 msg/s: ramp-up 1 s (connection k opens at 5k ms), then 2,002 ms.
/// Messages are due at 5k + 200m ms (m >= 1) before 3,002 ms: 2 ms from any due time, so
/// rounding cannot move one across the end.
const OPEN_MODEL: [&str; 8] = [
    "--connections",
    "200",
    "--rate",
    "5",
    "--ramp-up",
    "1s",
    "--duration",
    "2002ms",
];
const RUN_S: f64 = 3.002;

/// Messages the connections k < 200 with k mod `count` = `index` send in [`OPEN_MODEL`].
fn expected_messages(index: u64, count: u64) -> u64 {
    (0..200_u64)
        .filter(|k| k % count == index)
        .map(|k| (1..).take_while(|m| 5 * k + 200 * m < 3002).count() as u64)
        .sum()
}

/// A fresh directory for one test's report files.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("segment-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Runs `ws-bench args... --segment i/N --json` for every i at once, each in its own
/// process; expects success; writes each report to `dir/segment-i.json` and returns them
/// in segment order with their paths.
fn run_segments(dir: &Path, args: &[&str], count: u32) -> Vec<(PathBuf, Value)> {
    let (done, results) = mpsc::channel::<(u32, Output)>();
    for index in 0..count {
        let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        all.extend([
            "--segment".into(),
            format!("{index}/{count}"),
            "--json".into(),
        ]);
        let done = done.clone();
        std::thread::spawn(move || {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            let _ = done.send((index, ws_bench(&all)));
        });
    }
    let mut outputs: Vec<Option<Output>> = (0..count).map(|_| None).collect();
    for _ in 0..count {
        // Each run is killed after RUN_TIMEOUT; a little more covers the start-up.
        let (index, output) = results
            .recv_timeout(RUN_TIMEOUT * 2)
            .expect("every segment finishes in time");
        outputs[index as usize] = Some(output);
    }
    outputs
        .into_iter()
        .enumerate()
        .map(|(index, output)| {
            let output = output.expect("one output per segment");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "segment {index}: {stderr}");
            let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
            let path = dir.join(format!("segment-{index}.json"));
            std::fs::write(&path, &output.stdout).expect("write a report file");
            (path, report)
        })
        .collect()
}

/// `ws-bench merge files... --json`: the merged report on success, else the output.
fn merge(files: &[&PathBuf]) -> Result<Value, Output> {
    let mut args = vec!["merge".to_owned()];
    args.extend(files.iter().map(|file| file.display().to_string()));
    args.push("--json".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = ws_bench(&args);
    if !output.status.success() {
        return Err(output);
    }
    Ok(serde_json::from_slice(&output.stdout).expect("a merged JSON report"))
}

fn histogram_count(report: &Value, name: &str) -> u64 {
    report["summary"][name]["count"].as_u64().unwrap_or(0)
}

fn f64_of(report: &Value, key: &str) -> f64 {
    report[key].as_f64().unwrap_or(f64::NAN)
}

#[test]
fn four_open_model_segments_make_up_the_single_process_run() {
    let server = TestServer::start("echo");
    let dir = scratch("open-model");
    let mut args = vec!["open-model", server.url()];
    args.extend(OPEN_MODEL);
    let segments = run_segments(&dir, &args, 4);
    let expected = expected_messages(0, 1);
    for (index, (_, report)) in segments.iter().enumerate() {
        assert_eq!(report["segment"]["index"], index, "{report}");
        assert_eq!(report["segment"]["count"], 4, "{report}");
        // The parameters as given: the whole run's.
        assert_eq!(report["params"]["connections"], 200, "{report}");
        assert_eq!(report["params"]["rate_per_connection"], 5.0, "{report}");
        assert_eq!(report["figures"]["segment_connections"], 50, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        assert_eq!(
            report["count"],
            expected_messages(index as u64, 4),
            "{report}"
        );
    }

    let files: Vec<&PathBuf> = segments.iter().map(|(path, _)| path).collect();
    let merged = merge(&files).unwrap_or_else(|output| {
        panic!("merge failed: {}", String::from_utf8_lossy(&output.stderr))
    });
    assert_eq!(merged["runs"], 4, "{merged}");
    assert!(merged.get("segment").is_none(), "{merged}");
    assert_eq!(merged["count"], expected, "{merged}");
    assert_eq!(merged["figures"]["sent"], expected, "{merged}");
    assert_eq!(merged["figures"]["segment_connections"], 200, "{merged}");
    for name in ["latency", "ramp_up_latency"] {
        let sum: u64 = segments.iter().map(|(_, r)| histogram_count(r, name)).sum();
        assert_eq!(histogram_count(&merged, name), sum, "{name}: {merged}");
    }
    let cpu: f64 = segments
        .iter()
        .map(|(_, r)| f64_of(&r["figures"], "client_cpu_s"))
        .sum();
    let merged_cpu = f64_of(&merged["figures"], "client_cpu_s");
    assert!((merged_cpu - cpu).abs() < 1e-9, "cpu {cpu}: {merged}");
    let both = histogram_count(&merged, "latency") + histogram_count(&merged, "ramp_up_latency");
    assert_eq!(both, expected, "{merged}");
    // The wall time is the longest segment; the rate is the total over it.
    let longest = segments
        .iter()
        .map(|(_, r)| f64_of(r, "elapsed_s"))
        .fold(0.0, f64::max);
    assert!(
        (f64_of(&merged, "elapsed_s") - longest).abs() < 1e-9,
        "{merged}"
    );
    let rate = f64_of(&merged, "rate");
    assert!((rate - expected as f64 / longest).abs() < 1e-6, "{merged}");
    // The scenario asks for its messages over ramp-up + duration (the run's own lead-in
    // and last echoes add a few ms).
    let asked = expected as f64 / RUN_S;
    assert!(
        (rate / asked - 1.0).abs() < 0.05,
        "rate {rate}, asked {asked}"
    );
    let spread = merged["figures"]["start_spread_s"].as_f64().unwrap_or(-1.0);
    assert!((0.0..5.0).contains(&spread), "{merged}");

    let single = report(&args);
    assert_eq!(single["count"], expected, "{single}");
    assert_eq!(single["segment"]["count"], 1, "{single}");
    let single_rate = f64_of(&single, "rate");
    eprintln!(
        "4 segments merged: {expected} messages, {rate:.1} msg/s; one process: {single_rate:.1} msg/s"
    );
    assert!(
        (rate / single_rate - 1.0).abs() < 0.05,
        "merged {rate} against single {single_rate}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_refuses_a_missing_or_duplicated_segment() {
    let server = TestServer::start("echo");
    let dir = scratch("connect");
    let args = [
        "connect",
        server.url(),
        "--count",
        "14",
        "--concurrency",
        "4",
    ];
    let segments = run_segments(&dir, &args, 4);
    for (index, (_, report)) in segments.iter().enumerate() {
        // 14 over 4 segments: 4, 4, 3, 3; concurrency 4: 1 each.
        assert_eq!(report["count"], [4, 4, 3, 3][index], "{report}");
        assert_eq!(report["figures"]["segment_concurrency"], 1, "{report}");
        assert_eq!(report["params"]["count"], 14, "{report}");
    }
    let [s0, s1, s2, s3] = [0, 1, 2, 3].map(|i| &segments[i].0);
    let merged = merge(&[s0, s1, s2, s3]).expect("all four merge");
    assert_eq!(merged["count"], 14, "{merged}");
    assert_eq!(merged["figures"]["segment_count"], 14, "{merged}");
    assert_eq!(histogram_count(&merged, "latency"), 14, "{merged}");

    let refused = |files: &[&PathBuf], expected: &str| {
        assert_refused(&merge(files).expect_err("a refused set"), expected);
    };
    refused(&[s0, s1, s3], "segment 2/4 is missing; got 0/4, 1/4, 3/4");
    let twice = format!(
        "segment 1/4 is there 2 times ({}, {})",
        s1.display(),
        s1.display()
    );
    refused(&[s0, s1, s1, s2, s3], &twice);

    // A whole run cannot stand in for a segment.
    let whole = dir.join("whole.json");
    let text = serde_json::to_string(&report(&["connect", server.url(), "--count", "3"]));
    std::fs::write(&whole, text.expect("JSON")).expect("write a report file");
    refused(&[s0, s1, s2, &whole], "is a whole run");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idle_segments_open_their_share() {
    let server = TestServer::start("echo");
    let dir = scratch("idle");
    let args = [
        "idle",
        server.url(),
        "--connections",
        "7",
        "--concurrency",
        "2",
    ];
    let mut all = args.to_vec();
    all.extend(["--hold", "0s"]);
    let segments = run_segments(&dir, &all, 2);
    let opened: Vec<&Value> = segments
        .iter()
        .map(|(_, r)| &r["figures"]["opened"])
        .collect();
    assert_eq!(opened, [4, 3]);
    let files: Vec<&PathBuf> = segments.iter().map(|(path, _)| path).collect();
    let merged = merge(&files).expect("both merge");
    assert_eq!(merged["figures"]["opened"], 7, "{merged}");
    assert_eq!(merged["figures"]["segment_connections"], 7, "{merged}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_split_that_leaves_a_segment_nothing_is_a_usage_error() {
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "open-model",
                "ws://localhost/",
                "--connections",
                "3",
                "--segment",
                "1/4",
            ],
            "use at most 3 segments or raise --connections",
        ),
        (
            &["open-model", "ws://localhost/", "--segment", "4/4"],
            "index 4 is not below the count 4",
        ),
        (
            &[
                "connect",
                "ws://localhost/",
                "--concurrency",
                "2",
                "--segment",
                "0/3",
            ],
            "3 segments need at least 3 for --concurrency",
        ),
    ];
    for (args, expected) in cases {
        let output = ws_bench(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
