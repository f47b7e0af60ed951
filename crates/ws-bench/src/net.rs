//! Sockets: the open-file limit, server addresses from URLs, and TCP/WebSocket connections
//! from a chosen loopback source address (ws-client cannot bind one).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, Result, bail};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A bare tokio-tungstenite client stream.
pub(crate) type TungStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Raises the open-file soft limit to the hard limit; returns the limit in force.
pub(crate) fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            eprintln!("note: could not raise the open-file limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// The server address of `url`: `ws://host:port/...`, `tcp://host:port` or `host:port`.
pub(crate) async fn server_addr(url: &str) -> Result<SocketAddr> {
    let rest = url
        .split_once("://")
        .map_or(url, |(scheme, rest)| match scheme {
            "ws" | "tcp" => rest,
            _ => "",
        });
    if rest.is_empty() {
        bail!("{url:?}: only ws://, tcp:// or host:port addresses are supported");
    }
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    tokio::net::lookup_host(&authority)
        .await
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to no address"))
}

/// The `index`-th of `count` loopback source addresses, 127.0.0.1 ..= 127.0.0.count
/// (`None` for a count of 1: let the system choose).
pub(crate) fn source_addr(index: u64, count: u8) -> Option<IpAddr> {
    (count > 1).then(|| {
        let last = u8::try_from(index % u64::from(count)).unwrap_or(0) + 1;
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    })
}

/// A TCP connection to `server`, from `source` if given, with `TCP_NODELAY` on.
pub(crate) async fn tcp_connect(server: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream> {
    let stream = match source {
        None => TcpStream::connect(server).await,
        Some(ip) => {
            let socket = if server.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .context("cannot create a socket")?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("cannot bind {ip}"))?;
            socket.connect(server).await
        }
    }
    .with_context(|| format!("cannot connect to {server}"))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    Ok(stream)
}

/// A tokio-tungstenite client connection to `url` (via `server`, from `source` if given),
/// with tungstenite's default configuration or `config`.
pub(crate) async fn tungstenite_connect(
    url: &str,
    server: SocketAddr,
    source: Option<IpAddr>,
    config: Option<WebSocketConfig>,
) -> Result<TungStream> {
    let stream = tcp_connect(server, source).await?;
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(stream), config)
            .await
            .with_context(|| format!("WebSocket handshake with {url} failed"))?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_come_from_urls() {
        // Parsed only, never connected to.
        let want: SocketAddr = ([127, 0, 0, 1], 4000).into();
        for url in [
            format!("ws://{want}/"),
            format!("tcp://{want}"),
            want.to_string(),
        ] {
            assert_eq!(server_addr(&url).await.unwrap(), want, "{url}");
        }
        assert!(server_addr(&format!("wss://{want}/")).await.is_err());
        assert_eq!(source_addr(0, 1), None);
        assert_eq!(
            source_addr(5, 4),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        );
    }
}
