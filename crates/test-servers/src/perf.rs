//! `perf` mode: a benchmark target that is never the bottleneck. `/echo` echoes in batches
//! (as `echo` mode), `/sink` counts and discards (both on `ws_client::wire`, with
//! permessage-deflate if the client offers it), `/source?count=N&size=S` pushes N binary
//! messages as fast as the client reads them (on tungstenite, uncompressed), then closes
//! with 1000.
//!
//! An unknown path, parameter or a bad value is closed with 1008 and a reason naming the
//! valid paths (the handshake itself always succeeds, so any client can read the reason).

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{Bytes, Message, protocol::frame::coding::CloseCode};

use ws_client::wire::ReadLimits;

use crate::echo::serve_bursts;
use crate::session::{self, Event, ServerStream, Session, WriteStop};
use crate::target;
use crate::upgrade::Handler;
use crate::wire_session::WireSession;

/// The valid paths, as named in the close reason for an unknown one.
pub const PATHS: &str = "/echo, /sink or /source?count=N&size=S";
/// Most bytes of `/source` payloads prepared in one allocation.
const SOURCE_BATCH_BYTES: usize = 64 << 10;
/// Most `/source` messages prepared at once (for tiny messages).
const SOURCE_BATCH_MESSAGES: usize = 1024;

/// The perf server.
#[derive(Debug, Clone, Copy)]
pub struct PerfServer {
    /// Messages `/source` sends without `count=`.
    pub source_count: u64,
    /// Bytes per `/source` message without `size=`.
    pub source_size: usize,
    /// Largest `size=` allowed (`--max-message-size`), so a client cannot make the server
    /// allocate without bound.
    pub max_message_size: usize,
    /// What `/sink` and `/echo` read with (see `wire_session::perf_limits`).
    pub limits: ReadLimits,
}

/// What a connection asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Echo,
    Sink,
    Source { count: u64, size: usize },
}

impl Handler for PerfServer {
    /// `/echo` and `/sink` are on `ws_client::wire`; `/source` is on tungstenite.
    fn deflate_on(path: &str) -> bool {
        matches!(path, "/echo" | "/sink")
    }

    async fn serve(&self, mut ws: ServerStream, session: Session) {
        match self.route(&session.target) {
            Ok(Route::Echo) => serve_bursts(WireSession::new(ws, session, self.limits), true).await,
            Ok(Route::Sink) => {
                serve_bursts(WireSession::new(ws, session, self.limits), false).await
            }
            Ok(Route::Source { count, size }) => source(ws, session, count, size).await,
            Err(reason) => {
                tracing::debug!(target = session.target, %reason, "refusing connection");
                let reason = target::close_reason(&reason);
                session::close_gracefully(&mut ws, CloseCode::Policy, reason).await;
            }
        }
    }
}

impl PerfServer {
    /// The route for a request target, or why it is refused.
    fn route(&self, request_target: &str) -> Result<Route, String> {
        let (path, query) = target::split(request_target);
        match path {
            "/echo" | "/sink" if !query.is_empty() => {
                Err(format!("{path} takes no parameters; use {PATHS}"))
            }
            "/echo" => Ok(Route::Echo),
            "/sink" => Ok(Route::Sink),
            "/source" => {
                let mut count = self.source_count;
                let mut size = self.source_size;
                for (key, value) in target::query_pairs(query) {
                    let number = || {
                        value
                            .parse::<u64>()
                            .map_err(|_| format!("{key}={value} is not a number; use {PATHS}"))
                    };
                    match key {
                        "count" => count = number()?,
                        "size" => size = usize::try_from(number()?).unwrap_or(usize::MAX),
                        _ => return Err(format!("unknown parameter {key:?}; use {PATHS}")),
                    }
                }
                if size > self.max_message_size {
                    return Err(format!(
                        "size={size} exceeds --max-message-size {}",
                        self.max_message_size
                    ));
                }
                Ok(Route::Source { count, size })
            }
            _ => Err(format!("unknown path {path:?}; use {PATHS}")),
        }
    }
}

