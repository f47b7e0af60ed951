//! `ResilientConnection` and `ResilientSender`: the handles a user holds; each call talks to
//! the connection's background task through a bounded channel.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::batch::{BatchDelivery, BatchReceipt, BatchRefused};
use super::config::ResilientConfig;
use super::events::{EventStream, LinkStatus};
use super::metrics::MetricsSnapshot;
use super::queue::{Delivery, Outgoing, SendFailed};
use super::shared::{Command, Pinned, Shared};
use super::task::{Inbound, Task};
use crate::connection::WebSocketConnection;
use crate::error::Error;
use crate::message::{Message, MessageType};

/// A WebSocket connection that reconnects by itself; see the [module docs](super).
#[derive(Debug)]
pub struct ResilientConnection {
    sender: ResilientSender,
    incoming: mpsc::Receiver<Inbound>,
    task: Option<JoinHandle<()>>,
    /// Stops the task (gracefully, within the close timeout) when the connection is dropped.
    _stop_on_drop: DropGuard,
}

/// A cloneable handle that sends on a [`ResilientConnection`], for other tasks. Once the
/// connection has ended (closed, dropped or given up) every send hands its message back.
#[derive(Debug, Clone)]
pub struct ResilientSender {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    max_message_size: usize,
}

impl ResilientConnection {
    /// Starts the background task and waits for the first connection.
    ///
    /// By default the first connect fails fast: its error is returned at once (the same
    /// error [`WebSocketConnection::open`] would give). With
    /// [`retry_first_connect`](ResilientConfig::retry_first_connect) it is retried per the
    /// policy, and this returns once connected or with the error that ended the retries (a
    /// non-retryable error, or [`Error::ReconnectGaveUp`]). Dropping the future stops the task.
    pub async fn connect(config: ResilientConfig) -> Result<Self, Error> {
        config.check()?;
        // Checks the transport settings once, before any attempt.
        WebSocketConnection::new(config.transport.clone()).await?;
        let shared = Shared::new(config.event_capacity, &config.metrics_labels);
        let (commands, command_receiver) = mpsc::channel(config.send_buffer);
        let (incoming_sender, incoming) = mpsc::channel(config.receive_buffer);
        let token = CancellationToken::new();
        let stop_on_drop = token.clone().drop_guard();
        let sender = ResilientSender {
            commands,
            shared: Arc::clone(&shared),
            max_message_size: config.transport.max_message_size,
        };
        let (first, first_outcome) = oneshot::channel();
        let task = Task::new(config, shared, command_receiver, incoming_sender, token);
        let task = tokio::spawn(task.run(first));
        match first_outcome.await {
            Ok(Ok(())) => Ok(Self {
                sender,
                incoming,
                task: Some(task),
                _stop_on_drop: stop_on_drop,
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(sender.shared.ended_error()),
        }
    }

    /// Sends `message` and waits until it is written to a socket (`Ok`) or given up on
    /// (`Err`, with the message). During an outage, with the default queue policy, this
    /// waits for the reconnect; see [`enqueue`](Self::enqueue) to hand over several
    /// messages without waiting for each. Dropping the future once the message was handed
    /// over does not withdraw it (see [`ResilientSender::enqueue`]).
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendFailed> {
        self.sender.send(message).await
    }

    /// Hands `message` over and returns its [`Delivery`] receipt at once (waiting only for
    /// room in the send buffer). Messages go out in the order they were handed over.
    pub async fn enqueue(&self, message: impl Into<Message>) -> Result<Delivery, SendFailed> {
        self.sender.enqueue(message).await
    }

    /// Hands `messages` over as one batch and returns its one receipt at once (waiting only
    /// for room in the send buffer); see [`ResilientSender::enqueue_batch`].
    pub async fn enqueue_batch<I>(&self, messages: I) -> Result<BatchDelivery, BatchRefused>
    where
        I: IntoIterator,
        I::Item: Into<Message>,
    {
        self.sender.enqueue_batch(messages).await
    }

    /// A cloneable sender for other tasks.
    pub fn sender(&self) -> ResilientSender {
        self.sender.clone()
    }

    /// The next data message (text or binary), from whichever connection is up: messages
    /// keep coming across reconnects. Fails only once the resilient connection has ended,
    /// with the reason (the non-retryable error, [`Error::ReconnectGaveUp`], or
    /// [`Error::ConnectionClosed`] after `close`), after every message received before.
    ///
    /// Cancel-safe: it can be raced in `tokio::select!` without losing a message.
    pub async fn receive(&mut self) -> Result<Message, Error> {
        self.receive_with_generation()
            .await
            .map(|(_, message)| message)
    }

    /// Like [`receive`](Self::receive), with the generation of the connection the message
    /// came on: a change of generation marks a reconnect, and messages the server sent
    /// while the connection was down were not received.
    pub async fn receive_with_generation(&mut self) -> Result<(u64, Message), Error> {
        match self.incoming.recv().await {
            Some(received) => Ok(received),
            None => Err(self.sender.shared.ended_error()),
        }
    }

    /// The next message already received, without waiting (for a layer above that must see
    /// every message of a connection before acting on its drop).
    pub(crate) fn try_receive_with_generation(&mut self) -> Option<(u64, Message)> {
        self.incoming.try_recv().ok()
    }

    /// The lifecycle events (see [`EventStream`]): the first stream made sees every event
    /// from the start, the first connect included; later ones from when they are made.
    pub fn events(&self) -> EventStream {
        self.sender.shared.events()
    }

    /// The connection's status now, and every change of it (a `watch` keeps the latest
    /// value, so a reader never misses the current state).
    pub fn status(&self) -> watch::Receiver<LinkStatus> {
        self.sender.shared.status()
    }

    /// A copy of the counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.sender.shared.metrics.snapshot()
    }

    /// Closes: messages handed over before are written first (the outage queue, if down, is
    /// handed back with [`Error::ConnectionClosed`]), then the close handshake (code 1000)
    /// within the transport's close timeout. Does nothing if already ended.
    pub async fn close(&mut self) -> Result<(), Error> {
        let result = self.sender.close_connection().await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        result
    }
}

impl ResilientSender {
    /// See [`ResilientConnection::send`].
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendFailed> {
        self.enqueue(message).await?.await
    }

