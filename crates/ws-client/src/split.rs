//! `WsSender` and `WsReceiver`: the two halves of a split connection, for use from two tasks.

use std::borrow::Borrow;
use std::sync::Arc;

// futures' mutex rather than tokio's: unlocking it is one atomic operation when nobody
// waits, where tokio's takes a lock on its waiter list every time (~6% of a pipelined
// echo's CPU in a profile).
use futures_util::lock::{Mutex, MutexGuard};

use crate::batch::{self, BatchError, Typed, Whole};
use crate::error::Error;
use crate::link::{self, ConnectionState, Link};
use crate::message::{Message, MessageType};
use crate::pending::Pending;
use crate::wire::{Inbound, Outbound};

/// The write side, shared by every clone of a sender and by the receiver (which answers
/// pings and closes on it).
type SharedOutbound = Arc<Mutex<Outbound>>;

/// The sending half of a split connection. Cheap to clone; clones send on the same
/// connection, one whole message at a time.
#[derive(Debug, Clone)]
pub struct WsSender {
    outbound: SharedOutbound,
    link: Arc<Link>,
}

/// The receiving half of a split connection.
#[derive(Debug)]
pub struct WsReceiver {
    inbound: Inbound,
    sender: WsSender,
    /// A received ping or close whose answer (pong, close echo) is not written yet, kept
    /// here so that a receive cancelled while waiting for the write side loses neither.
    pending: Pending,
}

/// Splits an open connection into its halves; the receiver takes over `pending`, what the
/// whole connection's last receive left to finish.
pub(crate) fn split(
    inbound: Inbound,
    outbound: Outbound,
    link: Arc<Link>,
    pending: Pending,
) -> (WsSender, WsReceiver) {
    let sender = WsSender {
        outbound: Arc::new(Mutex::new(outbound)),
        link,
    };
    let receiver = WsReceiver {
        inbound,
        sender: sender.clone(),
        pending,
    };
    (sender, receiver)
}

impl WsSender {
    /// Sends one message and flushes it.
    pub async fn send_message(&self, message: &Message) -> Result<(), Error> {
        self.send(message.clone()).await
    }

    /// Sends one message, taking ownership, and flushes it.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        let mut outbound = self.outbound.lock().await;
        link::send(&mut outbound, &self.link, message.into(), true).await
    }

    /// Queues one message without flushing (see
    /// [`WebSocketConnection::queue`](crate::WebSocketConnection::queue)).
    pub async fn queue(&self, message: impl Into<Message>) -> Result<(), Error> {
        let mut outbound = self.outbound.lock().await;
        link::send(&mut outbound, &self.link, message.into(), false).await
    }

    /// Sends a borrowed payload and flushes it (see
    /// [`WebSocketConnection::send_slice`](crate::WebSocketConnection::send_slice)).
    pub async fn send_slice(&self, message_type: MessageType, data: &[u8]) -> Result<(), Error> {
        let mut outbound = self.outbound.lock().await;
        link::send_slice(&mut outbound, &self.link, message_type, data, true).await
    }

    /// Queues a borrowed payload without flushing (see
    /// [`WebSocketConnection::queue_slice`](crate::WebSocketConnection::queue_slice)).
    pub async fn queue_slice(&self, message_type: MessageType, data: &[u8]) -> Result<(), Error> {
        let mut outbound = self.outbound.lock().await;
        link::send_slice(&mut outbound, &self.link, message_type, data, false).await
    }

    /// Sends each of `payloads` as one message of `message_type` and flushes, under one
    /// hold of the write side (see
    /// [`WebSocketConnection::send_batch`](crate::WebSocketConnection::send_batch)): other
    /// clones' messages go before or after the batch, never inside it. The receiver's pong
    /// for a ping that arrives meanwhile does go inside it, between two whole frames (see
    /// [`WsReceiver::receive_message`]).
    pub async fn send_batch<I>(
        &self,
        message_type: MessageType,
        payloads: I,
    ) -> Result<usize, BatchError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.batch(message_type, payloads, true).await
    }

    /// [`send_batch`](Self::send_batch) without the flush at the end (see
    /// [`WebSocketConnection::queue_batch`](crate::WebSocketConnection::queue_batch)).
    pub async fn queue_batch<I>(
        &self,
        message_type: MessageType,
        payloads: I,
    ) -> Result<usize, BatchError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.batch(message_type, payloads, false).await
    }

    /// [`send_batch`](Self::send_batch) (`flush`) or [`queue_batch`](Self::queue_batch).
    async fn batch<I>(
        &self,
        message_type: MessageType,
        payloads: I,
        flush: bool,
    ) -> Result<usize, BatchError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut outbound = self.outbound.lock().await;
        let items = payloads.into_iter().map(|p| Typed(message_type, p));
        batch::send(&mut outbound, &self.link, items, flush).await
    }

    /// [`send_batch`](Self::send_batch) for whole messages of any type (see
    /// [`WebSocketConnection::send_messages`](crate::WebSocketConnection::send_messages)).
    pub async fn send_messages<I>(&self, messages: I) -> Result<usize, BatchError>
    where
        I: IntoIterator,
        I::Item: Borrow<Message>,
    {
        let mut outbound = self.outbound.lock().await;
        let items = messages.into_iter().map(Whole);
        batch::send(&mut outbound, &self.link, items, true).await
    }

    /// Writes out every queued message.
    pub async fn flush(&self) -> Result<(), Error> {
        let mut outbound = self.outbound.lock().await;
        link::flush_bounded(&mut outbound, &self.link).await
    }

    /// The write side, once no other task is writing.
    pub(crate) async fn lock(&self) -> OutboundGuard<'_> {
        OutboundGuard {
            outbound: self.outbound.lock().await,
            link: &self.link,
        }
    }

    /// Starts the close handshake with `code` and `reason`. The receiver then gets the
    /// peer's answering close message and, after it, [`Error::ConnectionClosed`].
    /// Cancelled before its frame is queued (waiting for room), it sent nothing and the
    /// connection stays open.
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.send(Message::close(code, reason)).await
    }

    /// Where the connection is in its lifecycle.
    pub fn state(&self) -> ConnectionState {
        self.link.state()
    }
}

