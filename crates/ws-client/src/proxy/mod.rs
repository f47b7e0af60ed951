//! Proxies: the [`Proxy`] setting, which proxy (if any) a connection goes through, and the
//! tunnel through it (HTTP CONNECT or SOCKS5), whose failures are [`Error::Proxy`] with a
//! [`ProxyFailure`] kind, never mistaken for the server's.

mod address;
mod env;
mod http_connect;
mod socks;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpStream;
use tokio_socks::TargetAddr;

use crate::error::Error;
pub(crate) use address::Endpoint;
use address::Protocol;

/// Where a connection's proxy comes from ([`TransportConfig::proxy`]).
///
/// A proxy URL is `http://[user:password@]host[:port]` (HTTP `CONNECT`, Basic auth; port 80
/// when not given), `socks5://[user:password@]host[:port]` (SOCKS5, the server's name
/// resolved here; port 1080 when not given) or `socks5h://...` (SOCKS5, the name resolved
/// by the proxy). User name and password are percent-decoded (`p%40ss` is `p@ss`). A value
/// without a scheme is taken as `http://`. `wss://` through any of them keeps TLS end to
/// end: the proxy carries the encrypted bytes, the certificate is checked against the
/// server's name as without a proxy.
///
/// `Debug` shows a URL with its password replaced by `***`.
///
/// ```
/// use ws_client::{Proxy, TransportConfig};
/// let config = TransportConfig {
///     proxy: Proxy::url("socks5h://alice:p%40ss@proxy.example:1080"), // password "p@ss"
///     ..TransportConfig::new("wss://example.com/feed")
/// };
/// let shown = format!("{:?}", config.proxy);
/// assert_eq!(shown, r#"Url("socks5h://alice:***@proxy.example:1080")"#);
/// ```
///
/// [`TransportConfig::proxy`]: crate::TransportConfig::proxy
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Proxy {
    /// Connect directly (the default). The environment is not read.
    #[default]
    None,
    /// Always connect through this proxy URL (`NO_PROXY` does not apply). A URL that cannot
    /// be used fails the connect with [`Error::InvalidConfig`], before any I/O.
    Url(String),
    /// Take the proxy from the environment at each connect, as curl and most tools do:
    ///
    /// - `ws://` URLs: `http_proxy`, then `HTTP_PROXY`, then `all_proxy`, then `ALL_PROXY`;
    /// - `wss://` URLs: `https_proxy`, then `HTTPS_PROXY`, then `all_proxy`, then `ALL_PROXY`;
    ///
    /// the first one set and not empty wins (its value is a proxy URL as above). None set:
    /// a direct connection. Under CGI (`REQUEST_METHOD` set) `HTTP_PROXY` is not read: there
    /// it can come from a request's `Proxy:` header (httpoxy). `no_proxy` (else `NO_PROXY`) lists, separated by commas or
    /// spaces, the servers reached directly: `*` (all), a host name (`example.com`,
    /// `.example.com` and `*.example.com` all cover `example.com` and every name below it),
    /// an IP address (`10.1.2.3`, `::1` or `[::1]`), a network (`10.0.0.0/8`, `fd00::/8`),
    /// each optionally with `:port` to cover only that port. Names are compared as written
    /// in the URL (no DNS lookup), without case; loopback is not exempt unless listed.
    FromEnv,
}

impl Proxy {
    /// A proxy URL setting: shorthand for `Proxy::Url(url.into())`.
    pub fn url(url: impl Into<String>) -> Self {
        Self::Url(url.into())
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Url(url) => f.debug_tuple("Url").field(&address::redacted(url)).finish(),
            Self::FromEnv => f.write_str("FromEnv"),
        }
    }
}

