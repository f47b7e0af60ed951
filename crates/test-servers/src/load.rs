//! `load` mode: holds very many connections cheaply. `/` and `/idle` hold the connection
//! (and echo what the client sends); `/broadcast` clients receive every message any
//! `/broadcast` client sends (the sender too). Any other path is closed with 1008.
//!
//! What an idle connection costs is kept small on purpose:
//! - the read buffer defaults to [`LOAD_READ_BUFFER_SIZE`] bytes (tungstenite allocates
//!   it up front; at the usual 4 KiB it was the largest single cost);
//! - while idle, a connection's task waits on socket readiness with a small future; the
//!   message handling (with its large failure paths) runs in a boxed step that is freed as
//!   soon as nothing more is ready;
//! - the request target is freed once routed; the idle timer lives inside the task (no
//!   allocation) and is absent with `--idle-timeout 0`.
//!
//! A `/broadcast` receiver that falls more than `--broadcast-capacity` messages behind is
//! closed with 1008 (counted as `broadcast_lagged`), so the ring's memory stays bounded at
//! capacity times `--max-broadcast-size`. A client that stops reading altogether is
//! dropped after the stall timeout ([`Session::stall_timeout`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::SinkExt;
use futures_util::future::Either;
use tokio::sync::broadcast::{self, Receiver, Sender, error::RecvError, error::TryRecvError};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    Bytes, Message, Utf8Bytes, protocol::frame::coding::CloseCode,
};

use crate::session::{self, Event, ServerStream, Session};
use crate::stats_line::ExtraCounters;
use crate::target;
use crate::upgrade::Handler;

/// Default `--read-buffer-size` in load mode: a small message (a frame of up to 128 bytes)
/// in one read; larger ones take several reads. Measured at 18,000 idle connections: 512
/// bytes cost 2.4 KB a connection, 128 bytes 1.85 KB.
pub const LOAD_READ_BUFFER_SIZE: u32 = 128;
/// Most broadcast messages forwarded to one client per step, so that a busy ring does
/// not starve the client's own reads.
const MAX_FORWARDS_PER_STEP: usize = 1024;

/// The load server.
#[derive(Debug)]
pub struct LoadServer {
    ring: Sender<Message>,
    max_broadcast_size: usize,
    published: AtomicU64,
    lagged: AtomicU64,
}

/// Why a connection's task woke up.
enum Wake {
    /// The socket has bytes (or tungstenite may hold some from the handshake).
    Readable,
    /// A broadcast message, or how many were missed.
    Broadcast(Result<Message, RecvError>),
    Shutdown,
    Idle,
    /// The socket failed.
    Gone,
}

impl LoadServer {
    /// A server whose broadcast ring holds `capacity` messages of at most
    /// `max_broadcast_size` bytes.
    pub fn new(capacity: usize, max_broadcast_size: usize) -> Self {
        Self {
            ring: broadcast::channel(capacity).0,
            max_broadcast_size,
            published: AtomicU64::new(0),
            lagged: AtomicU64::new(0),
        }
    }
}

impl Handler for LoadServer {
    // Not an `async fn`: routing needs no waiting, and an `async fn` would keep a second,
    // dead copy of its arguments in every connection's task.
    fn serve(&self, mut ws: ServerStream, mut session: Session) -> impl Future<Output = ()> + Send {
        let subscribed = match target::split(&session.target).0 {
            "/" | "/idle" => None,
            "/broadcast" => Some(self.ring.subscribe()),
            path => {
                let reason = format!("unknown path {path:?}; use /, /idle or /broadcast");
                let reason = target::close_reason(&reason).to_owned();
                return Either::Left(Box::pin(async move {
                    session::close_gracefully(&mut ws, CloseCode::Policy, &reason).await;
                }));
            }
        };
        // Routed: the target is not needed for the rest of the connection's life.
        session.target = String::new();
        Either::Right(self.hold(ws, session, subscribed))
    }

    fn extra_stats(&self) -> ExtraCounters {
        ExtraCounters::from([
            ("broadcast_receivers", self.ring.receiver_count() as u64),
            (
                "broadcast_published",
                self.published.load(Ordering::Relaxed),
            ),
            ("broadcast_lagged", self.lagged.load(Ordering::Relaxed)),
        ])
    }
}

