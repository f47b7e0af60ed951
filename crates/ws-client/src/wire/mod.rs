//! The WebSocket protocol itself, written for this crate: the opening handshake, frame
//! headers and masking, and the buffered read and write sides of a connection.
//!
//! Why not tungstenite's `WebSocketStream`: with it every message goes through its
//! `Message` type, a frame struct and a second buffer, and a large payload is copied
//! twice; sending 16-byte messages spent more time there than in the kernel. Here a frame
//! is encoded straight into the write buffer, and a large incoming payload is read straight
//! into the message's own memory. (tungstenite is still used for the key helpers of the
//! handshake.)

pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod inbound;
pub(crate) mod outbound;
pub(crate) mod socket;

pub(crate) use inbound::{Inbound, ReadLimits};
pub(crate) use outbound::Outbound;
