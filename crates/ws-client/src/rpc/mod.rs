//! JSON-RPC 2.0 on top of the WebSocket transport: types, codecs, and [`RpcClient`].
//!
//! Layering: `types` (wire types, no I/O) → `codec` (values to frames) → `client` and
//! `router` (calls in flight over one connection) → `subscription` (server notifications
//! as a stream). The transport underneath is the crate's own `WebSocketConnection`.

mod client;
mod codec;
mod config;
mod incoming;
mod request;
mod router;
mod subscription;
mod types;
mod writer;

pub use client::{BatchEntry, RpcClient};
pub use codec::{Codec, JsonCodec, MAX_MESSAGE_PACK_DEPTH, MessagePackCodec, RpcCodec};
pub use config::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_QUEUED_BYTES, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SUBSCRIPTION_BUFFER, RpcConfig,
};
pub use subscription::Subscription;
pub use types::{Id, RpcError, RpcMethod, RpcRequest, RpcResponse, error_code};
