//! `ws-bench serve`'s servers for `compare`: a fastwebsockets echo and sink (hyper for the
//! upgrade, as fastwebsockets documents it; echoes written into a buffer that goes out
//! whenever the next read would wait), and a raw TCP sink that parses the 4-byte length
//! prefixes, counts the messages and answers a sync request (a prefix of `u32::MAX`) with
//! the count so far (8 bytes, big-endian). The counts appear in the `stopped` line.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use anyhow::Result;
use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The sync request of the TCP counting sink.
pub(crate) const SYNC: u32 = u32::MAX;

/// Messages and payload bytes in and out, over every connection.
pub(crate) static MESSAGES_IN: AtomicU64 = AtomicU64::new(0);
pub(crate) static MESSAGES_OUT: AtomicU64 = AtomicU64::new(0);
pub(crate) static BYTES_IN: AtomicU64 = AtomicU64::new(0);
pub(crate) static BYTES_OUT: AtomicU64 = AtomicU64::new(0);

/// Serves one connection: the upgrade with hyper, then echo (or sink) with fastwebsockets.
pub(crate) async fn fastwebsockets(stream: TcpStream, echo: bool) -> Result<()> {
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| async move {
        let (response, upgrade) = fastwebsockets::upgrade::upgrade(&mut request)?;
        tokio::spawn(async move {
            let served = async {
                let ws = upgrade.await?;
                let io = Batched::new(ws.into_inner());
                session(WebSocket::after_handshake(io, Role::Server), echo).await
            };
            if let Err(e) = served.await {
                eprintln!("fastwebsockets session ended with an error: {e:#}");
            }
        });
        Ok::<Response<Empty<Bytes>>, fastwebsockets::WebSocketError>(response)
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await?;
    Ok(())
}

async fn session<S>(ws: WebSocket<Batched<S>>, echo: bool) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            // fastwebsockets answered it (auto close).
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => {
                let len = frame.payload.len() as u64;
                MESSAGES_IN.fetch_add(1, Ordering::Relaxed);
                BYTES_IN.fetch_add(len, Ordering::Relaxed);
                if echo {
                    ws.write_frame(frame).await?;
                    MESSAGES_OUT.fetch_add(1, Ordering::Relaxed);
                    BYTES_OUT.fetch_add(len, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
    let mut io = ws.into_inner();
    io.flush().await?;
    io.shutdown().await?;
    Ok(())
}

/// The counting raw TCP sink.
pub(crate) async fn tcp_count_sink(mut stream: TcpStream) -> Result<()> {
    let mut buffer = vec![0_u8; 256 << 10];
    let (mut start, mut end, mut skip) = (0, 0, 0_usize);
    let mut count = 0_u64;
    loop {
        while start < end {
            if skip > 0 {
                let k = skip.min(end - start);
                start += k;
                skip -= k;
                continue;
            }
            let Some(prefix) = buffer.get(start..start + 4).filter(|_| end - start >= 4) else {
                break;
            };
            let len = u32::from_be_bytes(prefix.try_into()?);
            start += 4;
            if len == SYNC {
                stream.write_all(&count.to_be_bytes()).await?;
            } else {
                count += 1;
                MESSAGES_IN.fetch_add(1, Ordering::Relaxed);
                BYTES_IN.fetch_add(u64::from(len), Ordering::Relaxed);
                skip = len as usize;
            }
        }
        buffer.copy_within(start..end, 0);
        end -= start;
        start = 0;
        let n = stream.read(&mut buffer[end..]).await?;
        if n == 0 {
            break;
        }
        end += n;
    }
    stream.shutdown().await?;
    Ok(())
}

/// Writes gather in a buffer (up to [`Batched::LIMIT`]) that goes out when a read would
/// wait, on flush, or when it is full: many echoes leave in one write.
#[derive(Debug)]
struct Batched<S> {
    inner: S,
    out: Vec<u8>,
    written: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Batched<S> {
    const LIMIT: usize = 64 << 10;

    fn new(inner: S) -> Self {
        Self {
            inner,
            out: Vec::with_capacity(Self::LIMIT),
            written: 0,
        }
    }

    /// Writes out the buffer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.out.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Batched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => {
                if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Pending
            }
            ready => ready,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Batched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() + buf.len() > Self::LIMIT {
            ready!(this.poll_drain(cx))?;
            if buf.len() >= Self::LIMIT {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            }
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
