//! `compare`'s client contenders, each split into a sending half ([`Tx`]) and a receiving
//! half ([`Rx`]), each used the fastest way its API offers for the job: ws-client encodes a
//! chunk of messages as one batch (`queue_batch`: one hold of the write side, no await per
//! message; `queue_slice` for one message) and flushes once per chunk; raw TCP gathers
//! small messages into one buffer written once per chunk (a large one goes out with its
//! prefix in one vectored write); tokio-tungstenite `feed`s and flushes once per chunk;
//! fastwebsockets writes frames into a `BufWriter` over the bare TCP stream (after its
//! hyper handshake) flushed once per chunk. One-way flushes no chunk: each contender writes
//! when its buffer fills, and flushes before the sync that ends a slice ([`Tx::sync`]).

use std::io::IoSlice;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocketRead, WebSocketWrite};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as TungMessage;
use ws_client::{Message, MessageType, WsReceiver, WsSender};

use crate::serve_fws::SYNC;

/// Raw TCP: messages up to this size are gathered; the gather buffer's size.
const GATHER: usize = 64 << 10;

type Tung<S> = WebSocketStream<S>;
type TlsTcp = TlsStream<TcpStream>;

/// The sending half of a contender's connection.
pub(crate) enum Tx {
    Ws(WsSender),
    Tcp(OwnedWriteHalf, Vec<u8>),
    Tung(SplitSink<Tung<TcpStream>, TungMessage>),
    TungTls(SplitSink<Tung<TlsTcp>, TungMessage>),
    /// With a scratch buffer: the payload is copied into it and masked there in place
    /// (a `Payload::Borrowed` would be copied into a new allocation for masking).
    Fws(Box<WebSocketWrite<BufWriter<OwnedWriteHalf>>>, Vec<u8>),
}

/// The receiving half.
pub(crate) enum Rx {
    Ws(WsReceiver),
    Tcp(BufReader<OwnedReadHalf>),
    Tung(SplitStream<Tung<TcpStream>>),
    TungTls(SplitStream<Tung<TlsTcp>>),
    Fws(Box<WebSocketRead<OwnedReadHalf>>),
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tx")
    }
}

impl std::fmt::Debug for Rx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rx")
    }
}

/// What arrived: a data message's length, or the answer to a [`Tx::sync`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    Data(usize),
    /// A pong (WebSocket) or the sink's count (raw TCP).
    Synced(u64),
    Closed,
}

impl Tx {
    /// Queues one message (it leaves on [`flush`](Self::flush), or when buffers fill).
    pub(crate) async fn queue(&mut self, payload: &[u8]) -> Result<()> {
        match self {
            Tx::Ws(tx) => tx.queue_slice(MessageType::Binary, payload).await?,
            Tx::Tcp(writer, out) => {
                let len = u32::try_from(payload.len()).context("message over 4 GiB")?;
                if payload.len() + 4 > GATHER {
                    write_out(writer, out).await?;
                    write_all_vectored(writer, &len.to_be_bytes(), payload).await?;
                } else {
                    if out.len() + payload.len() + 4 > GATHER {
                        write_out(writer, out).await?;
                    }
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(payload);
                }
            }
            Tx::Tung(tx) => tx.feed(binary(payload)).await?,
            Tx::TungTls(tx) => tx.feed(binary(payload)).await?,
            Tx::Fws(tx, scratch) => {
                scratch.clear();
                scratch.extend_from_slice(payload);
                tx.write_frame(Frame::binary(Payload::BorrowedMut(scratch)))
                    .await?;
            }
        }
        Ok(())
    }

    /// Queues `n` copies of `payload`, one message each: ws-client's as one batch, the
    /// others' one [`queue`](Self::queue) at a time (their fastest way).
    pub(crate) async fn queue_many(&mut self, payload: &[u8], n: usize) -> Result<()> {
        if let Tx::Ws(tx) = self {
            tx.queue_batch(MessageType::Binary, std::iter::repeat_n(payload, n))
                .await?;
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
            Tx::Ws(tx) => tx.flush().await?,
            Tx::Tcp(writer, out) => write_out(writer, out).await?,
            Tx::Tung(tx) => tx.flush().await?,
            Tx::TungTls(tx) => tx.flush().await?,
            Tx::Fws(tx, _) => tx.flush().await?,
        }
        Ok(())
    }

