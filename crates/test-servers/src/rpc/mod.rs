//! `rpc` mode: a JSON-RPC 2.0 server over WebSocket, to the letter of the specification.
//!
//! Fast methods are answered inline; slow ones (`sleep`) run as tasks and answer through a
//! channel, so one slow call never holds up the calls behind it. Answers are batched into
//! the write buffer and flushed once nothing more is ready, as in `echo`.

pub mod methods;
pub mod protocol;
pub mod ticks;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use ws_client::wire::ReadLimits;
use ws_client::{Message, MessageType};

use crate::server::Handler;
use crate::session::{ServerStream, Session};
use crate::wire_session::{Next, WireSession};
use methods::{MethodContext, Work};
use protocol::{Framing, INVALID_REQUEST, PARSE_ERROR, RpcFailure};
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

/// An answer now, or one that takes time.
enum Answer {
    Now(Option<Value>),
    Later(Pin<Box<dyn Future<Output = Option<Value>> + Send>>),
}

/// What one connection's requests share.
struct Connection {
    outbound: mpsc::Sender<Message>,
    /// What methods see, per framing (built once, not per call).
    json_context: MethodContext,
    message_pack_context: MethodContext,
    calls: Arc<Semaphore>,
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

impl RpcServer {
    /// Answers one frame, a request or a batch, by encoding the answer into `out`; returns
    /// its frame type, or `None` when there is nothing to send now.
    fn handle_frame(
        &self,
        message: Message,
        connection: &Connection,
        out: &mut Vec<u8>,
    ) -> Option<MessageType> {
        let framing = match message.message_type {
            MessageType::Text => {
                // The wire reader has checked the text is UTF-8.
                if let Some(call) = protocol::BorrowedCall::parse_text(&message.data) {
                    return self.handle_plain_call(call, connection, out);
                }
                Framing::Json
            }
            MessageType::Binary => Framing::MessagePack,
            _ => return None, // control frames are handled by the session
        };
        let value = match framing.decode(&message.data) {
            Ok(value) => value,
            Err(reason) => {
                tracing::debug!(%reason, "unparseable request");
                let answer =
                    protocol::error_response(Value::Null, &RpcFailure::standard(PARSE_ERROR));
                return Some(framing.encode_into(&answer, out));
            }
        };
        let answer = match value {
            Value::Array(requests) => self.handle_batch(requests, framing, connection),
            single => self.handle_request(single, framing, connection),
        };
        self.answer_later(answer, framing, connection, out)
    }

    /// Sends an answer now, or spawns the work and sends its answer when it is done.
    fn answer_later(
        &self,
        answer: Answer,
        framing: Framing,
        connection: &Connection,
        out: &mut Vec<u8>,
    ) -> Option<MessageType> {
        match answer {
            Answer::Now(answer) => answer.map(|answer| framing.encode_into(&answer, out)),
            Answer::Later(pending) => {
                let outbound = connection.outbound.clone();
                let closed = connection.closed.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        Some(answer) = pending => { let _ = outbound.send(framing.encode(&answer)).await; }
                        () = closed.cancelled() => {}
                        else => {}
                    }
                });
                None
            }
        }
    }

    /// Answers a plain JSON call from the fast path.
    fn handle_plain_call(
        &self,
        mut call: protocol::BorrowedCall<'_>,
        connection: &Connection,
        out: &mut Vec<u8>,
    ) -> Option<MessageType> {
        let context = connection.context(Framing::Json);
        match methods::dispatch(call.method, call.take_params(), context) {
            Work::Done(outcome) => {
                call.answer_into(&outcome, out);
                Some(MessageType::Text)
            }
            Work::Later(work) => {
                let answer = self.later(Some(call.owned_id()), work, connection);
                self.answer_later(answer, Framing::Json, connection, out)
            }
        }
    }

    /// Answers a batch: one array with an answer per call, in request order.
    fn handle_batch(
        &self,
        requests: Vec<Value>,
        framing: Framing,
        connection: &Connection,
    ) -> Answer {
        if requests.is_empty() {
            return Answer::Now(Some(protocol::error_response(
                Value::Null,
                &RpcFailure::standard(INVALID_REQUEST),
            )));
        }
        if requests.len() > self.limits.max_batch_size {
            let failure = RpcFailure {
                data: Some(Value::String(format!(
                    "a batch of {} requests exceeds the limit of {} (--max-batch-size)",
                    requests.len(),
                    self.limits.max_batch_size
                ))),
                ..RpcFailure::standard(INVALID_REQUEST)
            };
            return Answer::Now(Some(protocol::error_response(Value::Null, &failure)));
        }
        let answers: Vec<Answer> = requests
            .into_iter()
            .map(|request| self.handle_request(request, framing, connection))
            .collect();
        let collect = |answers: Vec<Option<Value>>| {
            let answers: Vec<Value> = answers.into_iter().flatten().collect();
            // A batch of notifications only is not answered at all.
            (!answers.is_empty()).then_some(Value::Array(answers))
        };
        if answers
            .iter()
            .all(|answer| matches!(answer, Answer::Now(_)))
        {
            let now = answers.into_iter().map(|answer| match answer {
                Answer::Now(answer) => answer,
                Answer::Later(_) => None,
            });
            return Answer::Now(collect(now.collect()));
        }
        Answer::Later(Box::pin(async move {
            let all = answers.into_iter().map(|answer| async move {
                match answer {
                    Answer::Now(answer) => answer,
                    Answer::Later(pending) => pending.await,
                }
            });
            collect(futures_util::future::join_all(all).await)
        }))
    }

    /// Answers one request object.
    fn handle_request(&self, value: Value, framing: Framing, connection: &Connection) -> Answer {
        let request = match protocol::check_request(value) {
            Ok(request) => request,
            Err(answer) => return Answer::Now(Some(answer)),
        };
        let context = connection.context(framing);
        match methods::dispatch(&request.method, request.params, context) {
            Work::Done(outcome) => Answer::Now(protocol::answer(request.id, outcome)),
            // A slow notification has no answer and no effect: skip the work.
            Work::Later(_) if request.id.is_none() => Answer::Now(None),
            Work::Later(work) => self.later(request.id, work, connection),
        }
    }

    /// Slow work, if a slot is free on this connection; the busy error otherwise.
    fn later(
        &self,
        id: Option<Value>,
        work: Pin<Box<dyn Future<Output = Result<Value, RpcFailure>> + Send>>,
        connection: &Connection,
    ) -> Answer {
        let Ok(slot) = Arc::clone(&connection.calls).try_acquire_owned() else {
            let failure = RpcFailure::busy(format!(
                "too many calls in flight on this connection (limit {})",
                self.limits.max_calls_in_flight
            ));
            return Answer::Now(protocol::answer(id, Err(failure)));
        };
        Answer::Later(Box::pin(async move {
            let outcome = work.await;
            drop(slot);
            protocol::answer(id, outcome)
        }))
    }
}
