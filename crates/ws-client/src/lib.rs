//! `ws-client`: an async WebSocket client for Tokio with bounded memory, a timeout on every
//! connect, send and close (a receive waits as long as the caller lets it), and one typed
//! [`Error`]. Published as the package `tokio-ws-client`; the library is
//! `ws_client`.
//!
//! It runs on its own RFC 6455 framing ([`wire`]), tuned for many connections and short
//! round trips: a 4 KiB read buffer, `TCP_NODELAY`, frame limits checked before allocation,
//! and no background task between the caller and the socket. On top: a JSON-RPC 2.0 client
//! ([`rpc`]) and an opt-in resilient layer ([`resilient`]).
//!
//! The examples that need a server are marked `no_run`: they are compiled, not run, since
//! a doctest has no server to talk to. Start one with `test-servers echo --port 0` (from the
//! `test-servers` package; it prints the URL on its first line) to run them by hand.
//!
//! # Connect, send and receive
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_client::Error> {
//! use ws_client::{Message, TransportConfig, WebSocketConnection};
//!
//! let config = TransportConfig::new("ws://127.0.0.1:9001/");
//! let mut connection = WebSocketConnection::open(config).await?;
//! connection.send_message(&Message::text("hello")).await?;
//! let echo = connection.receive_message().await?;
//! assert_eq!(echo.as_text()?, "hello");
//! connection.disconnect().await?; // close handshake, bounded by `close_timeout`
//! # Ok(()) }
//! ```
//!
//! Every wait has a deadline from [`TransportConfig`]: `connect_timeout` (TCP, TLS, proxy
//! and upgrade together), `send_timeout` (a write the peer does not take), `close_timeout`.
//! A receive waits as long as the caller lets it: wrap it in `tokio::time::timeout`, or use
//! the [`resilient`] layer's heartbeat to find a dead peer.
//!
//! # Many messages: queue, then flush once
//!
//! `queue` / `queue_slice` encode a message into the write buffer without writing it;
//! `flush` writes everything queued in one go. A producer of many small messages does far
//! fewer system calls this way (the buffer is bounded by `write_buffer_size`: a queue that
//! outgrows it is flushed first).
//!
//! ```no_run
//! # async fn demo(connection: &mut ws_client::WebSocketConnection) -> Result<(), ws_client::Error> {
//! use ws_client::MessageType;
//!
//! for i in 0..100u32 {
//!     connection.queue_slice(MessageType::Binary, &i.to_be_bytes()).await?;
//! }
//! connection.flush().await?;
//! # Ok(()) }
//! ```
//!
//! For a batch already in hand, `send_batch` (one message type, many payloads) and
//! `send_messages` encode the batch under one hold of the write side with no await per
//! message (only when the write buffer fills, which writes it out) and flush once at the
//! end; an error says how many messages were written whole
//! ([`WebSocketConnection::send_batch`]).
//!
//! # Two tasks: split
//!
//! [`WebSocketConnection::split`] gives a cloneable [`WsSender`] and a [`WsReceiver`], for a
//! writer task and a reader task. Pings are answered by the `WsReceiver` as it reads them,
//! so keep a task receiving.
//!
//! ```no_run
//! # async fn demo(connection: ws_client::WebSocketConnection) -> Result<(), ws_client::Error> {
//! let (sender, mut receiver) = connection.split()?;
//! let writer = tokio::spawn(async move { sender.send("from another task").await });
//! let message = receiver.receive_message().await?;
//! writer.await.expect("the writer task")?;
//! # Ok(()) }
//! ```
//!
//! # JSON-RPC 2.0
//!
//! [`RpcClient`] keeps many calls in flight on one connection, each with a timeout, and
//! routes answers by id; `request` decodes the result, an error object becomes
//! [`Error::Rpc`]. Notifications, batches and subscriptions are there too.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_client::Error> {
//! use serde_json::json;
//! use ws_client::RpcClient;
//! use ws_client::rpc::RpcConfig;
//!
//! // `test-servers rpc --port 0`
//! let client = RpcClient::connect(RpcConfig::new("ws://127.0.0.1:9002/")).await?;
//! // Its `add` answers `{"result": 8}` (the original design's shape).
//! let sum: serde_json::Value = client.request("add", json!([5, 3])).await?;
//! assert_eq!(sum, json!({"result": 8}));
//! client.close().await?;
//! # Ok(()) }
//! ```
//!
//! # TLS
//!
//! `wss://` runs on rustls with Mozilla's roots (webpki-roots); a private CA is added with
//! `extra_root_certificates` (PEM or DER). A certificate that does not verify is
//! [`Error::Tls`] with a [`TlsFailure`] saying why (an untrusted chain, a wrong host, or
//! something else).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ws_client::{TransportConfig, WebSocketConnection};
//!
//! // `test-servers echo --tls --port 0` names its throw-away CA in `ca_cert`.
//! let config = TransportConfig::new("wss://localhost:9001/").with_ca_file("ca.pem")?;
//! let connection = WebSocketConnection::open(config).await?;
//! # Ok(()) }
//! ```
//!
//! # Limits
//!
//! Memory is bounded by configuration. An incoming frame or message over `max_frame_size` /
//! `max_message_size` is refused from its header, before its payload is buffered: the
//! receive fails with [`Error::MessageTooLarge`] and the connection is closed with 1009. An
//! outgoing message over `max_message_size` is refused with the same error before anything
//! is written, and the connection stays open. Every field of [`TransportConfig`] documents
//! its default.
//!
//! ```
//! use std::time::Duration;
//! use ws_client::TransportConfig;
//!
//! let config = TransportConfig {
//!     max_message_size: 1 << 20,
//!     connect_timeout: Duration::from_secs(5),
//!     ..TransportConfig::new("ws://127.0.0.1:9001/")
//! };
//! assert_eq!(config.max_message_size, 1_048_576);
//! ```
//!
//! # Errors
//!
//! One enum, [`Error`]; each variant's documentation says what happened and what the caller
//! can do (fix the configuration, retry, give up). Protocol failures carry the close code
//! the connection was failed with:
//!
//! ```
//! use ws_client::Error;
//!
//! let error = Error::MessageTooLarge { size: 2_000_000, limit: 1 << 20 };
//! assert_eq!(error.close_code(), Some(1009));
//! assert!(error.to_string().contains("2000000"));
//! ```
//!
//! # More
//!
//! - [`config::DeflateConfig`]: permessage-deflate (RFC 7692), off by default.
//! - [`config::Proxy`]: HTTP CONNECT and SOCKS5 proxies, or from the environment.
//! - [`resilient`]: reconnect with backoff, heartbeat, an outage queue, events, metrics.
//! - [`wire`]: the framing itself, both roles, for servers and tools.
//!
//! Module map: [`config`] (limits and timeouts), `connect` (set-up), `connection` (the
//! connection type), `proxy` (HTTP CONNECT and SOCKS5 tunnels), `tls` (`wss://` on rustls),
//! `split` (halves for two tasks), `batch` (many messages, one flush), `link` (shared
//! send/receive steps), [`wire`] (handshake and framing), [`message`], `error`, and [`rpc`]
//! (the JSON-RPC 2.0 client on top).

#![deny(missing_docs)]

mod batch;
pub mod config;
mod connect;
mod connection;
mod error;
mod link;
pub mod message;
mod parked;
mod pending;
mod proxy;
pub mod resilient;
pub mod rpc;
mod split;
#[cfg(test)]
mod test_support;
mod tls;
pub mod wire;

pub use batch::BatchError;
pub use config::{DeflateConfig, Proxy, TransportConfig};
pub use connection::WebSocketConnection;
pub use error::{Error, ProxyFailure, TlsFailure};
pub use link::ConnectionState;
pub use message::{Message, MessageType};
pub use rpc::{JsonCodec, RpcClient, RpcError, RpcMethod, RpcRequest, RpcResponse};
pub use split::{WsReceiver, WsSender};
