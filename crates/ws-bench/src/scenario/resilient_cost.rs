//! `resilient-cost`: what the resilient connection costs in throughput against a plain
//! `WebSocketConnection`, both measured in the same run. Both connections are opened first
//! and kept; then they take turns in short slices (plain, resilient, plain, resilient...,
//! after one unmeasured warm-up pair), each sending as fast as it can for one slice, with a
//! short unmeasured gap after each so the server drains what the last one left in the
//! socket buffers. Each pair gives a ratio (resilient rate / plain rate), so a machine that
//! slows down or speeds up during the run moves both sides of a ratio alike; the figure is
//! the median of the ratios, reported with their quartiles and range.
//!
//! Each side is used the way it is meant to be used for pipelining: the plain connection
//! sends a chunk (a quarter window) as one batch, `send_batch` (one-way: `queue_batch`,
//! one flush per slice), the resilient one hands each chunk over with `enqueue_batch` and
//! lets its task write it; with `--per-message`, each message on its own (`queue_slice`
//! and a flush per chunk; `enqueue`).
//! Echo keeps `window` messages in flight and a slice ends when its last echo is in;
//! one-way ends when the last message is written (flushed, or its delivery resolved).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::sync::Semaphore;
use ws_client::resilient::{ResilientConfig, ResilientConnection, ResilientSender};
use ws_client::{Message, MessageType, TransportConfig, WebSocketConnection, WsReceiver, WsSender};

use crate::cli::{ResilientCostArgs, ThroughputMode};
use crate::interleave::{Rounds, Sample, Turn, rounded};
use crate::progress::{Planned, Progress};
use crate::report::Report;

/// What every slice sends.
#[derive(Debug)]
struct Load {
    mode: ThroughputMode,
    payload: Vec<u8>,
    window: usize,
    /// Messages per flush (plain) and per wait for window room (echo).
    chunk: usize,
    /// Messages completed so far, for the progress watchdog.
    done: Arc<AtomicU64>,
    /// Each message on its own (`queue_slice`, `enqueue`) instead of a batch per chunk.
    per_message: bool,
}

/// The two contenders, each on its own persistent connection.
enum Contender {
    Plain(WsSender, WsReceiver),
    Resilient(ResilientSender, Box<ResilientConnection>),
}

pub(crate) async fn run(args: &ResilientCostArgs) -> Result<Report> {
    let pipeline = &args.pipeline;
    let url = &pipeline.url;
    let plain = WebSocketConnection::open(TransportConfig::new(url))
        .await
        .with_context(|| format!("ws-client cannot connect to {url}"))?;
    let (tx, rx) = plain.split()?;
    // Heartbeat, reconnect policy and buffers at their defaults.
    let resilient = ResilientConnection::connect(ResilientConfig::new(url))
        .await
        .with_context(|| format!("the resilient connection cannot connect to {url}"))?;
    let mut contenders = [
        Contender::Plain(tx, rx),
        Contender::Resilient(resilient.sender(), Box::new(resilient)),
    ];
    let plan = args.plan;
    let planned = Planned::Time(plan.planned(2));
    let progress = Progress::new("resilient-cost", planned, args.common.stall_timeout);
    let window = pipeline.window as usize;
    let load = Load {
        mode: pipeline.mode,
        payload: vec![0x2a; pipeline.size],
        window,
        chunk: (window / 4).max(1),
        done: progress.counter(),
        per_message: args.per_message,
    };
    let measured = progress
        .watch(plan.run(2, async |turn: Turn| {
            let started = Instant::now();
            let count = contenders[turn.contender].slice(&load, turn.until).await?;
            Ok(Sample::rate(count, started.elapsed()))
        }))
        .await?;
    let [
        Contender::Plain(tx, mut rx),
        Contender::Resilient(sender, mut resilient),
    ] = contenders
    else {
        unreachable!("the contenders keep their places");
    };
    drop(sender);
    let metrics = resilient.metrics();
    if metrics.disconnects > 0 {
        bail!("the resilient connection reconnected during the run: the slices compare nothing");
    }
    close_plain(&tx, &mut rx).await?;
    resilient
        .close()
        .await
        .context("closing the resilient connection")?;
    Ok(report(args, &measured))
}

