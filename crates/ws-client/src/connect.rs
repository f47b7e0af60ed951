//! Connection set-up: URL checks, TCP connect (directly or through a proxy), socket options,
//! TLS for `wss://` and the upgrade handshake (`wire::handshake`), all under one deadline.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderName, HeaderValue};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Duration, Instant};

use crate::config::TransportConfig;
use crate::error::{Error, ProxyFailure};
use crate::proxy;
use crate::tls::{self, Socket};
use crate::wire::{self, Inbound, Outbound, ReadLimits, Role, handshake};

/// An established WebSocket and what the handshake negotiated.
#[derive(Debug)]
pub(crate) struct Established {
    pub(crate) inbound: Inbound,
    pub(crate) outbound: Outbound,
    pub(crate) subprotocol: Option<String>,
    pub(crate) compression: Option<wire::DeflateParams>,
}

/// Connects to `url` with the limits and timeouts of `config`.
pub(crate) async fn establish(url: &str, config: &TransportConfig) -> Result<Established, Error> {
    let parsed = parse_url(url)?;
    check_headers(config)?;
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let tls_name = match parsed.scheme() {
        "wss" => Some(tls::server_name(url, &host)?),
        _ => None,
    };
    let host_header = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or_default()),
        None => parsed.host_str().unwrap_or_default().to_owned(),
    };
    let request = handshake::Request {
        host: &host_header,
        target: &parsed[url::Position::BeforePath..url::Position::AfterQuery],
        headers: &config.headers,
        subprotocols: &config.subprotocols,
        compression: config.compression.as_ref(),
    };

    let proxy = proxy::choose(&config.proxy, &parsed)?;
    // One deadline for every step; the tunnel through a proxy gets it too, so that a proxy
    // that does not answer is named as the cause. A timeout too long to add to the clock
    // (`Duration::MAX`) is about 30 years, as in tokio's own `timeout`.
    let now = Instant::now();
    let deadline = now
        .checked_add(config.connect_timeout)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400));
    let attempt = async {
        let tcp = match &proxy {
            None => {
                let tcp = open_tcp(&host, port, config.local_address)
                    .await
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused {
                            addr: format!("{host}:{port}"),
                        },
                        _ => Error::Io(e),
                    })?;
                tcp.set_nodelay(config.tcp_nodelay)?;
                tcp
            }
            Some(endpoint) => {
                // Boxed: the tunnel's state (SOCKS5, name resolution) would otherwise make
                // every connect future larger, with a proxy or without.
                let tunnel = Box::pin(proxy::open_tunnel(
                    endpoint,
                    &host,
                    port,
                    config.local_address,
                    config.tcp_nodelay,
                ));
                tokio::time::timeout_at(deadline, tunnel)
                    .await
                    .unwrap_or_else(|_| {
                        Err(endpoint.error(
                            ProxyFailure::Timeout,
                            format!(
                                "no tunnel to {host}:{port} through the proxy within {:?} \
                             (connect_timeout)",
                                config.connect_timeout
                            ),
                        ))
                    })?
            }
        };
        let mut socket = match tls_name {
            Some(name) => tls::handshake(tcp, name, &host, config).await?,
            None => Socket::Left(tcp),
        };
        let upgraded = handshake::upgrade(&mut socket, &request).await?;
        let (read, write) = wire::socket::split(socket);
        let tls = matches!(write, tokio_util::either::Either::Right(_));
        let mut outbound = Outbound::new(write, Role::Client);
        outbound.set_buffering_io(tls);
        let limits = ReadLimits {
            message: config.max_message_size,
            frame: config.max_frame_size,
            read_size: config.read_buffer_size,
        };
        let mut inbound = Inbound::new(read, upgraded.buffered, limits, Role::Client);
        if let (Some(params), Some(offered)) = (&upgraded.compression, &config.compression) {
            inbound = inbound.with_deflate(params);
            outbound = outbound.with_deflate(params, offered);
        }
        Ok(Established {
            inbound,
            outbound,
            subprotocol: upgraded.subprotocol,
            compression: upgraded.compression,
        })
    };
    tokio::time::timeout_at(deadline, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(Error::ConnectTimeout {
                url: url.to_owned(),
                after: config.connect_timeout,
            })
        })
}

/// Opens the TCP connection, from `local` when given (trying each resolved address of the
/// same family in turn).
pub(crate) async fn open_tcp(
    host: &str,
    port: u16,
    local: Option<IpAddr>,
) -> std::io::Result<TcpStream> {
    let Some(local) = local else {
        return TcpStream::connect((host, port)).await;
    };
    let mut last_error = None;
    for remote in tokio::net::lookup_host((host, port)).await? {
        if remote.is_ipv4() != local.is_ipv4() {
            continue;
        }
        let socket = if local.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(local, 0))?;
        match socket.connect(remote).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("{host} has no address of the same family as {local}"),
        )
    }))
}

/// Parses and checks a WebSocket URL.
fn parse_url(url: &str) -> Result<url::Url, Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    match parsed.scheme() {
        "ws" | "wss" => {}
        other => return Err(invalid(&format!("scheme {other:?} is not ws:// or wss://"))),
    }
    match parsed.host_str() {
        Some(host) if !host.is_empty() => Ok(parsed),
        _ => Err(invalid("no host")),
    }
}

/// Configured headers and subprotocols must be valid HTTP, so nothing can be smuggled
/// into the request (a CR or LF in a value, a space in a name).
fn check_headers(config: &TransportConfig) -> Result<(), Error> {
    for (name, value) in &config.headers {
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Error::InvalidConfig(format!(
                "header name {name:?} is not a valid HTTP header name"
            ))
        })?;
        HeaderValue::from_str(value).map_err(|_| {
            Error::InvalidConfig(format!(
                "value of header {name:?} is not a valid HTTP header value"
            ))
        })?;
    }
    let offered = config.subprotocols.join(", ");
    HeaderValue::from_str(&offered).map_err(|_| {
        Error::InvalidConfig(format!(
            "subprotocols {offered:?} are not a valid header value"
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(parse_url("ws://example.com/").is_ok());
        assert_eq!(
            parse_url("wss://example.com/")
                .unwrap()
                .port_or_known_default(),
            Some(443)
        );
        for bad in [
            "not a url",
            "http://example.com/",
            "https://example.com/",
            "ws://",
            "ws://:80/",
        ] {
            assert!(
                matches!(parse_url(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_header_names_are_refused() {
        let config = TransportConfig {
            headers: vec![("bad name".into(), "x".into())],
            ..Default::default()
        };
        assert!(matches!(
            check_headers(&config),
            Err(Error::InvalidConfig(_))
        ));
        let config = TransportConfig {
            headers: vec![("X-Ok".into(), "line\r\nInjected: yes".into())],
            ..Default::default()
        };
        assert!(matches!(
            check_headers(&config),
            Err(Error::InvalidConfig(_))
        ));
    }
}
