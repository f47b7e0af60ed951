//! `cargo xtask coverage`: line and region coverage of `ws-client` and `test-servers` by the
//! whole suite, across the process boundary. One instrumented build (cargo-llvm-cov's
//! environment, its own target directory) serves the test binaries and the `test-servers`
//! children the integration tests spawn; every process writes its own profile (`%p` in
//! `LLVM_PROFILE_FILE`), and the report merges them all. The suite runs once, under nextest's
//! `ci` profile, so the same run gives the JUnit report, the flaky-test verdict and the
//! heaviest tests. Writes `target/coverage/html/`, `target/coverage/summary.json` and
//! `target/coverage/summary.md`, and fails when a crate falls below its floor in
//! `.config/coverage-floor.json`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::coverage_report::{Floors, summarize};
use crate::junit::Outcome;
use crate::{cargo, nextest, usage};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write the measured line coverage (rounded down) as the new floors when it is higher.
    #[arg(long)]
    raise_floor: bool,
}

/// The crates whose coverage is measured and held to a floor.
pub(crate) const MEASURED: [&str; 2] = ["ws-client", "test-servers"];

pub(crate) fn run(args: &Args) -> Result<()> {
    let tools = llvm_tools_env()?;
    nextest::require()?;
    let root = cargo::workspace_root();
    let target = root.join("target/llvm-cov-target");
    let env = instrumented_env(&target, tools)?;

    llvm_cov(&["clean", "--workspace"], &env)?;
    let mut build = cargo::cargo(["build", "--locked", "-p", "test-servers"]);
    build.envs(env.iter().map(|(k, v)| (k, v)));
    cargo::run(&mut build)?;
    let binary = target.join("debug").join(exe("test-servers"));

    let usage_log = usage::fresh_log("coverage");
    let suite = nextest::run("ci", &binary, &usage_log, &env, &[])?;
    println!();
    nextest::print_slowest(&suite.cases, 5);
    usage::print_heaviest(&usage_log, 5);

    let out = root.join("target/coverage");
    let summary_json = out.join("summary.json");
    let ignore = "(xtask|crates/(integration|ws-bench))/|/tests/|/examples/";
    let html_dir = out.to_string_lossy().into_owned();
    let json_path = summary_json.to_string_lossy().into_owned();
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let report = ["report", "--ignore-filename-regex", ignore];
    llvm_cov(
        &[&report[..], &["--html", "--output-dir", &html_dir]].concat(),
        &env,
    )?;
    let json_args = ["--json", "--summary-only", "--output-path", &json_path];
    llvm_cov(&[&report[..], &json_args].concat(), &env)?;

    let json = std::fs::read_to_string(&summary_json)
        .with_context(|| format!("cannot read {}", summary_json.display()))?;
    let crates = summarize(&json, &root, &MEASURED)?;
    let markdown = crate::coverage_report::markdown(&crates);
    std::fs::write(out.join("summary.md"), &markdown)?;
    println!("\n{markdown}");
    println!("HTML report: {}", out.join("html/index.html").display());

    let floors_path = root.join(".config/coverage-floor.json");
    let floors = Floors::read(&floors_path)?;
    let below = floors.check(&crates);
    if args.raise_floor {
        floors.raised(&crates).write(&floors_path)?;
    }
    report_suite(&suite)?;
    if !below.is_empty() {
        bail!("coverage below its floor: {}", below.join("; "));
    }
    println!("coverage: every crate at or above its floor");
    Ok(())
}

/// The suite's verdict, after the coverage report (which is worth having either way).
fn report_suite(suite: &nextest::SuiteRun) -> Result<()> {
    let flaky = suite.with_outcome(Outcome::Flaky);
    let failed = suite.with_outcome(Outcome::Failed);
    if !flaky.is_empty() {
        println!("flaky (passed only on a retry, which fails the run): {flaky:?}");
    }
    if !suite.status.success() {
        bail!(
            "the suite failed ({}): {} failed, {} flaky",
            suite.status,
            failed.len(),
            flaky.len()
        );
    }
    Ok(())
}

/// cargo-llvm-cov's environment for instrumented builds into `target`, as `KEY=VALUE`
/// pairs, plus `tools` and `CARGO_TARGET_DIR` so plain `cargo` and nextest build there too.
fn instrumented_env(
    target: &Path,
    tools: Vec<(OsString, OsString)>,
) -> Result<Vec<(OsString, OsString)>> {
    let mut command = cargo::cargo(["llvm-cov", "show-env"]);
    command
        .env("CARGO_TARGET_DIR", target)
        .envs(tools.iter().map(|(k, v)| (k, v)));
    let output = command
        .output()
        .context("could not run `cargo llvm-cov show-env`")?;
    if !output.status.success() {
        bail!(
            "`cargo llvm-cov show-env` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut env = tools;
    env.extend(parse_env(&String::from_utf8_lossy(&output.stdout)));
    env.push(("CARGO_TARGET_DIR".into(), target.into()));
    Ok(env)
}

/// `KEY=VALUE` lines, a value possibly in single quotes, as `show-env` prints them.
fn parse_env(text: &str) -> Vec<(OsString, OsString)> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(value);
            (OsString::from(key.trim()), OsString::from(value))
        })
        .collect()
}

/// Fails with an install hint unless cargo-llvm-cov is there; returns `LLVM_COV` and
/// `LLVM_PROFDATA` for it to use when they are not set already and rustc's own LLVM major
/// version is installed under `/usr/lib/llvm-N/bin` (Debian's `llvm-N`: rustup's
/// `llvm-tools` component cannot be downloaded everywhere).
fn llvm_tools_env() -> Result<Vec<(OsString, OsString)>> {
    cargo::require_subcommand("llvm-cov")?;
    if std::env::var_os("LLVM_COV").is_some() && std::env::var_os("LLVM_PROFDATA").is_some() {
        return Ok(Vec::new());
    }
    let Some(dir) = matching_llvm_dir()? else {
        return Ok(Vec::new());
    };
    Ok(
        [("LLVM_COV", "llvm-cov"), ("LLVM_PROFDATA", "llvm-profdata")]
            .into_iter()
            .map(|(var, tool)| (OsString::from(var), dir.join(tool).into_os_string()))
            .collect(),
    )
}

/// `/usr/lib/llvm-N/bin` for the LLVM major version rustc reports, if it holds llvm-cov.
fn matching_llvm_dir() -> Result<Option<PathBuf>> {
    let output = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("-vV")
        .output()
        .context("could not run `rustc -vV`")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let major = text
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))
        .and_then(|version| version.split('.').next())
        .map(str::to_owned);
    Ok(major
        .map(|major| PathBuf::from(format!("/usr/lib/llvm-{major}/bin")))
        .filter(|dir| dir.join("llvm-cov").exists()))
}

fn llvm_cov(args: &[&str], env: &[(OsString, OsString)]) -> Result<()> {
    let mut command = cargo::cargo(["llvm-cov"]);
    command.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    cargo::run(&mut command)
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_env_lines_become_pairs() {
        let text = "LLVM_PROFILE_FILE='/t/main-%p-%2m.profraw'\nRUSTC_WRAPPER=/bin/w\nnoise\n";
        let env = parse_env(text);
        assert_eq!(
            env,
            [
                ("LLVM_PROFILE_FILE".into(), "/t/main-%p-%2m.profraw".into()),
                ("RUSTC_WRAPPER".into(), "/bin/w".into()),
            ]
        );
    }
}
