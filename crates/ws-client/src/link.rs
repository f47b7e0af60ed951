//! `Link`: the state one connection's halves share, and the send/receive steps both use.
//!
//! The whole connection ([`WebSocketConnection`](crate::WebSocketConnection)) and its split
//! halves ([`WsSender`](crate::WsSender), [`WsReceiver`](crate::WsReceiver)) run the same
//! code here, generic over the tungstenite sink and stream they hold.

use std::sync::{
    Mutex,
    atomic::{AtomicU8, Ordering},
};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite;

use crate::error::{self, Error};
use crate::message::{Message, MessageType};

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
}

impl Link {
    pub(crate) fn new(config: &crate::TransportConfig) -> Self {
        Self {
            state: AtomicU8::new(ConnectionState::Open as u8),
            peer_close: Mutex::new(None),
            max_message_size: config.max_message_size,
            send_timeout: config.send_timeout,
            close_timeout: config.close_timeout,
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

/// Sends one message: validates it, queues it, and flushes when `flush` is set (or when the
/// write buffer passes its threshold). Bounded by the link's send timeout.
pub(crate) async fn send<S>(
    sink: &mut S,
    link: &Link,
    message: Message,
    flush: bool,
) -> Result<(), Error>
where
    S: Sink<tungstenite::Message, Error = tungstenite::Error> + Unpin,
{
    let frame = prepare(link, message)?;
    let is_close = matches!(frame, tungstenite::Message::Close(_));
    if is_close {
        link.set_state(ConnectionState::Closing);
    }
    if is_close {
        return Box::pin(write_slowly(sink, link, frame, true)).await;
    }
    match write_now(sink, link, frame, flush)? {
        WriteNow::Done => Ok(()),
        // Boxed so that the fast path does not carry the slow paths' state.
        WriteNow::FlushPending => Box::pin(bounded(link, sink.flush())).await,
        WriteNow::NoRoom(frame) => Box::pin(write_slowly(sink, link, frame, flush)).await,
    }
}

/// How far a write got without waiting.
enum WriteNow {
    Done,
    FlushPending,
    NoRoom(tungstenite::Message),
}

/// The common case of a write: the buffer has room and the socket takes the bytes at once,
/// so no future, timer or waker is needed.
fn write_now<S>(
    sink: &mut S,
    link: &Link,
    frame: tungstenite::Message,
    flush: bool,
) -> Result<WriteNow, Error>
where
    S: Sink<tungstenite::Message, Error = tungstenite::Error> + Unpin,
{
    let failed = |e| fail(link, error::from_tungstenite(e));
    let mut context = Context::from_waker(Waker::noop());
    match sink.poll_ready_unpin(&mut context) {
        Poll::Ready(ready) => ready
            .and_then(|()| sink.start_send_unpin(frame))
            .map_err(failed)?,
        Poll::Pending => return Ok(WriteNow::NoRoom(frame)),
    }
    if !flush {
        return Ok(WriteNow::Done);
    }
    match sink.poll_flush_unpin(&mut context) {
        Poll::Ready(flushed) => flushed.map(|()| WriteNow::Done).map_err(failed),
        Poll::Pending => Ok(WriteNow::FlushPending),
    }
}

/// Checks a message against the link's state and limits and converts it for tungstenite.
fn prepare(link: &Link, message: Message) -> Result<tungstenite::Message, Error> {
    link.check_can_send()?;
    if message.data.len() > link.max_message_size {
        return Err(Error::MessageTooLarge {
            size: message.data.len(),
            limit: link.max_message_size,
        });
    }
    message.into_tungstenite()
}

/// Feeds `frame` (waiting for room under the send timeout) and flushes if asked.
async fn write_slowly<S>(
    sink: &mut S,
    link: &Link,
    frame: tungstenite::Message,
    flush: bool,
) -> Result<(), Error>
where
    S: Sink<tungstenite::Message, Error = tungstenite::Error> + Unpin,
{
    let write = async {
        sink.feed(frame).await?;
        if flush { sink.flush().await } else { Ok(()) }
    };
    bounded(link, write).await
}

/// Queues the messages of `rest` in order without flushing, taking each out of `rest` only
/// once the sink has room for it: if this future is dropped, nothing taken is lost.
pub(crate) async fn send_queued<S>(
    sink: &mut S,
    link: &Link,
    rest: &mut std::collections::VecDeque<Message>,
) -> Result<(), Error>
where
    S: Sink<tungstenite::Message, Error = tungstenite::Error> + Unpin,
{
    while !rest.is_empty() {
        bounded(link, std::future::poll_fn(|cx| sink.poll_ready_unpin(cx))).await?;
        let Some(message) = rest.pop_front() else {
            break;
        };
        let frame = prepare(link, message)?;
        sink.start_send_unpin(frame)
            .map_err(|e| fail(link, error::from_tungstenite(e)))?;
    }
    Ok(())
}

/// Writes out everything queued. Bounded by the link's send timeout.
pub(crate) async fn flush<S>(sink: &mut S, link: &Link) -> Result<(), Error>
where
    S: Sink<tungstenite::Message, Error = tungstenite::Error> + Unpin,
{
    bounded(link, sink.flush()).await
}

/// Runs a socket write under the send timeout. The timer is armed only when the write
/// cannot finish at once: most writes only fill the buffer, and a timer per write would
/// cost more than the write itself.
async fn bounded<F>(link: &Link, write: F) -> Result<(), Error>
where
    F: Future<Output = Result<(), tungstenite::Error>>,
{
    let mut write = std::pin::pin!(write);
    let outcome = match write.as_mut().now_or_never() {
        Some(outcome) => outcome,
        None => match tokio::time::timeout(link.send_timeout, write).await {
            Ok(outcome) => outcome,
            Err(_) => {
                link.set_state(ConnectionState::Closed);
                return Err(Error::SendTimeout {
                    after: link.send_timeout,
                });
            }
        },
    };
    outcome.map_err(|e| fail(link, error::from_tungstenite(e)))
}

/// What one receive step produced.
pub(crate) enum Received {
    /// A message for the caller (a close message included, once).
    Message(Message),
    /// The connection failed; if the error calls for a close code (1002, 1007, 1009),
    /// the caller should send it before reporting the error.
    Failed(Error),
}

/// Receives the next message. Pings are answered by tungstenite on the next read or write;
/// they are still handed to the caller so it can see them.
pub(crate) async fn receive<S>(stream: &mut S, link: &Link) -> Received
where
    S: Stream<Item = Result<tungstenite::Message, tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            Some(Ok(frame)) => {
                let Some(message) = Message::from_tungstenite(frame) else {
                    continue;
                };
                if message.message_type == MessageType::Close {
                    if is_substituted_invalid_close(&message) {
                        link.set_state(ConnectionState::Closed);
                        return Received::Failed(Error::Protocol(
                            "the peer's close frame carried a close code RFC 6455 forbids".into(),
                        ));
                    }
                    // A close answering our own close is not the peer closing on us.
                    if link.state() == ConnectionState::Open {
                        link.record_peer_close(&message);
                    }
                    link.set_state(ConnectionState::Closed);
                }
                return Received::Message(message);
            }
            Some(Err(e)) => return Received::Failed(fail(link, error::from_tungstenite(e))),
            None => {
                let error = match link.state() {
                    ConnectionState::Open => Error::ConnectionLost(
                        "the peer closed the TCP connection without a close handshake".into(),
                    ),
                    _ => link.closed_error(),
                };
                link.set_state(ConnectionState::Closed);
                return Received::Failed(error);
            }
        }
    }
}

