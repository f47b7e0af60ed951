//! `Error`: the one error type of the crate; each variant says what happened and what to do.

use std::time::Duration;

pub use crate::proxy::ProxyFailure;

/// Everything that can go wrong, told apart so callers can react to each case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be used: not parseable, not `ws://`/`wss://`, or no host.
    /// Fix the URL; retrying will not help.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },

    /// Nothing accepted the TCP connection at that address (no server listening, or a
    /// firewall refused it). Check the address and that the server is running.
    #[error("connection refused by {addr}: is a server listening there?")]
    ConnectionRefused {
        /// The address that refused.
        addr: String,
    },

    /// TCP connect plus the upgrade handshake took longer than
    /// [`TransportConfig::connect_timeout`](crate::TransportConfig::connect_timeout).
    /// The server may be overloaded or not a WebSocket server; retry later or raise the timeout.
    #[error("connecting to {url} timed out after {after:?}")]
    ConnectTimeout {
        /// The URL being connected to.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },

    /// The server answered the upgrade request with an HTTP status other than 101, or with
    /// an invalid upgrade response. Check the URL path, credentials and origin rules.
    #[error("WebSocket handshake rejected ({}): {reason}", status.map_or("no valid HTTP response".to_string(), |s| format!("HTTP {s}")))]
    HandshakeRejected {
        /// The HTTP status the server answered with: 101 if the status was right but the
        /// rest of the response was not a valid upgrade; `None` if the answer was not HTTP.
        status: Option<u16>,
        /// What was wrong, including the start of the response body when there was one.
        reason: String,
        /// The server's `Retry-After` header in delta-seconds form (typical with 429 and
        /// 503), if it sent one; an HTTP-date value is not read. The resilient layer waits
        /// at least this long before its next attempt.
        retry_after: Option<Duration>,
    },

    /// The peer closed the connection with a close frame. Nothing more can be sent or
    /// received; reconnect if needed. `code` 1000 is a normal close, 1001 "going away".
    #[error("connection closed by peer with code {code}: {reason:?}")]
    ClosedByPeer {
        /// The close code the peer sent (1005 when its close frame carried none).
        code: u16,
        /// The reason the peer gave (may be empty).
        reason: String,
    },

    /// The connection ended without a close handshake (TCP reset or EOF). The peer
    /// crashed or the network failed; reconnect.
    #[error("connection lost: {0}")]
    ConnectionLost(String),

    /// The connection was closed by this side ([`disconnect`](crate::WebSocketConnection::disconnect)
    /// was called or a fatal error closed it). Open a new connection to continue.
    #[error("connection already closed")]
    ConnectionClosed,

    /// The peer broke RFC 6455 (bad framing, reserved bits or opcodes, masked server frames,
    /// invalid close codes...). The connection was failed with close code 1002.
    #[error("WebSocket protocol violation: {0}")]
    Protocol(String),

    /// A message or frame exceeds the configured limit (incoming: closed with 1009;
    /// outgoing: refused before sending). Raise `max_message_size` or send less.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The size of the message (or frame), in bytes.
        size: usize,
        /// The configured limit, in bytes.
        limit: usize,
    },

    /// A text message was not valid UTF-8: refused before sending, or received from the
    /// peer (the connection was then failed with close code 1007).
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,

    /// A ping, pong or close payload longer than 125 bytes was refused before sending.
    #[error("control frame payload of {size} bytes exceeds 125 bytes")]
    ControlFrameTooLarge {
        /// The payload size that was refused.
        size: usize,
    },

    /// A close message to send was malformed (a forbidden code or a 1-byte payload).
    /// Use a code from RFC 6455 section 7.4 (1000, 1001, 3000-4999...).
    #[error("invalid close frame: {0}")]
    InvalidCloseFrame(String),

    /// A configuration value cannot be used (for example a header name with spaces).
    /// Fix the [`TransportConfig`](crate::TransportConfig).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// `connect` was called on a connection that is already open. Call `disconnect`
    /// first, or use a second connection.
    #[error("already connected")]
    AlreadyConnected,

    /// A send could not complete within
    /// [`TransportConfig::send_timeout`](crate::TransportConfig::send_timeout) because the
    /// peer stopped reading. The connection was dropped, since part of the message may be
    /// queued; reconnect.
    #[error("send did not complete within {after:?}: the peer is not reading; connection dropped")]
    SendTimeout {
        /// The timeout that expired.
        after: Duration,
    },

    /// The operation needs an open connection: call `connect` first.
    #[error("not connected: call connect() first")]
    NotConnected,

    /// The peer did not answer our close frame within
    /// [`TransportConfig::close_timeout`](crate::TransportConfig::close_timeout); the
    /// connection was dropped anyway.
    #[error("close handshake not answered within {after:?}; connection dropped")]
    CloseTimeout {
        /// The timeout that expired.
        after: Duration,
    },

    /// The server answered a JSON-RPC call with an error object.
    #[error("RPC error {code}: {message}")]
    Rpc {
        /// The error code (see [`rpc::error_code`](crate::rpc::error_code)).
        code: i64,
        /// The server's description.
        message: String,
        /// Additional data, if the server sent any.
        data: Option<serde_json::Value>,
    },

    /// A JSON-RPC call got no answer within its timeout (the client default,
    /// [`RpcConfig::request_timeout`](crate::rpc::RpcConfig::request_timeout), or the
    /// per-call one). Its slot is freed and a late answer is discarded.
    #[error("RPC call {method:?} got no answer within {after:?}")]
    CallTimeout {
        /// The method called.
        method: String,
        /// The timeout that expired.
        after: Duration,
    },

    /// A JSON-RPC notification could not be queued: the client's outgoing queue
    /// ([`RpcConfig::max_queued_bytes`](crate::rpc::RpcConfig::max_queued_bytes)) stayed
    /// full for `after` (the request timeout), because the server is not reading what it is
    /// sent. Nothing was sent; the connection is still open.
    #[error("RPC notification {method:?} not sent: the outgoing queue stayed full for {after:?}")]
    QueueFull {
        /// The method of the notification.
        method: String,
        /// How long it waited for room.
        after: Duration,
    },

    /// A value could not be encoded, or a message or result could not be decoded into the
    /// expected type. Check the types on both sides.
    #[error("codec error: {0}")]
    Codec(String),

    /// A subscription's reader fell behind and its buffer filled up: `missed`
    /// notifications were dropped. Read faster or raise
    /// [`RpcConfig::subscription_buffer`](crate::rpc::RpcConfig::subscription_buffer).
    #[error("subscription reader too slow: {missed} notifications dropped")]
    SubscriptionLagged {
        /// How many notifications were dropped since the last item.
        missed: u64,
    },

    /// The TLS handshake of a `wss://` connection failed; `kind` says why and `reason`
    /// what to do. An untrusted certificate: add the server's CA with
    /// [`TransportConfig::extra_root_certificates`](crate::TransportConfig::extra_root_certificates)
    /// or [`with_ca_file`](crate::TransportConfig::with_ca_file). A certificate for another
    /// host: connect by a name the certificate covers. Otherwise the server may not speak
    /// TLS on that port. Retrying will not help in the first two cases.
    #[error("TLS handshake failed: {reason}")]
    Tls {
        /// The host name or address the certificate was checked against (also sent as SNI).
        host: String,
        /// Which kind of failure it was.
        kind: TlsFailure,
        /// What happened and what to do, in words.
        reason: String,
    },

    /// The connection through the configured proxy
    /// ([`TransportConfig::proxy`](crate::TransportConfig::proxy)) failed before the server
    /// was reached: the proxy, not the server, is the cause, and `kind` says which step
    /// failed and what to do (see [`ProxyFailure`]). A proxy's HTTP 407 is `AuthRequired` or
    /// `AuthFailed`, never [`HandshakeRejected`](Self::HandshakeRejected). Retrying helps only
    /// for `Unreachable`, `Timeout` and `TargetUnreachable`.
    #[error("{} ({proxy}): {reason}", kind.words())]
    Proxy {
        /// The proxy as `scheme://host:port` (never with its credentials).
        proxy: String,
        /// Which step failed.
        kind: ProxyFailure,
        /// What happened and what to do, in words.
        reason: String,
    },

    /// The heartbeat of a [`ResilientConnection`](crate::resilient::ResilientConnection)
    /// got no pong and no other traffic for `silent_for` after a ping (its interval plus
    /// timeout): the peer or the path to it is presumed dead, and the connection was
    /// dropped. Retryable: the resilient layer reconnects.
    #[error("no pong and no other traffic for {silent_for:?} after a ping: peer presumed dead")]
    PeerDead {
        /// How long nothing was heard after the first unanswered ping.
        silent_for: Duration,
    },

    /// A message was handed to a resilient connection while it was down (reconnecting)
    /// and its [`QueuePolicy`](crate::resilient::QueuePolicy) is `FailFast`: nothing was
    /// sent; the message comes back with this error.
    #[error("the connection is down (reconnecting); message not sent")]
    ConnectionDown,

    /// A message was handed to a resilient connection while it was down and its outage
    /// queue was full (`max_messages` messages or `max_bytes` bytes): nothing was sent; the
    /// message comes back with this error.
    #[error("outage queue full ({max_messages} messages / {max_bytes} bytes); message not sent")]
    OutageQueueFull {
        /// The queue's bound in messages.
        max_messages: usize,
        /// The queue's bound in bytes.
        max_bytes: usize,
    },

    /// A resilient connection stopped reconnecting: its
    /// [`ReconnectPolicy`](crate::resilient::ReconnectPolicy) allows no more attempts or
    /// time. The connection is over; open a new one to continue.
    #[error(
        "gave up reconnecting after {attempts} attempts in {elapsed:?}; last error: {last_error}"
    )]
    ReconnectGaveUp {
        /// How many connection attempts were made in this outage.
        attempts: u32,
        /// How long the outage lasted until giving up.
        elapsed: Duration,
        /// The last attempt's error, in words.
        last_error: String,
    },

    /// An RPC call over a resilient connection
    /// ([`RpcClient::connect_resilient`](crate::rpc::RpcClient::connect_resilient)) was
    /// sent, and the connection dropped before its answer came: the server may or may not
    /// have run it. The client reconnects by itself. Retryable: call again if the call is
    /// safe to repeat, or mark such calls idempotent
    /// ([`CallOptions::idempotent`](crate::rpc::CallOptions::idempotent)) so that the client
    /// sends them again itself.
    #[error(
        "the connection dropped after the call was sent and before its answer; the server may or may not have run it"
    )]
    CallInterrupted,

    /// A subscription over a resilient connection was made again after a reconnect: the
    /// notifications the server sent between the drop and now were missed. The stream goes
    /// on with the new connection's notifications; re-read any state the missed ones would
    /// have changed.
    #[error("reconnected: subscription made again; notifications in the gap were missed")]
    SubscriptionGap,

    /// Any other I/O failure on the socket.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a TLS handshake failed (see [`Error::Tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The certificate chain does not lead to a trusted root (unknown issuer, expired,
    /// bad signature...).
    UntrustedCertificate,
    /// The certificate is trusted but issued for other names than the host connected to.
    WrongHost,
    /// Anything else: the peer does not speak TLS, no common protocol version or cipher
    /// suite, the connection closed during the handshake...
    Other,
}

