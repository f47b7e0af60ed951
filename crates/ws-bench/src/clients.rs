//! The contenders behind one interface: ws-client, bare tokio-tungstenite (default config)
//! and raw TCP with a 4-byte length prefix; whole (`Conn`) or split (`Tx` + `Rx`).
//!
//! Every contender sends the caller's payload the cheapest way its API offers: ws-client
//! copies it straight into its write buffer (`queue_slice`; a run of messages as one batch,
//! `queue_batch` / `send_batch`: no await per message); tungstenite needs an owned `Bytes`
//! per message (its frame encoder then copies it into its own buffer); raw TCP writes it
//! as it is.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite;
use ws_client::{MessageType, TransportConfig, WebSocketConnection, WsReceiver, WsSender};

use crate::cli::ClientKind;
use crate::net::{self, TungStream};

/// Buffer sizes of the raw TCP baseline.
const TCP_BUFFER: usize = 64 << 10;

/// A received data message: its length and its first 8 bytes read as a little-endian
/// number (a send time stamp, where the sender put one; 0 for shorter messages).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) stamp: u64,
}

impl Received {
    fn of(data: &[u8]) -> Self {
        let stamp = data
            .get(..8)
            .and_then(|head| head.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        Self {
            len: data.len(),
            stamp,
        }
    }
}

/// Writes `stamp` into the first 8 bytes of `payload` (if it has room).
pub(crate) fn stamp(payload: &mut [u8], stamp: u64) {
    if let Some(head) = payload.get_mut(..8) {
        head.copy_from_slice(&stamp.to_le_bytes());
    }
}

/// One connection, used from one task.
#[derive(Debug)]
pub(crate) enum Conn {
    Ws(Box<WebSocketConnection>),
    Tung(Box<TungStream>),
    Tcp(BufReader<OwnedReadHalf>, BufWriter<OwnedWriteHalf>, Vec<u8>),
}

impl Conn {
    /// Connects with `kind` to `url`.
    pub(crate) async fn open(kind: ClientKind, url: &str) -> Result<Self> {
        Ok(match kind {
            ClientKind::WsClient => {
                let connection = WebSocketConnection::open(TransportConfig::new(url))
                    .await
                    .with_context(|| format!("ws-client cannot connect to {url}"))?;
                Conn::Ws(Box::new(connection))
            }
            ClientKind::Tungstenite => {
                let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
                    .await
                    .with_context(|| format!("tokio-tungstenite cannot connect to {url}"))?;
                Conn::Tung(Box::new(ws))
            }
            ClientKind::Tcp => {
                let stream = net::tcp_connect(net::server_addr(url).await?, None).await?;
                let (read, write) = stream.into_split();
                Conn::Tcp(
                    BufReader::with_capacity(TCP_BUFFER, read),
                    BufWriter::with_capacity(TCP_BUFFER, write),
                    Vec::new(),
                )
            }
        })
    }

    /// Sends one message and flushes it.
    pub(crate) async fn send(&mut self, payload: &[u8]) -> Result<()> {
        match self {
            Conn::Ws(ws) => ws.send_slice(MessageType::Binary, payload).await?,
            Conn::Tung(ws) => ws.send(binary(payload)).await?,
            Conn::Tcp(_, writer, _) => {
                write_frame(writer, payload).await?;
                writer.flush().await?;
            }
        }
        Ok(())
    }

    /// Queues one message; it is written when buffers fill or on [`close`](Self::close).
    pub(crate) async fn queue(&mut self, payload: &[u8]) -> Result<()> {
        match self {
            Conn::Ws(ws) => ws.queue_slice(MessageType::Binary, payload).await?,
            Conn::Tung(ws) => ws.feed(binary(payload)).await?,
            Conn::Tcp(_, writer, _) => write_frame(writer, payload).await?,
        }
        Ok(())
    }

    /// Queues `n` copies of `payload`, one message each: ws-client as one batch, the others
    /// one at a time. Written when buffers fill or on [`close`](Self::close).
    pub(crate) async fn queue_many(&mut self, payload: &[u8], n: usize) -> Result<()> {
        if let Conn::Ws(ws) = self {
            let copies = std::iter::repeat_n(payload, n);
            ws.queue_batch(MessageType::Binary, copies).await?;
            return Ok(());
        }
        for _ in 0..n {
            self.queue(payload).await?;
        }
        Ok(())
    }

    /// Writes out everything queued.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        match self {
            Conn::Ws(ws) => ws.flush().await?,
            Conn::Tung(ws) => ws.flush().await?,
            Conn::Tcp(_, writer, _) => writer.flush().await?,
        }
        Ok(())
    }

    /// The next data message, skipping control frames; `None` once the peer closed.
    pub(crate) async fn recv(&mut self) -> Result<Option<Received>> {
        match self {
            Conn::Ws(ws) => loop {
                match ws.receive_message().await {
                    Ok(m) => match m.message_type {
                        MessageType::Binary | MessageType::Text => {
                            return Ok(Some(Received::of(&m.data)));
                        }
                        MessageType::Close => return Ok(None),
                        MessageType::Ping | MessageType::Pong => {}
                    },
                    Err(ws_client::Error::ConnectionClosed) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            },
            Conn::Tung(ws) => tung_recv(ws.as_mut()).await,
            Conn::Tcp(reader, _, buffer) => tcp_recv(reader, buffer).await,
        }
    }

    /// Closes gracefully and waits for the peer's side of the close: a WebSocket close
    /// handshake, or for TCP a shutdown answered by end of stream. Whatever arrives in
    /// between is discarded, so the server has read everything once this returns.
    pub(crate) async fn close(self) -> Result<()> {
        match self {
            Conn::Ws(mut ws) => ws.disconnect().await?,
            Conn::Tung(mut ws) => {
                // The inherent close (a close frame), not `SinkExt::close` on the box.
                let ws: &mut TungStream = &mut ws;
                ws.close(None).await?;
                while tung_recv(ws).await?.is_some() {}
            }
            Conn::Tcp(mut reader, mut writer, mut buffer) => {
                writer.flush().await?;
                writer.shutdown().await?;
                while tcp_recv(&mut reader, &mut buffer).await?.is_some() {}
            }
        }
        Ok(())
    }

    /// Splits into halves for a sending task and a receiving task.
    pub(crate) fn split(self) -> Result<(Tx, Rx)> {
        Ok(match self {
            Conn::Ws(ws) => {
                let (tx, rx) = ws.split()?;
                (Tx::Ws(tx), Rx::Ws(rx))
            }
            Conn::Tung(ws) => {
                let (tx, rx) = (*ws).split();
                (Tx::Tung(tx), Rx::Tung(rx))
            }
            Conn::Tcp(reader, writer, buffer) => (Tx::Tcp(writer), Rx::Tcp(reader, buffer)),
        })
    }
}

