//! `batch-cost`: ws-client's batch send path (`queue_batch` one-way, `send_batch` per chunk
//! in echo) against its per-message path (`queue_slice` per message, a flush per chunk)
//! and against raw TCP (length-prefixed, buffered, a flush per chunk), in alternating
//! slices of one run: queue, batch, tcp, queue, batch, tcp... after one unmeasured warm-up
//! round, with a short unmeasured gap after each slice. Each round gives ratios of rates
//! measured moments apart; a figure is the median of the rounds' ratios, with quartiles
//! and range. With `--resilient` the contenders are a resilient connection handing each
//! message over (`enqueue`), one handing each chunk over as a batch (`enqueue_batch`), and
//! the plain connection's batch path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tokio::sync::Semaphore;
use ws_client::Message;
use ws_client::resilient::{
    BatchDelivery, Delivery, ResilientConfig, ResilientConnection, ResilientSender,
};

use crate::cli::{ClientKind, CommonArgs, PipelineArgs, ThroughputMode};
use crate::clients::{Conn, Rx, Tx};
use crate::interleave::{Plan, Rounds, Sample, Turn, rounded};
use crate::progress::{Planned, Progress};
use crate::report::Report;

/// Messages handed over at a time in one-way.
const ONE_WAY_CHUNK: usize = 1024;

