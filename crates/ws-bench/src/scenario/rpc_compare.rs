//! `rpc-compare`: the RPC figures in one slice-interleaved run (see `interleave`). The
//! contenders, each on its own persistent connection with `window` calls (or messages) in
//! flight, take turns in short slices:
//!
//! 0. ws-client's `RpcClient` against `test-servers rpc` (the reference);
//! 1. jsonrpsee's client against the same server: (a) client vs client;
//! 2. with `--jsonrpsee-url`: `RpcClient` against a jsonrpsee server: (b) server vs server;
//! 3. with `--echo-url`: ws-client's own 16 B pipelined echo (test-servers perf /echo):
//!    (c) RPC calls/s against echoed messages/s.
//!
//! Every call must get the expected answer and every echo must come back, or the run fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::Value;
use tokio::sync::Semaphore;
use ws_client::{MessageType, TransportConfig, WebSocketConnection, WsReceiver, WsSender};

use crate::cli::{CommonArgs, RpcClientKind, RpcMethodArg};
use crate::compression::cpu;
use crate::interleave::{Plan, Rounds, Sample, Turn, rounded};
use crate::progress::{Planned, Progress};
use crate::report::Report;
use crate::rpc_answer::Answer;
use crate::scenario::rpc::{Caller, call_of};

