//! `Session`: one accepted WebSocket connection, with the reading, writing, closing and
//! failing steps every server mode shares (idle and stall timeouts, graceful shutdown,
//! RFC 6455 close codes).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        error::{CapacityError, ProtocolError},
        protocol::{CloseFrame, frame::coding::CloseCode},
    },
};
use tokio_util::sync::CancellationToken;

use crate::stats::Stats;
use crate::tls::ServerSocket;

/// The server side of one WebSocket connection, over plain TCP or TLS (`--tls`).
pub type ServerStream = WebSocketStream<ServerSocket>;

/// How long a closing handshake or a failing connection's drain may take.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a write may wait on a client that takes nothing before the connection is
/// dropped, when the idle timeout is longer or off (see [`Session::stall_timeout`]).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a close frame (and whatever is queued before it) may take to be written. A
/// client that cannot take it in this time is not reading, so the close handshake would
/// only hold up the shutdown; the connection is dropped instead.
pub const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a bounded write ([`Session::write`]) did not finish.
#[derive(Debug)]
pub enum WriteStop {
    /// The socket failed.
    Failed(tungstenite::Error),
    /// The client took nothing for the stall timeout: it stopped reading.
    Stalled,
    /// The server is shutting down.
    Shutdown,
}

/// What a session's read produced.
#[derive(Debug)]
pub enum Event {
    /// A message from the client (control frames included; tungstenite answers pings).
    Message(Message),
    /// The connection ended (the client closed, or the close handshake finished).
    Ended,
    /// The server is shutting down: close with 1001.
    Shutdown,
    /// Nothing arrived within the idle timeout.
    Idle,
    /// The client broke the protocol or a limit; the connection has been failed.
    Failed,
}

/// What a session needs from its server.
#[derive(Debug, Clone)]
pub struct Session {
    /// Counters shared by all sessions.
    pub stats: Arc<Stats>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Close the connection after this long without a message.
    pub idle_timeout: Option<Duration>,
    /// The request target of the upgrade request: path and query, e.g. `/sink?count=5`.
    pub target: String,
    /// permessage-deflate, if the handshake agreed to it (only for paths served on
    /// `ws_client::wire`: see [`Handler::deflate_on`](crate::upgrade::Handler::deflate_on)).
    /// Boxed: most sessions have none, and an idle `load` connection pays for every byte.
    pub deflate: Option<Box<Deflate>>,
}

/// permessage-deflate as a handshake agreed to it.
#[derive(Debug, Clone, Copy)]
pub struct Deflate {
    /// The parameters both sides honour.
    pub params: ws_client::wire::DeflateParams,
    /// This server's policy: the level and threshold of what it sends.
    pub policy: ws_client::DeflateConfig,
}

impl Session {
    /// Waits for the next event on `ws`, bounded by the idle timeout and the shutdown.
    /// Protocol and limit violations are answered here (1002, 1007, 1009).
    pub async fn next(&self, ws: &mut ServerStream) -> Event {
        let read = async {
            match self.idle_timeout {
                Some(idle) => tokio::time::timeout(idle, ws.next()).await.ok(),
                None => Some(ws.next().await),
            }
        };
        let outcome = tokio::select! {
            outcome = read => outcome,
            () = self.shutdown.cancelled() => return Event::Shutdown,
        };
        match outcome {
            None => Event::Idle,
            Some(item) => self.classify(ws, item).await,
        }
    }

    /// The next event only if it is ready now, without waiting: used to batch replies.
    pub async fn next_ready(&self, ws: &mut ServerStream) -> Option<Event> {
        let item = ws.next().now_or_never()?;
        Some(self.classify(ws, item).await)
    }

    async fn classify(
        &self,
        ws: &mut ServerStream,
        item: Option<Result<Message, tungstenite::Error>>,
    ) -> Event {
        match item {
            None => Event::Ended,
            Some(Ok(message)) => {
                if matches!(message, Message::Text(_) | Message::Binary(_)) {
                    self.stats.received(message.len());
                }
                Event::Message(message)
            }
            Some(Err(error)) => {
                self.fail(ws, error).await;
                Event::Failed
            }
        }
    }

