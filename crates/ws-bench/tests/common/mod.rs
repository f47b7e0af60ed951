//! Helpers shared by ws-bench's test binaries: running ws-bench to completion, reading its
//! `--json` report, and a baseline server (`ws-bench serve MODE`) stopped when dropped.
//! Each test binary uses some of them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use wait_timeout::ChildExt;

/// Longest a ws-bench run, or a server's ready line, may take in these tests.
pub(crate) const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `ws-bench args...` to completion (killed after [`RUN_TIMEOUT`]).
pub(crate) fn ws_bench(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ws-bench"));
    command.args(args);
    integration::run_to_completion(command, RUN_TIMEOUT)
}

/// Runs ws-bench with `--json`, expects success, returns the report.
pub(crate) fn report(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = ws_bench(&all);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ws-bench {args:?} failed: {stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// `ws-bench serve MODE` on a free port; stopped (stdin closed, then killed) when dropped.
pub(crate) struct Baseline {
    child: Child,
    pub(crate) url: String,
}

impl Baseline {
    /// Starts it and reads the URL from its ready line, which must name `mode`.
    pub(crate) fn start(mode: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ws-bench"))
            .args(["serve", mode, "--port", "0", "--exit-on-stdin-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ws-bench serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, ready) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = lines.send(line);
        });
        let line = ready
            .recv_timeout(RUN_TIMEOUT)
            .expect("a ready line in time");
        let event: Value = serde_json::from_str(&line).expect("a JSON ready line");
        assert!(line.starts_with(r#"{"event":"listening""#), "{line}");
        assert_eq!(event["mode"], mode, "{line}");
        let url = event["url"].as_str().expect("url").to_owned();
        Self { child, url }
    }
}

impl Drop for Baseline {
    /// Closes its stdin and lets it exit on its own, killing it only if it has not within
    /// a few seconds: a process killed while it exits can leave a half-written coverage
    /// profile behind (`cargo xtask coverage` builds it instrumented), which fails the
    /// whole coverage merge.
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if !matches!(
            self.child.wait_timeout(Duration::from_secs(10)),
            Ok(Some(_))
        ) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Expects `ws-bench merge` to have refused its set: exit status 1, `expected` in its
/// error and nothing on stdout.
pub(crate) fn assert_refused(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    assert!(output.stdout.is_empty(), "no merged report on a refusal");
}