#[derive(Debug, Args)]
pub(crate) struct RpcCompareArgs {
    /// URL of `test-servers rpc` (contenders 0 and 1).
    pub(crate) url: String,
    /// Leave out jsonrpsee's client (and its figure), e.g. to measure one other figure.
    #[arg(long)]
    pub(crate) no_jsonrpsee_client: bool,
    /// URL of a jsonrpsee server (`ws-bench serve jsonrpsee-rpc`): adds the server figure.
    #[arg(long)]
    pub(crate) jsonrpsee_url: Option<String>,
    /// URL of an echo server (`test-servers perf` .../echo): adds ws-client's 16 B
    /// pipelined echo as the RPC figure's yardstick.
    #[arg(long)]
    pub(crate) echo_url: Option<String>,
    /// Calls (and echo messages) in flight on each connection.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(4..))]
    pub(crate) window: u32,
    #[arg(long, value_enum, default_value_t = RpcMethodArg::Add)]
    pub(crate) method: RpcMethodArg,
    /// Measured rounds (one slice per contender each; one unmeasured round warms up).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rounds: u32,
    /// Length of one slice.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    pub(crate) slice: Duration,
    /// Unmeasured pause after each slice.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub(crate) gap: Duration,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// Echo payload bytes (the 16 B pipelined echo figure).
const ECHO_SIZE: usize = 16;

/// One contender: who it is in the report, and its connection.
#[derive(Debug)]
struct Contender {
    name: &'static str,
    side: Side,
}

#[derive(Debug)]
enum Side {
    Rpc(Caller),
    Echo(WsSender, WsReceiver),
}

/// A figure: the ratio of contender 0 to `base`, its name and the target it is held to.
struct Figure {
    name: &'static str,
    base: usize,
    target: &'static str,
}

/// What the calls send and expect, shared by every RPC slice.
struct Calls {
    method: &'static str,
    params: Value,
    expected: Answer,
    window: usize,
    done: Arc<AtomicU64>,
}

pub(crate) async fn run(args: &RpcCompareArgs) -> Result<Report> {
    let window = args.window as usize;
    let connect = async |kind, url: &str| Caller::connect(kind, url, window).await;
    let mut contenders = vec![Contender {
        name: "ws-client@test-servers",
        side: Side::Rpc(connect(RpcClientKind::WsClient, &args.url).await?),
    }];
    let mut figures = Vec::new();
    if !args.no_jsonrpsee_client {
        figures.push(Figure {
            name: "client_vs_jsonrpsee",
            base: contenders.len(),
            target: ">=5",
        });
        contenders.push(Contender {
            name: "jsonrpsee@test-servers",
            side: Side::Rpc(connect(RpcClientKind::Jsonrpsee, &args.url).await?),
        });
    }
    if let Some(url) = &args.jsonrpsee_url {
        figures.push(Figure {
            name: "server_vs_jsonrpsee",
            base: contenders.len(),
            target: ">=5",
        });
        contenders.push(Contender {
            name: "ws-client@jsonrpsee",
            side: Side::Rpc(connect(RpcClientKind::WsClient, url).await?),
        });
    }
    if let Some(url) = &args.echo_url {
        let connection = WebSocketConnection::open(TransportConfig::new(url))
            .await
            .with_context(|| format!("ws-client cannot connect to {url}"))?;
        let (tx, rx) = connection.split()?;
        figures.push(Figure {
            name: "rpc_vs_echo",
            base: contenders.len(),
            target: ">=0.6",
        });
        contenders.push(Contender {
            name: "ws-client-echo-16B",
            side: Side::Echo(tx, rx),
        });
    }

    if figures.is_empty() {
        bail!("nothing to compare: give --jsonrpsee-url or --echo-url, or keep jsonrpsee's client");
    }
    let plan = Plan {
        rounds: args.rounds,
        slice: args.slice,
        gap: args.gap,
    };
    let planned = Planned::Time(plan.planned(contenders.len()));
    let progress = Progress::new("rpc-compare", planned, args.common.stall_timeout);
    let (method, params, expected) = call_of(args.method);
    let calls = Calls {
        method,
        params,
        expected,
        window,
        done: progress.counter(),
    };
    let rounds = progress
        .watch(plan.run(contenders.len(), async |turn: Turn| {
            let contender = &mut contenders[turn.contender];
            let cpu_before = cpu::client();
            let started = Instant::now();
            let count = match &mut contender.side {
                Side::Rpc(caller) => calls.slice(caller, turn.until).await,
                Side::Echo(tx, rx) => calls.echo(tx, rx, turn.until).await,
            }
            .with_context(|| format!("{} (round {})", contender.name, turn.round))?;
            let took = started.elapsed();
            // This process's CPU per call (message), on the one runtime thread: the client's
            // own cost, whatever the machine's other load does to the wall clock.
            let cpu_us = match (cpu_before, cpu::client()) {
                (Some(before), Some(after)) if count > 0 => {
                    after.saturating_sub(before).as_secs_f64() * 1e6 / count as f64
                }
                _ => f64::NAN,
            };
            Ok(Sample::rate(count, took).with("cpu_us", cpu_us))
        }))
        .await?;
    for contender in &mut contenders {
        match &mut contender.side {
            Side::Rpc(caller) => caller.close().await,
            Side::Echo(tx, _) => tx.close(1000, "").await.map_err(Into::into),
        }
        .with_context(|| format!("closing {}", contender.name))?;
    }
    Ok(report(args, &contenders, &figures, &rounds))
}

impl Calls {
    /// Keeps `window` calls in flight until `until`, then waits for the last answers.
    /// Returns the calls answered; any wrong answer or failure ends the run.
    async fn slice(&self, caller: &Caller, until: Instant) -> Result<u64> {
        let mut in_flight = FuturesUnordered::new();
        let mut answered = 0;
        let mut sending = true;
        for _ in 0..self.window {
            in_flight.push(caller.call(self.method, &self.params));
        }
        while let Some(answer) = in_flight.next().await {
            let answer = answer?;
            if answer != self.expected {
                bail!(
                    "{} answered {answer}, expected {}",
                    self.method,
                    self.expected
                );
            }
            answered += 1;
            // The clock is read once per 32 answers, not per call (a visible share of a
            // call's cost on this machine's clock).
            if answered % 32 == 0 {
                self.done.fetch_add(32, Ordering::Relaxed);
                sending = Instant::now() < until;
            }
            if sending {
                in_flight.push(caller.call(self.method, &self.params));
            }
        }
        Ok(answered)
    }

