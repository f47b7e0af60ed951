//! `TransportConfig`: every knob of a connection, each with a safe, documented default.

use std::time::Duration;

use crate::error::Error;
pub use crate::proxy::Proxy;

/// Default for [`TransportConfig::connect_timeout`]: 10 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`TransportConfig::close_timeout`]: 5 seconds.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`TransportConfig::send_timeout`]: 30 seconds.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`TransportConfig::max_message_size`]: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;
/// Default for [`TransportConfig::max_frame_size`]: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;
/// Default for [`TransportConfig::read_buffer_size`]: 4 KiB.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 4 << 10;
/// Default for [`TransportConfig::write_buffer_size`]: 64 KiB.
pub const DEFAULT_WRITE_BUFFER_SIZE: usize = 64 << 10;
/// Default for [`DeflateConfig::level`]: 1, zlib's fastest. Measured on JSON with
/// zlib-rs: level 1 compresses a 16 KiB message to about 15% at 750 MB/s and a 64-byte one
/// in 0.2 us; level 6 reaches about 10% but at 110-170 MB/s, and costs about 2.5 us per
/// message whatever its size.
pub const DEFAULT_DEFLATE_LEVEL: u32 = 1;
/// Default for [`DeflateConfig::threshold`]: messages under 64 bytes go uncompressed.
/// Measured on JSON: without context takeover a 32-byte message grows when compressed
/// and a 64-byte one shrinks by about 10%; with it, even small messages shrink, but by
/// fewer bytes than a frame header's worth.
pub const DEFAULT_DEFLATE_THRESHOLD: usize = 64;

/// How a connection is made and what it will accept.
///
/// Build it with struct-update syntax so new fields never break callers:
///
/// ```
/// use ws_client::TransportConfig;
/// let config = TransportConfig {
///     url: "ws://127.0.0.1:9001/".into(),
///     ..Default::default()
/// };
/// assert_eq!(config.read_buffer_size, 4096);
/// ```
///
/// Every size is a hard limit enforced before memory is allocated for it, and every
/// wait is bounded by one of the timeouts, so a misbehaving peer can neither hang
/// the caller nor make it allocate without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// The `ws://` or `wss://` URL to connect to when [`WebSocketConnection::open`] is used, or when
    /// [`WebSocketConnection::connect`] is given an empty string. Default: empty.
    ///
    /// [`WebSocketConnection::open`]: crate::WebSocketConnection::open
    /// [`WebSocketConnection::connect`]: crate::WebSocketConnection::connect
    pub url: String,
    /// Upper bound on the whole connection set-up: DNS, TCP connect, the tunnel through a
    /// [`proxy`](Self::proxy), the TLS handshake (`wss://`) and the HTTP upgrade handshake
    /// together. Default: [`DEFAULT_CONNECT_TIMEOUT`] (10 s).
    pub connect_timeout: Duration,
    /// Upper bound on the close handshake in [`disconnect`](crate::WebSocketConnection::disconnect):
    /// how long to wait for the peer to answer our close frame. Default:
    /// [`DEFAULT_CLOSE_TIMEOUT`] (5 s).
    pub close_timeout: Duration,
    /// Upper bound on one send (including its flush) when the peer stops reading and the
    /// socket's buffers are full. On expiry the connection is dropped and the send fails
    /// with [`Error::SendTimeout`]. Default:
    /// [`DEFAULT_SEND_TIMEOUT`] (30 s).
    pub send_timeout: Duration,
    /// Extra HTTP headers sent with the upgrade request, as `(name, value)` pairs
    /// (for example `Authorization`). Default: none.
    pub headers: Vec<(String, String)>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`, most preferred first. A server
    /// that picks one not offered is refused. Default: none.
    pub subprotocols: Vec<String>,
    /// Largest message accepted or sent, in bytes; a larger incoming message closes the
    /// connection with 1009 and yields [`Error::MessageTooLarge`].
    /// `usize::MAX` means no limit beyond what the platform can hold in one buffer
    /// (`isize::MAX` bytes); zero is refused. Default: [`DEFAULT_MAX_MESSAGE_SIZE`] (16 MiB).
    pub max_message_size: usize,
    /// Largest single frame accepted, in bytes (payload only). The effective limit is the
    /// smaller of this and `max_message_size`, so an oversized frame is refused from its
    /// header, before its payload is buffered. Default: [`DEFAULT_MAX_FRAME_SIZE`] (16 MiB).
    pub max_frame_size: usize,
    /// Size of the read buffer, allocated once per connection (clamped to 256 bytes -
    /// 16 MiB). Small by default: a large buffer costs memory on every idle connection and
    /// slows round trips.
    /// Default: [`DEFAULT_READ_BUFFER_SIZE`] (4 KiB).
    pub read_buffer_size: usize,
    /// Bytes of queued outgoing frames after which they are written to the socket even
    /// without a flush. The write buffer never holds more than this plus one message, so
    /// a peer that stops reading applies backpressure to the sender instead of growing
    /// memory. Default: [`DEFAULT_WRITE_BUFFER_SIZE`] (64 KiB).
    pub write_buffer_size: usize,
    /// Local address to connect from (port chosen by the system), for example one of
    /// several loopback addresses to get past the ~28k ephemeral ports of one address
    /// pair. Default: `None` (the system picks).
    pub local_address: Option<std::net::IpAddr>,
    /// CA certificates trusted for `wss://` besides the built-in webpki roots (Mozilla's
    /// root program, compiled in: the result does not depend on the platform's store).
    /// Each entry is PEM (one or more `CERTIFICATE` blocks) or one DER certificate; a
    /// malformed entry fails the connect with [`Error::InvalidConfig`].
    /// [`with_ca_file`](Self::with_ca_file) adds one from a file. Default: none.
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// The proxy to connect through: none, a proxy URL (HTTP `CONNECT`, SOCKS5), or the
    /// proxy environment variables (opt-in, read at each connect); see [`Proxy`] for the URL
    /// forms and the variables' precedence. A failure on the way through the proxy is
    /// [`Error::Proxy`]. Default: [`Proxy::None`] (direct, the
    /// environment is not read).
    pub proxy: Proxy,
    /// Disable Nagle's algorithm (`TCP_NODELAY`) so small messages leave at once.
    /// Default: `true`.
    pub tcp_nodelay: bool,
    /// permessage-deflate (RFC 7692): `Some` offers it with these parameters, and the
    /// server may accept, narrow or decline the offer (see
    /// [`WebSocketConnection::compression`](crate::WebSocketConnection::compression) for
    /// what was agreed); an answer the offer did not allow fails the connect with
    /// [`Error::HandshakeRejected`]. Default: `None`, not offered.
    ///
    /// Off by default, unlike browsers: it costs memory on every connection that uses it
    /// (up to about 480 KiB with context takeover both ways, see [`DeflateConfig`]),
    /// CPU on every message, and compressing secrets beside data an attacker chooses leaks
    /// them through the compressed size (CRIME, BREACH). Turn it on for compressible
    /// messages (JSON, text) over links where bandwidth matters.
    pub compression: Option<DeflateConfig>,
}