    /// Flushes, then asks the server to confirm it has read everything: a ping carrying
    /// `token` (its pong comes back as [`Received::Synced`]), or the raw TCP sink's count
    /// request.
    pub(crate) async fn sync(&mut self, token: u64) -> Result<()> {
        let bytes = token.to_be_bytes();
        match self {
            Tx::Ws(tx) => {
                tx.flush().await?;
                tx.send(Message::ping(bytes.to_vec())).await?;
            }
            Tx::Tcp(writer, out) => {
                out.extend_from_slice(&SYNC.to_be_bytes());
                write_out(writer, out).await?;
            }
            Tx::Tung(tx) => {
                tx.send(TungMessage::Ping(Bytes::copy_from_slice(&bytes)))
                    .await?
            }
            Tx::TungTls(tx) => {
                tx.send(TungMessage::Ping(Bytes::copy_from_slice(&bytes)))
                    .await?;
            }
            Tx::Fws(tx, _) => {
                tx.write_frame(Frame::new(
                    true,
                    OpCode::Ping,
                    None,
                    Payload::Borrowed(&bytes),
                ))
                .await?;
                tx.flush().await?;
            }
        }
        Ok(())
    }

    /// Starts closing: a close frame, or a TCP shutdown.
    pub(crate) async fn close(&mut self) -> Result<()> {
        match self {
            Tx::Ws(tx) => tx.close(1000, "").await?,
            Tx::Tcp(writer, out) => {
                write_out(writer, out).await?;
                writer.shutdown().await?;
            }
            Tx::Tung(tx) => tx.send(TungMessage::Close(None)).await?,
            Tx::TungTls(tx) => tx.send(TungMessage::Close(None)).await?,
            Tx::Fws(tx, _) => {
                tx.write_frame(Frame::close(1000, b"")).await?;
                tx.flush().await?;
            }
        }
        Ok(())
    }
}

impl Rx {
    /// The next data message's length, a sync's answer, or the end.
    pub(crate) async fn recv(&mut self) -> Result<Received> {
        match self {
            Rx::Ws(rx) => loop {
                match rx.receive_message().await {
                    Ok(m) => match m.message_type {
                        MessageType::Binary | MessageType::Text => {
                            return Ok(Received::Data(m.data.len()));
                        }
                        MessageType::Pong => return Ok(Received::Synced(token(&m.data))),
                        MessageType::Close => return Ok(Received::Closed),
                        MessageType::Ping => {}
                    },
                    Err(ws_client::Error::ConnectionClosed) => return Ok(Received::Closed),
                    Err(e) => return Err(e.into()),
                }
            },
            Rx::Tcp(reader) => tcp_recv(reader).await,
            Rx::Tung(rx) => tung_recv(rx).await,
            Rx::TungTls(rx) => tung_recv(rx).await,
            Rx::Fws(rx) => loop {
                // Obligations (a pong, a close's answer) are not written: the servers never
                // ping, and the close is answered by `Tx::close` first.
                let mut ignore = |_frame: Frame<'_>| async { Ok::<(), std::io::Error>(()) };
                let frame = match rx.read_frame(&mut ignore).await {
                    Ok(frame) => frame,
                    Err(fastwebsockets::WebSocketError::UnexpectedEOF) => {
                        return Ok(Received::Closed);
                    }
                    Err(e) => return Err(e.into()),
                };
                match frame.opcode {
                    OpCode::Binary | OpCode::Text | OpCode::Continuation => {
                        if !frame.fin {
                            bail!("a fragmented message: the servers here never fragment");
                        }
                        return Ok(Received::Data(frame.payload.len()));
                    }
                    OpCode::Pong => return Ok(Received::Synced(token(&frame.payload))),
                    OpCode::Close => return Ok(Received::Closed),
                    OpCode::Ping => {}
                }
            },
        }
    }

    /// Waits for the answer to [`Tx::sync`]`(token)`; returns the raw TCP sink's count (WebSocket:
    /// `None`). Fails on a data message: a sink sends none.
    pub(crate) async fn synced(&mut self, token: u64) -> Result<Option<u64>> {
        if let Rx::Tcp(reader) = self {
            return Ok(Some(tcp_count(reader).await?));
        }
        loop {
            match self.recv().await? {
                Received::Synced(t) if t == token => return Ok(None),
                Received::Synced(_) => {}
                Received::Data(_) => bail!("the sink sent a data message: is this a sink?"),
                Received::Closed => bail!("the server closed the connection"),
            }
        }
    }

    /// Receives until the end of the stream (after [`Tx::close`]).
    pub(crate) async fn drain(&mut self) -> Result<()> {
        while self.recv().await? != Received::Closed {}
        Ok(())
    }
}

