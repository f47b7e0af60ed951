//! The accept loop every mode shares: bind, ready line, connection limit, graceful
//! shutdown and the final `stopped` line, with `stats` lines on the side. A mode supplies
//! a [`Service`] that serves each accepted TCP connection: the WebSocket modes a
//! [`Handler`](crate::upgrade::Handler) wrapped in [`WebSocket`](crate::upgrade::WebSocket)
//! (TLS, upgrade handshake, admission), `security` and `chaos` services of their own, which
//! need the raw stream (attacks that start before and during the handshake; a TCP proxy).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::cli::ServerArgs;
use crate::events::{self, Listening, Stopped};
use crate::shutdown::ShutdownSignal;
use crate::stats::Stats;
use crate::stats_line::{self, ExtraCounters};

/// How long open connections get to finish (their close handshakes) at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// File descriptors the process needs besides its connections (listener, stdio, runtime).
const SPARE_FDS: u64 = 64;

/// Where [`run`] listens and what it promises on the command line: the options every
/// mode has (from [`ServerArgs`], or a mode's own arguments).
#[derive(Debug, Clone)]
pub struct Listen {
    /// `--host`.
    pub host: IpAddr,
    /// `--port` (0 picks a free one).
    pub port: u16,
    /// `--max-connections`: connections served at once.
    pub max_connections: u32,
    /// `--stats-interval`, or `None` when no `stats` lines are wanted.
    pub stats_interval: Option<Duration>,
    /// `--exit-on-stdin-eof`.
    pub exit_on_stdin_eof: bool,
}

impl From<&ServerArgs> for Listen {
    fn from(args: &ServerArgs) -> Self {
        Self {
            host: args.host,
            port: args.port,
            max_connections: args.max_connections,
            stats_interval: args.stats_interval(),
            exit_on_stdin_eof: args.exit_on_stdin_eof,
        }
    }
}

/// What every connection of a server shares.
#[derive(Debug, Clone)]
pub struct Context {
    /// The server's counters.
    pub stats: Arc<Stats>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Tasks the server waits for (within the grace period) before its `stopped` line.
    pub tasks: TaskTracker,
}

/// A server mode at the level of TCP connections.
pub trait Service: Send + Sync + 'static {
    /// File descriptors one connection holds (a proxy holds two), for the open-file limit.
    const FDS_PER_CONNECTION: u64 = 1;

    /// Runs once the listener is bound, before the ready line: fills in the ready line
    /// (`url`, members of the mode's own) and starts what the mode runs beside its
    /// connections (on `context.tasks`, until `context.shutdown`). An error stops the
    /// server before it is ready.
    fn start(
        &self,
        ready: &mut Listening<'_>,
        context: &Context,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        let _ = (ready, context);
        async { Ok(()) }
    }

    /// Serves one accepted connection until it ends. `admitted` is false when
    /// `--max-connections` connections are already being served: the service refuses it
    /// (HTTP 503). The service keeps `context.stats`' connection counters.
    fn serve_tcp(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        admitted: bool,
        context: Context,
    ) -> impl Future<Output = ()> + Send + 'static;

    /// Counters of the mode's own, added to each `stats` line (none by default).
    fn extra_stats(&self) -> ExtraCounters {
        ExtraCounters::new()
    }

    /// Members the mode adds to the `stopped` line (none by default).
    fn stopped_extra(&self) -> Map<String, Value> {
        Map::new()
    }
}

/// Runs `service` under the shared command-line contract until a shutdown signal.
pub async fn run<S: Service>(
    mode: &'static str,
    args: impl Into<Listen>,
    service: S,
) -> anyhow::Result<()> {
    let args: Listen = args.into();
    crate::fd_limit::raise(S::FDS_PER_CONNECTION * u64::from(args.max_connections) + SPARE_FDS);
    let requested = SocketAddr::new(args.host, args.port);
    let listener = TcpListener::bind(requested).await.with_context(|| {
        format!("cannot listen on {requested} (is another server using that port? try --port 0)")
    })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let mut stop = ShutdownSignal::install(args.exit_on_stdin_eof)
        .context("cannot install signal handlers")?;
    let tracker = TaskTracker::new();
    let context = Context {
        stats: Arc::new(Stats::default()),
        shutdown: CancellationToken::new(),
        tasks: tracker.clone(),
    };
    let slots = Arc::new(Semaphore::new(args.max_connections as usize));
    let service = Arc::new(service);

    let mut ready = Listening::new(mode, addr.to_string(), format!("ws://{addr}/"));
    service.start(&mut ready, &context).await?;
    events::emit(&ready);
    tracing::info!(%addr, mode, "listening");
    if let Some(interval) = args.stats_interval {
        let service = Arc::clone(&service);
        tracker.spawn(stats_line::report(
            mode,
            interval,
            Arc::clone(&context.stats),
            move || service.extra_stats(),
            context.shutdown.clone(),
        ));
    }

    let stop = stop.wait();
    tokio::pin!(stop);
    let reason = loop {
        let (tcp, peer) = tokio::select! {
            reason = &mut stop => break reason,
            accepted = accept(&listener) => accepted,
        };
        let slot = Arc::clone(&slots).try_acquire_owned().ok();
        let serving = Arc::clone(&service).serve_tcp(tcp, peer, slot.is_some(), context.clone());
        tracker.spawn(async move {
            serving.await;
            drop(slot);
        });
    };

    tracing::info!(reason, "shutting down");
    drop(listener);
    context.shutdown.cancel();
    tracker.close();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_ok();
    events::emit(&Stopped {
        event: "stopped",
        mode,
        reason,
        clean: drained,
        counters: context.stats.snapshot(),
        extra: service.stopped_extra(),
    });
    Ok(())
}

/// The next connection on `listener`. A failed accept (out of file descriptors and the
/// like) is logged and retried after a pause instead of spinning.
pub async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(pair) => return pair,
            Err(e) => {
                let on = listener.local_addr().ok();
                tracing::warn!(error = %e, ?on, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