/// Which part of the way through a proxy failed (see [`Error::Proxy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyFailure {
    /// The proxy itself could not be reached: nothing listens at its address, its name does
    /// not resolve, or the network failed. Check the proxy address; retrying may help.
    Unreachable,
    /// The tunnel was not made within
    /// [`connect_timeout`](crate::TransportConfig::connect_timeout): the proxy did not
    /// answer in time, or (at an address that drops packets) did not even accept the TCP
    /// connection. Retrying may help.
    Timeout,
    /// The proxy wants credentials and none were given (HTTP 407, or 401 as tinyproxy
    /// answers; a SOCKS5 proxy that accepts no method without a password): put
    /// `user:password@` in the proxy URL.
    AuthRequired,
    /// The proxy refused the credentials given (HTTP 407 or 401, SOCKS5 user/password
    /// failure): fix the user name or password; retrying will not help.
    AuthFailed,
    /// The proxy will not open a tunnel to that server (HTTP `CONNECT` answered with a
    /// status other than 2xx, 401, 407, 500, 502, 503, 504; SOCKS5 "not allowed by
    /// ruleset", "command not supported", "address type not supported"): the proxy's rules
    /// forbid it. Ask the proxy's administrator, or list the server in `NO_PROXY`; retrying
    /// will not help.
    Refused,
    /// The proxy tried and could not reach the server (HTTP 500, 502, 503 or 504; SOCKS5
    /// general failure, network or host unreachable, connection refused, TTL expired): the
    /// server may be down, or unreachable from the proxy. Retrying may help.
    TargetUnreachable,
    /// The proxy answered with something that is not the protocol (not HTTP, an oversized
    /// answer, a broken SOCKS5 reply) or closed the connection mid-way: check that the URL's
    /// scheme matches what runs at that address (`http://` for an HTTP proxy, `socks5://`
    /// for a SOCKS5 one).
    Protocol,
}

impl ProxyFailure {
    /// The failure in a few words, as error messages name it.
    pub(crate) fn words(self) -> &'static str {
        match self {
            Self::Unreachable => "proxy unreachable",
            Self::Timeout => "proxy timed out",
            Self::AuthRequired => "proxy requires credentials",
            Self::AuthFailed => "proxy refused the credentials",
            Self::Refused => "proxy refused the tunnel",
            Self::TargetUnreachable => "proxy could not reach the server",
            Self::Protocol => "proxy broke its protocol",
        }
    }
}

/// The proxy `setting` chooses for a connection to `target` (a checked `ws://` or `wss://`
/// URL): `None` for a direct connection. Reads the environment only for
/// [`Proxy::FromEnv`].
pub(crate) fn choose(setting: &Proxy, target: &url::Url) -> Result<Option<Endpoint>, Error> {
    match setting {
        Proxy::None => Ok(None),
        Proxy::Url(url) => address::parse(url).map(Some).map_err(|reason| {
            Error::InvalidConfig(format!("proxy URL {:?}: {reason}", address::redacted(url)))
        }),
        Proxy::FromEnv => env::choose(target, &|name| std::env::var(name).ok()),
    }
}

