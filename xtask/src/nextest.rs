//! Runs the workspace's tests with cargo-nextest under one of the profiles in
//! `.config/nextest.toml`, against a given `test-servers` binary, and reads back the JUnit
//! report; shared by `cargo xtask coverage` (profile `ci`) and `cargo xtask flaky`.

use std::ffi::OsString;
use std::path::Path;

use std::process::{Command, ExitStatus};

use anyhow::{Context, Result, bail};

use crate::junit::{self, Outcome, TestCase};
use crate::{cargo, usage};

/// Fails with an install hint unless `cargo nextest` runs.
pub(crate) fn require() -> Result<()> {
    cargo::require_subcommand("nextest")
}

/// What one run of the suite produced.
#[derive(Debug)]
pub(crate) struct SuiteRun {
    pub(crate) status: ExitStatus,
    pub(crate) cases: Vec<TestCase>,
}

impl SuiteRun {
    /// Test ids with the given outcome.
    pub(crate) fn with_outcome(&self, outcome: Outcome) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|case| case.outcome == outcome)
            .map(|case| case.id.as_str())
            .collect()
    }
}

/// `cargo nextest run --workspace --locked --profile <profile> <extra>` with
/// `TEST_SERVERS_BIN` pointing at `test_servers`, the harness's usage log at `usage_log`, and
/// `env` added (for example the coverage instrumentation). Returns even when tests failed,
/// with the report; fails only when nextest wrote no report at all.
pub(crate) fn run(
    profile: &str,
    test_servers: &Path,
    usage_log: &Path,
    env: &[(OsString, OsString)],
    extra: &[String],
) -> Result<SuiteRun> {
    // nextest's store is `target/nextest` under the workspace root whatever the target
    // directory (its `store.dir` default), and the report is `junit.path` inside it.
    let report = cargo::workspace_root()
        .join("target/nextest")
        .join(profile)
        .join("junit.xml");
    let _ = std::fs::remove_file(&report);
    let mut command = cargo::cargo(["nextest", "run", "--workspace", "--locked", "--profile"]);
    command
        .arg(profile)
        .args(extra)
        .env("TEST_SERVERS_BIN", test_servers)
        .env(usage::USAGE_LOG_ENV, usage_log)
        .envs(env.iter().map(|(key, value)| (key, value)));
    let status = status_of(&mut command)?;
    if !report.exists() {
        bail!(
            "`{}` ({status}) wrote no JUnit report at {}",
            cargo::display(&command),
            report.display()
        );
    }
    let cases = junit::read(&report)?;
    Ok(SuiteRun { status, cases })
}

/// Prints the `count` slowest tests of a run.
pub(crate) fn print_slowest(cases: &[TestCase], count: usize) {
    let mut ranked: Vec<&TestCase> = cases.iter().collect();
    ranked.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    println!("slowest tests:");
    for case in ranked.into_iter().take(count) {
        println!("  {:>7.2}s  {}", case.seconds, case.id);
    }
}

fn status_of(command: &mut Command) -> Result<ExitStatus> {
    let shown = cargo::display(command);
    eprintln!("$ {shown}");
    command
        .status()
        .with_context(|| format!("could not start `{shown}`"))
}