/// Exclusive use of a sender's write side, for several writes in a row.
pub(crate) struct OutboundGuard<'a> {
    outbound: MutexGuard<'a, Outbound>,
    link: &'a Link,
}

impl OutboundGuard<'_> {
    /// Queues the messages of `rest` without flushing; cancel-safe (see `link::send_queued`).
    pub(crate) async fn queue_all(
        &mut self,
        rest: &mut std::collections::VecDeque<Message>,
    ) -> Result<(), Error> {
        link::send_queued(&mut self.outbound, self.link, rest).await
    }

    /// Encodes a borrowed payload once there is room, without flushing; returns the
    /// position of the frame's last byte (see `link::encode_slice`). Follow it with
    /// [`flush_if_full`](Self::flush_if_full), as [`WsSender::queue_slice`] does.
    pub(crate) async fn encode_slice(
        &mut self,
        message_type: MessageType,
        data: &[u8],
    ) -> Result<u64, Error> {
        link::encode_slice(&mut self.outbound, self.link, message_type, data).await
    }

    /// Writes the buffer out if it has reached the write buffer size.
    pub(crate) async fn flush_if_full(&mut self) -> Result<(), Error> {
        link::finish_send(&mut self.outbound, self.link, false).await
    }

    /// See [`Outbound::count_records`](crate::wire::Outbound::count_records).
    pub(crate) fn count_records(&mut self) {
        self.outbound.count_records();
    }

    /// See [`Outbound::written_total`](crate::wire::Outbound::written_total).
    pub(crate) fn written_total(&self) -> u64 {
        self.outbound.written_total()
    }

    /// Writes out everything queued.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        link::flush_bounded(&mut self.outbound, self.link).await
    }
}

impl WsReceiver {
    /// Waits for the next message; see
    /// [`WebSocketConnection::receive_message`](crate::WebSocketConnection::receive_message).
    ///
    /// A ping's pong does not wait for a sender that holds the write side (a long batch,
    /// a send to a slow reader): it is left to that sender, which writes it between two of
    /// its writes (after whole frames), and the ping is returned once it is written, or once
    /// the send timeout has passed since the ping arrived (the pong then goes out with the
    /// next write). Only the latest ping's pong is kept.
    pub async fn receive_message(&mut self) -> Result<Message, Error> {
        if !self.pending.is_empty() {
            if let Some(outcome) = self.settle().await {
                return outcome;
            }
        }
        let received = link::receive(&mut self.inbound, &self.sender.link).await;
        match self.pending.hold(received, &self.sender.link) {
            Some(outcome) => outcome,
            None => self
                .settle()
                .await
                .unwrap_or_else(|| Err(self.sender.link.closed_error())),
        }
    }

    /// Writes the answer a received frame is owed, on the shared write side, and hands
    /// back what was held.
    ///
    /// A pong is parked in the link first, so that a sender holding the write side (a
    /// long batch, a send to a slow reader) writes it between two of its writes: the ping
    /// comes back once the pong is written, by that sender or by this receiver once it
    /// has the write side, or once the send timeout has passed since the ping arrived
    /// (the pong then stays parked for the next write).
    async fn settle(&mut self) -> Option<Result<Message, Error>> {
        let link = &self.sender.link;
        let Some((ticket, deadline)) = self.pending.park_pong(link) else {
            let mut outbound = self.sender.outbound.lock().await;
            return self.pending.settle(&mut outbound, link).await;
        };
        tokio::select! {
            biased;
            // Its flush writes the parked pong, if no other holder took it.
            mut outbound = self.sender.outbound.lock() => {
                self.pending.settle(&mut outbound, link).await
            }
            () = link.pong.written(ticket) => self.pending.release(),
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!("the pong was not written within the send timeout; left for the next write");
                self.pending.release()
            }
        }
    }

    /// Where the connection is in its lifecycle.
    pub fn state(&self) -> ConnectionState {
        self.sender.link.state()
    }

    /// Why the connection ended, once it has: the peer's close code and reason if it
    /// closed it, else [`Error::ConnectionClosed`].
    pub(crate) fn closed_error(&self) -> Error {
        self.sender.link.closed_error()
    }

    /// A sender for this receiver's connection.
    pub fn sender(&self) -> WsSender {
        self.sender.clone()
    }
}
