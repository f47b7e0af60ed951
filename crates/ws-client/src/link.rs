//! `Link`: the state one connection's halves share, and the send/receive steps both use.
//!
//! The whole connection ([`WebSocketConnection`](crate::WebSocketConnection)) and its split
//! halves ([`WsSender`](crate::WsSender), [`WsReceiver`](crate::WsReceiver)) run the same
//! code here, on the read and write sides of `wire`.

use std::sync::{
    Mutex,
    atomic::{AtomicU8, Ordering},
};
use std::time::Duration;

use crate::error::{self, Error};
use crate::message::{Message, MessageType};
use crate::wire::{Inbound, Outbound};

/// The lifecycle of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Not connected yet (or `connect` failed).
    Disconnected,
    /// Open: messages flow both ways.
    Open,
    /// A close frame was sent; waiting for the peer's answer. Nothing more can be sent.
    Closing,
    /// Closed, cleanly or not. See [`Error`] from the last call for why.
    Closed,
}

impl ConnectionState {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Disconnected,
            1 => Self::Open,
            2 => Self::Closing,
            _ => Self::Closed,
        }
    }
}

/// Limits and status shared by everything that uses one connection.
#[derive(Debug)]
pub(crate) struct Link {
    state: AtomicU8,
    /// The close code and reason the peer sent, once it sent one.
    peer_close: Mutex<Option<(u16, String)>>,
    pub(crate) max_message_size: usize,
    pub(crate) send_timeout: Duration,
    pub(crate) close_timeout: Duration,
    /// Buffered bytes after which frames are written without waiting for a flush.
    pub(crate) write_buffer_size: usize,
}

impl Link {
    pub(crate) fn new(config: &crate::TransportConfig) -> Self {
        Self {
            state: AtomicU8::new(ConnectionState::Open as u8),
            peer_close: Mutex::new(None),
            max_message_size: config.max_message_size,
            send_timeout: config.send_timeout,
            close_timeout: config.close_timeout,
            write_buffer_size: config.write_buffer_size.max(1),
        }
    }

    pub(crate) fn state(&self) -> ConnectionState {
        ConnectionState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: ConnectionState) {
        self.state.store(state as u8, Ordering::Release);
    }

    fn record_peer_close(&self, message: &Message) {
        let code = message.close_code().unwrap_or(1005);
        let reason = message.close_reason().unwrap_or_default();
        *self.peer_close.lock().unwrap_or_else(|e| e.into_inner()) = Some((code, reason));
    }

    /// The error for using a connection that has ended: the peer's close if it sent one.
    pub(crate) fn closed_error(&self) -> Error {
        match self
            .peer_close
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            Some((code, reason)) => Error::ClosedByPeer { code, reason },
            None => Error::ConnectionClosed,
        }
    }

    /// Fails fast when the connection can no longer send.
    fn check_can_send(&self) -> Result<(), Error> {
        match self.state() {
            ConnectionState::Open => Ok(()),
            ConnectionState::Disconnected => Err(Error::NotConnected),
            ConnectionState::Closing | ConnectionState::Closed => Err(self.closed_error()),
        }
    }
}

/// Sends one message: validates it, encodes it into the write buffer, and writes the
/// buffer out when `flush` is set (or when it passes the threshold). Bounded by the link's
/// send timeout.
///
/// The common case does no waiting at all: the frame is encoded and the socket takes the
/// bytes at once, so no timer is armed and no waker registered.
pub(crate) async fn send(
    out: &mut Outbound,
    link: &Link,
    message: Message,
    flush: bool,
) -> Result<(), Error> {
    prepare(link, message.message_type, &message.data)?;
    if !out.has_room(link.write_buffer_size) {
        flush_bounded(out, link).await?;
    }
    out.encode_owned(message);
    finish_send(out, link, flush).await
}

/// [`send`] for a borrowed payload: copied (and masked) straight into the write buffer,
/// so there is no allocation per message.
pub(crate) async fn send_slice(
    out: &mut Outbound,
    link: &Link,
    message_type: MessageType,
    data: &[u8],
    flush: bool,
) -> Result<(), Error> {
    prepare(link, message_type, data)?;
    if !out.has_room(link.write_buffer_size) {
        flush_bounded(out, link).await?;
    }
    out.encode(message_type, data);
    finish_send(out, link, flush).await
}

/// After a frame is encoded: writes the buffer out if asked or if it is full.
async fn finish_send(out: &mut Outbound, link: &Link, flush: bool) -> Result<(), Error> {
    if flush || out.pending() >= link.write_buffer_size {
        flush_bounded(out, link).await?;
    }
    Ok(())
}

/// Checks a message against the link's state and limits. A close moves the link to
/// `Closing`: nothing may be sent after it.
fn prepare(link: &Link, message_type: MessageType, data: &[u8]) -> Result<(), Error> {
    link.check_can_send()?;
    if data.len() > link.max_message_size {
        return Err(Error::MessageTooLarge {
            size: data.len(),
            limit: link.max_message_size,
        });
    }
    crate::message::check_sendable(message_type, data)?;
    if message_type == MessageType::Close {
        link.set_state(ConnectionState::Closing);
    }
    Ok(())
}