fn token(data: &[u8]) -> u64 {
    data.try_into().map_or(u64::MAX, u64::from_be_bytes)
}

fn binary(payload: &[u8]) -> TungMessage {
    TungMessage::Binary(Bytes::copy_from_slice(payload))
}

async fn tung_recv<S>(rx: &mut S) -> Result<Received>
where
    S: futures_util::Stream<Item = Result<TungMessage, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    use tokio_tungstenite::tungstenite::Error;
    loop {
        match rx.next().await {
            None | Some(Err(Error::ConnectionClosed)) => return Ok(Received::Closed),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(TungMessage::Binary(data))) => return Ok(Received::Data(data.len())),
            Some(Ok(TungMessage::Text(text))) => return Ok(Received::Data(text.len())),
            Some(Ok(TungMessage::Pong(data))) => return Ok(Received::Synced(token(&data))),
            Some(Ok(TungMessage::Close(_))) => return Ok(Received::Closed),
            Some(Ok(_)) => {}
        }
    }
}

/// Writes the gathered messages in one `write_all`.
async fn write_out(writer: &mut OwnedWriteHalf, out: &mut Vec<u8>) -> Result<()> {
    if !out.is_empty() {
        writer.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

/// Writes `head` then `body` with vectored writes (one system call when the socket takes
/// it all).
async fn write_all_vectored(writer: &mut OwnedWriteHalf, head: &[u8], body: &[u8]) -> Result<()> {
    let total = head.len() + body.len();
    let mut done = 0;
    while done < total {
        let n = if done < head.len() {
            let slices = [IoSlice::new(&head[done..]), IoSlice::new(body)];
            writer.write_vectored(&slices).await?
        } else {
            writer.write(&body[done - head.len()..]).await?
        };
        if n == 0 {
            bail!("the TCP connection stopped taking bytes");
        }
        done += n;
    }
    Ok(())
}

/// One length-prefixed message (its payload skipped, not copied), or the sink's count.
async fn tcp_recv(reader: &mut BufReader<OwnedReadHalf>) -> Result<Received> {
    let mut prefix = [0_u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(Received::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > 1 << 30 {
        bail!("a TCP frame of {len} bytes: the server does not speak length prefixes");
    }
    let mut left = len;
    while left > 0 {
        let available = reader.fill_buf().await?.len();
        if available == 0 {
            bail!("the TCP connection ended inside a message");
        }
        let k = available.min(left);
        reader.consume(k);
        left -= k;
    }
    Ok(Received::Data(len))
}

/// Reads the raw TCP sink's answer to a sync: its message count.
async fn tcp_count(reader: &mut BufReader<OwnedReadHalf>) -> Result<u64> {
    let mut count = [0_u8; 8];
    reader.read_exact(&mut count).await?;
    Ok(u64::from_be_bytes(count))
}

/// The halves of a raw TCP connection.
pub(crate) fn tcp_halves(stream: TcpStream) -> (Tx, Rx) {
    let (read, write) = stream.into_split();
    (
        Tx::Tcp(write, Vec::with_capacity(GATHER)),
        Rx::Tcp(BufReader::with_capacity(GATHER, read)),
    )
}

/// The halves of a fastwebsockets client connection over the bare TCP stream.
pub(crate) fn fws_halves(stream: TcpStream) -> (Tx, Rx) {
    let (read, write) = stream.into_split();
    let (rx, tx) = fastwebsockets::after_handshake_split(
        read,
        BufWriter::with_capacity(GATHER, write),
        Role::Client,
    );
    (Tx::Fws(Box::new(tx), Vec::new()), Rx::Fws(Box::new(rx)))
}

/// The halves of a tokio-tungstenite connection (plain or TLS).
pub(crate) fn tung_halves(ws: Tung<TcpStream>) -> (Tx, Rx) {
    let (tx, rx) = ws.split();
    (Tx::Tung(tx), Rx::Tung(rx))
}

pub(crate) fn tung_tls_halves(ws: Tung<TlsTcp>) -> (Tx, Rx) {
    let (tx, rx) = ws.split();
    (Tx::TungTls(tx), Rx::TungTls(rx))
}

/// A rustls client configuration trusting only the CA in `ca_file` (PEM).
pub(crate) fn rustls_config(ca_file: &std::path::Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("cannot read {}", ca_file.display()))?
    {
        roots.add(cert.context("a bad certificate in the CA file")?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
