//! The WebSocket protocol itself, written for this crate: the opening handshake, frame
//! headers and masking, and the buffered read and write sides of a connection.
//!
//! Why not tungstenite's `WebSocketStream`: with it every message goes through its
//! `Message` type, a frame struct and a second buffer, and a large payload is copied
//! twice; sending 16-byte messages spent more time there than in the kernel. Here a frame
//! is encoded straight into the write buffer, and a large incoming payload is read straight
//! into the message's own memory. (tungstenite is still used for the key helpers of the
//! handshake.)

//!
//! Public for servers that want the same fast path (`test-servers` uses it in the server
//! role, permessage-deflate included: [`accept_deflate`], then [`Inbound::with_deflate`]
//! and [`Outbound::with_deflate`]); most users want
//! [`WebSocketConnection`](crate::WebSocketConnection), which adds the state machine,
//! limits and timeouts on top.

pub(crate) mod assembly;
pub(crate) mod deflate;
pub(crate) mod extension;
pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod inbound;
pub(crate) mod negotiate;
pub(crate) mod outbound;
pub(crate) mod socket;

pub use crate::config::DeflateConfig;
pub use inbound::{InPlace, Inbound, ReadLimits};
pub use negotiate::{DeflateParams, accept_deflate};
pub use outbound::{OWNED_PAYLOAD_FROM, Outbound};

/// Which end of the connection frames are read and written for: a client masks what it
/// sends and refuses masked frames; a server the other way round (RFC 6455 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The connecting end.
    Client,
    /// The accepting end.
    Server,
}
