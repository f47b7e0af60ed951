//! From a frame to its answer: the fast path for plain calls, single requests, batches,
//! and slow calls, which run as tasks within the connection's limits (calls in flight,
//! bytes retained).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use ws_client::{Message, MessageType};

use super::{Connection, RpcServer};
use crate::rpc::methods::{self, Work};
use crate::rpc::protocol::{Framing, INVALID_REQUEST, Output, Reply, Response, RpcFailure};
use crate::rpc::request::{self, BorrowedCall, Call, Incoming, Item};

/// The answer to one request: now, or once its work is done; `None` for a notification.
enum Answer {
    Now(Option<Response>),
    Later(Pin<Box<dyn Future<Output = Option<Response>> + Send>>),
}

/// The answer to a whole frame.
enum FrameAnswer {
    Now(Option<Reply>),
    Later(Pin<Box<dyn Future<Output = Option<Reply>> + Send>>),
}

impl RpcServer {
    /// Answers one frame, a request or a batch, by encoding the answer into `out`; returns
    /// its frame type, or `None` when there is nothing to send now.
    pub(super) fn handle_frame(
        &self,
        message: Message,
        connection: &Connection,
        out: &mut Vec<u8>,
    ) -> Option<MessageType> {
        let framing = match message.message_type {
            MessageType::Text => {
                // The wire reader has checked the text is UTF-8.
                if let Some(call) = BorrowedCall::parse_text(&message.data) {
                    return self.handle_plain_call(call, connection, out);
                }
                Framing::Json
            }
            MessageType::Binary => Framing::MessagePack,
            _ => return None, // control frames are handled by the session
        };
        let answer = match request::parse(framing, &message.data, self.limits.max_batch_size) {
            Incoming::Single(item) => match self.handle_item(item, framing, connection) {
                Answer::Now(response) => FrameAnswer::Now(response.map(Reply::One)),
                Answer::Later(pending) => {
                    FrameAnswer::Later(Box::pin(async move { pending.await.map(Reply::One) }))
                }
            },
            Incoming::Batch(items) => self.handle_batch(items, framing, connection),
            Incoming::EmptyBatch => FrameAnswer::Now(Some(Reply::One(Response::error_without_id(
                RpcFailure::standard(INVALID_REQUEST),
            )))),
            Incoming::Oversized { len, ids } => {
                // Not run: each request with an id gets the error (an array, as for any
                // batch); a batch of notifications only gets no answer.
                let failure = RpcFailure::with_hint(
                    INVALID_REQUEST,
                    format!(
                        "a batch of {len} requests exceeds the limit of {} (--max-batch-size)",
                        self.limits.max_batch_size
                    ),
                );
                FrameAnswer::Now((!ids.is_empty()).then_some(Reply::Refused { failure, ids }))
            }
            Incoming::Unreadable(failure) => {
                FrameAnswer::Now(Some(Reply::One(Response::error_without_id(failure))))
            }
        };
        self.answer_later(answer, framing, connection, out)
    }

