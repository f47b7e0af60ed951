//! `rpc` mode: a JSON-RPC 2.0 server over WebSocket, to the letter of the specification.
//!
//! Fast methods are answered inline; slow ones (`sleep`) run as tasks and answer through a
//! channel, so one slow call never holds up the calls behind it. Answers are batched into
//! the write buffer and flushed once nothing more is ready, as in `echo`.

mod calls;
pub mod methods;
pub mod msgpack;
pub mod params;
pub mod protocol;
pub mod request;
pub mod ticks;

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use ws_client::Message;
use ws_client::wire::ReadLimits;

use crate::session::{ServerStream, Session};
use crate::upgrade::Handler;
use crate::wire_session::{Next, WireSession};
use methods::MethodContext;
use protocol::Framing;
use ticks::Ticks;

/// Answers queued by tasks (slow calls, ticks) before the connection applies backpressure.
const OUTBOUND_CAPACITY: usize = 1024;
/// Most queued answers written between two reads, so readers and writers take turns.
const MAX_REPLIES_PER_TURN: usize = 1024;
/// Most frames handled between two flushes. A client that keeps many calls in flight keeps
/// the socket readable, and flushing only once it runs dry holds every answer back until
/// the whole burst is read: client and server then take turns over whole bursts instead of
/// working at the same time. Measured with 256 calls in flight on 2 cores: 128 let both
/// sides overlap in every run (x1.7 calls/s); 64 did in about half the runs (the smaller
/// chunks cost more wake-ups and the two processes tend to end up sharing one core), and
/// 256 never did.
const MAX_FRAMES_PER_FLUSH: usize = 128;

/// Per-connection limits of the `rpc` server.
#[derive(Debug, Clone, Copy)]
pub struct RpcLimits {
    /// Most requests in one batch.
    pub max_batch_size: usize,
    /// Most slow calls running at once on one connection.
    pub max_calls_in_flight: usize,
    /// Most tick subscriptions at once on one connection.
    pub max_subscriptions: usize,
    /// Most bytes the slow calls of one connection may keep until they answer (their
    /// params and ids): `--max-message-size`.
    pub max_retained_bytes: usize,
}

/// The JSON-RPC server.
#[derive(Debug)]
pub struct RpcServer {
    /// Its limits.
    pub limits: RpcLimits,
    /// What connections read with: `--max-message-size`, `--max-frame-size` and
    /// `--read-buffer-size`.
    pub read_limits: ReadLimits,
}

/// What one connection's requests share.
struct Connection {
    outbound: mpsc::Sender<Message>,
    /// What methods see, per framing (built once, not per call).
    json_context: MethodContext,
    message_pack_context: MethodContext,
    /// One permit per slow call in flight.
    calls: Arc<Semaphore>,
    /// One permit per byte those calls keep.
    retained: Arc<Semaphore>,
    closed: CancellationToken,
}

impl Connection {
    fn context(&self, framing: Framing) -> &MethodContext {
        match framing {
            Framing::Json => &self.json_context,
            Framing::MessagePack => &self.message_pack_context,
        }
    }
}

enum Step {
    Event(Next),
    Reply(Message),
}

impl Handler for RpcServer {
    fn deflate_on(_path: &str) -> bool {
        true
    }

    async fn serve(&self, ws: ServerStream, session: Session) {
        let closed = session.shutdown.child_token();
        let (outbound, mut replies) = mpsc::channel(OUTBOUND_CAPACITY);
        let ticks = Arc::new(Ticks::new(
            self.limits.max_subscriptions,
            outbound.clone(),
            closed.clone(),
        ));
        let context = |framing| MethodContext {
            ticks: Arc::clone(&ticks),
            framing,
        };
        let connection = Connection {
            json_context: context(Framing::Json),
            message_pack_context: context(Framing::MessagePack),
            outbound,
            calls: Arc::new(Semaphore::new(self.limits.max_calls_in_flight)),
            retained: Arc::new(Semaphore::new(self.limits.max_retained_bytes)),
            closed: closed.clone(),
        };
        let _stop_tasks = closed.drop_guard();
        let mut ws = WireSession::new(ws, session, self.read_limits);
        // Inline answers are encoded here, then copied into the write buffer.
        let mut scratch = Vec::new();
        loop {
            // `connection` holds a sender, so the channel never ends while this runs.
            let reply = async {
                match replies.recv().await {
                    Some(reply) => reply,
                    None => std::future::pending().await,
                }
            };
            let step = match ws.next_or(reply).await {
                Ok(event) => Step::Event(event),
                Err(reply) => Step::Reply(reply),
            };
            let mut next = Some(step);
            let mut unflushed = 0;
            while let Some(step) = next.take() {
                match step {
                    Step::Event(Next::Data(message)) => {
                        scratch.clear();
                        if let Some(message_type) =
                            self.handle_frame(message, &connection, &mut scratch)
                        {
                            if ws.feed_slice(message_type, &scratch).await.is_err() {
                                return;
                            }
                        }
                        // Large answers (an `echo` of a big payload) are not kept around.
                        if scratch.capacity() > protocol::MAX_KEPT_SCRATCH {
                            scratch = Vec::new();
                        }
                    }
                    // Pings are answered by the session; pongs need nothing.
                    Step::Event(Next::Control) => {}
                    Step::Event(Next::Ended | Next::Failed) => return,
                    Step::Event(Next::Shutdown) => {
                        return ws.close_gracefully(1001, "server shutting down").await;
                    }
                    Step::Event(Next::Idle) => {
                        return ws.close_gracefully(1001, "idle timeout").await;
                    }
                    Step::Reply(reply) => {
                        if ws.feed(reply).await.is_err() {
                            return;
                        }
                        for _ in 1..MAX_REPLIES_PER_TURN {
                            let Ok(reply) = replies.try_recv() else { break };
                            if ws.feed(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                unflushed += 1;
                if unflushed == MAX_FRAMES_PER_FLUSH {
                    unflushed = 0;
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
                next = ws.next_buffered().await.map(Step::Event);
            }
            if ws.flush().await.is_err() {
                return;
            }
        }
    }
}
