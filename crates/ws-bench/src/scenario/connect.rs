//! `connect`: open a connection (TCP + upgrade handshake), close it gracefully, repeat, with
//! C attempts in progress at once; the latency of each open-and-close and their rate.
//! `--segment I/N` makes this worker's share of both (the round-robin rule in segment.rs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use tokio::io::AsyncReadExt;
use ws_client::{TransportConfig, WebSocketConnection};

use crate::cli::{ClientKind, ConnectArgs};
use crate::clients::Conn;
use crate::net;
use crate::progress::{Planned, Progress};
use crate::report::{self, LATENCY, Report};
use crate::segment::Segment;

pub(crate) async fn run(args: &ConnectArgs) -> Result<Report> {
    let server = net::server_addr(&args.url).await?;
    let segment = args.segment.segment;
    let count = segment.share(args.count);
    let concurrency = segment.share(u64::from(args.concurrency));
    let progress = Progress::new("connect", Planned::Count(count), args.common.stall_timeout);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let worker = Worker {
            kind: args.client,
            url: args.url.clone(),
            server,
            source_addrs: args.source_addrs,
            segment,
            count,
            next: Arc::clone(&next),
            done: progress.counter(),
        };
        workers.push(tokio::spawn(worker.run()));
    }
    let outcomes = progress
        .watch(async {
            let mut outcomes = Vec::new();
            for worker in workers {
                outcomes.push(worker.await.context("a connect worker panicked")?);
            }
            anyhow::Ok(outcomes)
        })
        .await?;
    let elapsed = started.elapsed();

    let mut histogram = report::new_histogram();
    let mut errors = 0;
    let mut first_error = None;
    for outcome in outcomes {
        histogram.add(&outcome.histogram).ok();
        errors += outcome.errors;
        first_error = first_error.or(outcome.first_error);
    }
    let mut report = Report::new("connect", args.client.name(), &args.url, "conn/s")
        .param("count", args.count)
        .param("concurrency", args.concurrency)
        .param("source_addrs", args.source_addrs);
    report.timed(histogram.len(), 0, elapsed);
    report.errors = errors;
    report.segment = Some(segment);
    if segment.is_part() {
        report.figures.insert("segment_count".into(), count.into());
        report
            .figures
            .insert("segment_concurrency".into(), concurrency.into());
    }
    if let Some(error) = first_error {
        eprintln!("note: {errors} connections failed; the first: {error}");
        report.figures.insert("first_error".into(), error.into());
    }
    report.histogram(LATENCY, &histogram)?;
    Ok(report)
}

/// One of the C loops that open and close connections.
#[derive(Debug)]
struct Worker {
    kind: ClientKind,
    url: String,
    server: SocketAddr,
    source_addrs: u8,
    /// Which part of the whole run: a source address follows the whole run's index.
    segment: Segment,
    /// This segment's connections.
    count: u64,
    next: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Outcome {
    histogram: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Worker {
    async fn run(self) -> Outcome {
        let mut outcome = Outcome {
            histogram: report::new_histogram(),
            errors: 0,
            first_error: None,
        };
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.count {
                return outcome;
            }
            let started = Instant::now();
            match self.open_and_close(index).await {
                Ok(()) => report::record(&mut outcome.histogram, started.elapsed()),
                Err(e) => {
                    outcome.errors += 1;
                    outcome.first_error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn open_and_close(&self, index: u64) -> Result<()> {
        let source = net::source_addr(self.segment.global(index), self.source_addrs);
        match self.kind {
            ClientKind::WsClient => {
                let config = TransportConfig {
                    local_address: source,
                    ..TransportConfig::new(self.url.as_str())
                };
                let mut ws = WebSocketConnection::open(config).await.context("connect")?;
                ws.disconnect().await.context("close")?;
            }
            ClientKind::Tungstenite => {
                let ws = net::tungstenite_connect(&self.url, self.server, source, None).await?;
                Conn::Tung(Box::new(ws)).close().await.context("close")?;
            }
            ClientKind::Tcp => {
                let mut stream = net::tcp_connect(self.server, source).await?;
                let (mut read, mut write) = stream.split();
                tokio::io::AsyncWriteExt::shutdown(&mut write).await?;
                let mut sink = [0_u8; 64];
                while read.read(&mut sink).await? > 0 {}
            }
        }
        Ok(())
    }
}
