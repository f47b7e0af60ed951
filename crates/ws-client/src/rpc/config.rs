//! `RpcConfig`: the JSON-RPC client's settings on top of the transport's, with safe defaults.

use std::time::Duration;

use crate::config::TransportConfig;
use crate::rpc::codec::RpcCodec;

/// Default for [`RpcConfig::request_timeout`]: 30 seconds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`RpcConfig::max_in_flight`]: 1024 calls.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Default for [`RpcConfig::subscription_buffer`]: 1024 notifications.
pub const DEFAULT_SUBSCRIPTION_BUFFER: usize = 1024;
/// Default for [`RpcConfig::max_queued_bytes`]: 1 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 1 << 20;

/// How an [`RpcClient`](crate::rpc::RpcClient) connects and behaves.
///
/// ```
/// use ws_client::{TransportConfig, rpc::RpcConfig};
/// let config = RpcConfig {
///     transport: TransportConfig::new("ws://127.0.0.1:9001/"),
///     ..Default::default()
/// };
/// assert_eq!(config.max_in_flight, 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// The connection's settings (URL, limits, connect and close timeouts).
    pub transport: TransportConfig,
    /// Default time a call may take, from the moment it is made (waiting for a free slot
    /// included) to its answer; override per call with
    /// [`call_with_timeout`](crate::rpc::RpcClient::call_with_timeout).
    /// Default: [`DEFAULT_REQUEST_TIMEOUT`] (30 s).
    pub request_timeout: Duration,
    /// Most calls waiting for an answer at once; more callers wait for a slot (within
    /// their timeout), they are never refused. Default: [`DEFAULT_MAX_IN_FLIGHT`] (1024).
    pub max_in_flight: usize,
    /// Notifications buffered per subscription. When the reader falls behind and the
    /// buffer is full, new notifications are dropped and the reader's next item is
    /// [`Error::SubscriptionLagged`](crate::Error::SubscriptionLagged) with the count;
    /// other calls and subscriptions are never held up. Default:
    /// [`DEFAULT_SUBSCRIPTION_BUFFER`] (1024).
    pub subscription_buffer: usize,
    /// Most bytes of outgoing messages waiting to be written (each message counts its length
    /// plus 64 bytes of bookkeeping; one larger than the whole bound waits for an empty
    /// queue). When a server stops reading, the queue fills and senders wait for room:
    /// calls and batches within their timeout (then [`Error::CallTimeout`]), notifications
    /// within the request timeout (then [`Error::QueueFull`], not sent). The unsubscribe a
    /// dropped [`Subscription`](crate::rpc::Subscription) sends never waits: with the queue
    /// full it is dropped (logged), and the server keeps the subscription until the
    /// connection ends (its notifications are discarded). Default:
    /// [`DEFAULT_MAX_QUEUED_BYTES`] (1 MiB).
    ///
    /// [`Error::CallTimeout`]: crate::Error::CallTimeout
    /// [`Error::QueueFull`]: crate::Error::QueueFull
    pub max_queued_bytes: usize,
    /// How messages are framed: JSON in text frames (default) or MessagePack in binary frames.
    pub codec: RpcCodec,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            transport: TransportConfig::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            subscription_buffer: DEFAULT_SUBSCRIPTION_BUFFER,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            codec: RpcCodec::Json,
        }
    }
}

impl RpcConfig {
    /// A default configuration for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            transport: TransportConfig::new(url),
            ..Self::default()
        }
    }
}

/// Per-call settings for [`RpcClient::call_with`](crate::rpc::RpcClient::call_with).
///
/// ```
/// use std::time::Duration;
/// use ws_client::rpc::CallOptions;
/// let options = CallOptions { timeout: Some(Duration::from_secs(2)), idempotent: true };
/// assert_eq!(CallOptions::default().timeout, None);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// How long the call may take; `None` (default): [`RpcConfig::request_timeout`].
    pub timeout: Option<Duration>,
    /// Whether running the call twice does no harm (a read, or a write the server
    /// deduplicates). Over a resilient connection an idempotent call whose connection drops
    /// before its answer is sent again on the next connection (its request is kept until
    /// answered); any other call fails then with
    /// [`Error::CallInterrupted`](crate::Error::CallInterrupted). No effect on a plain
    /// connection. Default: `false`.
    pub idempotent: bool,
}
