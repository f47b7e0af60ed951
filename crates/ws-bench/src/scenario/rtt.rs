//! `rtt`: sequential round trips on one connection: send one message, wait for its echo.

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::RttArgs;
use crate::clients::Conn;
use crate::progress::{Budget, Progress};
use crate::report::{self, LATENCY, Report};
use crate::scenario::check_echo;

pub(crate) async fn run(args: &RttArgs) -> Result<Report> {
    let planned = Budget::from_args(&args.budget, 10_000);
    let progress = Progress::new("rtt", planned, args.common.stall_timeout);
    let done = progress.counter();
    let payload = vec![0x2a_u8; args.size];
    let mut conn = Conn::open(args.client, &args.url).await?;
    let mut histogram = report::new_histogram();

    let (count, elapsed) = progress
        .watch(async {
            for _ in 0..args.warmup {
                conn.send(&payload).await?;
                check_echo(conn.recv().await?, args.size)?;
            }
            let budget = Budget::start(planned);
            let started = Instant::now();
            let mut count = 0;
            while !budget.exhausted(count) {
                let sent = Instant::now();
                conn.send(&payload).await?;
                check_echo(conn.recv().await?, args.size)?;
                report::record(&mut histogram, sent.elapsed());
                count += 1;
                done.store(count, Ordering::Relaxed);
            }
            anyhow::Ok((count, started.elapsed()))
        })
        .await
        .context("round trips failed")?;
    conn.close().await.context("closing the connection")?;

    let mut report = Report::new("rtt", args.client.name(), &args.url, "msg/s")
        .param("size", args.size)
        .param("warmup", args.warmup);
    report.timed(count, count * args.size as u64, elapsed);
    report.histogram(LATENCY, &histogram)?;
    Ok(report)
}
