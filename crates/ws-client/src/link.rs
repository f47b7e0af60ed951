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

use tokio::time::Instant;

use crate::error::{self, Error};
use crate::message::{Message, MessageType};
use crate::parked::ParkedPong;
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
    /// A pong the receiver of a split connection left for the holder of the write side.
    pub(crate) pong: ParkedPong,
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
            pong: ParkedPong::default(),
        }
    }

    pub(crate) fn state(&self) -> ConnectionState {
        ConnectionState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Moves the link to `state`. Only for `Closed` (which nothing leaves) and for a new
    /// connection: the move to `Closing` is [`begin_close`](Self::begin_close), which
    /// checks and moves in one step.
    pub(crate) fn set_state(&self, state: ConnectionState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Moves an open link to `Closing` for a close frame about to be sent, in one atomic
    /// step: of a close sent by us and one received from the peer at the same time, only
    /// one answers the other, and the state never goes back from `Closed`.
    fn begin_close(&self) -> Result<(), Error> {
        let open = ConnectionState::Open as u8;
        let closing = ConnectionState::Closing as u8;
        match self
            .state
            .compare_exchange(open, closing, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(_) => Err(self
                .check_can_send()
                .err()
                .unwrap_or_else(|| self.closed_error())),
        }
    }

    /// Records the peer's close frame and moves the link to `Closed`, in one step (the
    /// lock on the peer's close is held, so whoever then sees `Closed` also sees the
    /// code). Returns whether the close must be echoed: only when the link was open (a
    /// close answering ours is not the peer closing on us).
    fn close_received(&self, message: &Message) -> bool {
        let mut peer_close = self.peer_close.lock().unwrap_or_else(|e| e.into_inner());
        let before = self
            .state
            .swap(ConnectionState::Closed as u8, Ordering::AcqRel);
        let owed = ConnectionState::from_u8(before) == ConnectionState::Open;
        if owed {
            let code = message.close_code().unwrap_or(1005);
            let reason = message.close_reason().unwrap_or_default();
            *peer_close = Some((code, reason));
        }
        owed
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
    #[inline]
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
    check(link, message.message_type, &message.data)?;
    if !out.has_room(link.write_buffer_size) {
        flush_bounded(out, link).await?;
    }
    begin(link, message.message_type)?;
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
    encode_slice(out, link, message_type, data).await?;
    finish_send(out, link, flush).await
}

/// The first half of [`send_slice`]: waits for room, then encodes the frame, and returns
/// the position of its last byte in the connection's output
/// ([`Outbound::encoded_total`]). Nothing is awaited after the frame is encoded, so a
/// caller that gets the position back always learns where an encoded frame ends.
pub(crate) async fn encode_slice(
    out: &mut Outbound,
    link: &Link,
    message_type: MessageType,
    data: &[u8],
) -> Result<u64, Error> {
    check(link, message_type, data)?;
    if !out.has_room(link.write_buffer_size) {
        flush_bounded(out, link).await?;
    }
    begin(link, message_type)?;
    out.encode(message_type, data);
    Ok(out.encoded_total())
}

/// After a frame is encoded: writes the buffer out if asked or if it is full.
pub(crate) async fn finish_send(out: &mut Outbound, link: &Link, flush: bool) -> Result<(), Error> {
    if flush || out.pending() >= link.write_buffer_size {
        flush_bounded(out, link).await?;
    }
    Ok(())
}

/// Checks a message against the link's state and limits, then [`begin`]s it.
fn prepare(link: &Link, message_type: MessageType, data: &[u8]) -> Result<(), Error> {
    check(link, message_type, data)?;
    begin(link, message_type)
}

/// Checks a message against the link's state and limits.
#[inline]
pub(crate) fn check(link: &Link, message_type: MessageType, data: &[u8]) -> Result<(), Error> {
    link.check_can_send()?;
    if data.len() > link.max_message_size {
        return Err(Error::MessageTooLarge {
            size: data.len(),
            limit: link.max_message_size,
        });
    }
    crate::message::check_sendable(message_type, data)
}

/// For a message about to be encoded (nothing awaited in between): a close moves the link
/// to `Closing`, after which nothing may be sent. Done only once there is room for the
/// frame, so a close cancelled while waiting for room was not sent and leaves the link open.
#[inline]
pub(crate) fn begin(link: &Link, message_type: MessageType) -> Result<(), Error> {
    if message_type == MessageType::Close {
        link.begin_close()?;
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
    loop {
        if !rest.is_empty() && !out.has_room(link.write_buffer_size) {
            flush_bounded(out, link).await?;
        }
        let Some(message) = rest.pop_front() else {
            return Ok(());
        };
        prepare(link, message.message_type, &message.data)?;
        out.encode_owned(message);
    }
}

/// Writes out everything buffered. Bounded by the link's send timeout; the timer is armed
/// only when the socket cannot take the bytes at once (most writes only fill the socket's
/// buffer, and a timer per write would cost more than the write).
pub(crate) async fn flush_bounded(out: &mut Outbound, link: &Link) -> Result<(), Error> {
    flush_until(out, link, None).await
}

/// [`flush_bounded`] with a deadline of its own (`None`: the send timeout from now), for
/// a write that a cancelled call resumes without starting its time over.
///
/// A pong parked by a split connection's receiver goes out with it, behind the frames
/// already buffered (see [`ParkedPong`]): every holder of the write side answers pings
/// between two of its writes. Behind a large payload written from its own memory (nothing
/// may be appended to it) the pong follows in a second write, once the payload is out.
pub(crate) async fn flush_until(
    out: &mut Outbound,
    link: &Link,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    let open = || link.state() == ConnectionState::Open;
    let mut carried = link.pong.carry(out, open());
    let mut flushed = write_buffered(out, link, deadline).await;
    if carried.is_none() && flushed.is_ok() {
        carried = link.pong.carry(out, open());
        if carried.is_some() {
            flushed = write_buffered(out, link, deadline).await;
        }
    }
    if let Some(ticket) = carried {
        link.pong.finished(ticket);
    }
    flushed
}

/// Writes out everything buffered by `deadline` (`None`: the send timeout from now).
async fn write_buffered(
    out: &mut Outbound,
    link: &Link,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    match out.flush_now() {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) => return Err(fail(link, error::from_io(e))),
    }
    let deadline = deadline.unwrap_or_else(|| deadline_after(link.send_timeout));
    let wait = std::future::poll_fn(|cx| out.poll_flush(cx));
    match tokio::time::timeout_at(deadline, wait).await {
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

/// The instant `timeout` from now. A timeout too long to be represented (`Duration::MAX`
/// for "no timeout") ends in about 30 years instead of overflowing, as tokio's own
/// `timeout` does.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}

/// What one receive step produced.
#[derive(Debug)]
pub(crate) enum Received {
    /// A message for the caller (a close message included, once), and the frame owed to
    /// the peer in answer, if any: a pong for a ping, the echo of a close.
    Message {
        message: Message,
        reply: Option<Message>,
    },
    /// The connection failed; if the error calls for a close code (1002, 1007, 1009),
    /// the caller should send it (see [`Pending`](crate::pending::Pending)) before
    /// reporting the error.
    Failed(Error),
    /// The connection failed after our own close frame went out: no second close frame
    /// may follow it (RFC 6455 section 5.5.1), whatever the error.
    Ended(Error),
}

/// Receives the next message. Pings and the peer's close are handed to the caller with
/// the answer it owes (written by [`Pending`](crate::pending::Pending)). Once the link is
/// closed nothing more is read: what a peer sends after its close frame is discarded
/// (RFC 6455 section 5.5.1), and the error says how the connection ended.
pub(crate) async fn receive(inbound: &mut Inbound, link: &Link) -> Received {
    if link.state() == ConnectionState::Closed {
        return Received::Failed(link.closed_error());
    }
    match inbound.next().await {
        Ok(Some(message)) => {
            let reply = match message.message_type {
                MessageType::Ping if link.state() == ConnectionState::Open => {
                    Some(Message::pong(message.data.clone()))
                }
                MessageType::Close if link.close_received(&message) => Some(Message {
                    data: message.data.get(..2).unwrap_or_default().to_vec(),
                    message_type: MessageType::Close,
                }),
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
        Err(e) => {
            // In one step with the check, so that a close sent at the same moment either
            // goes out alone (it moved the link first) or not at all.
            let before = link
                .state
                .swap(ConnectionState::Closed as u8, Ordering::AcqRel);
            let error = fail(link, e);
            match ConnectionState::from_u8(before) {
                ConnectionState::Open => Received::Failed(error),
                _ => Received::Ended(error),
            }
        }
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