    /// Sends an answer now, or spawns the work and sends its answer when it is done.
    fn answer_later(
        &self,
        answer: FrameAnswer,
        framing: Framing,
        connection: &Connection,
        out: &mut Vec<u8>,
    ) -> Option<MessageType> {
        match answer {
            FrameAnswer::Now(reply) => reply.map(|reply| framing.encode_into(reply, out)),
            FrameAnswer::Later(pending) => {
                let outbound = connection.outbound.clone();
                let closed = connection.closed.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        Some(reply) = pending => { let _ = outbound.send(framing.encode(reply)).await; }
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
        call: BorrowedCall<'_>,
        connection: &Connection,
        out: &mut Vec<u8>,
    ) -> Option<MessageType> {
        let context = connection.context(Framing::Json);
        match methods::dispatch(call.method, call.params(), context) {
            Work::Done(outcome) => {
                call.answer_into(&outcome, out);
                Some(MessageType::Text)
            }
            Work::Later { work, retained } => {
                let answer = match self.later(Some(call.owned_id()), work, retained, connection) {
                    Answer::Now(response) => FrameAnswer::Now(response.map(Reply::One)),
                    Answer::Later(pending) => {
                        FrameAnswer::Later(Box::pin(async move { pending.await.map(Reply::One) }))
                    }
                };
                self.answer_later(answer, Framing::Json, connection, out)
            }
        }
    }

    /// Answers a batch: one array with an answer per call, in request order.
    fn handle_batch(
        &self,
        items: Vec<Item<'_>>,
        framing: Framing,
        connection: &Connection,
    ) -> FrameAnswer {
        let answers: Vec<Answer> = items
            .into_iter()
            .map(|item| self.handle_item(item, framing, connection))
            .collect();
        let collect = |answers: Vec<Option<Response>>| {
            let answers: Vec<Response> = answers.into_iter().flatten().collect();
            // A batch of notifications only is not answered at all.
            (!answers.is_empty()).then_some(Reply::Batch(answers))
        };
        if answers
            .iter()
            .all(|answer| matches!(answer, Answer::Now(_)))
        {
            let now = answers.into_iter().map(|answer| match answer {
                Answer::Now(answer) => answer,
                Answer::Later(_) => None,
            });
            return FrameAnswer::Now(collect(now.collect()));
        }
        FrameAnswer::Later(Box::pin(async move {
            let all = answers.into_iter().map(|answer| async move {
                match answer {
                    Answer::Now(answer) => answer,
                    Answer::Later(pending) => pending.await,
                }
            });
            collect(futures_util::future::join_all(all).await)
        }))
    }

    /// Answers one request of a frame.
    fn handle_item(&self, item: Item<'_>, framing: Framing, connection: &Connection) -> Answer {
        let Call { id, method, params } = match item {
            Ok(call) => call,
            Err(answer) => return Answer::Now(Some(*answer)),
        };
        let context = connection.context(framing);
        match methods::dispatch(&method, params, context) {
            Work::Done(outcome) => Answer::Now(id.map(|id| Response { id, outcome })),
            // A slow notification has no answer and no effect: skip the work.
            Work::Later { .. } if id.is_none() => Answer::Now(None),
            Work::Later { work, retained } => self.later(id, work, retained, connection),
        }
    }

    /// Slow work, if this connection has a call slot and room for the bytes the work and
    /// its id keep; the busy error (-32000) otherwise.
    fn later(
        &self,
        id: Option<Output>,
        work: Pin<Box<dyn Future<Output = Result<Output, RpcFailure>> + Send>>,
        retained: usize,
        connection: &Connection,
    ) -> Answer {
        let answer = |outcome| Answer::Now(id.clone().map(|id| Response { id, outcome }));
        let Ok(slot) = Arc::clone(&connection.calls).try_acquire_owned() else {
            return answer(Err(RpcFailure::busy(format!(
                "too many calls in flight on this connection (limit {})",
                self.limits.max_calls_in_flight
            ))));
        };
        let bytes = retained + id.as_ref().map_or(0, retained_size);
        let held = u32::try_from(bytes).ok().and_then(|bytes| {
            Arc::clone(&connection.retained)
                .try_acquire_many_owned(bytes)
                .ok()
        });
        let Some(held) = held else {
            return answer(Err(RpcFailure::busy(format!(
                "calls in flight on this connection would keep more than {} bytes of params \
                 (--max-message-size)",
                self.limits.max_retained_bytes
            ))));
        };
        Answer::Later(Box::pin(async move {
            let outcome = work.await;
            drop((slot, held));
            id.map(|id| Response { id, outcome })
        }))
    }
}

/// About how many bytes an id keeps.
fn retained_size(id: &Output) -> usize {
    match id {
        Output::Raw(raw) => raw.get().len(),
        Output::Value(Value::String(text)) => text.len(),
        Output::Value(_) => 16,
    }
}
