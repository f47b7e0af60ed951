//! Retry classes: which errors the resilient layer reconnects after, and how long it waits.
//!
//! The default table is [`default_class`]; a user hook
//! ([`ResilientConfig::classify`](super::ResilientConfig::classify)) sees each error with its
//! default class and may return another.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ProxyFailure, TlsFailure};

/// What the resilient layer does after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryClass {
    /// Reconnect after the policy's backoff delay (full jitter).
    Retry,
    /// Reconnect, waiting at least the policy's
    /// [`try_again_later_floor`](super::ReconnectPolicy::try_again_later_floor) on top of the
    /// backoff delay: the server said it is overloaded (close 1013, or HTTP 429 without
    /// `Retry-After`).
    TryAgainLater,
    /// Reconnect after the server's `Retry-After` (plus up to 10% jitter, never sooner),
    /// capped at the policy's [`max_delay`](super::ReconnectPolicy::max_delay).
    RetryAfter(Duration),
    /// Do not reconnect: retrying cannot help (bad URL, refused credentials, a certificate
    /// that is not trusted, a deliberate close...). The resilient connection ends.
    Fatal,
}

impl RetryClass {
    /// True for every class but [`Fatal`](Self::Fatal).
    pub fn is_retryable(self) -> bool {
        self != Self::Fatal
    }
}

/// A user hook overriding the class of an error: called with the error and its default
/// class, returns the class to use.
pub type Classifier = Arc<dyn Fn(&Error, RetryClass) -> RetryClass + Send + Sync>;

/// Close codes after which the resilient layer reconnects: going away (1001), abnormal
/// closure (1006), server error (1011), service restart (1012), bad gateway (1014).
/// 1013 (try again later) is retried too, after a longer wait.
pub const RETRIED_CLOSE_CODES: [u16; 5] = [1001, 1006, 1011, 1012, 1014];

/// The default retry class of `error` (see the table in the [module docs](super)).
pub fn default_class(error: &Error) -> RetryClass {
    match error {
        Error::ConnectionRefused { .. }
        | Error::ConnectionLost(_)
        | Error::ConnectTimeout { .. }
        | Error::PeerDead { .. }
        | Error::SendTimeout { .. }
        | Error::Io(_) => RetryClass::Retry,
        Error::HandshakeRejected {
            status,
            retry_after,
            ..
        } => match (status, retry_after) {
            (Some(429 | 502 | 503 | 504), Some(after)) => RetryClass::RetryAfter(*after),
            (Some(429), None) => RetryClass::TryAgainLater,
            (Some(502..=504), None) => RetryClass::Retry,
            // No HTTP answer at all: most often the server went away mid-handshake.
            (None, _) => RetryClass::Retry,
            _ => RetryClass::Fatal,
        },
        Error::ClosedByPeer { code: 1013, .. } => RetryClass::TryAgainLater,
        Error::ClosedByPeer { code, .. } if RETRIED_CLOSE_CODES.contains(code) => RetryClass::Retry,
        Error::Tls {
            kind: TlsFailure::Other,
            ..
        } => RetryClass::Retry,
        Error::Proxy {
            kind:
                ProxyFailure::Unreachable | ProxyFailure::Timeout | ProxyFailure::TargetUnreachable,
            ..
        } => RetryClass::Retry,
        _ => RetryClass::Fatal,
    }
}

