//! deploy/kubernetes/collect.sh, run by bash against a stand-in `kubectl` (a script over a
//! fake Indexed Job: its state, its pods and their logs) and the real ws-bench: a failed Job
//! is reported at once with its failed pods, and a completed one's JSON lines are picked out
//! of logs that mix in stderr and merged.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A stand-in for kubectl over the fake Job in `$FAKE_KUBE`: `state` (Complete or Failed),
/// `pods` (lines `name index phase`) and `NAME.log`. It answers the calls collect.sh
/// makes; `wait` behaves like kubectl's, waiting out its timeout for a condition that
/// does not come.
const FAKE_KUBECTL: &str = r#"#!/usr/bin/env bash
set -eu
while [ "${1:-}" = "--namespace" ]; do shift 2; done
verb="$1"; shift
state="$(cat "$FAKE_KUBE/state")"
case "$verb" in
    wait)
        want=; timeout=0
        for arg in "$@"; do
            case "$arg" in
                --for=condition=*) want="${arg#--for=condition=}" ;;
                --timeout=*) timeout="${arg#--timeout=}" ;;
            esac
        done
        case " ${state,,} " in *" ${want,,} "*) exit 0 ;; esac
        sleep "${timeout%s}"
        echo "error: timed out waiting for the condition on jobs/ws-bench" >&2
        exit 1 ;;
    get)
        if [ "$1" != pods ]; then printf '%s ' "$state"; exit 0; fi
        phase=
        for arg in "$@"; do
            case "$arg" in status.phase=*) phase="${arg#status.phase=}" ;; esac
        done
        while read -r name index pod_phase; do
            [ "$pod_phase" = "$phase" ] || continue
            if [ "$phase" = Succeeded ]; then echo "$name $index"; else echo "$name (segment $index)"; fi
        done <"$FAKE_KUBE/pods" ;;
    logs) cat "$FAKE_KUBE/$1.log" ;;
    *) echo "fake kubectl: no $verb" >&2; exit 2 ;;
esac
"#;

/// A fresh directory holding the fake kubectl (`bin/`) and the fake Job (`kube/`).
fn fake_cluster(test: &str, state: &str, pods: &[(&str, u32, &str, String)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("collect-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["bin", "kube"] {
        std::fs::create_dir_all(dir.join(sub)).expect("create the scratch directory");
    }
    let kubectl = dir.join("bin/kubectl");
    std::fs::write(&kubectl, FAKE_KUBECTL).expect("write the fake kubectl");
    std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(dir.join("kube/state"), state).expect("write the state");
    let mut lines = String::new();
    for (name, index, phase, log) in pods {
        lines.push_str(&format!("{name} {index} {phase}\n"));
        std::fs::write(dir.join(format!("kube/{name}.log")), log).expect("write a log");
    }
    std::fs::write(dir.join("kube/pods"), lines).expect("write the pods");
    dir
}

/// Runs collect.sh with the fake kubectl first on PATH; its output and how long it took.
fn collect(dir: &Path, timeout: &str) -> (Output, Duration) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/collect.sh");
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .arg(script)
        .args(["--timeout", timeout, "--out"])
        .arg(dir.join("out"))
        .env("PATH", path)
        .env("FAKE_KUBE", dir.join("kube"))
        .env("WS_BENCH", env!("CARGO_BIN_EXE_ws-bench"));
    let started = Instant::now();
    let output = integration::run_to_completion(command, Duration::from_secs(60));
    (output, started.elapsed())
}

/// Segment `index` of 2 of a connect run of 10, as its pod's log shows it: stderr lines
/// around the one JSON line on stdout.
fn segment_log(index: u32) -> String {
    let report = json!({
        "scenario": "connect", "client": "ws-client", "url": "ws://test-servers:9001/",
        "params": {"count": 10, "concurrency": 2, "source_addrs": 1},
        "count": 5, "errors": 0, "bytes": 0, "elapsed_s": 1.0, "rate": 5.0,
        "rate_unit": "conn/s", "figures": {"segment_count": 5, "segment_concurrency": 1},
        "runs": 1, "segment": {"index": index, "count": 2},
    });
    format!(
        "2025-01-01T00:00:00Z  WARN ws_bench: slow start\n{report}\nnote: 0 connections failed\n"
    )
}

#[test]
fn a_failed_job_is_reported_at_once_with_its_failed_pods() {
    let pods = [
        ("ws-bench-0-abcde", 0, "Succeeded", segment_log(0)),
        (
            "ws-bench-1-fghij",
            1,
            "Failed",
            "error: cannot connect\n".into(),
        ),
    ];
    let dir = fake_cluster("failed", "FailureTarget Failed", &pods);
    let (output, took) = collect(&dir, "20s");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("job/ws-bench failed") && stderr.contains("ws-bench-1-fghij (segment 1)"),
        "{stderr}"
    );
    // Not the whole --timeout: the Job had failed before the script started.
    assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_completed_job_is_collected_from_mixed_logs_and_merged() {
    let pods = [
        ("ws-bench-0-abcde", 0, "Succeeded", segment_log(0)),
        ("ws-bench-1-fghij", 1, "Succeeded", segment_log(1)),
    ];
    let dir = fake_cluster("complete", "SuccessCriteriaMet Complete", &pods);
    let (output, _) = collect(&dir, "20s");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for index in [0, 1] {
        let saved = std::fs::read_to_string(dir.join(format!("out/segment-{index}.json")));
        let saved: Value = serde_json::from_str(&saved.expect("a segment file")).expect("JSON");
        assert_eq!(saved["segment"]["index"], index, "{saved}");
    }
    let merged = std::fs::read_to_string(dir.join("out/merged.json")).expect("merged.json");
    let merged: Value = serde_json::from_str(&merged).expect("merged JSON");
    assert_eq!(merged["count"], 10, "{merged}");
    assert_eq!(merged["figures"]["segment_count"], 10, "{merged}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_pod_without_a_report_or_a_missing_segment_is_refused() {
    let pods = [
        ("ws-bench-0-abcde", 0, "Succeeded", segment_log(0)),
        (
            "ws-bench-1-fghij",
            1,
            "Succeeded",
            "2025-01-01T00:00:00Z ERROR ws_bench: no report\n".into(),
        ),
    ];
    let dir = fake_cluster("no-report", "SuccessCriteriaMet Complete", &pods);
    let (output, _) = collect(&dir, "20s");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pod ws-bench-1-fghij (segment 1) printed no JSON report"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let pods = [("ws-bench-0-abcde", 0, "Succeeded", segment_log(0))];
    let dir = fake_cluster("missing", "SuccessCriteriaMet Complete", &pods);
    let (output, _) = collect(&dir, "20s");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("segment 1/2 is missing"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
