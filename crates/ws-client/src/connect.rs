//! Connection set-up: URL checks, TCP connect, socket options, TLS for `wss://` and the
//! upgrade handshake, all under one deadline.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        client::IntoClientRequest,
        http::{HeaderName, HeaderValue, Request},
    },
};

use crate::config::TransportConfig;
use crate::error::{self, Error};
use crate::tls::{self, Socket};

/// The stream type behind every connection.
pub(crate) type WsStream = WebSocketStream<Socket>;

/// An established WebSocket and what the handshake negotiated.
pub(crate) struct Established {
    pub(crate) stream: WsStream,
    pub(crate) subprotocol: Option<String>,
}

/// Connects to `url` with the limits and timeouts of `config`.
pub(crate) async fn establish(url: &str, config: &TransportConfig) -> Result<Established, Error> {
    let parsed = parse_url(url)?;
    let request = build_request(&parsed, config)?;
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let secure = parsed.scheme() == "wss";

    let attempt = async {
        let tcp = open_tcp(&host, port, config.local_address)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused {
                    addr: format!("{host}:{port}"),
                },
                _ => Error::Io(e),
            })?;
        tcp.set_nodelay(config.tcp_nodelay)?;
        let socket = if secure {
            tls::handshake(tcp, url, &host, config).await?
        } else {
            Socket::Left(tcp)
        };
        let (stream, response) = tokio_tungstenite::client_async_with_config(
            request,
            socket,
            Some(config.websocket_config()),
        )
        .await
        .map_err(error::from_handshake)?;
        // This client offers no extension, so a server that enables one (for example
        // permessage-deflate) would send frames we cannot read: refuse it (RFC 6455 4.1).
        if let Some(extension) = response.headers().get("sec-websocket-extensions") {
            return Err(Error::HandshakeRejected {
                status: Some(101),
                reason: format!(
                    "the server enabled extension {:?}, which this client did not offer",
                    String::from_utf8_lossy(extension.as_bytes())
                ),
            });
        }
        let subprotocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Established {
            stream,
            subprotocol,
        })
    };
    tokio::time::timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| Error::ConnectTimeout {
            url: url.to_owned(),
            after: config.connect_timeout,
        })?
}

/// Opens the TCP connection, from `local` when given (trying each resolved address of the
/// same family in turn).
async fn open_tcp(host: &str, port: u16, local: Option<IpAddr>) -> std::io::Result<TcpStream> {
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

/// The upgrade request: URL plus configured headers and subprotocols.
fn build_request(url: &url::Url, config: &TransportConfig) -> Result<Request<()>, Error> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let headers = request.headers_mut();
    for (name, value) in &config.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Error::InvalidConfig(format!(
                "header name {name:?} is not a valid HTTP header name"
            ))
        })?;
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            Error::InvalidConfig(format!(
                "value of header {name:?} is not a valid HTTP header value"
            ))
        })?;
        headers.append(header_name, header_value);
    }
    if !config.subprotocols.is_empty() {
        let offered = config.subprotocols.join(", ");
        let value = HeaderValue::from_str(&offered).map_err(|_| {
            Error::InvalidConfig(format!(
                "subprotocols {offered:?} are not a valid header value"
            ))
        })?;
        headers.insert("sec-websocket-protocol", value);
    }
    Ok(request)
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
        let url = parse_url("ws://example.com/").unwrap();
        assert!(matches!(
            build_request(&url, &config),
            Err(Error::InvalidConfig(_))
        ));
    }
}
