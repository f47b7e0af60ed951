//! JSON-RPC 2.0 on top of the WebSocket transport: types, codecs, and [`RpcClient`].
//!
//! Layering, each module using only those above it: `types`, `codec`, `raw`, `incoming`,
//! `request` and `config` (values and their encodings, no I/O) → `writer` (the bounded
//! outgoing queue and its task) and `feed` (one subscription's channel) → `table` and
//! `router` (calls in flight by id, batches, subscriptions) → `reader` and `sweeper` (the
//! tasks that drive the router) → `session` (what a client's clones share; one call) →
//! `batch` and `subscription` → `client` (the public API). The transport underneath is the
//! crate's own `WebSocketConnection`, or a `ResilientConnection`: then `over_resilient`
//! holds the reader and writer tasks, and `resume` (beside `router`) what a reconnect does
//! to the calls and subscriptions.

mod batch;
mod client;
mod codec;
mod config;
mod feed;
mod guards;
mod incoming;
mod over_resilient;
mod raw;
mod reader;
mod request;
mod resume;
mod router;
mod session;
mod subscription;
mod sweeper;
mod table;
mod types;
mod writer;

pub use batch::BatchEntry;
pub use client::RpcClient;
pub use codec::{Codec, JsonCodec, MAX_MESSAGE_PACK_DEPTH, MessagePackCodec, RpcCodec};
pub use config::{
    CallOptions, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_QUEUED_BYTES, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SUBSCRIPTION_BUFFER, RpcConfig,
};
pub use subscription::Subscription;
pub use types::{Id, RpcError, RpcMethod, RpcRequest, RpcResponse, error_code};
