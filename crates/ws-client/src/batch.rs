//! Batch sends: many messages encoded under one hold of the write side and written with
//! one flush, awaiting only when the write buffer is full; `BatchError` says which of the
//! batch's messages were written whole when one fails.

use std::borrow::Borrow;

use tokio::time::Instant;

use crate::error::Error;
use crate::link::{self, Link};
use crate::message::{Message, MessageType};
use crate::wire::Outbound;

/// A batch send that stopped before its end.
///
/// The batch's messages keep their order; `written <= encoded`:
/// - messages `0..written` were written whole to the socket (over `wss://`: handed whole
///   to the TLS layer, which writes them unless the connection dies first);
/// - messages `written..encoded` were encoded, but the connection failed before the
///   socket took them whole: they are lost. This happens only when `error` is the
///   connection's failure (a write error, [`Error::SendTimeout`]); the connection is then
///   closed;
/// - message `encoded`, if the error is about that message (too large, text that is not
///   UTF-8, a control payload over 125 bytes, a malformed close), was refused; it and the
///   messages after it were not sent, and the batch's iterator was not advanced past it.
///
/// When a message is refused, the messages before it are flushed first. Only if that flush
/// succeeds is the refusal reported ([`message_refused`](Self::message_refused): then
/// `written == encoded` and the connection is still open); if it fails, the error is the
/// flush's, with `written` counting what the socket took, as for any failed write.
///
/// A batch may also stop at a message because the connection can no longer send (our own
/// close went out earlier in the batch or before it, the peer closed): the error is then
/// [`Error::ConnectionClosed`] or [`Error::ClosedByPeer`], with `written == encoded` unless
/// a write failed as above.
#[derive(Debug, thiserror::Error)]
#[error("batch stopped after {written} written and {encoded} encoded messages: {error}")]
pub struct BatchError {
    /// How many messages, from the batch's first, were written whole.
    pub written: usize,
    /// How many messages, from the batch's first, were encoded into the write buffer.
    pub encoded: usize,
    /// Why the batch stopped.
    #[source]
    pub error: Error,
}

impl BatchError {
    /// Whether the batch stopped at a message refused for what it carries (too large, text
    /// that is not UTF-8, a control payload over 125 bytes, a malformed close): nothing
    /// encoded was lost (`written == encoded`) and the connection was still open, so the
    /// batch's remaining messages can be sent after it. Otherwise the connection cannot
    /// send (it failed, timed out, was closed or never connected) and the messages
    /// `written..encoded`, if any, were lost.
    pub fn message_refused(&self) -> bool {
        matches!(
            self.error,
            Error::MessageTooLarge { .. }
                | Error::InvalidUtf8
                | Error::ControlFrameTooLarge { .. }
                | Error::InvalidCloseFrame(_)
        )
    }
}

impl From<BatchError> for Error {
    /// The error that stopped the batch, for callers that do not need the counts.
    fn from(batch: BatchError) -> Self {
        batch.error
    }
}

/// One message of a batch, as its type and its payload.
pub(crate) trait Part {
    fn part(&self) -> (MessageType, &[u8]);
}

/// A payload sent as a message of the given type.
pub(crate) struct Typed<B>(pub(crate) MessageType, pub(crate) B);

impl<B: AsRef<[u8]>> Part for Typed<B> {
    fn part(&self) -> (MessageType, &[u8]) {
        (self.0, self.1.as_ref())
    }
}

/// A whole message, owned or borrowed.
pub(crate) struct Whole<M>(pub(crate) M);

impl<M: Borrow<Message>> Part for Whole<M> {
    fn part(&self) -> (MessageType, &[u8]) {
        let message = self.0.borrow();
        (message.message_type, &message.data)
    }
}

/// Where a batch is: messages encoded, and of them written whole; the end positions of the
/// frames encoded since the last completed flush (to count, if a flush is cut, which of
/// them the socket took whole).
struct Progress {
    encoded: usize,
    written: usize,
    ends: Vec<u64>,
}

impl Progress {
    /// A flush completed: everything encoded is written.
    fn flushed(&mut self) {
        self.written = self.encoded;
        self.ends.clear();
    }

    /// A flush failed with `error`: counts the frames the socket took whole.
    fn cut(&mut self, out: &Outbound, error: Error) -> BatchError {
        let taken = out.written_total();
        self.written += self.ends.iter().take_while(|end| **end <= taken).count();
        self.ends.clear();
        self.error(error)
    }

    fn error(&self, error: Error) -> BatchError {
        BatchError {
            written: self.written,
            encoded: self.encoded,
            error,
        }
    }

    /// The batch stops at a refused message: what came before is written out first. If
    /// that fails, the connection's failure is what the caller gets (messages may be lost
    /// and the connection is closed, which the refusal would not say).
    async fn refused(
        &mut self,
        out: &mut Outbound,
        link: &Link,
        deadline: &mut Option<Instant>,
        error: Error,
    ) -> BatchError {
        match write_out(out, link, deadline).await {
            Ok(()) => {
                self.flushed();
                self.error(error)
            }
            Err(cut) => {
                tracing::debug!(refused = %error, "a batch's flush before a refused message failed");
                self.cut(out, cut)
            }
        }
    }
}

/// Sends `items` in order, each as one message: encoded into the write buffer while it has
/// room (no await per message), the buffer written out whenever it reaches the link's
/// write buffer size, and once at the end if `flush` is set (otherwise what is left waits
/// for the next write, as after `queue`). Returns how many messages were sent.
///
/// Memory: the buffer holds at most the write buffer size plus one message (a message is
/// encoded whenever fewer than that many bytes are waiting), whatever the batch's length.
///
/// Time: the whole batch is bounded by the send timeout as one send is, from its first
/// write on (every write of the batch shares that deadline), so a slow reader cannot
/// stretch a long batch past it one buffer at a time.
pub(crate) async fn send<P: Part>(
    out: &mut Outbound,
    link: &Link,
    items: impl IntoIterator<Item = P>,
    flush: bool,
) -> Result<usize, BatchError> {
    let mut progress = Progress {
        encoded: 0,
        written: 0,
        ends: Vec::new(),
    };
    let mut deadline = None;
    for item in items {
        let (message_type, data) = item.part();
        if let Err(error) = link::check(link, message_type, data) {
            return Err(progress.refused(out, link, &mut deadline, error).await);
        }
        if !out.has_room(link.write_buffer_size) {
            match write_out(out, link, &mut deadline).await {
                Ok(()) => progress.flushed(),
                Err(error) => return Err(progress.cut(out, error)),
            }
        }
        if let Err(error) = link::begin(link, message_type) {
            return Err(progress.refused(out, link, &mut deadline, error).await);
        }
        out.encode(message_type, data);
        progress.encoded += 1;
        progress.ends.push(out.encoded_total());
    }
    if !flush && out.pending() < link.write_buffer_size {
        return Ok(progress.encoded);
    }
    match write_out(out, link, &mut deadline).await {
        Ok(()) => {
            progress.flushed();
            Ok(progress.encoded)
        }
        Err(error) => Err(progress.cut(out, error)),
    }
}

/// Writes out everything buffered, under the batch's deadline (set at its first write).
async fn write_out(
    out: &mut Outbound,
    link: &Link,
    deadline: &mut Option<Instant>,
) -> Result<(), Error> {
    let deadline = *deadline.get_or_insert_with(|| link::deadline_after(link.send_timeout));
    link::flush_until(out, link, Some(deadline)).await
}

#[cfg(test)]
mod tests;