    /// See [`ResilientConnection::enqueue`]. A message that can never be sent (a close
    /// frame: use `close`; over `max_message_size`; text that is not UTF-8; a control
    /// payload over 125 bytes) comes back at once.
    ///
    /// Dropping this future before it returns means the message was not handed over; it is
    /// dropped with the future (as with any channel send). Once it has returned, the message
    /// belongs to the connection until its `Delivery` resolves.
    pub async fn enqueue(&self, message: impl Into<Message>) -> Result<Delivery, SendFailed> {
        let message = message.into();
        if let Err(error) = self.check(&message) {
            return Err(SendFailed { message, error });
        }
        let permit = match self.commands.reserve().await {
            Ok(permit) => permit,
            Err(_) => {
                let error = self.shared.ended_error();
                return Err(SendFailed { message, error });
            }
        };
        let (outgoing, delivery) = Outgoing::new(message);
        permit.send(Command::Send(outgoing));
        Ok(delivery)
    }

    /// Hands `messages` over as one batch: one command to the background task and one
    /// receipt for all of them, instead of a channel send and a receipt per message (the way
    /// for a producer of many small messages). Every message is checked first; one that can
    /// never be sent refuses the whole batch, which comes back with its index.
    ///
    /// Inside the connection each message of the batch is treated as if enqueued alone, in
    /// order and before anything enqueued after the batch: it goes out in the writer's
    /// gathered writes, a drop that cuts a write resends exactly the messages the socket did
    /// not take whole, and during an outage each waits in the outage queue within its bounds
    /// (those that do not fit come back with [`Error::OutageQueueFull`]). The receipt
    /// resolves once every message is written (`Ok`) or, if any was given up on, with
    /// [`BatchFailed`](super::BatchFailed) listing those, each with its index and reason.
    ///
    /// A batch takes one place in the send buffer whatever its length, so the memory held
    /// by batches waiting there is up to [`ResilientConfig::send_buffer`] batches.
    pub async fn enqueue_batch<I>(&self, messages: I) -> Result<BatchDelivery, BatchRefused>
    where
        I: IntoIterator,
        I::Item: Into<Message>,
    {
        let messages: Vec<Message> = messages.into_iter().map(Into::into).collect();
        if let Some((index, error)) = messages
            .iter()
            .enumerate()
            .find_map(|(i, message)| self.check(message).err().map(|error| (i, error)))
        {
            let index = Some(index);
            return Err(BatchRefused {
                messages,
                index,
                error,
            });
        }
        if messages.is_empty() {
            return Ok(BatchReceipt::done());
        }
        let permit = match self.commands.reserve().await {
            Ok(permit) => permit,
            Err(_) => {
                let error = self.shared.ended_error();
                let index = None;
                return Err(BatchRefused {
                    messages,
                    index,
                    error,
                });
            }
        };
        let (receipt, delivery) = BatchReceipt::new(messages.len());
        let receipt = Arc::new(receipt);
        let batch = messages
            .into_iter()
            .enumerate()
            .map(|(i, message)| Outgoing::in_batch(message, Arc::clone(&receipt), i))
            .collect();
        permit.send(Command::SendBatch(batch));
        Ok(delivery)
    }