impl Contender {
    /// Sends until `until` (whole chunks), then waits until the slice's work is done.
    async fn slice(&mut self, load: &Load, until: Instant) -> Result<u64> {
        match (self, load.mode) {
            (Contender::Plain(tx, _), ThroughputMode::OneWay) => {
                let mut sent = 0;
                while Instant::now() < until {
                    if load.per_message {
                        for _ in 0..load.chunk {
                            tx.queue_slice(MessageType::Binary, &load.payload).await?;
                        }
                    } else {
                        tx.queue_batch(MessageType::Binary, load.copies()).await?;
                    }
                    sent += load.bump(load.chunk);
                }
                tx.flush().await?;
                Ok(sent)
            }
            (Contender::Resilient(sender, _), ThroughputMode::OneWay) => {
                let mut sent = 0;
                let mut last = None;
                let mut last_batch = None;
                while Instant::now() < until {
                    if load.per_message {
                        for _ in 0..load.chunk {
                            last = Some(sender.enqueue(load.message()).await.map_err(|f| f.error)?);
                        }
                    } else {
                        let batch = (0..load.chunk).map(|_| load.message());
                        last_batch = Some(sender.enqueue_batch(batch).await.map_err(|f| f.error)?);
                    }
                    sent += load.bump(load.chunk);
                }
                if let Some(last) = last {
                    // Written in order: the last one written means all were.
                    last.await.map_err(|failed| failed.error)?;
                }
                if let Some(last) = last_batch {
                    last.await?;
                }
                Ok(sent)
            }
            (Contender::Plain(tx, rx), ThroughputMode::Echo) => {
                let send_chunk = async || {
                    if load.per_message {
                        for _ in 0..load.chunk {
                            tx.queue_slice(MessageType::Binary, &load.payload).await?;
                        }
                        tx.flush().await?;
                    } else {
                        tx.send_batch(MessageType::Binary, load.copies()).await?;
                    }
                    Ok(())
                };
                let receive = async || loop {
                    let message = rx.receive_message().await?;
                    if message.is_data() {
                        return Ok(message.data.len());
                    }
                };
                load.echo(until, send_chunk, receive).await
            }
            (Contender::Resilient(sender, connection), ThroughputMode::Echo) => {
                let send_chunk = async || {
                    // Its echo proves it written: the receipt is not needed.
                    if load.per_message {
                        for _ in 0..load.chunk {
                            drop(sender.enqueue(load.message()).await.map_err(|f| f.error)?);
                        }
                    } else {
                        let batch = (0..load.chunk).map(|_| load.message());
                        drop(sender.enqueue_batch(batch).await.map_err(|f| f.error)?);
                    }
                    Ok(())
                };
                let receive = async || Ok(connection.receive().await?.data.len());
                load.echo(until, send_chunk, receive).await
            }
        }
    }
}

impl Load {
    /// The payload as an owned message (the resilient connection keeps each until written).
    fn message(&self) -> Message {
        Message::binary(self.payload.clone())
    }

    /// A chunk's worth of the payload, for a batch.
    fn copies(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::repeat_n(self.payload.as_slice(), self.chunk)
    }

    /// Counts `n` messages done; returns `n`.
    fn bump(&self, n: usize) -> u64 {
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        n as u64
    }

    /// Echo with at most `window` messages in flight: chunks go out while there is room and
    /// time, and the slice ends when every echo is in. Returns the messages echoed.
    async fn echo(
        &self,
        until: Instant,
        mut send_chunk: impl AsyncFnMut() -> Result<()>,
        mut receive: impl AsyncFnMut() -> Result<usize>,
    ) -> Result<u64> {
        let room = Semaphore::new(self.window);
        let sending = async {
            let mut sent = 0;
            while Instant::now() < until {
                room.acquire_many(self.chunk as u32).await?.forget();
                send_chunk().await?;
                sent += self.bump(self.chunk);
            }
            // Every permit back: every echo is in.
            let _all_in = room.acquire_many(self.window as u32).await?;
            anyhow::Ok(sent)
        };
        let receiving = async {
            loop {
                let len = receive().await?;
                if len != self.payload.len() {
                    bail!(
                        "sent {} bytes, the echo has {len}: is this an echo server?",
                        self.payload.len()
                    );
                }
                room.add_permits(1);
            }
        };
        // The receive left waiting when the last echo is in is cancel-safe on both sides.
        tokio::select! {
            sent = sending => sent,
            failed = receiving => failed,
        }
    }
}

/// Closes the plain connection: a close frame, then its answer.
async fn close_plain(tx: &WsSender, rx: &mut WsReceiver) -> Result<()> {
    tx.close(1000, "").await.context("closing")?;
    loop {
        match rx.receive_message().await {
            Ok(message) if message.message_type == MessageType::Close => return Ok(()),
            Ok(_) => {}
            Err(ws_client::Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e).context("closing"),
        }
    }
}

/// The report: the resilient side's totals as the run's count and rate, the plain side's
/// beside them, and the ratios (median, quartiles, range, each pair's).
fn report(args: &ResilientCostArgs, rounds: &Rounds) -> Report {
    let pipeline = &args.pipeline;
    let mut report = Report::new("resilient-cost", "ws-client", &pipeline.url, "msg/s")
        .param("mode", pipeline.mode_name())
        .param("size", pipeline.size)
        .param("slices", rounds.samples.len())
        .param("slice_ms", args.plan.slice.as_millis() as u64)
        .param("gap_ms", args.plan.gap.as_millis() as u64);
    if pipeline.mode == ThroughputMode::Echo {
        report = report.param("window", pipeline.window);
    }
    let (plain_count, plain_took) = rounds.total(0);
    let (count, took) = rounds.total(1);
    report.timed(count, count * pipeline.size as u64, took);
    let ratios = rounds.ratios("rate", 1, 0);
    let spread = rounds.ratio("rate", 1, 0);
    let list = |values: Vec<f64>, places| values.into_iter().map(|v| rounded(v, places)).collect();
    let figures = [
        ("ratio", rounded(spread.median, 4)),
        ("ratio_p25", rounded(spread.p25, 4)),
        ("ratio_p75", rounded(spread.p75, 4)),
        ("ratio_min", rounded(spread.min, 4)),
        ("ratio_max", rounded(spread.max, 4)),
        ("plain_count", Value::from(plain_count)),
        (
            "plain_rate",
            rounded(plain_count as f64 / plain_took.as_secs_f64().max(1e-9), 0),
        ),
        ("ratios", list(ratios, 4)),
        ("plain_rates", list(rounds.values("rate", 0), 0)),
        ("resilient_rates", list(rounds.values("rate", 1), 0)),
    ];
    for (name, value) in figures {
        report.figures.insert(name.into(), value);
    }
    report
}
