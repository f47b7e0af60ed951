//! `WebSocketConnection`: one client connection, driven directly from the caller's task.

use std::borrow::Borrow;
use std::sync::Arc;

use crate::batch::{self, Typed, Whole};

use crate::config::TransportConfig;
use crate::connect;
use crate::error::Error;
use crate::link::{self, ConnectionState, Link, Received};
use crate::message::{Message, MessageType};
use crate::pending::Pending;
use crate::split::{WsReceiver, WsSender};
use crate::wire::{DeflateParams, Inbound, Outbound};

/// A WebSocket client connection.
///
/// There is no background task: each call does its own I/O in the caller's task, which
/// keeps round trips as short as the socket allows. To send and receive from two tasks at
/// once, [`split`](Self::split) it.
///
/// ```no_run
/// # async fn demo() -> Result<(), ws_client::Error> {
/// use ws_client::{Message, TransportConfig, WebSocketConnection};
///
/// let url = "ws://127.0.0.1:9001/".to_string();
/// let mut connection = WebSocketConnection::new(TransportConfig { url: url.clone(), ..Default::default() }).await?;
/// connection.connect(&url).await?;
/// connection.send_message(&Message::text("hello")).await?;
/// let echo = connection.receive_message().await?;
/// assert_eq!(echo.as_text()?, "hello");
/// connection.disconnect().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WebSocketConnection {
    config: TransportConfig,
    open: Option<OpenConnection>,
}

/// The parts that exist only while connected.
#[derive(Debug)]
struct OpenConnection {
    inbound: Inbound,
    outbound: Outbound,
    link: Arc<Link>,
    subprotocol: Option<String>,
    /// permessage-deflate as agreed, if it was.
    compression: Option<DeflateParams>,
    /// A received ping or close whose answer is not written yet (see [`Pending`]).
    pending: Pending,
}

impl WebSocketConnection {
    /// A connection with `config`, not yet connected. Fails if the configuration cannot
    /// work (for example a zero timeout). Async so that later versions may do I/O here.
    pub async fn new(config: TransportConfig) -> Result<Self, Error> {
        if config.connect_timeout.is_zero()
            || config.close_timeout.is_zero()
            || config.send_timeout.is_zero()
        {
            return Err(Error::InvalidConfig(
                "timeouts must be greater than zero".into(),
            ));
        }
        if config.max_message_size == 0 || config.max_frame_size == 0 {
            return Err(Error::InvalidConfig(
                "size limits must be greater than zero".into(),
            ));
        }
        if let Some(compression) = &config.compression {
            compression.check()?;
        }
        Ok(Self { config, open: None })
    }

    /// Creates a connection and connects it to `config.url`.
    pub async fn open(config: TransportConfig) -> Result<Self, Error> {
        let url = config.url.clone();
        let mut connection = Self::new(config).await?;
        connection.connect(&url).await?;
        Ok(connection)
    }

    /// Connects to `url` (or to `config.url` when `url` is empty), bounded by
    /// [`TransportConfig::connect_timeout`]. A connection that was closed may connect again.
    pub async fn connect(&mut self, url: &str) -> Result<(), Error> {
        if self.state() == ConnectionState::Open {
            return Err(Error::AlreadyConnected);
        }
        let url = if url.is_empty() {
            self.config.url.as_str()
        } else {
            url
        };
        let established = connect::establish(url, &self.config).await?;
        tracing::debug!(url, "connected");
        self.open = Some(OpenConnection {
            inbound: established.inbound,
            outbound: established.outbound,
            link: Arc::new(Link::new(&self.config)),
            subprotocol: established.subprotocol,
            compression: established.compression,
            pending: Pending::default(),
        });
        Ok(())
    }

    /// Where the connection is in its lifecycle.
    pub fn state(&self) -> ConnectionState {
        self.open
            .as_ref()
            .map_or(ConnectionState::Disconnected, |open| open.link.state())
    }