/// Opens a TCP connection to the proxy `endpoint` (from `local` when given) and a tunnel
/// through it to `host:port`; the returned stream carries the server's bytes. With
/// `socks5://` a name is resolved here and its addresses tried in turn (a new connection to
/// the proxy for each) while the proxy reports the server unreachable. The caller bounds it
/// in time (the connect timeout) and maps the expiry to [`ProxyFailure::Timeout`] with
/// [`Endpoint::error`].
pub(crate) async fn open_tunnel(
    endpoint: &Endpoint,
    host: &str,
    port: u16,
    local: Option<IpAddr>,
    nodelay: bool,
) -> Result<TcpStream, Error> {
    let remote_dns = match endpoint.protocol {
        Protocol::HttpConnect => {
            let mut tcp = connect(endpoint, local, nodelay).await?;
            http_connect::tunnel(&mut tcp, endpoint, host, port).await?;
            return Ok(tcp);
        }
        Protocol::Socks5 { remote_dns } => remote_dns,
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        let tcp = connect(endpoint, local, nodelay).await?;
        let target = TargetAddr::Ip(SocketAddr::new(ip, port));
        return socks::tunnel(tcp, endpoint, target, remote_dns).await;
    }
    if remote_dns {
        if host.len() > 255 {
            return Err(Error::InvalidConfig(format!(
                "host {host:?} is longer than the 255 bytes a SOCKS5 proxy takes; use \
                 socks5:// (names resolved here)"
            )));
        }
        let tcp = connect(endpoint, local, nodelay).await?;
        let target = TargetAddr::Domain(host.into(), port);
        return socks::tunnel(tcp, endpoint, target, remote_dns).await;
    }
    // The name is resolved here: each address in turn, as a direct connection would, each
    // on a new connection to the proxy (it closes the one whose target it could not reach).
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    let Some((last, others)) = addresses.split_last() else {
        return Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        )));
    };
    for &address in others {
        let tcp = connect(endpoint, local, nodelay).await?;
        match socks::tunnel(tcp, endpoint, TargetAddr::Ip(address), remote_dns).await {
            Err(Error::Proxy {
                kind: ProxyFailure::TargetUnreachable,
                ..
            }) => continue,
            outcome => return outcome,
        }
    }
    let tcp = connect(endpoint, local, nodelay).await?;
    socks::tunnel(tcp, endpoint, TargetAddr::Ip(*last), remote_dns).await
}

/// A TCP connection to the proxy; failing, [`ProxyFailure::Unreachable`].
async fn connect(
    endpoint: &Endpoint,
    local: Option<IpAddr>,
    nodelay: bool,
) -> Result<TcpStream, Error> {
    let tcp = crate::connect::open_tcp(&endpoint.host, endpoint.port, local)
        .await
        .map_err(|e| {
            endpoint.error(
                ProxyFailure::Unreachable,
                format!("cannot connect to the proxy: {e}"),
            )
        })?;
    tcp.set_nodelay(nodelay)?;
    Ok(tcp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilient::{RetryClass, default_class};

    fn failure(kind: ProxyFailure) -> Error {
        Error::Proxy {
            proxy: "http://proxy.example:3128".into(),
            kind,
            reason: "why".into(),
        }
    }

    #[test]
    fn only_failures_a_retry_can_mend_are_retried() {
        use ProxyFailure::*;
        for kind in [Unreachable, Timeout, TargetUnreachable] {
            assert_eq!(default_class(&failure(kind)), RetryClass::Retry, "{kind:?}");
        }
        for kind in [AuthRequired, AuthFailed, Refused, Protocol] {
            assert_eq!(default_class(&failure(kind)), RetryClass::Fatal, "{kind:?}");
        }
        let copy = crate::resilient::copy_error(&failure(AuthFailed));
        assert_eq!(format!("{copy:?}"), format!("{:?}", failure(AuthFailed)));
        let message = failure(AuthFailed).to_string();
        assert_eq!(
            message,
            "proxy refused the credentials (http://proxy.example:3128): why"
        );
    }

    #[test]
    fn a_bad_proxy_url_is_refused_before_any_io_without_its_password() {
        let target = url::Url::parse("ws://server.example/").unwrap();
        assert_eq!(choose(&Proxy::None, &target).unwrap(), None);
        let chosen = choose(&Proxy::url("socks5h://proxy.example"), &target).unwrap();
        assert_eq!(chosen.unwrap().shown, "socks5h://proxy.example:1080");
        let error = choose(&Proxy::url("ftp://user:secret@proxy.example"), &target).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::InvalidConfig(_)), "{message}");
        assert!(message.contains("user:***@proxy.example"), "{message}");
        assert!(!message.contains("secret"), "{message}");
        assert_eq!(format!("{:?}", Proxy::FromEnv), "FromEnv");
        assert_eq!(Proxy::default(), Proxy::None);
    }
}
