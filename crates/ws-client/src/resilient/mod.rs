//! The resilient layer: a connection that reconnects with backoff, detects a dead peer by
//! heartbeat, keeps what is sent during an outage, and reports events and metrics. Opt-in:
//! it sits on top of [`WebSocketConnection`](crate::WebSocketConnection) and its split
//! halves, using only their public behaviour, never inside the framing.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_client::Error> {
//! use ws_client::Message;
//! use ws_client::resilient::{ResilientConfig, ResilientConnection};
//!
//! let mut connection = ResilientConnection::connect(ResilientConfig::new("ws://127.0.0.1:9001/")).await?;
//! connection.send(Message::text("hello")).await.map_err(|failed| failed.error)?;
//! let echo = connection.receive().await?; // keeps working across reconnects
//! connection.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Task model
//! One background task (`tokio::spawn`) per resilient connection owns the current
//! connection's halves. While a connection is up it runs three loops side by side (one
//! task, no further spawns): the **writer** (the outage queue first, then the messages
//! handed over, those already waiting gathered into one flushed write: up to 64 messages
//! or 256 KiB), the **reader** (data messages into the
//! receive buffer, pongs to the heartbeat; pings are answered by the connection) and the
//! **heartbeat** timer. So pings go out and a dead peer is detected even when nobody calls
//! `receive`. Between connections the same task waits out the backoff and connects, while
//! keeping or handing back what is sent meanwhile. The handles talk to it through bounded
//! channels: sends through `send_buffer` (senders wait for room: backpressure), messages
//! through `receive_buffer` (when full, the reader stops reading the socket, so TCP pushes
//! back on the server; that pause is not counted as the peer's silence), events through a
//! broadcast channel that never waits (a slow events reader loses the oldest events and is
//! told how many with [`Event::Lagged`]). Dropping the [`ResilientConnection`] stops the
//! task: it closes the connection (code 1000, within the close timeout) and hands back
//! every message it still holds.
//!
//! # Reconnecting
//! After a drop the task waits a delay drawn with full jitter, uniform in
//! `[0, min(max_delay, initial_delay * multiplier^n)]` where `n` counts failures since the
//! last stable connection ([`ReconnectPolicy::stable_after`]), then connects; each failed
//! attempt is classified again. It gives up after `max_attempts` attempts or once the next
//! attempt would start past `max_elapsed` since the drop (defaults: no attempt cap, 5
//! minutes). The first connect fails fast unless
//! [`retry_first_connect`](ResilientConfig::retry_first_connect) is set.
//!
//! | error | class (default) |
//! |---|---|
//! | connection refused, reset or lost (`ConnectionRefused`, `ConnectionLost`, `Io`) | retried |
//! | connect timeout, send timeout, dead peer (`PeerDead`) | retried |
//! | HTTP 502, 503, 504 | retried; with `Retry-After`, after that many seconds (+0-10%, capped at `max_delay`) |
//! | HTTP 429 | after `Retry-After` if given, else backoff plus `try_again_later_floor` (5 s) |
//! | no HTTP answer (server closed during the handshake); TLS failure other than the certificate | retried |
//! | close 1001, 1006, 1011, 1012, 1014 | retried |
//! | `Error::Proxy`: proxy unreachable or timed out, or it could not reach the server (`Unreachable`, `Timeout`, `TargetUnreachable`); its other kinds (credentials, refusal, protocol) are not retried | retried |
//! | close 1013 (try again later) | backoff plus `try_again_later_floor` (5 s) |
//! | invalid URL or configuration, TLS certificate untrusted or for another host | not retried |
//! | HTTP 4xx other than 429, any other status (500, a bad 101...) | not retried |
//! | close 1000, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 3000-4999 | not retried |
//! | protocol violation, invalid UTF-8, message too large from the peer | not retried |
//!
//! [`ResilientConfig::classify`] can change any of these: it gets the error and its default
//! class and returns the class to use.
//!
//! # Heartbeat
//! A ping every [`HeartbeatConfig::interval`] (payload: a tag and a sequence number); the
//! matching pong gives the round-trip time, last and smoothed (`srtt = 7/8 srtt + 1/8 rtt`,
//! TCP's SRTT). If after a ping nothing at all arrives from the peer (no pong, no data, no
//! ping) within [`HeartbeatConfig::timeout`], the peer is declared dead: the connection is
//! dropped with [`Error::PeerDead`](crate::Error::PeerDead) (retryable), at most
//! `interval + timeout` after the last frame it sent.
//!
//! # Sending during an outage, and what "delivered" means
//! Every message handed over is either **written to a socket** (its [`Delivery`] resolves to
//! `Ok`) or **handed back** to its sender with the message and the reason ([`SendFailed`]);
//! none is dropped silently. With [`QueuePolicy::Queue`] (default: 1,024 messages, 1 MiB)
//! messages sent while down wait in order and go out after the reconnect before anything
//! newer; beyond either bound they come back at once with
//! [`Error::OutageQueueFull`](crate::Error::OutageQueueFull), and when the policy gives up
//! every queued message comes back with the final error. When the drop cuts a write, the
//! messages of that write whose frames the socket took whole count as written; the others
//! go back to the head of the queue, in order, and are written again after the reconnect
//! (none twice: the peer cannot have received a frame the socket did not take whole). Over
//! TLS only what reached the socket counts, not what the TLS layer still buffered. At a
//! shutdown (the connection dropped) the close handshake first writes out what a cut write
//! left buffered; what it could not write is handed back. With [`QueuePolicy::FailFast`]
//! messages sent while down come back at once with
//! [`Error::ConnectionDown`](crate::Error::ConnectionDown), and those of a cut write that
//! were not written come back with the drop's error.
//!
//! A batch ([`ResilientSender::enqueue_batch`]: one command, one [`BatchDelivery`]) is
//! the same inside: each of its messages is queued, resent after a cut write or handed back
//! on its own, in order, and answers the batch's receipt, which lists those not written
//! ([`BatchFailed`]) once all have settled.
//!
//! "Written" is all the client can know: the bytes reached this host's TCP send buffer. A
//! message written just before a drop (and before the drop was noticed) may never reach the
//! server, and a message that did reach it may not have been processed. Only an answer from
//! the application on the other side (an acknowledgement, or an RPC result) proves delivery;
//! without one, treat `Ok` as "left this process", and make messages idempotent if they may
//! be sent again by the application.
//!
//! # Events and metrics
//! [`ResilientConnection::events`] yields [`Event`]s: `Connecting { attempt }`,
//! `Connected { generation, attempt, took }`, `Disconnected { generation, error, class }`,
//! `Reconnecting { attempt, delay, error }`, `GaveUp { error }`, `Closed`. The connection
//! generation (1 for the first connection) is also on each received message
//! ([`ResilientConnection::receive_with_generation`]) and in
//! [`ResilientConnection::status`], so a layer above (RPC) can tell which connection a
//! message came on and act on a reconnect.
//!
//! [`ResilientConnection::metrics`] returns a [`MetricsSnapshot`]; the same figures go to
//! the [`metrics`](https://docs.rs/metrics) facade, so any exporter installed as the global
//! recorder before `connect` (Prometheus, StatsD...) publishes them, with
//! [`ResilientConfig::metrics_labels`] on each:
//!
//! | name | kind | what |
//! |---|---|---|
//! | `ws_client_messages_sent_total` | counter | messages written for the user (pings not counted) |
//! | `ws_client_bytes_sent_total` | counter | their payload bytes |
//! | `ws_client_messages_received_total` | counter | data messages received |
//! | `ws_client_bytes_received_total` | counter | their payload bytes |
//! | `ws_client_connect_attempts_total` | counter | connection attempts, the first included |
//! | `ws_client_reconnects_total` | counter | successful reconnects |
//! | `ws_client_disconnects_total` | counter | connections lost |
//! | `ws_client_messages_failed_total` | counter | messages handed back unsent |
//! | `ws_client_queued_messages` | gauge | messages in the outage queue |
//! | `ws_client_queued_bytes` | gauge | payload bytes in the outage queue |
//! | `ws_client_connected` | gauge | 1 while a connection is up, else 0 |
//! | `ws_client_heartbeat_rtt_seconds` | histogram | each heartbeat round trip |
//! | `ws_client_heartbeat_srtt_seconds` | gauge | the smoothed round trip |
//! | `ws_client_reconnect_seconds` | histogram | from a drop to the next connection up |

