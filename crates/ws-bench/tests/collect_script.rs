//! `deploy/kubernetes/collect.sh` against real segment reports: ws-bench runs two `idle`
//! segments against a real test-servers, and a stand-in `kubectl` on PATH serves their
//! output as the Job's pods and logs (mixed with log lines, as `kubectl logs` mixes stderr
//! in). The script must save each segment, merge them with the real ws-bench, and refuse a
//! pod without a report or a set with a segment missing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{RUN_TIMEOUT, report};
use integration::TestServer;
use serde_json::Value;

const FAKE_KUBECTL: &str = r#"#!/usr/bin/env bash
# A stand-in for kubectl: the Job's pods and their logs from files beside it.
dir="$(dirname "$0")"
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --namespace) shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
case "${args[0]}" in
    wait) exit 0 ;;
    get) cat "$dir/pods.txt" ;;
    logs) cat "$dir/logs-${args[1]}.txt" ;;
    *) echo "fake kubectl: unexpected ${args[*]}" >&2; exit 2 ;;
esac
"#;

fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("collect-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).expect("create the scratch directory");
    dir
}

/// Two `idle` segments (7 connections: 4 and 3) against a real server, as JSON lines.
fn segment_reports() -> Vec<String> {
    let server = TestServer::start("echo");
    (0..2)
        .map(|index| {
            let segment = format!("{index}/2");
            let args = [
                "idle",
                server.url(),
                "--connections",
                "7",
                "--hold",
                "0s",
                "--segment",
                &segment,
            ];
            report(&args).to_string()
        })
        .collect()
}

/// Installs the fake kubectl with `pods` (name, index) whose logs are `logs`.
fn fake_cluster(dir: &Path, pods: &[(&str, u32)], logs: &[String]) {
    let kubectl = dir.join("bin/kubectl");
    std::fs::write(&kubectl, FAKE_KUBECTL).unwrap();
    std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let listing: String = pods
        .iter()
        .map(|(name, index)| format!("{name} {index}\n"))
        .collect();
    std::fs::write(dir.join("bin/pods.txt"), listing).unwrap();
    for ((name, _), log) in pods.iter().zip(logs) {
        std::fs::write(dir.join(format!("bin/logs-{name}.txt")), log).unwrap();
    }
}

/// A pod's log: the report between the kind of lines stderr adds.
fn pod_log(report: &str) -> String {
    format!(
        "2026-11-30T01:00:00.000000Z  WARN ws_bench::net: open-file limit raised\n{report}\nws-bench done\n"
    )
}

fn collect(dir: &Path) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/collect.sh");
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .arg(script)
        .args(["--namespace", "load", "--out"])
        .arg(dir.join("results"))
        .env("PATH", path)
        .env("WS_BENCH", env!("CARGO_BIN_EXE_ws-bench"));
    integration::run_to_completion(command, RUN_TIMEOUT)
}

#[test]
fn collect_saves_each_segment_and_merges_them() {
    let dir = scratch("merge");
    let reports = segment_reports();
    let logs: Vec<String> = reports.iter().map(|r| pod_log(r)).collect();
    fake_cluster(&dir, &[("ws-bench-0-a", 0), ("ws-bench-1-b", 1)], &logs);
    let output = collect(&dir);
    assert!(output.status.success(), "{output:?}");
    for (index, report) in reports.iter().enumerate() {
        let saved = std::fs::read_to_string(dir.join(format!("results/segment-{index}.json")))
            .expect("the segment was saved");
        assert_eq!(saved.trim(), report, "segment {index} saved as printed");
    }
    let merged: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("results/merged.json")).expect("merged.json written"),
    )
    .expect("merged.json is JSON");
    assert_eq!(merged["figures"]["opened"], 7, "{merged}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_pod_without_a_report_or_a_missing_segment_is_refused() {
    let dir = scratch("refuse");
    let reports = segment_reports();
    let no_report = "2026-11-30T01:00:00Z ERROR ws_bench: cannot connect\n".to_owned();
    fake_cluster(
        &dir,
        &[("ws-bench-0-a", 0), ("ws-bench-1-b", 1)],
        &[pod_log(&reports[0]), no_report],
    );
    let output = collect(&dir);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pod ws-bench-1-b (segment 1) printed no JSON report"),
        "{stderr}"
    );

    fake_cluster(&dir, &[("ws-bench-0-a", 0)], &[pod_log(&reports[0])]);
    let output = collect(&dir);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("segment 1/2 is missing"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