/// Encodes the messages of `rest` in order without flushing, taking each out of `rest`
/// only once there is room for it: if this future is dropped, nothing taken is lost.
pub(crate) async fn send_queued(
    out: &mut Outbound,
    link: &Link,
    rest: &mut std::collections::VecDeque<Message>,
) -> Result<(), Error> {
    while !rest.is_empty() {
        if !out.has_room(link.write_buffer_size) {
            flush_bounded(out, link).await?;
        }
        let Some(message) = rest.pop_front() else {
            break;
        };
        prepare(link, message.message_type, &message.data)?;
        out.encode_owned(message);
    }
    Ok(())
}

/// Writes out everything buffered. Bounded by the link's send timeout; the timer is armed
/// only when the socket cannot take the bytes at once (most writes only fill the socket's
/// buffer, and a timer per write would cost more than the write).
pub(crate) async fn flush_bounded(out: &mut Outbound, link: &Link) -> Result<(), Error> {
    match out.flush_now() {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) => return Err(fail(link, error::from_io(e))),
    }
    let wait = std::future::poll_fn(|cx| out.poll_flush(cx));
    match tokio::time::timeout(link.send_timeout, wait).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(fail(link, error::from_io(e))),
        Err(_) => {
            link.set_state(ConnectionState::Closed);
            Err(Error::SendTimeout {
                after: link.send_timeout,
            })
        }
    }
}

/// What one receive step produced.
pub(crate) enum Received {
    /// A message for the caller (a close message included, once), and the frame owed to
    /// the peer in answer, if any: a pong for a ping, the echo of a close.
    Message {
        message: Message,
        reply: Option<Message>,
    },
    /// The connection failed; if the error calls for a close code (1002, 1007, 1009),
    /// the caller should send it (see [`send_failure_close`]) before reporting the error.
    Failed(Error),
}

/// Receives the next message. Pings and the peer's close are handed to the caller with
/// the answer it owes (see [`answer`]).
pub(crate) async fn receive(inbound: &mut Inbound, link: &Link) -> Received {
    match inbound.next().await {
        Ok(Some(message)) => {
            let reply = match message.message_type {
                MessageType::Ping if link.state() == ConnectionState::Open => {
                    Some(Message::pong(message.data.clone()))
                }
                MessageType::Close => {
                    // A close answering our own close is not the peer closing on us.
                    let owed = link.state() == ConnectionState::Open;
                    link.set_state(ConnectionState::Closed);
                    if owed {
                        link.record_peer_close(&message);
                        Some(Message {
                            data: message.data.get(..2).unwrap_or_default().to_vec(),
                            message_type: MessageType::Close,
                        })
                    } else {
                        None
                    }
                }
                _ => None,
            };
            Received::Message { message, reply }
        }
        Ok(None) => {
            let error = match link.state() {
                ConnectionState::Open => Error::ConnectionLost(
                    "the peer closed the TCP connection without a close handshake".into(),
                ),
                _ => link.closed_error(),
            };
            link.set_state(ConnectionState::Closed);
            Received::Failed(error)
        }
        Err(e) => Received::Failed(fail(link, e)),
    }
}

/// Sends the frame a received message calls for (a pong, or the echo of the peer's close),
/// bounded by the send timeout; a failure here shows on the next send or receive.
pub(crate) async fn answer(out: &mut Outbound, link: &Link, reply: &Message) {
    let sent = async {
        if !out.has_room(link.write_buffer_size) {
            flush_bounded(out, link).await?;
        }
        out.encode(reply.message_type, &reply.data);
        flush_bounded(out, link).await
    };
    if let Err(e) = sent.await {
        tracing::debug!(error = %e, "could not send {:?} to the peer", reply.message_type);
    }
}

/// After a receive error that RFC 6455 answers with a close code, sends that close frame,
/// best effort and bounded by the close timeout.
pub(crate) async fn send_failure_close(out: &mut Outbound, link: &Link, error: &Error) {
    let Some(code) = error.close_code() else {
        return;
    };
    let reason = match code {
        1009 => "message too big",
        1007 => "invalid UTF-8",
        _ => "protocol error",
    };
    let write = async {
        // Whatever is queued goes first: a close frame must not overtake a payload.
        std::future::poll_fn(|cx| out.poll_flush(cx)).await?;
        out.encode(MessageType::Close, &Message::close(code, reason).data);
        std::future::poll_fn(|cx| out.poll_flush(cx)).await
    };
    if let Ok(Err(e)) = tokio::time::timeout(link.close_timeout, write).await {
        tracing::debug!(error = %e, "could not send close frame {code} after a receive failure");
    }
}

/// Marks the link closed after a fatal error and passes the error on.
fn fail(link: &Link, error: Error) -> Error {
    link.set_state(ConnectionState::Closed);
    match error {
        Error::ConnectionClosed => link.closed_error(),
        other => other,
    }
}
