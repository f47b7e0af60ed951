//! `cargo xtask flaky --runs N [--load THREADS]`: runs the whole suite N times with nextest
//! (no retries, so every failure counts), optionally while busy threads load every core, and
//! prints each test that ever failed with its failure rate. A flaky test is a bug: the task
//! fails if any test failed in any run. The table is also written to
//! `target/flaky/report.json`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::junit::Outcome;
use crate::{cargo, nextest, usage};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How many times to run the suite.
    #[arg(long, default_value_t = 20)]
    runs: u32,
    /// Busy threads to run beside the suite (0: none; the machine's core count is a fully
    /// loaded machine).
    #[arg(long, default_value_t = 0)]
    load: usize,
    /// Passed to `cargo nextest run` after the profile: a filter, `-E 'package(integration)'`...
    #[arg(last = true)]
    nextest_args: Vec<String>,
}

/// How often one test ran and failed over all runs.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    runs: u32,
    failures: u32,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    nextest::require()?;
    let binary = crate::integration::build_test_servers()?;
    let usage_log = usage::fresh_log("flaky");
    let load = Load::start(args.load);
    let started = Instant::now();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for run in 1..=args.runs {
        let suite = nextest::run("flaky", &binary, &usage_log, &[], &args.nextest_args)?;
        for case in &suite.cases {
            let tally = tallies.entry(case.id.clone()).or_default();
            match case.outcome {
                Outcome::Skipped => {}
                Outcome::Passed => tally.runs += 1,
                Outcome::Failed | Outcome::Flaky => {
                    tally.runs += 1;
                    tally.failures += 1;
                }
            }
        }
        let failed = suite.with_outcome(Outcome::Failed);
        eprintln!(
            "flaky: run {run}/{} done after {:.0}s: {} tests, {} failed {failed:?}",
            args.runs,
            started.elapsed().as_secs_f64(),
            suite.cases.len(),
            failed.len(),
        );
    }
    load.stop();

    let failing: Vec<(&String, &Tally)> = tallies
        .iter()
        .filter(|(_, tally)| tally.failures > 0)
        .collect();
    write_report(&tallies, args)?;
    println!(
        "flaky: {} runs of {} tests with {} busy threads beside them, {:.0}s",
        args.runs,
        tallies.len(),
        args.load,
        started.elapsed().as_secs_f64()
    );
    for (test, tally) in &failing {
        println!(
            "  {:>5.1}%  {}/{}  {test}",
            100.0 * f64::from(tally.failures) / f64::from(tally.runs.max(1)),
            tally.failures,
            tally.runs
        );
    }
    usage::print_heaviest(&usage_log, 5);
    if !failing.is_empty() {
        bail!("{} test(s) failed in at least one run", failing.len());
    }
    println!("flaky: 0 tests failed in any run");
    Ok(())
}

fn write_report(tallies: &BTreeMap<String, Tally>, args: &Args) -> Result<()> {
    let dir = cargo::workspace_root().join("target/flaky");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let report = serde_json::json!({
        "runs": args.runs,
        "load_threads": args.load,
        "tests": tallies
            .iter()
            .map(|(test, tally)| {
                let record = serde_json::json!({"runs": tally.runs, "failures": tally.failures});
                (test.clone(), record)
            })
            .collect::<serde_json::Map<_, _>>(),
    });
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Threads that spin until stopped, to run the suite on a loaded machine.
#[derive(Debug)]
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x = 0_u64;
                    while !stop.load(Ordering::Relaxed) {
                        // Work the optimiser cannot remove, checked for the stop flag often.
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005) + 1);
                        }
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
