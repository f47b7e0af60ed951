//! What happens to an outgoing message: `QueuePolicy` (queue during an outage or fail fast),
//! the bounded `OutageQueue`, and `Outgoing`/`Delivery`, the pair that guarantees a message
//! is either written to a socket or handed back to its sender.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::batch::BatchReceipt;
use crate::error::Error;
use crate::message::Message;

/// Default bound of [`QueuePolicy::Queue`] in messages: 1,024.
pub const DEFAULT_QUEUE_MESSAGES: usize = 1024;
/// Default bound of [`QueuePolicy::Queue`] in payload bytes: 1 MiB, so an outage costs at
/// most about that much memory per connection.
pub const DEFAULT_QUEUE_BYTES: usize = 1 << 20;

/// What a resilient connection does with messages handed to it while it is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Keep them, in order, and send them after the reconnect before anything newer. A
    /// message beyond either bound is handed back at once with
    /// [`Error::OutageQueueFull`]; when the policy gives up, every queued message is handed
    /// back with the final error.
    Queue {
        /// Most messages kept.
        max_messages: usize,
        /// Most payload bytes kept.
        max_bytes: usize,
    },
    /// Hand every message back at once with [`Error::ConnectionDown`].
    FailFast,
}

impl Default for QueuePolicy {
    /// `Queue` with [`DEFAULT_QUEUE_MESSAGES`] and [`DEFAULT_QUEUE_BYTES`].
    fn default() -> Self {
        Self::Queue {
            max_messages: DEFAULT_QUEUE_MESSAGES,
            max_bytes: DEFAULT_QUEUE_BYTES,
        }
    }
}

/// A message that was not written to a socket, handed back to its sender with the reason.
#[derive(Debug, thiserror::Error)]
#[error("message not sent: {error}")]
pub struct SendFailed {
    /// The message, as it was handed over.
    pub message: Message,
    /// Why it was not sent.
    #[source]
    pub error: Error,
}

type Outcome = Result<(), SendFailed>;

/// The receipt of a message handed to a resilient connection: resolves once the message was
/// written to a socket (`Ok`) or given up on (`Err`, with the message).
///
/// Dropping it does not withdraw the message; its outcome is then only logged.
#[derive(Debug)]
#[must_use = "a Delivery tells whether the message was written; drop it only if that does not matter"]
pub struct Delivery {
    outcome: oneshot::Receiver<Outcome>,
}

impl Future for Delivery {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        match Pin::new(&mut self.outcome).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
            // `Outgoing` always answers, on drop too; this arm is only for completeness.
            Poll::Ready(Err(_)) => Poll::Ready(Err(SendFailed {
                message: Message::binary(Vec::new()),
                error: Error::ConnectionClosed,
            })),
        }
    }
}

/// A message on its way, with the channel to its sender. If it is dropped unanswered (the
/// task ended or was aborted), it hands the message back with [`Error::ConnectionClosed`].
#[derive(Debug)]
pub(crate) struct Outgoing {
    message: Option<Message>,
    reply: Option<Reply>,
}

/// Whom an outgoing message answers.
#[derive(Debug)]
enum Reply {
    /// Its own receipt ([`Delivery`]).
    One(oneshot::Sender<Outcome>),
    /// Its batch's shared receipt, as message `index` of the batch.
    Batch(Arc<BatchReceipt>, usize),
}

impl Outgoing {
    /// A message and the receipt its sender awaits.
    pub(crate) fn new(message: Message) -> (Self, Delivery) {
        let (reply, outcome) = oneshot::channel();
        let outgoing = Self {
            message: Some(message),
            reply: Some(Reply::One(reply)),
        };
        (outgoing, Delivery { outcome })
    }

    /// Message `index` of a batch, answering the batch's shared `receipt`.
    pub(crate) fn in_batch(message: Message, receipt: Arc<BatchReceipt>, index: usize) -> Self {
        Self {
            message: Some(message),
            reply: Some(Reply::Batch(receipt, index)),
        }
    }

    /// The message (present until the outgoing is answered).
    pub(crate) fn message(&self) -> &Message {
        self.message
            .as_ref()
            .expect("an unanswered Outgoing holds its message")
    }