impl LoadServer {
    /// Serves one connection: a cheap wait while idle, a boxed step when something is ready.
    // Not an `async fn`: this future captures its arguments in place, with no second copy.
    #[allow(clippy::manual_async_fn)]
    fn hold(
        &self,
        mut ws: ServerStream,
        session: Session,
        mut subscribed: Option<Receiver<Message>>,
    ) -> impl Future<Output = ()> + Send {
        async move {
            // Bytes that came with the handshake may already be buffered: look before waiting.
            let mut wake = Wake::Readable;
            let mut deadline = None;
            loop {
                let goodbye = match wake {
                    Wake::Readable | Wake::Broadcast(_) => None,
                    Wake::Shutdown => Some("server shutting down"),
                    Wake::Idle => Some("idle timeout"),
                    Wake::Gone => return,
                };
                if let Some(reason) = goodbye {
                    return Box::pin(session::close_gracefully(&mut ws, CloseCode::Away, reason))
                        .await;
                }
                if matches!(wake, Wake::Readable) {
                    deadline = session.idle_timeout.map(|idle| Instant::now() + idle);
                }
                let step = Box::pin(self.step(&mut ws, &session, subscribed.as_mut(), wake));
                let keep_going = tokio::select! {
                    biased;
                    done = tokio::time::timeout(session.stall_timeout(), step) => match done {
                        Ok(keep_going) => keep_going,
                        Err(_) => {
                            tracing::debug!("client stopped reading; dropping the connection");
                            false
                        }
                    },
                    () = session.shutdown.cancelled() => true,
                };
                if !keep_going {
                    return;
                }
                wake = wait(&ws, &session, subscribed.as_mut(), deadline).await;
            }
        }
    }

    /// Handles everything ready now: the woken-for broadcast message, then (after a
    /// readable wake) every message the client sent, then what else the ring holds.
    /// Returns whether the connection stays open.
    async fn step(
        &self,
        ws: &mut ServerStream,
        session: &Session,
        subscribed: Option<&mut Receiver<Message>>,
        wake: Wake,
    ) -> bool {
        let readable = match wake {
            Wake::Broadcast(received) => {
                if !self.forward(ws, session, received).await {
                    return false;
                }
                false
            }
            _ => true,
        };
        if readable && !self.read_ready(ws, session, subscribed.is_some()).await {
            return false;
        }
        if let Some(receiver) = subscribed {
            for _ in 0..MAX_FORWARDS_PER_STEP {
                let received = match receiver.try_recv() {
                    Ok(message) => Ok(message),
                    Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                };
                if !self.forward(ws, session, received).await {
                    return false;
                }
            }
        }
        ws.flush().await.is_ok()
    }

    /// Handles every message the client has sent that is ready now: echoes it, or
    /// publishes it when the client is on `/broadcast`.
    async fn read_ready(
        &self,
        ws: &mut ServerStream,
        session: &Session,
        broadcasting: bool,
    ) -> bool {
        while let Some(event) = session.next_ready(ws).await {
            let message = match event {
                Event::Message(message @ (Message::Text(_) | Message::Binary(_))) => message,
                // Pings are answered by tungstenite on the step's flush.
                Event::Message(_) => continue,
                _ => return false,
            };
            let kept = if broadcasting {
                self.publish(ws, message).await
            } else {
                session.feed(ws, message).await.is_ok()
            };
            if !kept {
                return false;
            }
        }
        true
    }

