//! `ws-client`: an async WebSocket client for Tokio with bounded memory, a timeout on every
//! wait, and one typed [`Error`].
//!
//! Its own RFC 6455 framing ([`wire`]), tuned for many connections and short round trips:
//! a 4 KiB read buffer, `TCP_NODELAY`, frame limits checked before allocation, and no
//! background task between the caller and the socket.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_client::Error> {
//! use ws_client::{Message, TransportConfig, WebSocketConnection};
//!
//! // Start a server with `test-servers echo --port 0` and use the URL it prints.
//! let config = TransportConfig::new("ws://127.0.0.1:9001/");
//! let mut connection = WebSocketConnection::open(config).await?;
//! connection.send_message(&Message::text("hello")).await?;
//! let echo = connection.receive_message().await?;
//! assert_eq!(echo.as_text()?, "hello");
//! connection.disconnect().await?;
//! # Ok(()) }
//! ```
//!
//! Module map: [`config`] (limits and timeouts), `connect` (set-up), `connection` (the
//! connection type), `proxy` (HTTP CONNECT and SOCKS5 tunnels), `tls` (`wss://` on rustls),
//! `split` (halves for two tasks), `batch` (many messages, one flush), `link` (shared send/receive steps), [`wire`] (handshake
//! and framing), [`message`], `error`, and [`rpc`] (the JSON-RPC 2.0 client on top).

mod batch;
pub mod config;
mod connect;
mod connection;
mod error;
mod link;
pub mod message;
mod pending;
mod proxy;
pub mod resilient;
pub mod rpc;
mod split;
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