    /// Payload bytes.
    pub(crate) fn len(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.data.len())
    }

    /// The message was written to a socket.
    pub(crate) fn succeed(mut self) {
        self.message = None;
        match self.reply.take() {
            Some(Reply::One(reply)) => {
                let _ = reply.send(Ok(()));
            }
            Some(Reply::Batch(receipt, _)) => receipt.written(),
            None => {}
        }
    }

    /// The message is given up on: back to its sender with `error`.
    pub(crate) fn fail(mut self, error: Error) {
        self.answer_failed(error);
    }

    fn answer_failed(&mut self, error: Error) {
        let (Some(message), Some(reply)) = (self.message.take(), self.reply.take()) else {
            return;
        };
        let reply = match reply {
            Reply::One(reply) => reply,
            Reply::Batch(receipt, index) => {
                return receipt.failed(index, SendFailed { message, error });
            }
        };
        if let Err(Err(failed)) = reply.send(Err(SendFailed { message, error })) {
            tracing::warn!(
                error = %failed.error,
                bytes = failed.message.data.len(),
                "message not sent, and its sender no longer waits for the outcome"
            );
        }
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        self.answer_failed(Error::ConnectionClosed);
    }
}

/// Messages kept during an outage, bounded in count and payload bytes.
#[derive(Debug)]
pub(crate) struct OutageQueue {
    items: VecDeque<Outgoing>,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
}

impl OutageQueue {
    /// A queue for `policy` (`FailFast` keeps nothing).
    pub(crate) fn new(policy: QueuePolicy) -> Self {
        let (max_messages, max_bytes) = match policy {
            QueuePolicy::Queue {
                max_messages,
                max_bytes,
            } => (max_messages, max_bytes),
            QueuePolicy::FailFast => (0, 0),
        };
        Self {
            items: VecDeque::new(),
            bytes: 0,
            max_messages,
            max_bytes,
        }
    }

    /// Appends `outgoing` if both bounds allow it; otherwise hands it back.
    pub(crate) fn push_back(&mut self, outgoing: Outgoing) -> Result<(), Outgoing> {
        let len = outgoing.len();
        if self.items.len() >= self.max_messages || self.bytes + len > self.max_bytes {
            return Err(outgoing);
        }
        self.bytes += len;
        self.items.push_back(outgoing);
        Ok(())
    }

    /// Puts back at the head a message whose write was cut short: it was admitted before,
    /// so no bound is checked, and it goes out first after the reconnect.
    pub(crate) fn push_front(&mut self, outgoing: Outgoing) {
        self.bytes += outgoing.len();
        self.items.push_front(outgoing);
    }

    /// The oldest message.
    pub(crate) fn pop_front(&mut self) -> Option<Outgoing> {
        let outgoing = self.items.pop_front()?;
        self.bytes -= outgoing.len();
        Some(outgoing)
    }

    /// Messages kept.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Payload bytes kept.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The error for a message refused because the queue is full.
    pub(crate) fn full_error(&self) -> Error {
        Error::OutageQueueFull {
            max_messages: self.max_messages,
            max_bytes: self.max_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_in_messages_and_bytes_hand_back_what_does_not_fit() {
        let mut queue = OutageQueue::new(QueuePolicy::Queue {
            max_messages: 2,
            max_bytes: 10,
        });
        let (first, _a) = Outgoing::new(Message::binary(vec![0; 6]));
        let (second, _b) = Outgoing::new(Message::binary(vec![1; 6]));
        let (third, _c) = Outgoing::new(Message::binary(vec![2; 4]));
        queue.push_back(first).unwrap();
        let refused = queue.push_back(second).unwrap_err();
        assert_eq!(refused.message().data, vec![1; 6], "bytes bound");
        queue.push_back(third).unwrap();
        let (fourth, _d) = Outgoing::new(Message::binary(Vec::new()));
        assert!(queue.push_back(fourth).is_err(), "message bound");
        assert_eq!((queue.len(), queue.bytes()), (2, 10));
        assert_eq!(queue.pop_front().unwrap().message().data, vec![0; 6]);
        assert_eq!(queue.bytes(), 4);
    }

    #[tokio::test]
    async fn every_outgoing_answers_its_sender_even_when_dropped() {
        let (sent, delivery) = Outgoing::new(Message::text("a"));
        sent.succeed();
        assert!(delivery.await.is_ok());
        let (failed, delivery) = Outgoing::new(Message::text("b"));
        failed.fail(Error::ConnectionDown);
        let back = delivery.await.unwrap_err();
        assert_eq!(
            (back.message.as_text().unwrap(), back.error.to_string()),
            ("b", Error::ConnectionDown.to_string())
        );
        let (dropped, delivery) = Outgoing::new(Message::text("c"));
        drop(dropped);
        let back = delivery.await.unwrap_err();
        assert_eq!(back.message.as_text().unwrap(), "c");
        assert!(matches!(back.error, Error::ConnectionClosed));
    }
}