/// permessage-deflate parameters (RFC 7692), for both roles: what a client offers (in
/// [`TransportConfig::compression`]) or what a server accepts (see
/// [`wire::accept_deflate`](crate::wire::accept_deflate)).
///
/// Memory, measured with zlib-rs (the backend this crate builds flate2 with): a
/// compressor takes about 370 KiB with a 15-bit window and 245 KiB with 9 bits; an
/// inflater about 46 KiB whatever the window, plus a copy of the last 32-64 KiB it
/// inflated while the peer keeps its context (a peer may end a message with a final block
/// and go on with the same window). All are made at the first compressed
/// message, not at connect. Without context takeover nothing is kept between messages:
/// the side that may not keep its context compresses with a compressor shared by all
/// connections on the thread (reset for each message, about 4 us), and the side reading
/// frees its inflater after each message; so a server that refuses context takeover both
/// ways keeps no compression memory per idle connection. With context takeover both ways,
/// a connection keeps a compressor, an inflater and that copy, about 480 KiB.
///
/// The default (all `false`, windows of 15 bits, level 1, threshold 64 bytes) keeps
/// context both ways, which compresses best.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// The server compresses each message on its own (no LZ77 window carried over).
    /// A client asks for it in its offer and refuses an answer without it; a server
    /// answers it always (no compressor kept per connection: less memory, about 4 us more
    /// per message, a lower ratio). Default: `false`.
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own. A client declares it in its offer
    /// (and keeps to it); a server answers it always, so no inflater is kept per
    /// connection between messages. Default: `false`.
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window the server compresses with, as a power of two (8-15). A client
    /// offers `server_max_window_bits` when it is below 15 and refuses a larger answer; a
    /// server uses at most this (less if the client asks). Default: 15.
    ///
    /// A side held to 8 bits sends its messages uncompressed (RFC 7692 allows it; zlib
    /// compresses with 9 bits at least), and still reads compressed ones.
    pub server_max_window_bits: u8,
    /// Largest LZ77 window the client compresses with (9-15). A client offers
    /// `client_max_window_bits` (with this value when it is below 15) and follows a
    /// smaller answer (told 8, it sends uncompressed, as above); a server asks a client
    /// that offered the parameter for at most this, never for 8 (a client that did not
    /// offer the parameter cannot be asked). Default: 15.
    pub client_max_window_bits: u8,
    /// zlib compression level for what this side sends, 0 (stored) to 9 (smallest).
    /// Default: [`DEFAULT_DEFLATE_LEVEL`] (1).
    pub level: u32,
    /// Messages shorter than this (in bytes) are sent uncompressed. Default:
    /// [`DEFAULT_DEFLATE_THRESHOLD`] (64).
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: DEFAULT_DEFLATE_LEVEL,
            threshold: DEFAULT_DEFLATE_THRESHOLD,
        }
    }
}

