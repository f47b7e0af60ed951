//! `WireSession`: a server session on ws-client's own framing (`ws_client::wire`, server
//! role) instead of tungstenite's, for `echo` mode, the paths of `perf` mode that must
//! never be the bottleneck (`/sink`, `/echo`) and `rpc` mode. Same contract as
//! [`Session`]: idle timeout, shutdown with 1001, pings answered,
//! 1002/1007/1009 on bad input; and permessage-deflate when the handshake agreed to it,
//! its bytes before and after compression added to the stats.
//!
//! `load`, `security` and perf's `/source` stay on tungstenite (or on no library), so
//! ws-client is still tested against framing code it does not share.

use std::convert::Infallible;
use std::future::Future;

use tokio::io::{AsyncReadExt, ReadHalf, WriteHalf};
use ws_client::wire::{Inbound, Outbound, ReadLimits, Role};
use ws_client::{Error, Message, MessageType};

use crate::session::{CLOSE_TIMEOUT, ServerStream, Session};
use crate::stats::Stats;
use crate::tls::ServerSocket;

/// Buffered bytes after which echoed frames are written before more are queued.
const WRITE_THRESHOLD: usize = 64 << 10;

/// What a read produced.
#[derive(Debug)]
pub enum Next {
    /// A text or binary message (counted in the stats).
    Data(Message),
    /// A ping (its pong is queued) or a pong.
    Control,
    /// The client closed (answered) or left; the session is over.
    Ended,
    /// The server is shutting down: close with 1001.
    Shutdown,
    /// Nothing arrived within the idle timeout.
    Idle,
    /// The client broke the protocol or a limit; the connection has been failed.
    Failed,
}

/// One accepted connection, read and written with `ws_client::wire`.
#[derive(Debug)]
pub struct WireSession {
    inbound: Inbound<ReadHalf<ServerSocket>>,
    outbound: Outbound<WriteHalf<ServerSocket>>,
    session: Session,
    /// Messages and bytes received (and sent) but not yet added to the shared stats:
    /// they are added once per burst (two shared atomics per message cost more than
    /// parsing it).
    unpublished: (u64, u64),
    unpublished_out: (u64, u64),
    /// The compressed totals of both sides when last published (see `publish`).
    published_compression: [(u64, u64); 2],
}

impl Drop for WireSession {
    fn drop(&mut self) {
        self.publish();
    }
}

impl WireSession {
    /// Takes over the socket of an upgraded connection.
    ///
    /// tungstenite did the handshake; nothing it read past the request is lost, because a
    /// client may not send frames before it has the 101 answer (RFC 6455 section 4.1).
    pub fn new(ws: ServerStream, session: Session, limits: ReadLimits) -> Self {
        let (read, write) = tokio::io::split(ws.into_inner());
        let mut inbound = Inbound::new(read, Default::default(), limits, Role::Server);
        let mut outbound = Outbound::new(write, Role::Server);
        if let Some(deflate) = &session.deflate {
            inbound = inbound.with_deflate(&deflate.params);
            outbound = outbound.with_deflate(&deflate.params, &deflate.policy);
        }
        Self {
            inbound,
            outbound,
            session,
            unpublished: (0, 0),
            unpublished_out: (0, 0),
            published_compression: [(0, 0); 2],
        }
    }

    /// Adds the messages counted since the last call to the shared stats.
    fn publish(&mut self) {
        let (messages, bytes) = std::mem::take(&mut self.unpublished);
        if messages > 0 {
            self.session.stats.received_many(messages, bytes);
        }
        let (messages, bytes) = std::mem::take(&mut self.unpublished_out);
        if messages > 0 {
            self.session.stats.sent_many(messages, bytes);
        }
        if self.session.deflate.is_some() {
            let now = [
                self.inbound.compressed_totals(),
                self.outbound.compressed_totals(),
            ];
            let [read, written] = now;
            let [read_before, written_before] = self.published_compression;
            let since = |now: (u64, u64), before: (u64, u64)| (now.0 - before.0, now.1 - before.1);
            self.session
                .stats
                .compressed(since(read, read_before), since(written, written_before));
            self.published_compression = now;
        }
    }