impl Error {
    /// A copy of a connection-ending error for every call or subscription that was waiting
    /// on the connection (the original cannot be cloned, since it may hold an I/O error).
    pub(crate) fn for_waiters(&self) -> Error {
        match self {
            Error::ClosedByPeer { code, reason } => Error::ClosedByPeer {
                code: *code,
                reason: reason.clone(),
            },
            Error::ConnectionClosed => Error::ConnectionClosed,
            Error::ConnectionLost(reason) => Error::ConnectionLost(reason.clone()),
            // How a resilient connection ends: kept as they are, for the caller to match.
            Error::ReconnectGaveUp { .. }
            | Error::HandshakeRejected { .. }
            | Error::Proxy { .. } => crate::resilient::copy_error(self),
            other => Error::ConnectionLost(other.to_string()),
        }
    }
}

impl Error {
    /// The close code RFC 6455 (section 7.4.1) fails a connection with after this error
    /// on the receiving side: 1002 for a protocol violation, 1007 for invalid UTF-8, 1009
    /// for a message too large; `None` when no close frame is called for.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Error::Protocol(_) => Some(1002),
            Error::InvalidUtf8 => Some(1007),
            Error::MessageTooLarge { .. } => Some(1009),
            _ => None,
        }
    }

    /// The reason to send with [`close_code`](Self::close_code) in that close frame: a
    /// short fixed phrase naming the kind of failure (the details stay in the error: they
    /// may be long, and may repeat what the peer sent); `None` when no close frame is
    /// called for.
    pub fn close_reason(&self) -> Option<&'static str> {
        match self.close_code()? {
            1009 => Some("message too big"),
            1007 => Some("invalid UTF-8"),
            _ => Some("protocol error"),
        }
    }
}

/// Maps an I/O error on an established connection: the ways a peer can vanish are
/// [`Error::ConnectionLost`], anything else stays [`Error::Io`].
pub(crate) fn from_io(error: std::io::Error) -> Error {
    match error.kind() {
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::UnexpectedEof => Error::ConnectionLost(error.to_string()),
        _ => Error::Io(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_code_comes_with_a_reason_that_fits_a_close_frame() {
        let errors = [
            Error::Protocol("x".repeat(500)),
            Error::InvalidUtf8,
            Error::MessageTooLarge { size: 2, limit: 1 },
            Error::ConnectionClosed,
            Error::ConnectionLost("gone".into()),
        ];
        for error in errors {
            assert_eq!(error.close_code().is_some(), error.close_reason().is_some());
            if let Some(reason) = error.close_reason() {
                assert!(reason.len() <= 123, "{reason}");
            }
        }
        assert_eq!(Error::InvalidUtf8.close_reason(), Some("invalid UTF-8"));
    }
}
