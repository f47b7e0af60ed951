//! Opening `compare`'s connections: each contender's persistent connection to its server,
//! and the timed connect + upgrade of the `connect` scenario.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use ws_client::{TransportConfig, WebSocketConnection};

use super::args::ContenderKind;
use super::client::{self, Rx, Tx};

/// Where a contender connects: its server's URL and address, and for wss:// the CA.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) url: String,
    pub(crate) addr: SocketAddr,
    pub(crate) tls: Option<Tls>,
}

#[derive(Debug, Clone)]
pub(crate) struct Tls {
    pub(crate) ca_file: PathBuf,
    pub(crate) config: Arc<rustls::ClientConfig>,
}

/// Opens `kind`'s persistent connection to `endpoint`, split into halves.
pub(crate) async fn open(kind: ContenderKind, endpoint: &Endpoint) -> Result<(Tx, Rx)> {
    let url = &endpoint.url;
    match kind {
        ContenderKind::WsClient | ContenderKind::WsClientFwsServer => {
            let connection = ws_client_open(endpoint).await?;
            let (tx, rx) = connection.split()?;
            Ok((Tx::Ws(tx), Rx::Ws(rx)))
        }
        ContenderKind::Tcp => Ok(client::tcp_halves(tcp(endpoint.addr).await?)),
        ContenderKind::Tungstenite => match &endpoint.tls {
            None => {
                let (ws, _) = tokio_tungstenite::client_async(url, tcp(endpoint.addr).await?)
                    .await
                    .with_context(|| format!("tungstenite: handshake with {url} failed"))?;
                Ok(client::tung_halves(ws))
            }
            Some(tls) => Ok(client::tung_tls_halves(tung_tls(endpoint, tls).await?)),
        },
        ContenderKind::Fastwebsockets => {
            if endpoint.tls.is_some() {
                bail!("fastwebsockets takes no part in the wss:// comparison");
            }
            Ok(client::fws_halves(fws_handshake(endpoint).await?))
        }
    }
}

/// One connect + upgrade (raw TCP: connect), timed; the close that follows is not.
pub(crate) async fn connect_once(kind: ContenderKind, endpoint: &Endpoint) -> Result<Duration> {
    let started = Instant::now();
    let (mut tx, mut rx, took) = match kind {
        ContenderKind::Tcp => {
            let stream = tcp(endpoint.addr).await?;
            let took = started.elapsed();
            // A reset, not a FIN: no TIME_WAIT piles up on this side. (A zero linger never
            // blocks the drop, the reason tokio deprecates the call.)
            #[allow(deprecated)]
            stream.set_linger(Some(Duration::ZERO))?;
            return Ok(took);
        }
        ContenderKind::WsClient | ContenderKind::WsClientFwsServer => {
            let connection = ws_client_open(endpoint).await?;
            let took = started.elapsed();
            let (tx, rx) = connection.split()?;
            (Tx::Ws(tx), Rx::Ws(rx), took)
        }
        _ => {
            let (tx, rx) = open(kind, endpoint).await?;
            (tx, rx, started.elapsed())
        }
    };
    tx.close().await?;
    rx.drain().await?;
    Ok(took)
}

async fn ws_client_open(endpoint: &Endpoint) -> Result<WebSocketConnection> {
    let url = &endpoint.url;
    let mut config = TransportConfig::new(url);
    if let Some(tls) = &endpoint.tls {
        config = config.with_ca_file(&tls.ca_file)?;
    }
    WebSocketConnection::open(config)
        .await
        .with_context(|| format!("ws-client cannot connect to {url}"))
}

async fn tcp(addr: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn tung_tls(
    endpoint: &Endpoint,
    tls: &Tls,
) -> Result<tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>> {
    let url = &endpoint.url;
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split([':', '/']).next())
        .context("no host in the URL")?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.config));
    let stream = connector
        .connect(name, tcp(endpoint.addr).await?)
        .await
        .with_context(|| format!("tungstenite: TLS with {url} failed"))?;
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .with_context(|| format!("tungstenite: handshake with {url} failed"))?;
    Ok(ws)
}

/// fastwebsockets' client handshake (with hyper), then the bare TCP stream back out of
/// hyper's upgrade, so frames go straight onto the socket.
async fn fws_handshake(endpoint: &Endpoint) -> Result<TcpStream> {
    let url = &endpoint.url;
    let uri: hyper::Uri = url.parse().with_context(|| format!("{url} is no URI"))?;
    let authority = uri.authority().context("no host in the URL")?.to_string();
    let request = hyper::Request::builder()
        .method("GET")
        .uri(uri.path())
        .header(hyper::header::HOST, authority)
        .header(hyper::header::UPGRADE, "websocket")
        .header(hyper::header::CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13")
        .body(Empty::<Bytes>::new())?;
    let (ws, _response) =
        fastwebsockets::handshake::client(&Spawner, request, tcp(endpoint.addr).await?)
            .await
            .with_context(|| format!("fastwebsockets: handshake with {url} failed"))?;
    let upgraded = ws.into_inner().into_inner();
    let parts = upgraded
        .downcast::<TokioIo<TcpStream>>()
        .map_err(|_| anyhow::anyhow!("fastwebsockets: the upgraded stream is not TCP"))?;
    if !parts.read_buf.is_empty() {
        bail!("fastwebsockets: the server sent frames before any was asked for");
    }
    Ok(parts.io.into_inner())
}

/// hyper's executor: tokio tasks.
#[derive(Debug, Clone, Copy)]
struct Spawner;

impl<F> hyper::rt::Executor<F> for Spawner
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future);
    }
}