    /// Sends `message` to every `/broadcast` client, as a copy so that it does not pin the
    /// sender's read buffer. Too large a message closes the sender with 1009.
    async fn publish(&self, ws: &mut ServerStream, message: Message) -> bool {
        if message.len() > self.max_broadcast_size {
            let reason = format!(
                "message of {} bytes exceeds --max-broadcast-size {}",
                message.len(),
                self.max_broadcast_size
            );
            session::close_gracefully(ws, CloseCode::Size, target::close_reason(&reason)).await;
            return false;
        }
        let copy = match message {
            Message::Text(text) => Message::Text(Utf8Bytes::from(text.as_str())),
            Message::Binary(data) => Message::Binary(Bytes::copy_from_slice(&data)),
            other => other,
        };
        // The sender is subscribed itself, so there is always a receiver.
        let _ = self.ring.send(copy);
        self.published.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Queues one broadcast message for this client; a lagging client is closed with 1008.
    async fn forward(
        &self,
        ws: &mut ServerStream,
        session: &Session,
        received: Result<Message, RecvError>,
    ) -> bool {
        match received {
            Ok(message) => session.feed(ws, message).await.is_ok(),
            Err(RecvError::Lagged(missed)) => {
                self.lagged.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(missed, "broadcast receiver lagged; closing it");
                let reason = format!("too slow for /broadcast: missed {missed} messages");
                session::close_gracefully(ws, CloseCode::Policy, &reason).await;
                false
            }
            Err(RecvError::Closed) => false,
        }
    }
}

/// Waits, cheaply, for the socket to become readable, a broadcast message, the shutdown or
/// the idle deadline.
async fn wait(
    ws: &ServerStream,
    session: &Session,
    subscribed: Option<&mut Receiver<Message>>,
    deadline: Option<Instant>,
) -> Wake {
    let broadcast = async {
        match subscribed {
            Some(receiver) => receiver.recv().await,
            None => std::future::pending().await,
        }
    };
    let idle = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        () = session.shutdown.cancelled() => Wake::Shutdown,
        // Polled in place (no `readable()` future): the smallest way to wait for bytes.
        ready = std::future::poll_fn(|cx| ws.get_ref().poll_read_ready(cx)) => match ready {
            Ok(()) => Wake::Readable,
            Err(_) => Wake::Gone,
        },
        received = broadcast => Wake::Broadcast(received),
        () = idle => Wake::Idle,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_tungstenite::{WebSocketStream, tungstenite::protocol::Role};

    /// The server side of a real loopback connection (the client side is returned too, to
    /// keep it open).
    async fn server_stream() -> (ServerStream, TcpStream) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let socket = crate::tls::ServerSocket::Plain(tcp);
        let ws = WebSocketStream::from_raw_socket(socket, Role::Server, None).await;
        (ws, client)
    }

    /// An idle connection's task holds this future: it must stay small, since it is paid
    /// once per connection (the whole per-connection budget is 8 KB).
    #[tokio::test]
    async fn a_connections_future_stays_under_1_kib() {
        let server = LoadServer::new(4, 1024);
        let session = Session {
            stats: Default::default(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            idle_timeout: Some(Duration::from_secs(60)),
            target: String::from("/broadcast"),
            deflate: None,
        };
        let (ws, _client) = server_stream().await;
        let serving = server.serve(ws, session);
        let size = std::mem::size_of_val(&serving);
        assert!(
            size <= 1024,
            "a load connection's future takes {size} bytes"
        );
    }

    /// What a connection's task holds once it is served: the connection's future is boxed
    /// apart from it, so the task is not the future's size again, rounded up to its
    /// alignment (1,920 bytes a connection before, measured with heaptrack).
    #[tokio::test]
    async fn a_connections_task_holds_the_serving_future_boxed() {
        use crate::server::{Context, Service};
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["test-servers", "load"]).unwrap();
        let crate::cli::Mode::Load(args) = cli.mode else {
            unreachable!("parsed load")
        };
        let service = std::sync::Arc::new(
            crate::upgrade::WebSocket::new(&args.server, LoadServer::new(4, 1024)).unwrap(),
        );
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (tcp, peer) = listener.accept().await.unwrap();
        let context = Context {
            stats: Default::default(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            tasks: tokio_util::task::TaskTracker::new(),
        };
        let task = service.serve_tcp(tcp, peer, true, context);
        let size = std::mem::size_of_val(&task);
        assert!(
            size <= 256,
            "a load connection's task future takes {size} bytes"
        );
    }

    #[test]
    fn extra_stats_name_the_broadcast_counters() {
        let server = LoadServer::new(4, 1024);
        let _receiver = server.ring.subscribe();
        let extra = server.extra_stats();
        assert_eq!(extra["broadcast_receivers"], 1);
        assert_eq!(extra["broadcast_published"], 0);
        assert_eq!(extra["broadcast_lagged"], 0);
    }
}
