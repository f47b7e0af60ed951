//! `chaos` mode: a fault-injecting TCP proxy in front of any upstream, in the spirit of
//! toxiproxy. It forwards raw bytes (WebSocket, TLS or anything else over TCP) and adds the
//! faults in force: latency with jitter, a bandwidth limit, a slicer, a reset after N bytes
//! or T milliseconds, a close after N bytes, a black hole, and "down" (new connections are
//! reset as soon as they are accepted). An HTTP control API on a second port, named in the
//! ready line, changes them while it runs; changes reach open connections at once.
//!
//! It runs on the shared accept loop (`server::run`: ready line, stats lines, shutdown on
//! SIGINT/SIGTERM/stdin EOF, `stopped` line) as a [`Service`] that takes the raw TCP
//! stream, since it is not a WebSocket server; its control API starts with it.

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

use anyhow::Context as _;
use serde_json::{Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::cli::ChaosArgs;
use crate::events::Listening;
use crate::server::{self, Context, Listen, Service};
use crate::stats::Stats;
use crate::stats_line::ExtraCounters;
use faults::Faults;
use upstream::Upstream;

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

/// The proxy: a [`Service`] on the shared accept loop, taking raw connections.
#[derive(Debug)]
pub struct ChaosServer {
    /// Where connections go.
    pub upstream: Upstream,
    /// `--connect-timeout`.
    pub connect_timeout: Duration,
    /// The fault set, as the control API changes it.
    pub faults: watch::Receiver<Faults>,
    /// What the control API changes it with; held here until exit, so the connections'
    /// receivers never see the channel close.
    set_faults: Arc<watch::Sender<Faults>>,
    /// Where the control API listens (`--host`, `--control-port`).
    control: SocketAddr,
    /// The mode's own counters.
    pub counters: ChaosCounters,
}

/// Runs `test-servers chaos` until a shutdown signal.
pub async fn run(mode: &'static str, args: &ChaosArgs) -> anyhow::Result<()> {
    let (set_faults, faults) = watch::channel(Faults::from(&args.faults));
    let chaos = ChaosServer {
        upstream: args.upstream.clone(),
        connect_timeout: args.connect_timeout,
        faults,
        set_faults: Arc::new(set_faults),
        control: SocketAddr::new(args.host, args.control_port),
        counters: ChaosCounters::default(),
    };
    server::run(mode, args, chaos).await
}

impl From<&ChaosArgs> for Listen {
    fn from(args: &ChaosArgs) -> Self {
        Self {
            host: args.host,
            port: args.port,
            max_connections: args.max_connections,
            stats_interval: (!args.stats_interval.is_zero()).then_some(args.stats_interval),
            exit_on_stdin_eof: args.exit_on_stdin_eof,
        }
    }
}

impl Service for ChaosServer {
    /// The client's socket and the upstream's.
    const FDS_PER_CONNECTION: u64 = 2;

    /// Binds the control API and starts it; the ready line keeps the upstream's scheme and
    /// path in `url` and adds `upstream` and `control`.
    async fn start(&self, ready: &mut Listening<'_>, context: &Context) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.control)
            .await
            .with_context(|| format!("cannot listen on {} for the control API", self.control))?;
        let control = listener
            .local_addr()
            .context("cannot read the control API's address")?;
        ready.url = format!(
            "{}://{}{}",
            self.upstream.scheme, ready.addr, self.upstream.path
        );
        ready.add("upstream", self.upstream.authority());
        ready.add("control", format!("http://{control}/"));
        let initial = *self.faults.borrow();
        tracing::info!(%control, upstream = %self.upstream.authority(),
            faults = %initial.to_json(), "chaos proxy");
        context.tasks.spawn(control::serve(
            listener,
            Arc::clone(&self.set_faults),
            context.shutdown.clone(),
            context.tasks.clone(),
        ));
        Ok(())
    }

    /// Resets the connection at once when the proxy is down or at `--max-connections`;
    /// otherwise proxies it.
    async fn serve_tcp(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        admitted: bool,
        context: Context,
    ) {
        let down = self.faults.borrow().down;
        if down {
            tracing::debug!(%peer, "down: resetting a new connection");
            Stats::bump(&self.counters.refused_down);
            Stats::bump(&context.stats.connections_rejected);
            conn::reset(tcp);
        } else if !admitted {
            tracing::debug!(%peer, "at --max-connections: resetting a new connection");
            Stats::bump(&context.stats.connections_rejected);
            conn::reset(tcp);
        } else {
            conn::proxy(tcp, peer, &self, &context).await;
        }
    }

    fn extra_stats(&self) -> ExtraCounters {
        self.counters.extra()
    }

    fn stopped_extra(&self) -> Map<String, Value> {
        self.counters
            .extra()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), Value::from(value)))
            .collect()
    }
}