    /// 16 B echo with `window` in flight, sent a quarter window per flush, until `until`;
    /// the slice ends when every echo is in. Returns the messages echoed.
    async fn echo(&self, tx: &mut WsSender, rx: &mut WsReceiver, until: Instant) -> Result<u64> {
        let payload = [0x2a_u8; ECHO_SIZE];
        let chunk = (self.window / 4).max(1);
        let room = Semaphore::new(self.window);
        let sending = async {
            let mut sent = 0_u64;
            while Instant::now() < until {
                room.acquire_many(chunk as u32).await?.forget();
                for _ in 0..chunk {
                    tx.queue_slice(MessageType::Binary, &payload).await?;
                }
                tx.flush().await?;
                sent += chunk as u64;
                self.done.fetch_add(chunk as u64, Ordering::Relaxed);
            }
            // Every permit back: every echo is in.
            let _all_in = room.acquire_many(self.window as u32).await?;
            anyhow::Ok(sent)
        };
        let receiving = async {
            loop {
                let message = rx.receive_message().await?;
                if !message.is_data() {
                    continue;
                }
                if message.data.len() != ECHO_SIZE {
                    bail!(
                        "sent {ECHO_SIZE} bytes, the echo has {}: is this an echo server?",
                        message.data.len()
                    );
                }
                room.add_permits(1);
            }
        };
        // The receive left waiting when the last echo is in is cancel-safe.
        tokio::select! {
            sent = sending => sent,
            failed = receiving => failed,
        }
    }
}

/// The reference's totals as the run's rate; per figure the ratio's spread and target (and
/// `client_cpu_ratio`: the base's CPU per call over ours); per contender its own rate's and
/// client CPU per call's spread. A run of one figure also gives it as `ratio`,
/// `ratio_p25`, `ratio_p75`, `ratio_min`, `ratio_max` and `ratios` (one per round), as
/// `resilient-cost` does, for `--threshold 'ratio>=...'` and the bench table.
fn report(
    args: &RpcCompareArgs,
    contenders: &[Contender],
    figures: &[Figure],
    rounds: &Rounds,
) -> Report {
    let mut report = Report::new("rpc-compare", "ws-client", &args.url, "calls/s")
        .param("window", args.window)
        .param("method", call_of(args.method).0)
        .param("rounds", args.rounds)
        .param("slice_ms", args.slice.as_millis() as u64)
        .param("gap_ms", args.gap.as_millis() as u64);
    let (count, took) = rounds.total(0);
    report.timed(count, 0, took);
    let mut ratios = serde_json::Map::new();
    for figure in figures {
        let spread = rounds.ratio("rate", 0, figure.base);
        // Base CPU per call over ours: the rate ratio the client's CPU alone would allow.
        let cpu = rounds.ratio("cpu_us", figure.base, 0);
        ratios.insert(
            figure.name.into(),
            serde_json::json!({
                "subject": contenders[0].name,
                "base": contenders[figure.base].name,
                "target": figure.target,
                "ratio": spread.json(4),
                "client_cpu_ratio": cpu.json(4),
            }),
        );
    }
    let mut rates = serde_json::Map::new();
    let mut cpu = serde_json::Map::new();
    for (index, contender) in contenders.iter().enumerate() {
        rates.insert(contender.name.into(), rounds.own("rate", index).json(0));
        cpu.insert(contender.name.into(), rounds.own("cpu_us", index).json(3));
    }
    report.figures.insert("comparisons".into(), ratios.into());
    report.figures.insert("rates".into(), rates.into());
    report.figures.insert("client_cpu_us".into(), cpu.into());
    if let [figure] = figures {
        let spread = rounds.ratio("rate", 0, figure.base);
        let flat = [
            ("ratio", spread.median),
            ("ratio_p25", spread.p25),
            ("ratio_p75", spread.p75),
            ("ratio_min", spread.min),
            ("ratio_max", spread.max),
        ];
        for (name, value) in flat {
            report.figures.insert(name.into(), rounded(value, 4));
        }
        let per_round = rounds.ratios("rate", 0, figure.base);
        let per_round: Vec<Value> = per_round.into_iter().map(|r| rounded(r, 4)).collect();
        report.figures.insert("ratios".into(), per_round.into());
        report.figures.insert("figure".into(), figure.name.into());
    }
    report
}
