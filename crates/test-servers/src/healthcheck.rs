//! `test-servers healthcheck`: asks a running server whether it serves, for a container's
//! `HEALTHCHECK`, a Kubernetes probe or an init container that waits for a server. The
//! images ship no shell and no curl, so the binary checks itself.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use ws_client::{Error, TransportConfig, WebSocketConnection};

use crate::events;

/// Options of `test-servers healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server to check. The check makes a WebSocket upgrade request there: any HTTP
    /// answer means the server is up and serving (perf answers 404 on `/`, a full server
    /// 503), unless --require-upgrade is given.
    #[arg(long, default_value = "ws://127.0.0.1:9001/")] // tidy:allow-port: the images' port
    pub url: String,

    /// Deadline of one attempt (connect, the upgrade's answer and a courtesy close), e.g.
    /// 2s.
    #[arg(long, default_value = "2s", value_parser = crate::cli::parse_duration)]
    pub timeout: Duration,

    /// Keep trying (every 250 ms) until the server answers or this much time has passed,
    /// e.g. 60s (an attempt begun before then may run its --timeout past it); 0 tries
    /// once. For an init container that waits for its server.
    #[arg(long, default_value = "0s", value_parser = crate::cli::parse_duration)]
    pub wait: Duration,

    /// Count the server as healthy only if it accepts the upgrade (HTTP 101).
    #[arg(long)]
    pub require_upgrade: bool,
}

/// Printed on stdout when the server answered as required.
#[derive(Debug, Serialize)]
struct Healthy<'a> {
    /// Always `"healthy"`.
    event: &'static str,
    /// The URL checked.
    url: &'a str,
    /// The HTTP status of the server's answer to the upgrade request.
    status: u16,
    /// Attempts made, this one included.
    attempts: u32,
    /// Milliseconds from the first attempt to the answer.
    elapsed_ms: u64,
}

/// Pause between two attempts when --wait is given.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Checks the server; an error (exit status 1) says why it is not healthy.
pub async fn run(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt(args).await {
            Ok(status) => {
                events::emit(&Healthy {
                    event: "healthy",
                    url: &args.url,
                    status,
                    attempts,
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
                return Ok(());
            }
            Err(e) if started.elapsed() + RETRY_PAUSE < args.wait => {
                tracing::debug!(error = %format!("{e:#}"), attempts, "not healthy yet");
                tokio::time::sleep(RETRY_PAUSE).await; // tidy:allow-sleep (the retry pause)
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("{} is not healthy after {attempts} attempt(s)", args.url)
                });
            }
        }
    }
}

/// One attempt: the HTTP status the server answered with, if it counts as healthy. The
/// whole attempt, the courtesy close included, ends within --timeout, so that the check
/// keeps to the deadline a HEALTHCHECK or a probe gives it.
async fn attempt(args: &HealthcheckArgs) -> anyhow::Result<u16> {
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut config = TransportConfig::new(args.url.as_str());
    config.connect_timeout = args.timeout;
    config.close_timeout = args.timeout;
    let mut connection = WebSocketConnection::new(config).await?;
    match connection.connect("").await {
        Ok(()) => {
            // A courtesy close, in what is left of the deadline; the server answered the
            // upgrade, which is what counts, so an unanswered close does not matter.
            let close = connection.close(1000, "healthcheck");
            let _ = tokio::time::timeout_at(deadline, close).await;
            Ok(101)
        }
        Err(Error::HandshakeRejected {
            status: Some(status),
            reason,
            ..
        }) => {
            if args.require_upgrade {
                bail!("the server answered the upgrade with HTTP {status}: {reason}");
            }
            Ok(status)
        }
        Err(e) => Err(e.into()),
    }
}