    /// Hands over `messages` to be written with one flush on connection `generation` only
    /// (see `Command::Pinned`); the receiver resolves (`Ok` or closed) once they are written
    /// or dropped. Gives the messages back if the connection has ended. Messages are not
    /// checked: the caller sends only what it built itself within `max_message_size`.
    pub(crate) async fn send_pinned(
        &self,
        generation: u64,
        messages: std::collections::VecDeque<Message>,
    ) -> Result<oneshot::Receiver<()>, Error> {
        let (done, written) = oneshot::channel();
        let pinned = Pinned {
            generation,
            messages,
            done,
        };
        match self.commands.send(Command::Pinned(pinned)).await {
            Ok(()) => Ok(written),
            Err(_) => Err(self.shared.ended_error()),
        }
    }

    /// Asks the background task to close (as [`ResilientConnection::close`] does) and waits
    /// for its answer; `Ok` if it had already ended.
    pub(crate) async fn close_connection(&self) -> Result<(), Error> {
        let (reply, done) = oneshot::channel();
        match self.commands.send(Command::Close(reply)).await {
            Ok(()) => done.await.unwrap_or(Ok(())),
            Err(_) => Ok(()),
        }
    }

    /// The connection's status now, and every change of it (see
    /// [`ResilientConnection::status`]).
    pub fn status(&self) -> watch::Receiver<LinkStatus> {
        self.shared.status()
    }

    /// The lifecycle events (see [`ResilientConnection::events`]).
    pub fn events(&self) -> EventStream {
        self.shared.events()
    }

    /// Why the connection ended (or `ConnectionClosed` if it has not).
    pub(crate) fn ended_error(&self) -> Error {
        self.shared.ended_error()
    }

    /// The largest message the connection sends.
    pub(crate) fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    fn check(&self, message: &Message) -> Result<(), Error> {
        if message.message_type == MessageType::Close {
            return Err(Error::InvalidCloseFrame(
                "close a resilient connection with close(), not with a close message".into(),
            ));
        }
        if message.data.len() > self.max_message_size {
            return Err(Error::MessageTooLarge {
                size: message.data.len(),
                limit: self.max_message_size,
            });
        }
        crate::message::check_sendable(message.message_type, &message.data)
    }
}
