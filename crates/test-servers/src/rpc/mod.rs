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
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};
use tokio_util::sync::CancellationToken;

use crate::server::Handler;
use crate::session::{self, Event, ServerStream, Session};
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
    Event(Event),
    Reply(Message),
}

impl Handler for RpcServer {
    async fn serve(&self, mut ws: ServerStream, session: Session) {
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
        loop {
            let step = tokio::select! {
                event = session.next(&mut ws) => Step::Event(event),
                Some(reply) = replies.recv() => Step::Reply(reply),
            };
            let mut next = Some(step);
            let mut unflushed = 0;
            while let Some(step) = next.take() {
                match step {
                    Step::Event(Event::Message(message)) => {
                        if let Some(answer) = self.handle_frame(message, &connection) {
                            if session.feed(&mut ws, answer).await.is_err() {
                                return;
                            }
                        }
                    }
                    Step::Event(Event::Ended | Event::Failed) => return,
                    Step::Event(Event::Shutdown) => {
                        return session::close_gracefully(
                            &mut ws,
                            CloseCode::Away,
                            "server shutting down",
                        )
                        .await;
                    }
                    Step::Event(Event::Idle) => {
                        return session::close_gracefully(&mut ws, CloseCode::Away, "idle timeout")
                            .await;
                    }
                    Step::Reply(reply) => {
                        if session.feed(&mut ws, reply).await.is_err() {
                            return;
                        }
                        for _ in 1..MAX_REPLIES_PER_TURN {
                            let Ok(reply) = replies.try_recv() else { break };
                            if session.feed(&mut ws, reply).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                unflushed += 1;
                if unflushed == MAX_FRAMES_PER_FLUSH {
                    unflushed = 0;
                    if futures_util::SinkExt::flush(&mut ws).await.is_err() {
                        return;
                    }
                }
                next = session.next_ready(&mut ws).await.map(Step::Event);
            }
            if futures_util::SinkExt::flush(&mut ws).await.is_err() {
                return;
            }
        }
    }
}

impl RpcServer {
    /// Answers one frame: a request or a batch. `None` when there is nothing to send now.
    fn handle_frame(&self, message: Message, connection: &Connection) -> Option<Message> {
        let (framing, payload) = match message {
            Message::Text(text) => {
                // Parsed as `str`: tungstenite has already checked the text is UTF-8.
                if let Some(call) = protocol::BorrowedCall::parse_str(text.as_str()) {
                    return self.handle_plain_call(call, connection);
                }
                (Framing::Json, text.into())
            }
            Message::Binary(data) => (Framing::MessagePack, data),
            _ => return None, // pings are answered by tungstenite; pongs and closes need nothing here
        };
        let value = match framing.decode(&payload) {
            Ok(value) => value,
            Err(reason) => {
                tracing::debug!(%reason, "unparseable request");
                let answer =
                    protocol::error_response(Value::Null, &RpcFailure::standard(PARSE_ERROR));
                return Some(framing.encode(&answer));
            }
        };
        let answer = match value {
            Value::Array(requests) => self.handle_batch(requests, framing, connection),
            single => self.handle_request(single, framing, connection),
        };
        self.answer_later(answer, framing, connection)
    }

    /// Sends an answer now, or spawns the work and sends its answer when it is done.
    fn answer_later(
        &self,
        answer: Answer,
        framing: Framing,
        connection: &Connection,
    ) -> Option<Message> {
        match answer {
            Answer::Now(answer) => answer.map(|answer| framing.encode(&answer)),
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
    ) -> Option<Message> {
        let context = connection.context(Framing::Json);
        match methods::dispatch(call.method, call.take_params(), context) {
            Work::Done(outcome) => Some(Message::text(call.answer(&outcome))),
            Work::Later(work) => {
                let answer = self.later(Some(call.owned_id()), work, connection);
                self.answer_later(answer, Framing::Json, connection)
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
