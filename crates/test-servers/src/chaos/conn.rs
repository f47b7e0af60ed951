//! One proxied connection: connect the upstream, forward both ways (`pipe`), and end it the
//! way the faults say: a reset (RST on both sockets), a graceful close (FIN both ways), the
//! peers' own close, or the server's shutdown.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ChaosServer;
use super::faults::{Cut, Faults, Way};
use super::pipe;
use crate::server::Context;
use crate::stats::Stats;

/// How long a graceful close waits for the peers to finish sending before the sockets
/// are dropped.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// Why a connection ends before its peers close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A fault cut it.
    Cut(Cut),
    /// A socket failed (a peer reset it): the other peer is reset too.
    Failed,
}

/// What both directions of one connection share.
#[derive(Debug)]
pub struct Conn {
    /// The fault set, as it changes.
    pub faults: watch::Receiver<Faults>,
    /// When the connection was accepted (`reset_after_ms` counts from here).
    pub opened: Instant,
    /// Cancelled when the connection must end (a cut, a failure, or shutdown).
    pub stop: CancellationToken,
    /// The server's counters.
    pub stats: std::sync::Arc<Stats>,
    /// Bytes forwarded so far, both ways together.
    forwarded: AtomicU64,
    /// Why the connection ends; the first reason wins.
    end: Mutex<Option<End>>,
}

impl Conn {
    /// Ends the connection for `end` (unless it is already ending for another reason).
    pub fn finish(&self, end: End) {
        let mut slot = self.end.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(end);
        self.stop.cancel();
    }

    /// Why the connection ended, if not by its peers or shutdown.
    fn end(&self) -> Option<End> {
        *self.end.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims up to `wanted` bytes of the byte limit (if there is one) for a write and
    /// counts them as forwarded; returns how many may be written.
    pub fn reserve(&self, wanted: usize, faults: &Faults) -> usize {
        let limit = faults.byte_limit().map_or(u64::MAX, |(limit, _)| limit);
        let mut granted = 0;
        let _ = self
            .forwarded
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |done| {
                granted = limit.saturating_sub(done).min(wanted as u64);
                Some(done + granted)
            });
        granted as usize
    }

    /// Ends the connection if a byte limit was reached; returns whether it did.
    pub fn check_limits(&self, faults: &Faults) -> bool {
        match faults.byte_limit() {
            Some((limit, cut)) if self.forwarded.load(Ordering::Relaxed) >= limit => {
                self.finish(End::Cut(cut));
                true
            }
            _ => false,
        }
    }

    /// Counts `bytes` written `way` in the server's counters.
    pub fn count(&self, way: Way, bytes: usize) {
        let counter = match way {
            Way::Upstream => &self.stats.bytes_in,
            Way::Downstream => &self.stats.bytes_out,
        };
        counter.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Proxies one accepted connection until it ends. `bytes_in` counts client-to-upstream
/// bytes, `bytes_out` the other way.
pub async fn proxy(client: TcpStream, peer: SocketAddr, chaos: &ChaosServer, context: &Context) {
    let opened = Instant::now();
    let upstream = match chaos.upstream.connect(chaos.connect_timeout).await {
        Ok(upstream) => upstream,
        Err(e) => {
            tracing::warn!(%peer, upstream = %chaos.upstream.authority(), error = %e,
                "cannot reach the upstream; resetting the client");
            Stats::bump(&chaos.counters.upstream_failures);
            Stats::bump(&context.stats.connections_rejected);
            reset(client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    Stats::bump(&context.stats.connections_accepted);
    context
        .stats
        .connections_active
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%peer, "proxying");

    let conn = Conn {
        faults: chaos.faults.clone(),
        opened,
        stop: context.shutdown.child_token(),
        stats: std::sync::Arc::clone(&context.stats),
        forwarded: AtomicU64::new(0),
        end: Mutex::new(None),
    };
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let pipes = async {
        tokio::join!(
            pipe::forward(Way::Upstream, client_read, upstream_write, &conn),
            pipe::forward(Way::Downstream, upstream_read, client_write, &conn),
        )
    };
    tokio::pin!(pipes);
    let finished = tokio::select! {
        halves = &mut pipes => Some(halves),
        () = supervise(&conn) => None,
    };
    // Once `stop` is cancelled, both directions return at their next step.
    let ((client_read, upstream_write), (upstream_read, client_write)) = match finished {
        Some(halves) => halves,
        None => pipes.await,
    };
    let client = client_read
        .reunite(client_write)
        .expect("halves of one socket");
    let upstream = upstream_read
        .reunite(upstream_write)
        .expect("halves of one socket");

    let end = conn.end();
    tracing::debug!(%peer, ?end, "connection ends");
    match end {
        Some(End::Cut(Cut::Reset)) => {
            Stats::bump(&chaos.counters.faults_reset);
            reset(client);
            reset(upstream);
        }
        Some(End::Failed) => {
            reset(client);
            reset(upstream);
        }
        Some(End::Cut(Cut::Close)) => {
            Stats::bump(&chaos.counters.faults_closed);
            close_gracefully(client, upstream).await;
        }
        // The peers closed both ways, or the server is stopping.
        None => {}
    }
    context
        .stats
        .connections_active
        .fetch_sub(1, Ordering::Relaxed);
}

/// Watches the connection's time limit and byte limits as the faults change; returns once
/// the connection must end (`stop` is cancelled).
async fn supervise(conn: &Conn) {
    let mut faults = conn.faults.clone();
    loop {
        let now = *faults.borrow_and_update();
        if conn.check_limits(&now) {
            return;
        }
        let deadline = now
            .reset_after_ms
            .map(|ms| conn.opened + Duration::from_millis(ms));
        let timer = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = conn.stop.cancelled() => return,
            () = timer => {
                conn.finish(End::Cut(Cut::Reset));
                return;
            }
            changed = faults.changed() => {
                if changed.is_err() {
                    // The server is stopping; `stop` follows.
                    conn.stop.cancelled().await;
                    return;
                }
            }
        }
    }
}

/// Closes `tcp` with a reset: `SO_LINGER` 0, then drop, so the peer gets RST instead of FIN.
pub fn reset(tcp: TcpStream) {
    // A zero linger never blocks; tokio deprecates `set_linger` only for non-zero values
    // (its `set_zero_linger` needs tokio 1.50, newer than the workspace's floor).
    #[allow(deprecated)]
    let _ = tcp.set_linger(Some(Duration::ZERO));
    drop(tcp);
}

/// Sends FIN both ways, then reads what the peers still send (for at most
/// [`CLOSE_DRAIN`]) so that unread bytes do not turn the close into a reset.
async fn close_gracefully(mut client: TcpStream, mut upstream: TcpStream) {
    let _ = client.shutdown().await;
    let _ = upstream.shutdown().await;
    let _ = tokio::time::timeout(CLOSE_DRAIN, async {
        tokio::join!(drain(&mut client), drain(&mut upstream))
    })
    .await;
}

/// Reads and discards until end of file or an error.
async fn drain(tcp: &mut TcpStream) {
    let mut scratch = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut scratch).await {
        if n == 0 {
            break;
        }
    }
}