mod batch;
mod classify;
mod config;
mod connection;
mod events;
mod heartbeat;
mod metrics;
mod policy;
mod queue;
mod session;
mod shared;
mod task;

pub use batch::{BatchDelivery, BatchFailed, BatchRefused};
pub(crate) use classify::copy_error;
pub use classify::{Classifier, RETRIED_CLOSE_CODES, RetryClass, default_class};
pub use config::{
    DEFAULT_RECEIVE_BUFFER, DEFAULT_RETRY_FIRST_CONNECT, DEFAULT_SEND_BUFFER, ResilientConfig,
};
pub use connection::{ResilientConnection, ResilientSender};
pub use events::{DEFAULT_EVENT_CAPACITY, Event, EventStream, LinkStatus};
pub use heartbeat::{DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TIMEOUT, HeartbeatConfig};
pub use metrics::MetricsSnapshot;
pub use policy::{
    Backoff, DEFAULT_INITIAL_DELAY, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DELAY, DEFAULT_MAX_ELAPSED,
    DEFAULT_MULTIPLIER, DEFAULT_STABLE_AFTER, DEFAULT_TRY_AGAIN_LATER_FLOOR, ReconnectPolicy,
};
pub use queue::{DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_MESSAGES, Delivery, QueuePolicy, SendFailed};
