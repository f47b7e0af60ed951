//! `ws-bench`: a load generator for any ws:// server, built on ws-client, with raw TCP and
//! bare tokio-tungstenite baselines. Parses the command line, runs one scenario on a Tokio
//! runtime, prints its report and checks the thresholds.

// A command-line tool: its results belong on stdout.
#![allow(clippy::print_stdout)]

mod cli;
mod clients;
mod compare;
mod compression;
mod interleave;
mod jsonrpsee_rpc;
mod merge;
mod net;
mod output;
mod progress;
mod report;
mod rpc_answer;
mod rpc_baseline;
mod scenario;
mod segment;
mod serve;
mod serve_fws;
mod soak;
mod threshold;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, Command, CommonArgs};
use crate::report::Report;

/// Exit status when a `--threshold` is not met, or a soak lost or corrupted something.
const THRESHOLD_VIOLATED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = segment::validate(&cli) {
        e.exit();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let open_file_limit = net::raise_open_file_limit();
    let (report, common) = match &cli.command {
        Command::Serve(args) => {
            runtime(1)?.block_on(serve::run(args))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Soak(args) => {
            let clean = runtime(args.threads)?.block_on(soak::run(args))?;
            return Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(THRESHOLD_VIOLATED)
            });
        }
        Command::Compression(args) => {
            // One thread: the client's CPU time is that thread's work.
            let report = runtime(1)?.block_on(compression::run(args))?;
            compression::emit(&report, args.json)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Compare(args) => {
            // One thread: every contender's client work on the same thread, as in a slice.
            let report = runtime(1)?.block_on(compare::run(args))?;
            compare::emit(&report, args.common.json)?;
            let violations = threshold::check(&report, &args.common.thresholds);
            for violation in &violations {
                eprintln!("{violation}");
            }
            return Ok(if violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(THRESHOLD_VIOLATED)
            });
        }
        Command::Merge(args) => (merge::run(&args.files)?, &args.common),
        Command::Rtt(args) => (on(&args.common, scenario::rtt::run(args))?, &args.common),
        Command::Throughput(args) => (
            on(&args.common, scenario::throughput::run(args))?,
            &args.common,
        ),
        Command::Connect(args) => (
            on(&args.common, scenario::connect::run(args))?,
            &args.common,
        ),
        Command::Idle(args) => (
            on(&args.common, scenario::idle::run(args, open_file_limit))?,
            &args.common,
        ),
        Command::Rpc(args) => (on(&args.common, scenario::rpc::run(args))?, &args.common),
        Command::RpcCompare(args) => (
            on(&args.common, scenario::rpc_compare::run(args))?,
            &args.common,
        ),
        Command::OpenModel(args) => (
            on(&args.common, scenario::open_model::run(args))?,
            &args.common,
        ),
        Command::ResilientCost(args) => (
            on(&args.common, scenario::resilient_cost::run(args))?,
            &args.common,
        ),
        Command::BatchCost(args) => (
            on(&args.common, scenario::batch_cost::run(args))?,
            &args.common,
        ),
    };
    output::emit(&report, common.json)?;
    let violations = threshold::check(&report, &common.thresholds);
    for violation in &violations {
        eprintln!("{violation}");
    }
    Ok(if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(THRESHOLD_VIOLATED)
    })
}

/// Runs a scenario on a runtime with the requested number of threads; its report records
/// when the run started, by this machine's clock.
fn on(common: &CommonArgs, scenario: impl Future<Output = Result<Report>>) -> Result<Report> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok();
    let mut report = runtime(common.threads)?.block_on(scenario)?;
    report.started_unix_s = started.map(|since| since.as_secs_f64());
    Ok(report)
}

fn runtime(threads: u16) -> Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(usize::from(threads));
        builder
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")
}
