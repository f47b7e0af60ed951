//! `Conn`: one hostile connection, with the steps its scenarios share: write raw bytes,
//! complete the handshake correctly, send frames, read what the client does (bounded) and
//! say goodbye with 1001 at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::frame::{self, CLOSE, ClientFrame, ClientReader, Frame};
use super::handshake::{UpgradeRequest, switching};
use crate::stats::Stats;

/// How long the goodbye close frame may take to write at shutdown.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// One connection being attacked.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub tcp: TcpStream,
    /// Who the client is.
    pub peer: SocketAddr,
    /// What the client asked for.
    pub request: UpgradeRequest,
    /// Whether a complete 101 response was sent (frames may follow).
    pub upgraded: bool,
    /// Whether the server has sent a close frame.
    pub close_sent: bool,
    /// The close code the client sent, once it did.
    pub client_close: Option<Option<u16>>,
    /// Bytes written to the socket on this connection (handshake included).
    pub written: u64,
    /// Counters shared by all connections.
    pub stats: Arc<Stats>,
}

impl Conn {
    /// A connection whose upgrade request has been read.
    pub fn new(
        tcp: TcpStream,
        peer: SocketAddr,
        request: UpgradeRequest,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            tcp,
            peer,
            request,
            upgraded: false,
            close_sent: false,
            client_close: None,
            written: 0,
            stats,
        }
    }

    /// Writes `bytes` as they are.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tcp.write_all(bytes).await?;
        self.written += bytes.len() as u64;
        self.stats
            .bytes_out
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Sends the correct 101 response.
    pub async fn accept(&mut self) -> std::io::Result<()> {
        self.accept_with("").await
    }

    /// Sends a 101 response with the right accept value and the `extra` header lines
    /// (each ending in CRLF).
    pub async fn accept_with(&mut self, extra: &str) -> std::io::Result<()> {
        let response = switching(&self.request.accept(), extra);
        self.write(response.as_bytes()).await?;
        self.upgraded = true;
        tracing::debug!(peer = %self.peer, extra, "handshake completed");
        Ok(())
    }

    /// Sends `frames` in one write.
    pub async fn send_frames(&mut self, frames: &[Frame]) -> std::io::Result<()> {
        let mut wire = Vec::new();
        for frame in frames {
            frame.encode(&mut wire);
            self.close_sent |= frame.opcode == CLOSE;
            Stats::bump(&self.stats.messages_out);
        }
        let head = format!("{:02x?}", &wire[..wire.len().min(16)]);
        tracing::debug!(peer = %self.peer, len = wire.len(), %head, "sending frames");
        self.write(&wire).await
    }

    /// Reads and discards everything until the client closes the connection.
    pub async fn discard_input(&mut self) {
        let mut scratch = [0u8; 4096];
        while matches!(self.tcp.read(&mut scratch).await, Ok(n) if n > 0) {}
        tracing::debug!(peer = %self.peer, "client closed the connection");
    }

    /// Notes the client's close frame.
    pub fn client_closed(&mut self, payload: &[u8]) {
        let code = frame::close_code(payload);
        tracing::info!(peer = %self.peer, ?code, "client sent a close frame");
        self.client_close = Some(code);
    }

    /// Reads the client's frames until it goes away, answering its close frame (once,
    /// unless the server already sent one) and then half-closing.
    pub async fn answer_client(&mut self) {
        let mut reader = ClientReader::default();
        while let Some(client_frame) = reader.next(&mut self.tcp).await {
            match client_frame {
                ClientFrame::Close(payload) => {
                    self.client_closed(&payload);
                    if !self.close_sent {
                        let code = frame::close_code(&payload).unwrap_or(1000);
                        let _ = self.write(&frame::close_frame(code, "")).await;
                        self.close_sent = true;
                    }
                    let _ = self.tcp.shutdown().await;
                }
                ClientFrame::Other { opcode } => {
                    Stats::bump(&self.stats.messages_in);
                    tracing::debug!(peer = %self.peer, opcode, "client sent a frame");
                }
            }
        }
        tracing::debug!(peer = %self.peer, "client closed the connection");
    }

    /// At shutdown: a close frame with 1001 if the connection is open (best effort).
    pub async fn going_away(&mut self) {
        if self.upgraded && !self.close_sent {
            let goodbye = frame::close_frame(1001, "server shutting down");
            let _ = tokio::time::timeout(GOODBYE_TIMEOUT, self.write(&goodbye)).await;
            self.close_sent = true;
        }
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, self.tcp.shutdown()).await;
    }
}