    /// Answers a read error the way RFC 6455 says, then ends the connection.
    async fn fail(&self, ws: &mut ServerStream, error: tungstenite::Error) {
        let (code, reason) = match &error {
            tungstenite::Error::Capacity(CapacityError::MessageTooLong { .. }) => {
                (CloseCode::Size, "message too big")
            }
            tungstenite::Error::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in text message"),
            tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)
            | tungstenite::Error::Io(_)
            | tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed => {
                tracing::debug!(%error, "connection ended without a close handshake");
                return;
            }
            _ => (CloseCode::Protocol, "protocol error"),
        };
        tracing::info!(%error, code = u16::from(code), "failing connection");
        Stats::bump(&self.stats.protocol_errors);
        fail_connection(ws, code, reason).await;
    }

    /// How long one write may wait on a client that takes nothing: the idle timeout, at
    /// most [`STALL_TIMEOUT`]. The idle timeout bounds how long a client may send nothing;
    /// this bounds how long it may read nothing while the server has something to write.
    pub fn stall_timeout(&self) -> Duration {
        self.idle_timeout
            .map_or(STALL_TIMEOUT, |idle| idle.min(STALL_TIMEOUT))
    }

    /// Runs `write` (a feed or flush of the session's stream), giving up when it waits
    /// longer than [`stall_timeout`](Self::stall_timeout) or when the server shuts down,
    /// so a client that stops reading cannot hold its session (or the shutdown) forever.
    pub async fn write<T>(
        &self,
        write: impl Future<Output = Result<T, tungstenite::Error>>,
    ) -> Result<T, WriteStop> {
        tokio::select! {
            // The write first: when it is done at once, no timer or waiter is registered.
            biased;
            written = tokio::time::timeout(self.stall_timeout(), write) => match written {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(WriteStop::Failed(error)),
                Err(_) => {
                    tracing::debug!("client stopped reading; dropping the connection");
                    Err(WriteStop::Stalled)
                }
            },
            () = self.shutdown.cancelled() => Err(WriteStop::Shutdown),
        }
    }

    /// Counts and queues one data message for sending (not flushed).
    pub async fn feed(
        &self,
        ws: &mut ServerStream,
        message: Message,
    ) -> Result<(), tungstenite::Error> {
        self.stats.sent(message.len());
        ws.feed(message).await
    }
}

/// Closes gracefully: sends `code`/`reason` (within [`CLOSE_WRITE_TIMEOUT`], else the
/// connection is dropped), then waits (bounded) for the client's answer.
pub async fn close_gracefully(ws: &mut ServerStream, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let handshake = async {
        let sent = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, ws.send(Message::Close(Some(frame))));
        if !matches!(sent.await, Ok(Ok(()))) {
            return;
        }
        // Read until the client's close arrives and tungstenite ends the stream.
        while let Some(Ok(_)) = ws.next().await {}
    };
    if tokio::time::timeout(CLOSE_TIMEOUT, handshake)
        .await
        .is_err()
    {
        tracing::debug!("client did not answer the close handshake in time");
    }
}

/// Fails a connection whose byte stream can no longer be trusted (a frame too large, bad
/// framing): sends the close frame, half-closes the stream (with TLS: close_notify, then
/// TCP), and drains what the client is still sending so that the close frame is read
/// rather than lost to a TCP reset.
pub async fn fail_connection(ws: &mut ServerStream, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let sent = tokio::time::timeout(CLOSE_TIMEOUT, ws.send(Message::Close(Some(frame)))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let socket = ws.get_mut();
    let drain = async {
        let _ = socket.shutdown().await;
        // On the heap: an array here would sit in every idle connection's task.
        let mut scratch = vec![0u8; 4096];
        while matches!(socket.read(&mut scratch).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain).await;
}
