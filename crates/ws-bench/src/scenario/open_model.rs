//! `open-model`: N connections, each sending at a fixed rate whatever the server does, with
//! latency measured from each message's *intended* send time, so a stall shows up in the
//! percentiles instead of silently slowing the sender (no coordinated omission).
//!
//! Connection k opens at its place in the ramp-up (`begin`) and sends its first message one
//! interval later, so no message's latency includes the connection's own handshake. The
//! `latency` figures are of messages due once every connection is open (the `--duration`
//! after the ramp-up); those due during the ramp-up, while connections are still being
//! made, are reported apart as `ramp_up_latency`. One
//! [`Pacer`] wakes every sender at its due times to the microsecond (a tokio timer per
//! connection fired on a 1 ms wheel: up to 2 ms late, in bursts, all counted as latency).
//!
//! `--segment I/N` runs the connections k of the whole run with k mod N = I, each opening
//! at its place in the whole run's ramp-up, so N workers together make the whole schedule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use tokio::sync::Notify;
use tokio::time::Instant as TokioInstant;

use crate::cli::{ClientKind, OpenModelArgs};
use crate::clients::{Conn, Rx, stamp};
use crate::compression::cpu;
use crate::progress::{Planned, Progress};
use crate::report::{self, LATENCY, Report};
use crate::scenario::pacer::Pacer;
use crate::scenario::{check_echo, since_stamp};

/// Time between start-up and the first connection's first intended send.
const LEAD_IN: Duration = Duration::from_millis(20);
/// The histogram of messages due during the ramp-up.
const RAMP_UP_LATENCY: &str = "ramp_up_latency";

#[derive(Debug)]
struct Plan {
    url: String,
    client: ClientKind,
    size: usize,
    epoch: Instant,
    interval: Duration,
    end: Instant,
    /// Nanoseconds since `epoch` at which the ramp-up ends.
    steady_from: u64,
    /// Latency of messages due after the ramp-up, and of those due during it.
    histograms: Mutex<[Histogram<u64>; 2]>,
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
    let cpu_before = cpu::client();
    let epoch = Instant::now();
    let start = epoch + LEAD_IN;
    let plan = Arc::new(Plan {
        url: args.url.clone(),
        client: args.client,
        size: usize::try_from(args.size).context("--size")?,
        epoch,
        interval: Duration::from_secs_f64(1.0 / args.rate),
        end: start + total,
        steady_from: u64::try_from((start + args.ramp_up - epoch).as_nanos()).unwrap_or(u64::MAX),
        histograms: Mutex::new([report::new_histogram(), report::new_histogram()]),
        received: progress.counter(),
    });
    // This segment's connections, each at its place in the whole run's ramp-up.
    let segment = args.segment.segment;
    let connections = u64::from(args.connections);
    let begins: Vec<Instant> = (0..segment.share(connections))
        .map(|local| segment.global(local) as f64 / connections as f64)
        .map(|share| start + args.ramp_up.mul_f64(share))
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
    let cpu_used = cpu::client()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));

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
    let [histogram, ramp_up] = plan
        .histograms
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut report = Report::new("open-model", args.client.name(), &args.url, "msg/s")
        .param("connections", args.connections)
        .param("rate_per_connection", args.rate)
        .param("ramp_up_s", args.ramp_up.as_secs_f64())
        .param("duration_s", args.duration.as_secs_f64())
        .param("size", args.size);
    let received = histogram.len() + ramp_up.len();
    report.timed(received, received * args.size, elapsed);
    report.errors = failed;
    // What the client itself used: beside the latency, it says whether the client had the
    // CPU it needed (a tail from a starved client is not the server's).
    if let Some(used) = cpu_used {
        report
            .figures
            .insert("client_cpu_s".into(), used.as_secs_f64().into());
        report.figures.insert(
            "client_cpu_us_per_message".into(),
            (used.as_secs_f64() * 1e6 / received.max(1) as f64).into(),
        );
    }
    report.segment = Some(segment);
    if segment.is_part() {
        let share = segment.share(connections);
        report
            .figures
            .insert("segment_connections".into(), share.into());
    }
    report.figures.insert("sent".into(), sent.into());
    report
        .figures
        .insert("connections_failed".into(), failed.into());
    if let Some(error) = first_error {
        eprintln!("note: {failed} connections failed; the first: {error}");
        report.figures.insert("first_error".into(), error.into());
    }
    report.histogram(LATENCY, &histogram)?;
    report.histogram(RAMP_UP_LATENCY, &ramp_up)?;
    Ok(report)
}

/// One connection: opens at `begin`, sends from one interval later on schedule (woken by
/// the pacer) until the end, then closes once every echo is in. Returns how many messages
/// it sent.
async fn connection(plan: Arc<Plan>, begin: Instant, due: Arc<Notify>) -> Result<u64> {
    tokio::time::sleep_until(TokioInstant::from_std(begin)).await;
    let conn = Conn::open(plan.client, &plan.url).await?;
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
        let during_ramp_up = usize::from(echo.stamp < plan.steady_from);
        let mut histograms = plan.histograms.lock().unwrap_or_else(|e| e.into_inner());
        report::record(&mut histograms[during_ramp_up], latency);
        drop(histograms);
        received += 1;
        plan.received.fetch_add(1, Ordering::Relaxed);
    }
    Ok(received)
}
