//! `idle`: open N connections (C attempts at a time), hold them idle, then drop them; how
//! many opened, how many failed, and how long opening took. `--segment I/N` opens this
//! worker's share of the connections with its share of the attempts (segment.rs's rule).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use ws_client::{TransportConfig, WebSocketConnection};

use crate::cli::IdleArgs;
use crate::net;
use crate::progress::{Planned, Progress};
use crate::report::{self, LATENCY, Report};
use crate::segment::Segment;

/// Longest time spent closing the held connections at the end.
const CLOSE_ALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A held connection (never read or written while held).
type Held = Box<WebSocketConnection>;

pub(crate) async fn run(args: &IdleArgs, open_file_limit: u64) -> Result<Report> {
    let segment = args.segment.segment;
    let connections = segment.share(args.connections);
    let concurrency = segment.share(u64::from(args.concurrency));
    if connections + 64 > open_file_limit {
        eprintln!(
            "note: {connections} connections need as many open files; the limit is \
             {open_file_limit}, so some will fail"
        );
    }
    let client = "ws-client";
    let progress = Progress::new(
        "idle",
        Planned::Count(connections),
        args.common.stall_timeout,
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut openers = Vec::new();
    for _ in 0..concurrency {
        let opener = Opener {
            url: args.url.clone(),
            source_addrs: args.source_addrs,
            segment,
            count: connections,
            next: Arc::clone(&next),
            done: progress.counter(),
        };
        openers.push(tokio::spawn(opener.run()));
    }
    let opened = progress
        .watch(async {
            let mut all = Vec::new();
            for opener in openers {
                all.push(opener.await.context("an opener panicked")?);
            }
            anyhow::Ok(all)
        })
        .await?;
    let open_time = started.elapsed();

    let mut histogram = report::new_histogram();
    let mut held = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    for outcome in opened {
        histogram.add(&outcome.histogram).ok();
        held.extend(outcome.held);
        failed += outcome.failed;
        first_error = first_error.or(outcome.first_error);
    }
    eprintln!(
        "opened {} connections ({failed} failed) in {:.2}s; holding them for {:?}",
        held.len(),
        open_time.as_secs_f64(),
        args.hold
    );
    tokio::time::sleep(args.hold).await;
    let count = held.len() as u64;
    let closed_cleanly = close_all(held, usize::try_from(concurrency).unwrap_or(1)).await;

    let mut report = Report::new("idle", client, &args.url, "conn/s")
        .param("connections", args.connections)
        .param("concurrency", args.concurrency)
        .param("hold_s", args.hold.as_secs_f64())
        .param("source_addrs", args.source_addrs);
    report.timed(count, 0, open_time);
    report.errors = failed;
    report.segment = Some(segment);
    if segment.is_part() {
        report
            .figures
            .insert("segment_connections".into(), connections.into());
        report
            .figures
            .insert("segment_concurrency".into(), concurrency.into());
    }
    report.figures.insert("opened".into(), count.into());
    report.figures.insert("failed".into(), failed.into());
    report
        .figures
        .insert("closed_cleanly".into(), closed_cleanly.into());
    report
        .figures
        .insert("open_s".into(), open_time.as_secs_f64().into());
    report
        .figures
        .insert("open_file_limit".into(), open_file_limit.into());
    if let Some(error) = first_error {
        eprintln!("note: the first failure: {error}");
        report.figures.insert("first_error".into(), error.into());
    }
    report.histogram(LATENCY, &histogram)?;
    Ok(report)
}

/// Closes every connection gracefully, `concurrency` at a time, within [`CLOSE_ALL_TIMEOUT`]
/// (the rest are dropped); returns how many finished their close handshake.
async fn close_all(held: Vec<Held>, concurrency: usize) -> u64 {
    let closed = AtomicU64::new(0);
    let closing = futures_util::stream::iter(held).for_each_concurrent(concurrency, |held| {
        let closed = &closed;
        async move {
            let mut held = held;
            let clean = held.disconnect().await.is_ok();
            if clean {
                closed.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    if tokio::time::timeout(CLOSE_ALL_TIMEOUT, closing)
        .await
        .is_err()
    {
        eprintln!("note: closing took over {CLOSE_ALL_TIMEOUT:?}; the rest were dropped");
    }
    closed.load(Ordering::Relaxed)
}

#[derive(Debug)]
struct Opener {
    url: String,
    source_addrs: u8,
    /// Which part of the whole run: a source address follows the whole run's index.
    segment: Segment,
    /// This segment's connections.
    count: u64,
    next: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Opened {
    held: Vec<Held>,
    histogram: Histogram<u64>,
    failed: u64,
    first_error: Option<String>,
}

impl Opener {
    async fn run(self) -> Opened {
        let mut opened = Opened {
            held: Vec::new(),
            histogram: report::new_histogram(),
            failed: 0,
            first_error: None,
        };
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.count {
                return opened;
            }
            let started = Instant::now();
            match self.open(index).await {
                Ok(held) => {
                    report::record(&mut opened.histogram, started.elapsed());
                    opened.held.push(held);
                }
                Err(e) => {
                    opened.failed += 1;
                    opened.first_error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn open(&self, index: u64) -> Result<Held> {
        let config = TransportConfig {
            local_address: net::source_addr(self.segment.global(index), self.source_addrs),
            ..TransportConfig::new(self.url.as_str())
        };
        Ok(Box::new(WebSocketConnection::open(config).await?))
    }
}