    /// The subprotocol the server picked, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.open.as_ref()?.subprotocol.as_deref()
    }

    /// permessage-deflate as agreed with the server, if [`TransportConfig::compression`]
    /// offered it and the server accepted; `None` otherwise (messages go uncompressed).
    pub fn compression(&self) -> Option<&DeflateParams> {
        self.open.as_ref()?.compression.as_ref()
    }

    /// The configuration this connection was made with.
    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// Sends one message and flushes it to the socket.
    pub async fn send_message(&mut self, message: &Message) -> Result<(), Error> {
        self.send(message.clone()).await
    }

    /// Sends one message, taking ownership (no copy of the payload), and flushes it.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let open = self.open.as_mut().ok_or(Error::NotConnected)?;
        link::send(&mut open.outbound, &open.link, message.into(), true).await
    }

    /// Queues one message without flushing: it is written once the write buffer passes
    /// [`TransportConfig::write_buffer_size`] or on [`flush`](Self::flush). Use it to
    /// send bursts with fewer system calls.
    pub async fn queue(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let open = self.open.as_mut().ok_or(Error::NotConnected)?;
        link::send(&mut open.outbound, &open.link, message.into(), false).await
    }

    /// Sends `data` as one message of `message_type` and flushes it. The bytes are copied
    /// (and masked) straight into the write buffer: no allocation per message, for a
    /// sender that reuses one buffer.
    pub async fn send_slice(
        &mut self,
        message_type: MessageType,
        data: &[u8],
    ) -> Result<(), Error> {
        let open = self.open.as_mut().ok_or(Error::NotConnected)?;
        link::send_slice(&mut open.outbound, &open.link, message_type, data, true).await
    }

    /// [`send_slice`](Self::send_slice) without the flush (see [`queue`](Self::queue)).
    pub async fn queue_slice(
        &mut self,
        message_type: MessageType,
        data: &[u8],
    ) -> Result<(), Error> {
        let open = self.open.as_mut().ok_or(Error::NotConnected)?;
        link::send_slice(&mut open.outbound, &open.link, message_type, data, false).await
    }

    /// Sends each of `payloads` as one message of `message_type`, in order, and flushes:
    /// the frames are encoded straight into the write buffer with no await per message,
    /// and written with one system call per [`TransportConfig::write_buffer_size`] of
    /// frames (one flush at the end). The way to send many small messages. Returns how
    /// many were sent.
    ///
    /// Memory stays bounded whatever the batch's length: the buffer holds at most the write
    /// buffer size plus one message, and 8 bytes per message encoded since the last write.
    /// Time: the whole batch is bounded by `send_timeout` as one send is (every write of the
    /// batch shares one deadline), failing with [`Error::SendTimeout`].
    /// With permessage-deflate each message is still compressed on its own (at or over the
    /// threshold). A batch stopped by an error says which of its messages were written
    /// whole ([`BatchError`](crate::BatchError)); one cancelled part-way has encoded a
    /// prefix of the batch that goes out with the next write (as with [`queue`](Self::queue)).
    pub async fn send_batch<I>(
        &mut self,
        message_type: MessageType,
        payloads: I,
    ) -> Result<usize, crate::BatchError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.batch(message_type, payloads, true).await
    }

    /// [`send_batch`](Self::send_batch) without the flush at the end: the last part of the
    /// batch waits in the write buffer for the next write (see [`queue`](Self::queue)), so
    /// a producer that sends batch after batch writes full buffers only.
    pub async fn queue_batch<I>(
        &mut self,
        message_type: MessageType,
        payloads: I,
    ) -> Result<usize, crate::BatchError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.batch(message_type, payloads, false).await
    }

    /// [`send_batch`](Self::send_batch) (`flush`) or [`queue_batch`](Self::queue_batch).
    async fn batch<I>(
        &mut self,
        message_type: MessageType,
        payloads: I,
        flush: bool,
    ) -> Result<usize, crate::BatchError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let open = self.open.as_mut().ok_or_else(not_connected)?;
        let items = payloads.into_iter().map(|p| Typed(message_type, p));
        batch::send(&mut open.outbound, &open.link, items, flush).await
    }

    /// [`send_batch`](Self::send_batch) for whole messages of any type (owned or borrowed),
    /// each checked as [`send`](Self::send) checks it.
    pub async fn send_messages<I>(&mut self, messages: I) -> Result<usize, crate::BatchError>
    where
        I: IntoIterator,
        I::Item: Borrow<Message>,
    {
        let open = self.open.as_mut().ok_or_else(not_connected)?;
        let items = messages.into_iter().map(Whole);
        batch::send(&mut open.outbound, &open.link, items, true).await
    }

    /// Writes out every queued message.
    pub async fn flush(&mut self) -> Result<(), Error> {
        let open = self.open.as_mut().ok_or(Error::NotConnected)?;
        link::flush_bounded(&mut open.outbound, &open.link).await
    }

    /// Waits for the next message: data, ping, pong, or the peer's close (returned once,
    /// as a [`MessageType::Close`] message; later calls fail with [`Error::ClosedByPeer`]).
    ///
    /// A ping or close is returned once its answer (pong, close echo) is written, or
    /// once [`TransportConfig::send_timeout`] has passed since it arrived; a receive error
    /// that calls for a close frame (1002, 1007, 1009) likewise, bounded by
    /// [`TransportConfig::close_timeout`] (none is sent if our own close frame already
    /// went out: one close frame per connection).
    ///
    /// Cancel-safe: it can be raced in `tokio::select!` or wrapped in
    /// `tokio::time::timeout` without losing a message. A call cancelled while the answer
    /// is being written leaves it with the connection: the next call finishes the write
    /// (the frame is never sent twice) and returns the message.
    pub async fn receive_message(&mut self) -> Result<Message, Error> {
        let open = self.open.as_mut().ok_or(Error::NotConnected)?;
        if !open.pending.is_empty() {
            if let Some(outcome) = open.pending.settle(&mut open.outbound, &open.link).await {
                return outcome;
            }
        }
        let received = link::receive(&mut open.inbound, &open.link).await;
        match open.pending.hold(received, &open.link) {
            Some(outcome) => outcome,
            None => open
                .pending
                .settle(&mut open.outbound, &open.link)
                .await
                .unwrap_or_else(|| Err(open.link.closed_error())),
        }
    }

    /// Closes the connection with a close handshake (code 1000), waiting at most
    /// [`TransportConfig::close_timeout`] for the peer's answer. Messages that arrive
    /// meanwhile are discarded.
    ///
    /// On a connection that is no longer open, it only writes out what a cancelled call
    /// left owed to the peer (the echo of its close, the close frame of a cancelled
    /// `close`), bounded by the close timeout, and otherwise does nothing.
    pub async fn disconnect(&mut self) -> Result<(), Error> {
        self.close(1000, "").await
    }

    /// Like [`disconnect`](Self::disconnect), with a chosen close code and reason.
    ///
    /// If this is cancelled once its close frame is queued, the connection stays in
    /// [`ConnectionState::Closing`] (or `Closed`): sends fail with
    /// [`Error::ConnectionClosed`], and a later `disconnect` writes out the close frame if
    /// it is still buffered. Cancelled before that (the frame was waiting for room behind
    /// earlier messages the peer has not read), nothing was sent and the connection is
    /// still [`ConnectionState::Open`].
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let timeout = open.link.close_timeout;
        let state = open.link.state();
        if state != ConnectionState::Open {
            let deadline = link::deadline_after(timeout);
            let written = if open.pending.is_empty() && state == ConnectionState::Closing {
                link::flush_until(&mut open.outbound, &open.link, Some(deadline)).await
            } else {
                open.pending
                    .finish(&mut open.outbound, &open.link, deadline)
                    .await
            };
            open.link.set_state(ConnectionState::Closed);
            return written.map_err(|error| match error {
                Error::SendTimeout { .. } => Error::CloseTimeout { after: timeout },
                other => other,
            });
        }
        // A pong still owed is not needed now, nor is the ping it answers.
        open.pending = Pending::default();
        let handshake = async {
            link::send(
                &mut open.outbound,
                &open.link,
                Message::close(code, reason),
                true,
            )
            .await?;
            // Read until the peer answers our close (or ends the connection).
            loop {
                match link::receive(&mut open.inbound, &open.link).await {
                    Received::Message { message, .. }
                        if message.message_type == MessageType::Close =>
                    {
                        break;
                    }
                    Received::Message { .. } => continue,
                    Received::Failed(Error::ConnectionClosed | Error::ClosedByPeer { .. })
                    | Received::Ended(Error::ConnectionClosed | Error::ClosedByPeer { .. }) => {
                        break;
                    }
                    Received::Failed(error) | Received::Ended(error) => return Err(error),
                }
            }
            Ok(())
        };
        let result = match tokio::time::timeout(timeout, handshake).await {
            Ok(result) => result,
            Err(_) => Err(Error::CloseTimeout { after: timeout }),
        };
        open.link.set_state(ConnectionState::Closed);
        result
    }

    /// Splits an open connection into a cloneable sender and a receiver, so that two
    /// tasks can send and receive at the same time. What a cancelled receive left owed (see
    /// [`receive_message`](Self::receive_message)) goes to the receiver.
    pub fn split(self) -> Result<(WsSender, WsReceiver), Error> {
        let open = self.open.ok_or(Error::NotConnected)?;
        Ok(crate::split::split(
            open.inbound,
            open.outbound,
            open.link,
            open.pending,
        ))
    }
}

/// A batch on a connection that is not open: nothing encoded.
fn not_connected() -> crate::BatchError {
    crate::BatchError {
        written: 0,
        encoded: 0,
        error: Error::NotConnected,
    }
}