/// The sending half of a split connection.
#[derive(Debug)]
pub(crate) enum Tx {
    Ws(WsSender),
    Tung(SplitSink<TungStream, tungstenite::Message>),
    Tcp(BufWriter<OwnedWriteHalf>),
}

impl Tx {
    /// Queues one message (written when buffers fill or on flush).
    pub(crate) async fn queue(&mut self, payload: &[u8]) -> Result<()> {
        match self {
            Tx::Ws(tx) => tx.queue_slice(MessageType::Binary, payload).await?,
            Tx::Tung(tx) => tx.feed(binary(payload)).await?,
            Tx::Tcp(writer) => write_frame(writer, payload).await?,
        }
        Ok(())
    }

    /// Sends `n` copies of `payload`, one message each, and flushes: ws-client as one batch
    /// (one hold of the write side), the others queued one at a time.
    pub(crate) async fn send_many(&mut self, payload: &[u8], n: usize) -> Result<()> {
        if let Tx::Ws(tx) = self {
            let copies = std::iter::repeat_n(payload, n);
            tx.send_batch(MessageType::Binary, copies).await?;
            return Ok(());
        }
        for _ in 0..n {
            self.queue(payload).await?;
        }
        self.flush().await
    }

    /// Writes out everything queued.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        match self {
            Tx::Ws(tx) => tx.flush().await?,
            Tx::Tung(tx) => tx.flush().await?,
            Tx::Tcp(writer) => writer.flush().await?,
        }
        Ok(())
    }

    /// Starts closing: a close frame, or a TCP shutdown. The receiving half then sees the
    /// peer's answer as the end of the stream.
    pub(crate) async fn close(&mut self) -> Result<()> {
        match self {
            Tx::Ws(tx) => tx.close(1000, "").await?,
            Tx::Tung(tx) => tx.send(tungstenite::Message::Close(None)).await?,
            Tx::Tcp(writer) => {
                writer.flush().await?;
                writer.shutdown().await?;
            }
        }
        Ok(())
    }
}

/// The receiving half of a split connection.
#[derive(Debug)]
pub(crate) enum Rx {
    Ws(WsReceiver),
    Tung(SplitStream<TungStream>),
    Tcp(BufReader<OwnedReadHalf>, Vec<u8>),
}

impl Rx {
    /// The next data message; `None` once the peer closed.
    pub(crate) async fn recv(&mut self) -> Result<Option<Received>> {
        match self {
            Rx::Ws(rx) => loop {
                match rx.receive_message().await {
                    Ok(m) => match m.message_type {
                        MessageType::Binary | MessageType::Text => {
                            return Ok(Some(Received::of(&m.data)));
                        }
                        MessageType::Close => return Ok(None),
                        MessageType::Ping | MessageType::Pong => {}
                    },
                    Err(ws_client::Error::ConnectionClosed) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            },
            Rx::Tung(rx) => tung_recv(rx).await,
            Rx::Tcp(reader, buffer) => tcp_recv(reader, buffer).await,
        }
    }
}

fn binary(payload: &[u8]) -> tungstenite::Message {
    tungstenite::Message::Binary(Bytes::copy_from_slice(payload))
}

async fn tung_recv<S>(stream: &mut S) -> Result<Option<Received>>
where
    S: futures_util::Stream<Item = Result<tungstenite::Message, tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            None | Some(Err(tungstenite::Error::ConnectionClosed)) => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(message)) => match message {
                tungstenite::Message::Binary(data) => return Ok(Some(Received::of(&data))),
                tungstenite::Message::Text(text) => {
                    return Ok(Some(Received::of(text.as_bytes())));
                }
                tungstenite::Message::Close(_) => return Ok(None),
                _ => {}
            },
        }
    }
}

async fn write_frame(writer: &mut BufWriter<OwnedWriteHalf>, payload: &[u8]) -> Result<()> {
    let len = u32::try_from(payload.len()).context("message over 4 GiB")?;
    writer.write_all(&len.to_be_bytes()).await?;
    writer.write_all(payload).await?;
    Ok(())
}

/// Reads one length-prefixed frame into `buffer`; `None` at a clean end of stream.
async fn tcp_recv(
    reader: &mut BufReader<OwnedReadHalf>,
    buffer: &mut Vec<u8>,
) -> Result<Option<Received>> {
    let mut prefix = [0_u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > 1 << 30 {
        bail!("TCP frame of {len} bytes: the server does not speak the length-prefixed protocol");
    }
    buffer.resize(len, 0);
    reader.read_exact(buffer).await?;
    Ok(Some(Received::of(buffer)))
}