impl DeflateConfig {
    /// Both ways without context takeover: no compression memory kept per connection
    /// between messages (see the type's documentation), for a server holding many.
    pub fn no_context_takeover() -> Self {
        Self {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..Self::default()
        }
    }

    /// Refuses values that cannot be offered or used.
    pub(crate) fn check(&self) -> Result<(), Error> {
        for (name, bits, least) in [
            ("server_max_window_bits", self.server_max_window_bits, 8),
            ("client_max_window_bits", self.client_max_window_bits, 9),
        ] {
            if !(least..=15).contains(&bits) {
                return Err(Error::InvalidConfig(format!(
                    "{name} {bits} is not in {least}-15"
                )));
            }
        }
        if self.level > 9 {
            return Err(Error::InvalidConfig(format!(
                "deflate level {} is not in 0-9",
                self.level
            )));
        }
        Ok(())
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            headers: Vec::new(),
            subprotocols: Vec::new(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            write_buffer_size: DEFAULT_WRITE_BUFFER_SIZE,
            local_address: None,
            extra_root_certificates: Vec::new(),
            proxy: Proxy::None,
            tcp_nodelay: true,
            compression: None,
        }
    }
}

impl TransportConfig {
    /// A default configuration for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Adds the CA certificate(s) in the PEM or DER file at `path` to
    /// [`extra_root_certificates`](Self::extra_root_certificates), for example the
    /// `ca_cert` a `test-servers --tls` ready line names. Fails with
    /// [`Error::InvalidConfig`] if the file cannot be read or
    /// holds no certificate.
    pub fn with_ca_file(mut self, path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            Error::InvalidConfig(format!("cannot read CA file {}: {e}", path.display()))
        })?;
        crate::tls::parse_certificates(&bytes).map_err(|reason| {
            Error::InvalidConfig(format!("CA file {}: {reason}", path.display()))
        })?;
        self.extra_root_certificates.push(bytes);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deflate_configs_that_cannot_be_offered_are_refused() {
        assert!(DeflateConfig::default().check().is_ok());
        let with = |change: fn(&mut DeflateConfig)| {
            let mut config = DeflateConfig::default();
            change(&mut config);
            config.check()
        };
        assert!(with(|c| c.server_max_window_bits = 8).is_ok());
        for bad in [
            with(|c| c.server_max_window_bits = 7),
            with(|c| c.server_max_window_bits = 16),
            with(|c| c.client_max_window_bits = 8),
            with(|c| c.client_max_window_bits = 16),
            with(|c| c.level = 10),
        ] {
            assert!(matches!(bad, Err(Error::InvalidConfig(_))), "{bad:?}");
        }
    }

    #[test]
    fn ca_files_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("ws-client-ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (pem, der, bad) = (dir.join("ca.pem"), dir.join("ca.der"), dir.join("bad.pem"));
        std::fs::write(&pem, ca.pem()).unwrap();
        std::fs::write(&der, ca.der()).unwrap();
        std::fs::write(&bad, "not a certificate").unwrap();
        let config = TransportConfig::new("wss://localhost/")
            .with_ca_file(&pem)
            .and_then(|c| c.with_ca_file(&der))
            .unwrap();
        assert_eq!(config.extra_root_certificates.len(), 2);
        for path in [bad, dir.join("missing.pem")] {
            let error = TransportConfig::default().with_ca_file(&path).unwrap_err();
            assert!(matches!(error, Error::InvalidConfig(_)), "{error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
