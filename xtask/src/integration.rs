//! `cargo xtask integration`: builds `test-servers`, runs the integration suite against that
//! binary (via `TEST_SERVERS_BIN`), streams the output live and ends with a short summary.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, usage};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Passed to the test binary, after `--`: a test name filter, `--nocapture`, ...
    #[arg(last = true)]
    test_args: Vec<String>,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let binary = build_test_servers()?;
    let build_time = started.elapsed();
    eprintln!("test-servers binary: {}", binary.display());

    let mut command = cargo::cargo(["test", "-p", "integration"]);
    if !args.test_args.is_empty() {
        command.arg("--").args(&args.test_args);
    }
    command.env("TEST_SERVERS_BIN", &binary);
    let usage_log = usage::fresh_log("integration");
    command.env(usage::USAGE_LOG_ENV, &usage_log);
    let (status, output) = run_streaming(&mut command)?;
    let counts = Counts::from_output(&output);
    let total_time = started.elapsed();

    println!();
    usage::print_heaviest(&usage_log, 5);
    println!(
        "wall time {} (build {}, tests {})",
        seconds(total_time),
        seconds(build_time),
        seconds(total_time - build_time),
    );
    // The closing line uses the plain `N passed, N failed, N skipped` form that CI logs read;
    // "skipped" counts libtest's ignored tests.
    println!(
        "integration: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.ignored
    );

    if !status.success() {
        bail!("`{}` failed ({status})", cargo::display(&command));
    }
    if counts.passed + counts.failed == 0 {
        let hint = if args.test_args.is_empty() {
            ""
        } else {
            " (does the filter match any test?)"
        };
        bail!("no integration test ran{hint}");
    }
    Ok(())
}

/// Builds `test-servers` and returns the path of its executable.
pub(crate) fn build_test_servers() -> Result<PathBuf> {
    cargo::build_executables(&["-p", "test-servers"])?
        .remove("test-servers")
        .context("`cargo build -p test-servers` reported no `test-servers` executable")
}

/// The last `compiler-artifact` message for the `test-servers` target that has an executable.
#[cfg(test)]
fn executable_from_messages(messages: &str) -> Option<PathBuf> {
    cargo::executables(messages).remove("test-servers")
}

/// Runs `command`, copying its stdout to ours as it arrives (stderr is inherited) and
/// returning everything it printed there.
fn run_streaming(command: &mut Command) -> Result<(ExitStatus, String)> {
    let shown = cargo::display(command);
    eprintln!("$ {shown}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let mut child_stdout = child.stdout.take().context("child stdout was not piped")?;
    let mut terminal = std::io::stdout().lock();
    let mut captured = Vec::new();
    let mut buffer = [0_u8; 8192];
    loop {
        let read = child_stdout
            .read(&mut buffer)
            .with_context(|| format!("reading the output of `{shown}`"))?;
        if read == 0 {
            break;
        }
        terminal
            .write_all(&buffer[..read])
            .context("writing to stdout")?;
        terminal.flush().context("writing to stdout")?;
        captured.extend_from_slice(&buffer[..read]);
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{shown}`"))?;
    Ok((status, String::from_utf8_lossy(&captured).into_owned()))
}

/// Test counts summed over every libtest summary line of a run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Counts {
    /// Sums lines like `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; ...`.
    fn from_output(output: &str) -> Counts {
        let mut counts = Counts::default();
        for line in output.lines() {
            let Some(results) = line.trim_start().strip_prefix("test result:") else {
                continue;
            };
            for part in results.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(label), Some(number)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(number) = number.parse::<u64>() else {
                    continue;
                };
                match label {
                    "passed" => counts.passed += number,
                    "failed" => counts.failed += number,
                    "ignored" => counts.ignored += number,
                    _ => {}
                }
            }
        }
        counts
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sum_every_result_line() {
        let output = "\
running 2 tests
test a ... ok
test b ... ignored
test result: ok. 1 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

running 3 tests
test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 4 filtered out; finished in 1.20s
";
        let expected = Counts {
            passed: 3,
            failed: 1,
            ignored: 1,
        };
        assert_eq!(Counts::from_output(output), expected);
        assert_eq!(Counts::from_output("no summary here\n"), Counts::default());
    }

    #[test]
    fn executable_comes_from_the_test_servers_artifact() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"anyhow"},"executable":null}
{"reason":"compiler-artifact","target":{"name":"test-servers"},"executable":null}
{"reason":"compiler-artifact","target":{"name":"test-servers"},"executable":"/t/debug/test-servers"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executable_from_messages(messages),
            Some(PathBuf::from("/t/debug/test-servers"))
        );
        assert_eq!(executable_from_messages("not json\n"), None);
    }
}