/// Sends `count` binary messages of `size` bytes, numbered from 0 in their first 8 bytes
/// (big-endian) when `size >= 8`, then closes with 1000. Writes go out whenever the write
/// buffer passes its threshold; between batches, anything the client sent is read (a close
/// ends the stream early). Every write is bounded by [`Session::write`]: a client that
/// stops reading is dropped after the stall timeout, and at shutdown the push stops for a
/// 1001 close.
async fn source(mut ws: ServerStream, session: Session, count: u64, size: usize) {
    let mut next = 0u64;
    while next < count {
        // A write that is done at once does not look at the shutdown: look here.
        if session.shutdown.is_cancelled() {
            return source_stopped(&mut ws, WriteStop::Shutdown, next).await;
        }
        let batch = batch_len(count - next, size);
        let payloads = numbered_payloads(next, batch, size);
        for k in 0..batch {
            let payload = Message::Binary(payloads.slice(k * size..(k + 1) * size));
            if let Err(stop) = session.write(session.feed(&mut ws, payload)).await {
                return source_stopped(&mut ws, stop, next + k as u64).await;
            }
        }
        next += batch as u64;
        while let Some(event) = session.next_ready(&mut ws).await {
            match event {
                Event::Ended | Event::Failed => return,
                // A close is answered by tungstenite; the next feed then fails.
                _ => {}
            }
        }
    }
    match session.write(ws.flush()).await {
        Ok(()) => session::close_gracefully(&mut ws, CloseCode::Normal, "source done").await,
        Err(stop) => source_stopped(&mut ws, stop, count).await,
    }
}

/// Ends a `/source` whose write did not finish: at shutdown with a 1001 close (bounded),
/// otherwise (the client went away or stopped reading) by dropping the connection.
async fn source_stopped(ws: &mut ServerStream, stop: WriteStop, sent: u64) {
    match stop {
        WriteStop::Shutdown => {
            session::close_gracefully(ws, CloseCode::Away, "server shutting down").await;
        }
        WriteStop::Failed(error) => {
            tracing::debug!(%error, sent, "source stopped: the client went away");
        }
        WriteStop::Stalled => tracing::debug!(sent, "source stopped: the client stopped reading"),
    }
}

/// How many messages to prepare at once: about [`SOURCE_BATCH_BYTES`], at least one.
fn batch_len(remaining: u64, size: usize) -> usize {
    let by_bytes = (SOURCE_BATCH_BYTES / size.max(1)).clamp(1, SOURCE_BATCH_MESSAGES);
    usize::try_from(remaining).map_or(by_bytes, |remaining| remaining.min(by_bytes))
}

/// `batch` payloads of `size` bytes in one buffer; payload `k` starts with `first + k` as
/// a big-endian `u64` when `size >= 8`, and is zero otherwise.
fn numbered_payloads(first: u64, batch: usize, size: usize) -> Bytes {
    let mut buffer = vec![0u8; batch * size];
    if size >= 8 {
        for (k, payload) in buffer.chunks_exact_mut(size).enumerate() {
            payload[..8].copy_from_slice(&(first + k as u64).to_be_bytes());
        }
    }
    Bytes::from(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: PerfServer = PerfServer {
        source_count: 7,
        source_size: 16,
        max_message_size: 1024,
        limits: ReadLimits {
            message: 1024,
            frame: 1024,
            read_size: 4096,
        },
    };

    #[test]
    fn paths_route_with_defaults_from_the_flags() {
        assert_eq!(SERVER.route("/echo"), Ok(Route::Echo));
        assert_eq!(SERVER.route("/sink"), Ok(Route::Sink));
        assert_eq!(
            SERVER.route("/source"),
            Ok(Route::Source { count: 7, size: 16 })
        );
        assert_eq!(
            SERVER.route("/source?count=3&size=1024"),
            Ok(Route::Source {
                count: 3,
                size: 1024
            })
        );
    }

    #[test]
    fn bad_targets_are_refused_with_a_reason() {
        for bad in [
            "/",
            "/nope",
            "/sink?x=1",
            "/source?count=-1",
            "/source?size=1025",
            "/source?colour=red",
        ] {
            let reason = SERVER.route(bad).expect_err(bad);
            assert!(target::close_reason(&reason).len() <= target::MAX_CLOSE_REASON);
        }
        assert!(SERVER.route("/nope").unwrap_err().contains(PATHS));
    }

    #[test]
    fn batches_hold_about_64_kib_and_never_exceed_what_is_left() {
        assert_eq!(batch_len(1_000_000, 64), 1024);
        assert_eq!(batch_len(1_000_000, 0), 1024);
        assert_eq!(batch_len(1_000_000, 1 << 20), 1);
        assert_eq!(batch_len(3, 16), 3);
    }

    #[test]
    fn payloads_carry_their_number_big_endian() {
        let payloads = numbered_payloads(41, 3, 10);
        assert_eq!(payloads.len(), 30);
        for (k, payload) in payloads.chunks(10).enumerate() {
            assert_eq!(payload[..8], (41 + k as u64).to_be_bytes());
            assert_eq!(payload[8..], [0, 0]);
        }
        assert_eq!(numbered_payloads(5, 4, 3).as_ref(), &[0u8; 12]);
    }
}
