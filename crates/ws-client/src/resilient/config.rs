//! `ResilientConfig`: the transport settings plus everything the resilient layer adds, each
//! default a documented constant.

use super::classify::Classifier;
use super::events::DEFAULT_EVENT_CAPACITY;
use super::heartbeat::HeartbeatConfig;
use super::policy::ReconnectPolicy;
use super::queue::QueuePolicy;
use crate::config::TransportConfig;
use crate::error::Error;

/// Default for [`ResilientConfig::receive_buffer`]: 32 messages received ahead of the reader.
/// Memory: at most this many messages (each up to `max_message_size`) plus the one in hand.
pub const DEFAULT_RECEIVE_BUFFER: usize = 32;
/// Default for [`ResilientConfig::send_buffer`]: 64 messages handed over while the
/// background task is busy writing; senders wait for room beyond it (backpressure).
pub const DEFAULT_SEND_BUFFER: usize = 64;
/// Default for [`ResilientConfig::retry_first_connect`]: `false`, so a wrong address or a
/// server that is not running shows at once instead of as a long retry loop.
pub const DEFAULT_RETRY_FIRST_CONNECT: bool = false;

/// How a [`ResilientConnection`](super::ResilientConnection) connects, reconnects, checks
/// the peer and treats messages during an outage.
///
/// ```
/// use std::time::Duration;
/// use ws_client::resilient::{HeartbeatConfig, ResilientConfig};
///
/// let config = ResilientConfig {
///     heartbeat: Some(HeartbeatConfig {
///         interval: Duration::from_secs(5),
///         timeout: Duration::from_secs(3),
///     }),
///     ..ResilientConfig::new("ws://127.0.0.1:9001/")
/// };
/// assert_eq!(config.reconnect.multiplier, 2.0);
/// ```
#[derive(Clone)]
pub struct ResilientConfig {
    /// The connection settings used for every attempt (URL, timeouts, limits...).
    pub transport: TransportConfig,
    /// Backoff and give-up rules. Default: [`ReconnectPolicy::default`].
    pub reconnect: ReconnectPolicy,
    /// Pings and dead-peer detection; `None` turns the heartbeat off (a silent peer is then
    /// noticed only by TCP, which can take many minutes). Default: `Some` with
    /// [`HeartbeatConfig::default`] (15 s interval, 10 s timeout).
    pub heartbeat: Option<HeartbeatConfig>,
    /// What happens to messages sent while down. Default: [`QueuePolicy::default`] (queue
    /// up to 1,024 messages and 1 MiB).
    pub queue: QueuePolicy,
    /// A hook overriding the retry class of an error (see the module docs' table). Default:
    /// none.
    pub classify: Option<Classifier>,
    /// Whether [`connect`](super::ResilientConnection::connect) retries per the policy when
    /// the first attempt fails (it then returns only once connected, or with the error that
    /// ended the retries). Default: [`DEFAULT_RETRY_FIRST_CONNECT`] (`false`: fail fast).
    pub retry_first_connect: bool,
    /// Messages received ahead of the caller of `receive`. When full, the connection stops
    /// reading the socket (TCP pushes back on the server). Default: [`DEFAULT_RECEIVE_BUFFER`].
    pub receive_buffer: usize,
    /// Messages handed over and not yet taken by the background task. Default:
    /// [`DEFAULT_SEND_BUFFER`].
    pub send_buffer: usize,
    /// Events kept for a slow [`events`](super::ResilientConnection::events) reader.
    /// Default: [`DEFAULT_EVENT_CAPACITY`] (64).
    pub event_capacity: usize,
    /// Labels put on every metric published through the `metrics` facade (for example
    /// `("peer", "prices")`). Default: none.
    pub metrics_labels: Vec<(String, String)>,
}

impl Default for ResilientConfig {
    fn default() -> Self {
        Self {
            transport: TransportConfig::default(),
            reconnect: ReconnectPolicy::default(),
            heartbeat: Some(HeartbeatConfig::default()),
            queue: QueuePolicy::default(),
            classify: None,
            retry_first_connect: DEFAULT_RETRY_FIRST_CONNECT,
            receive_buffer: DEFAULT_RECEIVE_BUFFER,
            send_buffer: DEFAULT_SEND_BUFFER,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            metrics_labels: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ResilientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientConfig")
            .field("transport", &self.transport)
            .field("reconnect", &self.reconnect)
            .field("heartbeat", &self.heartbeat)
            .field("queue", &self.queue)
            .field("classify", &self.classify.as_ref().map(|_| "user hook"))
            .field("retry_first_connect", &self.retry_first_connect)
            .field("receive_buffer", &self.receive_buffer)
            .field("send_buffer", &self.send_buffer)
            .field("event_capacity", &self.event_capacity)
            .field("metrics_labels", &self.metrics_labels)
            .finish()
    }
}

impl ResilientConfig {
    /// The default configuration for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            transport: TransportConfig::new(url),
            ..Self::default()
        }
    }

    /// Fails with [`Error::InvalidConfig`] if a value cannot work.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let invalid = |what: &str| Err(Error::InvalidConfig(what.to_owned()));
        if let Some(problem) = self.reconnect.problem() {
            return invalid(problem);
        }
        if let Some(heartbeat) = &self.heartbeat {
            if heartbeat.interval.is_zero() || heartbeat.timeout.is_zero() {
                return invalid("heartbeat interval and timeout must be greater than zero");
            }
        }
        if self.receive_buffer == 0 || self.send_buffer == 0 || self.event_capacity == 0 {
            return invalid("receive_buffer, send_buffer and event_capacity must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// Each value that cannot work is refused with a message naming it; the defaults pass.
    #[test]
    fn values_that_cannot_work_are_refused_by_name() {
        let base = ResilientConfig::new("ws://server.invalid/");
        assert!(base.check().is_ok());
        let refused = |config: ResilientConfig, named: &str| match config.check() {
            Err(Error::InvalidConfig(text)) => assert!(text.contains(named), "{text}"),
            other => panic!("{named}: {other:?}"),
        };
        let mut multiplier = base.clone();
        multiplier.reconnect.multiplier = f64::NAN;
        refused(multiplier, "multiplier");
        let mut delays = base.clone();
        delays.reconnect.initial_delay = Duration::from_secs(60);
        refused(delays, "initial_delay");
        let mut attempts = base.clone();
        attempts.reconnect.max_attempts = Some(0);
        refused(attempts, "max_attempts");
        let mut heartbeat = base.clone();
        heartbeat.heartbeat = Some(HeartbeatConfig {
            interval: Duration::ZERO,
            timeout: Duration::from_secs(1),
        });
        refused(heartbeat, "heartbeat");
        for field in 0..3 {
            let mut buffers = base.clone();
            match field {
                0 => buffers.receive_buffer = 0,
                1 => buffers.send_buffer = 0,
                _ => buffers.event_capacity = 0,
            }
            refused(buffers, "at least 1");
        }
    }

    /// The debug output names a classify hook without trying to print the closure.
    #[test]
    fn debug_output_shows_every_setting_and_only_names_the_hook() {
        let config = ResilientConfig {
            classify: Some(Arc::new(|_: &Error, class| class)),
            metrics_labels: vec![("peer".into(), "prices".into())],
            ..ResilientConfig::new("ws://server.invalid/")
        };
        let shown = format!("{config:?}");
        for part in [
            "user hook",
            "prices",
            "send_buffer: 64",
            "event_capacity: 64",
        ] {
            assert!(shown.contains(part), "{part} in {shown}");
        }
    }
}
