//! `cargo xtask`: the project's chores (integration run, CI gates, benchmarks, soak) as plain Rust,
//! so they work the same on every OS. One file per task; `cargo.rs` builds and runs the cargo
//! commands.

// xtask reports to the terminal by design: its summaries belong on stdout.
#![allow(clippy::print_stdout)]

mod bench;
mod cargo;
mod ci;
mod container;
mod coverage;
mod coverage_report;
mod flaky;
mod integration;
mod junit;
mod nextest;
mod server;
mod soak;
mod usage;

use clap::{Parser, Subcommand};

/// Project chores for this workspace. Run as `cargo xtask <TASK>`.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build test-servers, run the integration suite against it, print a summary.
    Integration(integration::Args),
    /// Run what CI runs: format check, clippy with -D warnings, every test.
    Ci,
    /// Lint the Dockerfile, validate the Kubernetes manifests, and run the release binaries
    /// in an empty root with an empty environment as the images' user.
    ContainerCheck(container::Args),
    /// Build release binaries, run the benchmark suite with its baselines, write
    /// target/bench/report.json and report.html.
    Bench(bench::Args),
    /// Measure line and region coverage of ws-client and test-servers by the whole suite
    /// (test-servers children included), run once under nextest's `ci` profile (JUnit
    /// report, flaky tests fail); write target/coverage/ and check the floors.
    Coverage(coverage::Args),
    /// Run the suite N times (optionally beside busy threads) and print each test's
    /// failure rate; fails if any test failed in any run.
    Flaky(flaky::Args),
    /// Run echo and RPC clients through chaos proxies while faults are injected on a
    /// schedule; report messages sent, delivered, failed back and lost, reconnects, latency
    /// and each process's memory growth after the warm-up; fails if anything is lost
    /// silently or a process grows too much. Writes target/soak/report.json.
    Soak(soak::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Integration(args) => integration::run(&args),
        Task::Ci => ci::run(),
        Task::ContainerCheck(args) => container::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Coverage(args) => coverage::run(&args),
        Task::Flaky(args) => flaky::run(&args),
        Task::Soak(args) => soak::run(&args),
    }
}