/// A copy of `error` for a second receiver (the original cannot be cloned: it may hold an
/// I/O error, which is copied as its kind and text).
pub(crate) fn copy_error(error: &Error) -> Error {
    match error {
        Error::InvalidUrl { url, reason } => Error::InvalidUrl {
            url: url.clone(),
            reason: reason.clone(),
        },
        Error::ConnectionRefused { addr } => Error::ConnectionRefused { addr: addr.clone() },
        Error::ConnectTimeout { url, after } => Error::ConnectTimeout {
            url: url.clone(),
            after: *after,
        },
        Error::HandshakeRejected {
            status,
            reason,
            retry_after,
        } => Error::HandshakeRejected {
            status: *status,
            reason: reason.clone(),
            retry_after: *retry_after,
        },
        Error::ClosedByPeer { code, reason } => Error::ClosedByPeer {
            code: *code,
            reason: reason.clone(),
        },
        Error::ConnectionLost(reason) => Error::ConnectionLost(reason.clone()),
        Error::ConnectionClosed => Error::ConnectionClosed,
        Error::Protocol(reason) => Error::Protocol(reason.clone()),
        Error::MessageTooLarge { size, limit } => Error::MessageTooLarge {
            size: *size,
            limit: *limit,
        },
        Error::InvalidUtf8 => Error::InvalidUtf8,
        Error::SendTimeout { after } => Error::SendTimeout { after: *after },
        Error::Tls { host, kind, reason } => Error::Tls {
            host: host.clone(),
            kind: *kind,
            reason: reason.clone(),
        },
        Error::Proxy {
            proxy,
            kind,
            reason,
        } => Error::Proxy {
            proxy: proxy.clone(),
            kind: *kind,
            reason: reason.clone(),
        },
        Error::PeerDead { silent_for } => Error::PeerDead {
            silent_for: *silent_for,
        },
        Error::ConnectionDown => Error::ConnectionDown,
        Error::CallInterrupted => Error::CallInterrupted,
        Error::SubscriptionGap => Error::SubscriptionGap,
        Error::OutageQueueFull {
            max_messages,
            max_bytes,
        } => Error::OutageQueueFull {
            max_messages: *max_messages,
            max_bytes: *max_bytes,
        },
        Error::ReconnectGaveUp {
            attempts,
            elapsed,
            last_error,
        } => Error::ReconnectGaveUp {
            attempts: *attempts,
            elapsed: *elapsed,
            last_error: last_error.clone(),
        },
        Error::Io(io) => Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => Error::ConnectionLost(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: u16, retry_after: Option<u64>) -> Error {
        Error::HandshakeRejected {
            status: Some(status),
            reason: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn closed(code: u16) -> Error {
        Error::ClosedByPeer {
            code,
            reason: String::new(),
        }
    }

    #[test]
    fn the_issue_table_holds() {
        use RetryClass::*;
        let retried = [
            Error::ConnectionRefused { addr: "a".into() },
            Error::ConnectionLost("reset".into()),
            Error::ConnectTimeout {
                url: "ws://a/".into(),
                after: Duration::from_secs(1),
            },
            Error::PeerDead {
                silent_for: Duration::from_secs(1),
            },
            rejected(502, None),
            rejected(503, None),
            rejected(504, None),
        ];
        for error in &retried {
            assert_eq!(default_class(error), Retry, "{error}");
        }
        for code in [1001, 1006, 1011, 1012, 1014] {
            assert_eq!(default_class(&closed(code)), Retry, "{code}");
        }
        assert_eq!(default_class(&closed(1013)), TryAgainLater);
        assert_eq!(default_class(&rejected(429, None)), TryAgainLater);
        let after = Duration::from_secs(3);
        assert_eq!(default_class(&rejected(429, Some(3))), RetryAfter(after));
        assert_eq!(default_class(&rejected(503, Some(3))), RetryAfter(after));

        let fatal = [
            Error::InvalidUrl {
                url: "x".into(),
                reason: "bad".into(),
            },
            Error::Tls {
                host: "h".into(),
                kind: TlsFailure::UntrustedCertificate,
                reason: String::new(),
            },
            Error::Tls {
                host: "h".into(),
                kind: TlsFailure::WrongHost,
                reason: String::new(),
            },
            rejected(400, None),
            rejected(401, None),
            rejected(403, Some(5)),
            rejected(404, None),
            rejected(101, None),
        ];
        for error in &fatal {
            assert_eq!(default_class(error), Fatal, "{error}");
        }
        for code in [1000, 1002, 1003, 1007, 1008, 1009, 1010] {
            assert_eq!(default_class(&closed(code)), Fatal, "{code}");
        }
    }

    #[test]
    fn copies_keep_the_variant_and_its_fields() {
        let original = rejected(503, Some(2));
        assert_eq!(
            format!("{:?}", copy_error(&original)),
            format!("{original:?}")
        );
        let io = Error::Io(std::io::Error::other("boom"));
        match copy_error(&io) {
            Error::Io(copy) => assert_eq!(copy.to_string(), "boom"),
            other => panic!("{other:?}"),
        }
    }

    /// Every variant a connection can end with is copied as itself (the ones a copy need
    /// not keep become `ConnectionLost` with their text).
    #[test]
    fn every_ending_is_copied_as_itself() {
        use crate::proxy::ProxyFailure;
        let originals = [
            Error::InvalidUrl {
                url: "u".into(),
                reason: "r".into(),
            },
            Error::ConnectionRefused { addr: "a".into() },
            Error::ConnectTimeout {
                url: "u".into(),
                after: Duration::from_secs(1),
            },
            closed(1001),
            Error::ConnectionLost("gone".into()),
            Error::ConnectionClosed,
            Error::Protocol("p".into()),
            Error::MessageTooLarge { size: 2, limit: 1 },
            Error::InvalidUtf8,
            Error::SendTimeout {
                after: Duration::from_secs(2),
            },
            Error::Tls {
                host: "h".into(),
                kind: TlsFailure::Other,
                reason: "r".into(),
            },
            Error::PeerDead {
                silent_for: Duration::from_secs(3),
            },
            Error::ConnectionDown,
            Error::CallInterrupted,
            Error::SubscriptionGap,
            Error::OutageQueueFull {
                max_messages: 1,
                max_bytes: 2,
            },
            Error::ReconnectGaveUp {
                attempts: 3,
                elapsed: Duration::from_secs(4),
                last_error: "e".into(),
            },
            Error::Proxy {
                proxy: "http://p:1".into(),
                kind: ProxyFailure::AuthFailed,
                reason: "r".into(),
            },
        ];
        for original in &originals {
            assert_eq!(
                format!("{:?}", copy_error(original)),
                format!("{original:?}")
            );
        }
        let other = Error::NotConnected;
        assert!(
            matches!(copy_error(&other), Error::ConnectionLost(text) if text == other.to_string())
        );
    }
}