    /// Waits for the next event, bounded by the idle timeout and the shutdown.
    pub async fn next(&mut self) -> Next {
        match self.next_or(std::future::pending::<Infallible>()).await {
            Ok(next) => next,
            Err(never) => match never {},
        }
    }

    /// [`next`](Self::next), or what `other` yields if it is ready first (the other
    /// work of a session, such as answers from tasks). Only the read races `other` (it is
    /// cancel-safe), so an event once read is always handled in whole: a ping's pong
    /// queued, a close answered.
    pub async fn next_or<T>(&mut self, other: impl Future<Output = T>) -> Result<Next, T> {
        self.publish();
        let idle = self.session.idle_timeout;
        let read = async {
            match idle {
                Some(idle) => tokio::time::timeout(idle, self.inbound.next()).await.ok(),
                None => Some(self.inbound.next().await),
            }
        };
        let outcome = tokio::select! {
            outcome = read => outcome,
            () = self.session.shutdown.cancelled() => return Ok(Next::Shutdown),
            other = other => return Err(other),
        };
        Ok(match outcome {
            None => Next::Idle,
            Some(read) => self.classify(read).await,
        })
    }

    /// The next event only if its bytes are already read: used to batch replies.
    pub async fn next_buffered(&mut self) -> Option<Next> {
        let read = self.inbound.next_buffered().transpose()?;
        match read {
            // The hot path, without a future: a data message is only counted.
            Ok(message) if message.is_data() => Some(self.count(message)),
            // Boxed so that the hot path does not carry the slow path's state.
            other => Some(Box::pin(self.classify(other.map(Some))).await),
        }
    }

    /// Handles the whole single-frame data messages already read, where they lie in the
    /// read buffer (no copy, no allocation; see [`Inbound::next_in_place`]): each counted
    /// (a sink's binary payload is never unmasked: nothing looks at it), and with `echo`
    /// queued back while the write buffer has room. Stops at anything
    /// else (a control frame, a fragment, a compressed message, a frame not all read yet),
    /// which [`next_buffered`](Self::next_buffered) or [`next`](Self::next) then takes,
    /// so events keep their order. An error is the client's (text that is not UTF-8): fail
    /// the connection with it ([`fail`](Self::fail)).
    pub fn drain_in_place(&mut self, echo: bool) -> Result<(), Error> {
        loop {
            if echo && !self.outbound.has_room(WRITE_THRESHOLD) {
                return Ok(());
            }
            let Some(message) = self.inbound.next_in_place()? else {
                return Ok(());
            };
            let len = message.len() as u64;
            self.unpublished.0 += 1;
            self.unpublished.1 += len;
            if echo {
                self.unpublished_out.0 += 1;
                self.unpublished_out.1 += len;
                self.outbound
                    .encode(message.message_type(), message.payload());
            }
        }
    }

    fn count(&mut self, message: Message) -> Next {
        self.unpublished.0 += 1;
        self.unpublished.1 += message.data.len() as u64;
        Next::Data(message)
    }

