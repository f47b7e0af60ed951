//! `throughput`: pipelined messages on one connection. One-way sends into a sink and ends
//! when the server answers our close (so it has read everything); echo keeps a window of
//! messages in flight while another task receives the echoes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

use crate::cli::{PipelineArgs, ThroughputArgs, ThroughputMode};
use crate::clients::{Conn, Rx, stamp};
use crate::progress::{Budget, Planned, Progress};
use crate::report::{self, LATENCY, Report};
use crate::scenario::{check_echo, nanos_since, since_stamp};

pub(crate) async fn run(args: &ThroughputArgs) -> Result<Report> {
    let pipeline = &args.pipeline;
    let planned = Budget::from_args(&args.budget, 1_000_000);
    let progress = Progress::new("throughput", planned, args.common.stall_timeout);
    let conn = Conn::open(args.client, &pipeline.url).await?;
    let (count, elapsed, histogram) = match pipeline.mode {
        ThroughputMode::OneWay => {
            let work = one_way(conn, pipeline.size, planned, progress.counter());
            let (count, elapsed) = progress.watch(work).await?;
            (count, elapsed, None)
        }
        ThroughputMode::Echo => {
            let work = echo(conn, pipeline, planned, progress.counter());
            let (count, elapsed, histogram) = progress.watch(work).await?;
            (count, elapsed, Some(histogram))
        }
    };
    let mut report = Report::new("throughput", args.client.name(), &pipeline.url, "msg/s")
        .param("mode", pipeline.mode_name())
        .param("size", pipeline.size);
    if pipeline.mode == ThroughputMode::Echo {
        report = report.param("window", pipeline.window);
    }
    report.timed(count, count * pipeline.size as u64, elapsed);
    if let Some(histogram) = histogram {
        report.histogram(LATENCY, &histogram)?;
    }
    Ok(report)
}

/// Messages handed over at a time in one-way (each contender writes when its buffer fills).
const ONE_WAY_CHUNK: usize = 1024;

/// How many of the next `chunk` messages the budget allows: all while time is left, at
/// most what remains of a count.
fn next_chunk(budget: &Budget, sent: u64, chunk: usize) -> usize {
    match *budget {
        Budget::Count(n) => chunk.min(usize::try_from(n.saturating_sub(sent)).unwrap_or(chunk)),
        Budget::Until(deadline) if Instant::now() < deadline => chunk,
        Budget::Until(_) => 0,
    }
}

/// Sends until the budget is spent, then closes; the time includes the server's answer to
/// the close, which it sends after reading every message.
async fn one_way(
    mut conn: Conn,
    size: usize,
    planned: Planned,
    done: Arc<AtomicU64>,
) -> Result<(u64, Duration)> {
    let payload = vec![0x2a_u8; size];
    let budget = Budget::start(planned);
    let started = Instant::now();
    let mut sent = 0;
    loop {
        let n = next_chunk(&budget, sent, ONE_WAY_CHUNK);
        if n == 0 {
            break;
        }
        conn.queue_many(&payload, n).await.context("sending")?;
        sent += n as u64;
        done.store(sent, Ordering::Relaxed);
    }
    done.store(sent, Ordering::Relaxed);
    conn.close()
        .await
        .context("closing (waiting for the server to read everything)")?;
    Ok((sent, started.elapsed()))
}

/// Keeps up to `window` messages in flight, sending in chunks of a quarter window with one
/// flush each (ws-client: one batch each); the time ends when the last echo is in.
async fn echo(
    conn: Conn,
    args: &PipelineArgs,
    planned: Planned,
    done: Arc<AtomicU64>,
) -> Result<(u64, Duration, Histogram<u64>)> {
    let window = args.window as usize;
    let chunk = (window / 4).max(1);
    let size = args.size;
    let (mut tx, rx) = conn.split()?;
    let permits = Arc::new(Semaphore::new(window));
    let epoch = Instant::now();
    let receiver = tokio::spawn(receive_echoes(rx, size, epoch, Arc::clone(&permits), done));

    let mut payload = vec![0x2a_u8; size];
    let budget = Budget::start(planned);
    let started = Instant::now();
    let mut sent = 0;
    'sending: loop {
        let Ok(granted) = permits.acquire_many(chunk as u32).await else {
            break;
        };
        granted.forget();
        let n = next_chunk(&budget, sent, chunk);
        permits.add_permits(chunk - n);
        if n == 0 {
            break 'sending;
        }
        // One stamp per chunk: its messages leave together.
        stamp(&mut payload, nanos_since(epoch));
        tx.send_many(&payload, n).await.context("sending")?;
        sent += n as u64;
    }
    tx.flush().await.context("sending")?;
    // Every permit back means every echo is in (or the receiver failed and closed them).
    let all_in = permits.acquire_many(window as u32).await.is_ok();
    let elapsed = started.elapsed();
    if all_in {
        tx.close().await.context("closing")?;
    }
    let (received, histogram) = receiver.await.context("the receiving task panicked")??;
    if received != sent {
        bail!("sent {sent} messages but {received} echoes came back");
    }
    Ok((sent, elapsed, histogram))
}

/// Receives echoes until the close, recording each one's time since its stamp.
async fn receive_echoes(
    mut rx: Rx,
    size: usize,
    epoch: Instant,
    permits: Arc<Semaphore>,
    done: Arc<AtomicU64>,
) -> Result<(u64, Histogram<u64>)> {
    let mut histogram = report::new_histogram();
    let mut received = 0;
    let result = async {
        while let Some(echo) = rx.recv().await.context("receiving")? {
            let echo = check_echo(Some(echo), size)?;
            if size >= 8 {
                report::record(&mut histogram, since_stamp(epoch, echo.stamp));
            }
            received += 1;
            permits.add_permits(1);
            if received % 256 == 0 {
                done.store(received, Ordering::Relaxed);
            }
        }
        anyhow::Ok(())
    }
    .await;
    permits.close();
    result.map(|()| (received, histogram))
}
