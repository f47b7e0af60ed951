//! Batches on a resilient connection: `BatchDelivery`, the one receipt of many messages
//! handed over with one command, and `BatchFailed` / `BatchRefused`, what comes back.
//! Inside the task each message of a batch travels on its own (queue, cut writes, hand
//! back) and answers the batch's shared `BatchReceipt` instead of a channel of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::queue::SendFailed;
use crate::error::Error;
use crate::message::Message;

type Outcome = Result<(), BatchFailed>;

/// Some messages of a batch were not written: each comes back with its place in the batch
/// and why (a batch's messages may fail for different reasons: some did not fit the outage
/// queue, the rest came back when the policy gave up).
#[derive(Debug, thiserror::Error)]
#[error("{} of the batch's {count} messages not sent, first: {}", unsent.len(), first_error(unsent))]
pub struct BatchFailed {
    /// Messages in the batch.
    pub count: usize,
    /// The messages not written, in batch order, each with its index in the batch.
    pub unsent: Vec<(usize, SendFailed)>,
}

fn first_error(unsent: &[(usize, SendFailed)]) -> String {
    unsent.first().map_or_else(String::new, |(index, failed)| {
        format!("message {index}: {}", failed.error)
    })
}

/// A batch that was not handed over at all: every message comes back, in order.
#[derive(Debug, thiserror::Error)]
#[error("batch not handed over: {error}")]
pub struct BatchRefused {
    /// The batch's messages, as they were given.
    pub messages: Vec<Message>,
    /// The message that can never be sent (a close frame, over `max_message_size`, text
    /// that is not UTF-8, a control payload over 125 bytes); `None` when the connection
    /// has ended.
    pub index: Option<usize>,
    /// Why.
    #[source]
    pub error: Error,
}

/// The receipt of a batch handed to a resilient connection: resolves once every message of
/// it was written to a socket (`Ok`) or given up on (`Err`, with those given up on).
///
/// Dropping it does not withdraw the batch; the outcome of its messages is then only
/// logged.
#[derive(Debug)]
#[must_use = "a BatchDelivery tells whether the batch was written; drop it only if that does not matter"]
pub struct BatchDelivery {
    outcome: oneshot::Receiver<Outcome>,
}

impl Future for BatchDelivery {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        match Pin::new(&mut self.outcome).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
            // The receipt always answers (each message answers it, on drop too).
            Poll::Ready(Err(_)) => Poll::Ready(Err(BatchFailed {
                count: 0,
                unsent: Vec::new(),
            })),
        }
    }
}

/// What the messages of one batch share: how many are not settled yet, those given up on,
/// and the channel to the receipt, answered when the last one settles.
#[derive(Debug)]
pub(crate) struct BatchReceipt {
    count: usize,
    remaining: AtomicUsize,
    unsent: Mutex<Vec<(usize, SendFailed)>>,
    reply: Mutex<Option<oneshot::Sender<Outcome>>>,
}

impl BatchReceipt {
    /// The shared part of a batch of `count` messages (at least one), and its receipt.
    pub(crate) fn new(count: usize) -> (Self, BatchDelivery) {
        let (reply, outcome) = oneshot::channel();
        let receipt = Self {
            count,
            remaining: AtomicUsize::new(count),
            unsent: Mutex::new(Vec::new()),
            reply: Mutex::new(Some(reply)),
        };
        (receipt, BatchDelivery { outcome })
    }

    /// A receipt that is already `Ok` (an empty batch).
    pub(crate) fn done() -> BatchDelivery {
        let (reply, outcome) = oneshot::channel();
        let _ = reply.send(Ok(()));
        BatchDelivery { outcome }
    }

    /// One message was written.
    pub(crate) fn written(&self) {
        self.settled();
    }

    /// Message `index` was given up on.
    pub(crate) fn failed(&self, index: usize, failed: SendFailed) {
        self.unsent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((index, failed));
        self.settled();
    }

    /// One more message settled (written or given up on).
    fn settled(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.answer();
        }
    }

    /// The last message settled: the receipt learns the outcome.
    fn answer(&self) {
        let mut unsent =
            std::mem::take(&mut *self.unsent.lock().unwrap_or_else(|e| e.into_inner()));
        unsent.sort_by_key(|(index, _)| *index);
        let Some(reply) = self.reply.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let outcome = if unsent.is_empty() {
            Ok(())
        } else {
            Err(BatchFailed {
                count: self.count,
                unsent,
            })
        };
        if let Err(Err(failed)) = reply.send(outcome) {
            tracing::warn!(
                unsent = failed.unsent.len(),
                count = failed.count,
                "batch messages not sent, and their sender no longer waits for the outcome"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::resilient::queue::Outgoing;

    /// The receipt answers once every message settled: written, handed back, or dropped
    /// unanswered (the task ended); those not written come back in batch order.
    #[tokio::test]
    async fn the_receipt_lists_every_message_not_written_in_batch_order() {
        let (receipt, delivery) = BatchReceipt::new(4);
        let receipt = Arc::new(receipt);
        let mut outgoing: Vec<Outgoing> = (0..4)
            .map(|i| Outgoing::in_batch(Message::text(format!("m{i}")), Arc::clone(&receipt), i))
            .collect();
        drop(receipt);
        let third = outgoing.pop().unwrap();
        let second = outgoing.pop().unwrap();
        let first = outgoing.pop().unwrap();
        let zeroth = outgoing.pop().unwrap();
        // Out of order: the last one fails first.
        third.fail(Error::ConnectionDown);
        zeroth.succeed();
        drop(second);
        first.succeed();
        let failed = delivery.await.unwrap_err();
        assert_eq!(failed.count, 4);
        let back: Vec<(usize, String)> = failed
            .unsent
            .iter()
            .map(|(i, f)| (*i, f.message.as_text().unwrap().to_string()))
            .collect();
        assert_eq!(back, [(2, "m2".to_string()), (3, "m3".to_string())]);
        assert!(matches!(failed.unsent[0].1.error, Error::ConnectionClosed));
        assert!(matches!(failed.unsent[1].1.error, Error::ConnectionDown));
    }

    #[tokio::test]
    async fn a_batch_written_whole_is_ok() {
        let (receipt, delivery) = BatchReceipt::new(2);
        let receipt = Arc::new(receipt);
        for i in 0..2 {
            Outgoing::in_batch(Message::binary(vec![i as u8]), Arc::clone(&receipt), i).succeed();
        }
        assert!(delivery.await.is_ok());
    }
}