    async fn classify(&mut self, read: Result<Option<Message>, Error>) -> Next {
        match read {
            Ok(Some(message)) => match message.message_type {
                MessageType::Text | MessageType::Binary => self.count(message),
                MessageType::Ping => {
                    self.queue(MessageType::Pong, &message.data).await;
                    Next::Control
                }
                MessageType::Pong => Next::Control,
                MessageType::Close => {
                    // Echo the code, write everything, and end (RFC 6455 section 5.5.1).
                    let code = message.data.get(..2).unwrap_or_default().to_vec();
                    self.queue(MessageType::Close, &code).await;
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.outbound.shutdown()).await;
                    Next::Ended
                }
            },
            Ok(None) => Next::Ended,
            Err(error) => {
                self.fail(error).await;
                Next::Failed
            }
        }
    }

    /// Queues a frame, first writing out what is buffered if the buffer is full.
    async fn queue(&mut self, message_type: MessageType, payload: &[u8]) {
        if !self.outbound.has_room(WRITE_THRESHOLD) {
            let _ = self.flush().await;
        }
        self.outbound.encode(message_type, payload);
    }

    /// Counts and queues one data message for sending (not flushed).
    pub async fn feed(&mut self, message: Message) -> std::io::Result<()> {
        if !self.outbound.has_room(WRITE_THRESHOLD) {
            self.flush().await?;
        }
        self.unpublished_out.0 += 1;
        self.unpublished_out.1 += message.data.len() as u64;
        self.outbound.encode_owned(message);
        Ok(())
    }

    /// Counts and queues one data message given as a borrowed payload (not flushed): for
    /// answers built in a reused buffer.
    pub async fn feed_slice(
        &mut self,
        message_type: MessageType,
        payload: &[u8],
    ) -> std::io::Result<()> {
        if !self.outbound.has_room(WRITE_THRESHOLD) {
            self.flush().await?;
        }
        self.unpublished_out.0 += 1;
        self.unpublished_out.1 += payload.len() as u64;
        self.outbound.encode(message_type, payload);
        Ok(())
    }

    /// Writes out everything queued; gives up after the stall timeout
    /// ([`Session::stall_timeout`]) or at shutdown, so a client that stops reading cannot hold the session forever.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.outbound.flush_now()? {
            return Ok(());
        }
        tokio::select! {
            flushed = tokio::time::timeout(self.session.stall_timeout(), self.outbound.flush()) => {
                flushed.map_err(|_| std::io::ErrorKind::TimedOut)?
            }
            () = self.session.shutdown.cancelled() => Err(std::io::ErrorKind::Interrupted.into()),
        }
    }

    /// Answers a read error the way RFC 6455 says, then ends the connection: the close
    /// frame, a half-close, and a drain of what the client still sends, so that the close
    /// frame is read rather than lost to a TCP reset.
    pub async fn fail(&mut self, error: Error) {
        let (Some(code), Some(reason)) = (error.close_code(), error.close_reason()) else {
            tracing::debug!(%error, "connection ended without a close handshake");
            return;
        };
        tracing::info!(%error, code, "failing connection");
        Stats::bump(&self.session.stats.protocol_errors);
        let close = async {
            self.queue(MessageType::Close, &Message::close(code, reason).data)
                .await;
            self.outbound.shutdown().await?;
            let mut scratch = vec![0u8; 4096];
            while self.inbound.get_mut().read(&mut scratch).await? > 0 {}
            std::io::Result::Ok(())
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
    }

    /// Closes gracefully: sends `code`/`reason`, then waits (bounded) for the client's answer.
    pub async fn close_gracefully(&mut self, code: u16, reason: &str) {
        let handshake = async {
            self.queue(MessageType::Close, &Message::close(code, reason).data)
                .await;
            if self.flush().await.is_err() {
                return;
            }
            while let Ok(Some(message)) = self.inbound.next().await {
                if message.message_type == MessageType::Close {
                    break;
                }
            }
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, handshake)
            .await
            .is_err()
        {
            tracing::debug!("client did not answer the close handshake in time");
        }
    }
}

/// The read limits of perf mode: the server's message and frame limits, and reads of at
/// least 64 KiB (perf mode is about speed, not memory per connection).
pub fn perf_limits(max_message_size: usize, max_frame_size: usize, read_size: usize) -> ReadLimits {
    ReadLimits {
        message: max_message_size,
        frame: max_frame_size,
        read_size: read_size.max(64 << 10),
    }
}
