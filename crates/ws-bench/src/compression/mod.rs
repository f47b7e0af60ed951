//! `compression`: what permessage-deflate costs and saves on JSON, measured within one run.
//!
//! For each payload size (a case), each contender (deflate off, on, without context
//! takeover) opens its own connection (to its own `test-servers perf`, unless `--url` names
//! a server); then they take turns in short slices (off, on, no-context, off, on, ...,
//! after one unmeasured warm-up round, with a short unmeasured gap after each), each
//! sending pipelined JSON text messages as fast as it can. One-way ends a slice with a
//! ping whose pong proves the server has read everything; echo ends it when the last echo
//! is in. Around each slice the client's CPU time (this process) and the server's (its
//! pid's) are read, so each slice gives MB/s and CPU per message on both sides; each round
//! gives ratios against `off` from slices taken moments apart, so a machine that speeds up
//! or slows down moves both sides of a ratio alike. The wire bytes come from each server's
//! counters once its contender is done (its `stopped` line), which also proves every
//! message arrived.

pub(crate) mod args;
mod contender;
pub(crate) mod cpu;
mod payload;
pub(crate) mod server;
mod summary;

use anyhow::{Result, bail};

use self::args::{CompressionArgs, DeflateChoice};
use self::contender::{Contender, Load, Outcome, Target};
use crate::cli::ThroughputMode;
use crate::interleave::{Sample, Turn};
use crate::progress::{Planned, Progress};
use crate::report::Report;

pub(crate) use self::summary::emit;

/// One payload size's results, a contender's each.
#[derive(Debug)]
struct Case {
    size: usize,
    outcomes: Vec<Outcome>,
}

pub(crate) async fn run(args: &CompressionArgs) -> Result<Report> {
    if let Some(size) = args.sizes.iter().find(|s| **s < payload::MIN_SIZE) {
        bail!(
            "--sizes {size}: payloads start at {} bytes",
            payload::MIN_SIZE
        );
    }
    if args.contenders.first() != Some(&DeflateChoice::Off) {
        bail!("--contenders must start with off, the base of the ratios");
    }
    let mut seen = Vec::new();
    for choice in &args.contenders {
        if seen.contains(choice) {
            bail!("--contenders names {} twice", choice.name());
        }
        seen.push(*choice);
    }
    let program = match &args.url {
        Some(_) => None,
        None => Some(server::locate(args.server_bin.as_deref())?),
    };
    let target = match (&args.url, &program) {
        (Some(url), _) => Target::Url(url),
        (None, Some(program)) => Target::Start(program),
        (None, None) => unreachable!("a program is located whenever no URL is given"),
    };
    let mut cases = Vec::with_capacity(args.sizes.len());
    for &size in &args.sizes {
        cases.push(run_case(args, target, size).await?);
    }
    Ok(summary::report(args, &cases))
}

/// One size: every contender connected, the warm-up round and the measured rounds, then
/// each contender closed and checked against its server's counts.
async fn run_case(args: &CompressionArgs, target: Target<'_>, size: usize) -> Result<Case> {
    let mut contenders = Vec::with_capacity(args.contenders.len());
    for &choice in &args.contenders {
        contenders.push(Contender::open(choice, args.mode, target).await?);
    }
    let plan = args.plan;
    let label = format!("compression {size} B");
    let progress = Progress::new(
        &label,
        Planned::Time(plan.planned(contenders.len())),
        args.stall_timeout,
    );
    let window = match args.mode {
        ThroughputMode::OneWay => 0,
        ThroughputMode::Echo => (args.window_bytes / size).max(4),
    };
    let load = Load {
        mode: args.mode,
        pool: payload::pool(size),
        window,
        // One-way: about 64 KiB per look at the clock; echo: a quarter window per flush.
        chunk: match args.mode {
            ThroughputMode::OneWay => (65_536 / size).max(1),
            ThroughputMode::Echo => (window / 4).max(1),
        },
        done: progress.counter(),
    };
    // Each contender keeps its own slices (with CPU times) for the summary.
    progress
        .watch(plan.run(contenders.len(), async |turn: Turn| {
            let contender = &mut contenders[turn.contender];
            contender
                .take_slice(&load, turn.until, turn.measured())
                .await?;
            Ok(Sample::default())
        }))
        .await?;
    let mut outcomes = Vec::with_capacity(contenders.len());
    for contender in contenders {
        outcomes.push(contender.finish(&load).await?);
    }
    Ok(Case { size, outcomes })
}