/// tungstenite replaces a close code that RFC 6455 forbids (0-999, 1004-1006, 1015, 5000
/// and up...) with exactly this code and reason before the application sees the frame, and
/// answers it with 1002 itself. The peer did not send 1002, so it is reported as the
/// protocol violation it is rather than as the peer's close. (A peer that really sends 1002
/// with this reason is reported the same way, which says the same thing.)
fn is_substituted_invalid_close(message: &Message) -> bool {
    message.close_code() == Some(1002)
        && message.close_reason().as_deref() == Some("Protocol violation")
}

/// After a receive error that RFC 6455 answers with a close code, sends that close frame,
/// best effort and bounded by the close timeout.
pub(crate) async fn send_failure_close<S>(sink: &mut S, link: &Link, error: &Error)
where
    S: Sink<tungstenite::Message, Error = tungstenite::Error> + Unpin,
{
    let Some(code) = error::close_code_for(error) else {
        return;
    };
    let frame = tungstenite::protocol::CloseFrame {
        code: code.into(),
        reason: match code {
            1009 => "message too big",
            1007 => "invalid UTF-8",
            _ => "protocol error",
        }
        .into(),
    };
    let close = async {
        sink.feed(tungstenite::Message::Close(Some(frame))).await?;
        sink.flush().await
    };
    if let Ok(Err(e)) = tokio::time::timeout(link.close_timeout, close).await {
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