#[derive(Debug, clap::Args)]
pub(crate) struct BatchCostArgs {
    /// What every contender sends; the URL is the WebSocket server (a sink for one-way, an
    /// echo server for echo: `test-servers perf`'s `/sink` or `/echo`).
    #[command(flatten)]
    pub(crate) pipeline: PipelineArgs,
    /// The raw TCP baseline's server, host:port (`ws-bench serve --mode tcp-sink` for
    /// one-way, `tcp-echo` for echo); needed unless `--resilient`.
    #[arg(long, required_unless_present = "resilient")]
    pub(crate) tcp_url: Option<String>,
    #[command(flatten)]
    pub(crate) plan: Plan,
    /// Resilient connections (`enqueue` and `enqueue_batch`) against the plain batch path,
    /// instead of the per-message path and raw TCP.
    #[arg(long)]
    pub(crate) resilient: bool,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// The contenders' names, in slice order, and the ratios reported (name, a, b: a / b).
const NAMES: [&str; 3] = ["queue", "batch", "tcp"];
const RATIOS: [(&str, usize, usize); 3] = [
    ("batch_over_queue", 1, 0),
    ("batch_over_tcp", 1, 2),
    ("queue_over_tcp", 0, 2),
];
const RESILIENT_NAMES: [&str; 3] = ["enqueue", "enqueue_batch", "plain_batch"];
const RESILIENT_RATIOS: [(&str, usize, usize); 3] = [
    ("enqueue_batch_over_enqueue", 1, 0),
    ("enqueue_batch_over_plain_batch", 1, 2),
    ("enqueue_over_plain_batch", 0, 2),
];

/// One contender's connection: whole for one-way, split for echo; or resilient.
enum Side {
    Whole(Conn),
    Split(Tx, Rx),
    Resilient(ResilientSender, Box<ResilientConnection>),
}

struct Contender {
    batch: bool,
    side: Side,
}

/// What every slice sends.
struct Load {
    one_way: bool,
    payload: Vec<u8>,
    window: usize,
    chunk: usize,
    done: Arc<AtomicU64>,
}

pub(crate) async fn run(args: &BatchCostArgs) -> Result<Report> {
    let pipeline = &args.pipeline;
    let mut contenders = Vec::new();
    if args.resilient {
        for batch in [false, true] {
            let connection = ResilientConnection::connect(ResilientConfig::new(&pipeline.url))
                .await
                .with_context(|| {
                    format!(
                        "the resilient connection cannot connect to {}",
                        pipeline.url
                    )
                })?;
            let side = Side::Resilient(connection.sender(), Box::new(connection));
            contenders.push(Contender { batch, side });
        }
    }
    let plain = match &args.tcp_url {
        _ if args.resilient => vec![(ClientKind::WsClient, &pipeline.url, true)],
        Some(tcp_url) => vec![
            (ClientKind::WsClient, &pipeline.url, false),
            (ClientKind::WsClient, &pipeline.url, true),
            (ClientKind::Tcp, tcp_url, false),
        ],
        None => bail!("--tcp-url is needed without --resilient"),
    };
    for (kind, url, batch) in plain {
        let conn = Conn::open(kind, url).await?;
        let side = match pipeline.mode {
            ThroughputMode::OneWay => Side::Whole(conn),
            ThroughputMode::Echo => {
                let (tx, rx) = conn.split()?;
                Side::Split(tx, rx)
            }
        };
        contenders.push(Contender { batch, side });
    }
    let planned = Planned::Time(args.plan.planned(contenders.len()));
    let progress = Progress::new("batch-cost", planned, args.common.stall_timeout);
    let window = pipeline.window as usize;
    let load = Load {
        one_way: pipeline.mode == ThroughputMode::OneWay,
        payload: vec![0x2a; pipeline.size],
        window,
        chunk: (window / 4).max(1),
        done: progress.counter(),
    };
    let rounds = progress
        .watch(args.plan.run(contenders.len(), async |turn: Turn| {
            let started = Instant::now();
            let count = contenders[turn.contender].slice(&load, turn.until).await?;
            Ok(Sample::rate(count, started.elapsed()))
        }))
        .await?;
    for contender in contenders {
        match contender.side {
            Side::Whole(conn) => conn.close().await?,
            Side::Split(mut tx, mut rx) => {
                tx.close().await?;
                while rx.recv().await?.is_some() {}
            }
            Side::Resilient(sender, mut connection) => {
                drop(sender);
                if connection.metrics().disconnects > 0 {
                    bail!("a resilient connection reconnected during the run");
                }
                connection.close().await?;
            }
        }
    }
    Ok(report(args, &rounds))
}

impl Contender {
    /// Sends until `until` (whole chunks); returns the messages done (one-way: written,
    /// echo: echoed).
    async fn slice(&mut self, load: &Load, until: Instant) -> Result<u64> {
        let payload = &load.payload;
        match &mut self.side {
            Side::Whole(conn) => {
                let mut sent = 0;
                while Instant::now() < until {
                    if self.batch {
                        conn.queue_many(payload, ONE_WAY_CHUNK).await?;
                    } else {
                        for _ in 0..ONE_WAY_CHUNK {
                            conn.queue(payload).await?;
                        }
                    }
                    sent += load.bump(ONE_WAY_CHUNK);
                }
                conn.flush().await?;
                Ok(sent)
            }
            Side::Split(tx, rx) => {
                let room = Semaphore::new(load.window);
                let sending = async {
                    let mut sent = 0;
                    while Instant::now() < until {
                        room.acquire_many(load.chunk as u32).await?.forget();
                        if self.batch {
                            tx.send_many(payload, load.chunk).await?;
                        } else {
                            for _ in 0..load.chunk {
                                tx.queue(payload).await?;
                            }
                            tx.flush().await?;
                        }
                        sent += load.bump(load.chunk);
                    }
                    // Every permit back: every echo is in.
                    let _all_in = room.acquire_many(load.window as u32).await?;
                    anyhow::Ok(sent)
                };
                let receiving = async {
                    loop {
                        match rx.recv().await? {
                            Some(echo) if echo.len == payload.len() => room.add_permits(1),
                            Some(echo) => {
                                bail!("sent {} bytes, the echo has {}", payload.len(), echo.len)
                            }
                            None => bail!("the server closed the connection"),
                        }
                    }
                };
                // Once every echo is in, the receive left waiting has read nothing.
                tokio::select! {
                    sent = sending => sent,
                    failed = receiving => failed,
                }
            }
            Side::Resilient(sender, connection) => {
                resilient_slice(sender, connection, self.batch, load, until).await
            }
        }
    }
}

/// A resilient contender's slice: each chunk handed over as a batch or message by message;
/// one-way ends when the last is written, echo when the last echo is in.
async fn resilient_slice(
    sender: &ResilientSender,
    connection: &mut ResilientConnection,
    batch: bool,
    load: &Load,
    until: Instant,
) -> Result<u64> {
    let message = || Message::binary(load.payload.clone());
    let hand_over = async |n: usize| -> Result<(Option<Delivery>, Option<BatchDelivery>)> {
        if batch {
            let receipt = sender.enqueue_batch((0..n).map(|_| message())).await;
            return Ok((None, Some(receipt.map_err(|refused| refused.error)?)));
        }
        let mut last = None;
        for _ in 0..n {
            last = Some(sender.enqueue(message()).await.map_err(|f| f.error)?);
        }
        Ok((last, None))
    };
    if load.one_way {
        let mut sent = 0;
        let mut last = (None, None);
        while Instant::now() < until {
            last = hand_over(ONE_WAY_CHUNK).await?;
            sent += load.bump(ONE_WAY_CHUNK);
        }
        // Written in order: the last one written means all were.
        if let Some(delivery) = last.0 {
            delivery.await.map_err(|failed| failed.error)?;
        }
        if let Some(receipt) = last.1 {
            receipt.await?;
        }
        return Ok(sent);
    }
    let room = Semaphore::new(load.window);
    let sending = async {
        let mut sent = 0;
        while Instant::now() < until {
            room.acquire_many(load.chunk as u32).await?.forget();
            // Their echoes prove them written: the receipts are not needed.
            drop(hand_over(load.chunk).await?);
            sent += load.bump(load.chunk);
        }
        let _all_in = room.acquire_many(load.window as u32).await?;
        anyhow::Ok(sent)
    };
    let receiving = async {
        loop {
            let echo = connection.receive().await?;
            if echo.data.len() != load.payload.len() {
                bail!(
                    "sent {} bytes, the echo has {}",
                    load.payload.len(),
                    echo.data.len()
                );
            }
            room.add_permits(1);
        }
    };
    // `receive` is cancel-safe.
    tokio::select! {
        sent = sending => sent,
        failed = receiving => failed,
    }
}

impl Load {
    fn bump(&self, n: usize) -> u64 {
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        n as u64
    }
}

/// The second contender's mean rate as the run's rate; per contender its median rate; per
/// ratio (`batch_over_queue`, `batch_over_tcp`, `queue_over_tcp`; with `--resilient`
/// `enqueue_batch_over_enqueue`, `enqueue_batch_over_plain_batch`,
/// `enqueue_over_plain_batch`) the median of the rounds' ratios with quartiles and range.
fn report(args: &BatchCostArgs, rounds: &Rounds) -> Report {
    let pipeline = &args.pipeline;
    let measured = rounds.samples.len();
    let mut report = Report::new("batch-cost", "ws-client", &pipeline.url, "msg/s")
        .param("mode", pipeline.mode_name())
        .param("size", pipeline.size)
        .param("slices", measured)
        .param("slice_ms", args.plan.slice.as_millis() as u64)
        .param("gap_ms", args.plan.gap.as_millis() as u64);
    if pipeline.mode == ThroughputMode::Echo {
        report = report.param("window", pipeline.window);
    }
    let (names, ratios) = if args.resilient {
        (RESILIENT_NAMES, RESILIENT_RATIOS)
    } else {
        (NAMES, RATIOS)
    };
    for (i, name) in names.iter().enumerate() {
        let median = rounds.own("rate", i).median;
        report
            .figures
            .insert(format!("{name}_rate"), rounded(median, 0));
    }
    for (name, a, b) in ratios {
        let spread = rounds.ratio("rate", a, b);
        let figure = serde_json::json!({
            "median": rounded(spread.median, 4),
            "p25": rounded(spread.p25, 4),
            "p75": rounded(spread.p75, 4),
            "min": rounded(spread.min, 4),
            "max": rounded(spread.max, 4),
        });
        report.figures.insert(name.into(), figure);
    }
    let rates = rounds.values("rate", 1);
    let rate = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    let took = args.plan.slice * measured as u32;
    let count = (rate * took.as_secs_f64()) as u64;
    report.timed(count, count * pipeline.size as u64, took);
    report
}
