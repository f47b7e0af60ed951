//! `open-model`: N connections, each sending at a fixed rate whatever the server does, with
//! latency measured from each message's *intended* send time, so a stall shows up in the
//! percentiles instead of silently slowing the sender (no coordinated omission).
//!
//! Connection k opens at its place in the ramp-up (`begin`) and sends its first message one
//! interval later, so no message's latency includes the connection's own handshake. One
//! [`Pacer`] wakes every sender at its due times to the microsecond (a tokio timer per
//! connection fired on a 1 ms wheel: up to 2 ms late, in bursts, all counted as latency).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use tokio::sync::Notify;
use tokio::time::Instant as TokioInstant;

use crate::cli::{ClientKind, OpenModelArgs};
use crate::clients::{Conn, Rx, stamp};
use crate::progress::{Planned, Progress};
use crate::report::{self, LATENCY, Report};
use crate::scenario::pacer::Pacer;
use crate::scenario::{check_echo, since_stamp};

/// Time between start-up and the first connection's first intended send.
const LEAD_IN: Duration = Duration::from_millis(20);

#[derive(Debug)]
struct Plan {
    url: String,
    size: usize,
    epoch: Instant,
    interval: Duration,
    end: Instant,
    histogram: Mutex<Histogram<u64>>,
    received: Arc<AtomicU64>,
}

pub(crate) async fn run(args: &OpenModelArgs) -> Result<Report> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a positive number of messages per second");
    }
    let total = args.ramp_up + args.duration;
    let progress = Progress::new(
        "open-model",
        Planned::Time(total),
        args.common.stall_timeout,
    );
    let epoch = Instant::now();
    let start = epoch + LEAD_IN;
    let plan = Arc::new(Plan {
        url: args.url.clone(),
        size: usize::try_from(args.size).context("--size")?,
        epoch,
        interval: Duration::from_secs_f64(1.0 / args.rate),
        end: start + total,
        histogram: Mutex::new(report::new_histogram()),
        received: progress.counter(),
    });
    let connections = args.connections;
    let begins: Vec<Instant> = (0..connections)
        .map(|k| start + args.ramp_up.mul_f64(f64::from(k) / f64::from(connections)))
        .collect();
    let firsts: Vec<Instant> = begins.iter().map(|begin| *begin + plan.interval).collect();
    let (pacer, wakers) = Pacer::new(&firsts, plan.interval, plan.end);
    let pacing = tokio::spawn(pacer.run());
    let tasks: Vec<_> = begins
        .into_iter()
        .zip(wakers)
        .map(|(begin, waker)| tokio::spawn(connection(Arc::clone(&plan), begin, waker)))
        .collect();
    let outcomes = progress
        .watch(async {
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.context("a connection task panicked")?);
            }
            pacing.await.context("the pacer panicked")??;
            anyhow::Ok(outcomes)
        })
        .await?;
    let elapsed = start.elapsed();

    let mut sent = 0;
    let mut failed = 0;
    let mut first_error = None;
    for outcome in outcomes {
        match outcome {
            Ok(n) => sent += n,
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let histogram = plan
        .histogram
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut report = Report::new(
        "open-model",
        ClientKind::WsClient.name(),
        &args.url,
        "msg/s",
    )
    .param("connections", args.connections)
    .param("rate_per_connection", args.rate)
    .param("ramp_up_s", args.ramp_up.as_secs_f64())
    .param("duration_s", args.duration.as_secs_f64())
    .param("size", args.size);
    let received = histogram.len();
    report.timed(received, received * args.size, elapsed);
    report.errors = failed;
    report.figures.insert("sent".into(), sent.into());
    report
        .figures
        .insert("connections_failed".into(), failed.into());
    if let Some(error) = first_error {
        eprintln!("note: {failed} connections failed; the first: {error}");
        report.figures.insert("first_error".into(), error.into());
    }
    report.histogram(LATENCY, &histogram)?;
    Ok(report)
}

/// One connection: opens at `begin`, sends from one interval later on schedule (woken by
/// the pacer) until the end, then closes once every echo is in. Returns how many messages
/// it sent.
async fn connection(plan: Arc<Plan>, begin: Instant, due: Arc<Notify>) -> Result<u64> {
    tokio::time::sleep_until(TokioInstant::from_std(begin)).await;
    let conn = Conn::open(ClientKind::WsClient, &plan.url).await?;
    let (mut tx, rx) = conn.split()?;
    let receiver = tokio::spawn(receive(rx, Arc::clone(&plan)));
    let mut payload = vec![0x2a_u8; plan.size];
    let mut sent = 0_u64;
    loop {
        let intended = begin + plan.interval.mul_f64((sent + 1) as f64);
        if intended >= plan.end {
            break;
        }
        if intended > Instant::now() {
            tx.flush().await?;
            // A wake-up stored for a time already served (the connection was opening, or
            // was late and caught up) returns at once: look at the clock again.
            while intended > Instant::now() {
                due.notified().await;
            }
        }
        let at = u64::try_from((intended - plan.epoch).as_nanos()).unwrap_or(u64::MAX);
        stamp(&mut payload, at);
        tx.queue(&payload).await?;
        sent += 1;
    }
    tx.flush().await?;
    tx.close().await?;
    let received = receiver.await.context("a receiver panicked")??;
    if received != sent {
        bail!("sent {sent} messages, {received} echoes came back");
    }
    Ok(sent)
}

async fn receive(mut rx: Rx, plan: Arc<Plan>) -> Result<u64> {
    let mut received = 0;
    while let Some(echo) = rx.recv().await? {
        let echo = check_echo(Some(echo), plan.size)?;
        let latency = since_stamp(plan.epoch, echo.stamp);
        let mut histogram = plan.histogram.lock().unwrap_or_else(|e| e.into_inner());
        report::record(&mut histogram, latency);
        drop(histogram);
        received += 1;
        plan.received.fetch_add(1, Ordering::Relaxed);
    }
    Ok(received)
}
