//! `chaos` mode: a fault-injecting TCP proxy in front of any upstream, in the spirit of
//! toxiproxy. It forwards raw bytes (WebSocket, TLS or anything else over TCP) and adds the
//! faults in force: latency with jitter, a bandwidth limit, a slicer, a reset after N bytes
//! or T milliseconds, a close after N bytes, a black hole, and "down" (new connections are
//! reset as soon as they are accepted). An HTTP control API on a second port, named in the
//! ready line, changes them while it runs; changes reach open connections at once.
//!
//! It keeps the command-line contract of the other modes (ready line, stats lines, shutdown
//! on SIGINT/SIGTERM/stdin EOF, `stopped` line) with its own accept loop, since it is not a
//! WebSocket server.

pub mod conn;
pub mod control;
pub mod faults;
pub mod flags;
pub mod pace;
pub mod pipe;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::cli::ChaosArgs;
use crate::events::{self, Listening, Stopped};
use crate::shutdown::ShutdownSignal;
use crate::stats::Stats;
use crate::stats_line::{self, ExtraCounters};
use faults::Faults;
use upstream::Upstream;

/// How long open connections get to finish at shutdown (a graceful close drains for 1 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// File descriptors the process needs besides its connections.
const SPARE_FDS: u64 = 64;

/// The ready line of `chaos` mode: the usual fields (the `url` keeps the upstream's path),
/// then the upstream and the control API's URL.
#[derive(Debug, Serialize)]
struct ChaosListening<'a> {
    #[serde(flatten)]
    listening: Listening<'a>,
    upstream: String,
    control: String,
}

/// Counters of `chaos` mode's own, added to the `stats` and `stopped` lines.
#[derive(Debug, Default)]
pub struct ChaosCounters {
    /// Connections reset by `reset_after_bytes` or `reset_after_ms`.
    pub faults_reset: AtomicU64,
    /// Connections closed by `close_after_bytes`.
    pub faults_closed: AtomicU64,
    /// Connections reset on arrival because the proxy was down.
    pub refused_down: AtomicU64,
    /// Connections reset because the upstream could not be reached.
    pub upstream_failures: AtomicU64,
}

impl ChaosCounters {
    /// The counters by name.
    pub fn extra(&self) -> ExtraCounters {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ExtraCounters::from([
            ("faults_reset", get(&self.faults_reset)),
            ("faults_closed", get(&self.faults_closed)),
            ("refused_down", get(&self.refused_down)),
            ("upstream_failures", get(&self.upstream_failures)),
        ])
    }
}

/// What every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// Where connections go.
    pub upstream: Upstream,
    /// `--connect-timeout`.
    pub connect_timeout: Duration,
    /// The fault set, as the control API changes it.
    pub faults: watch::Receiver<Faults>,
    /// The shared counters (`bytes_in`: client to upstream, `bytes_out`: upstream to client).
    pub stats: Arc<Stats>,
    /// The mode's own counters.
    pub counters: ChaosCounters,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

/// Runs `test-servers chaos` until a shutdown signal.
pub async fn run(mode: &'static str, args: &ChaosArgs) -> anyhow::Result<()> {
    crate::fd_limit::raise(2 * u64::from(args.max_connections) + SPARE_FDS);
    let requested = SocketAddr::new(args.host, args.port);
    let listener = TcpListener::bind(requested).await.with_context(|| {
        format!("cannot listen on {requested} (is another server using that port? try --port 0)")
    })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let control_requested = SocketAddr::new(args.host, args.control_port);
    let control_listener = TcpListener::bind(control_requested)
        .await
        .with_context(|| format!("cannot listen on {control_requested} for the control API"))?;
    let control_addr = control_listener
        .local_addr()
        .context("cannot read the control API's address")?;
    let mut stop = ShutdownSignal::install(args.exit_on_stdin_eof)
        .context("cannot install signal handlers")?;

    let initial = Faults::from(&args.faults);
    // Held here until exit, so the connections' receivers never see the channel close.
    let (set_faults, faults) = watch::channel(initial);
    let set_faults = Arc::new(set_faults);
    let shared = Arc::new(Shared {
        upstream: args.upstream.clone(),
        connect_timeout: args.connect_timeout,
        faults,
        stats: Arc::new(Stats::default()),
        counters: ChaosCounters::default(),
        shutdown: CancellationToken::new(),
    });
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(args.max_connections as usize));

    events::emit(&ChaosListening {
        listening: Listening {
            event: "listening",
            mode,
            addr: addr.to_string(),
            url: format!("{}://{addr}{}", args.upstream.scheme, args.upstream.path),
        },
        upstream: args.upstream.authority(),
        control: format!("http://{control_addr}/"),
    });
    tracing::info!(%addr, %control_addr, upstream = %args.upstream.authority(),
        faults = %initial.to_json(), "listening");
    tracker.spawn(control::serve(
        control_listener,
        Arc::clone(&set_faults),
        shared.shutdown.clone(),
        tracker.clone(),
    ));
    if !args.stats_interval.is_zero() {
        let counters = Arc::clone(&shared);
        tracker.spawn(stats_line::report(
            mode,
            args.stats_interval,
            Arc::clone(&shared.stats),
            move || counters.counters.extra(),
            shared.shutdown.clone(),
        ));
    }

    let stop = stop.wait();
    tokio::pin!(stop);
    let reason = loop {
        let (tcp, peer) = tokio::select! {
            reason = &mut stop => break reason,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if shared.faults.borrow().down {
            tracing::debug!(%peer, "down: resetting a new connection");
            Stats::bump(&shared.counters.refused_down);
            Stats::bump(&shared.stats.connections_rejected);
            conn::reset(tcp);
            continue;
        }
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "at --max-connections: resetting a new connection");
            Stats::bump(&shared.stats.connections_rejected);
            conn::reset(tcp);
            continue;
        };
        let shared = Arc::clone(&shared);
        tracker.spawn(async move { conn::proxy(tcp, peer, &shared, slot).await });
    };

    tracing::info!(reason, "shutting down");
    drop(listener);
    shared.shutdown.cancel();
    tracker.close();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_ok();
    let extra = shared
        .counters
        .extra()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), serde_json::Value::from(value)))
        .collect();
    events::emit(&Stopped {
        event: "stopped",
        mode,
        reason,
        clean: drained,
        counters: shared.stats.snapshot(),
        extra,
    });
    Ok(())
}
