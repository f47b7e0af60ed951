//! Attacks that play out over time after a correct handshake: an oversized message and an
//! endless fragmented one (streamed, never held whole), a ping flood, a server that never
//! reads, one that never answers a close, and a reset in the middle of a frame.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::conn::Conn;
use super::frame::{
    self, BINARY, CONTINUATION, ClientFrame, ClientReader, Frame, PING, PONG, TEXT,
};

/// Size of `oversized-message`: larger than common client limits (16 MiB here).
pub const OVERSIZED_LEN: u64 = 64 << 20;
/// Bytes written per chunk when streaming.
const CHUNK_LEN: usize = 64 << 10;
/// Pings sent by `ping-flood`.
pub const PING_COUNT: u64 = 10_000;
/// Pings per write in `ping-flood`.
const PINGS_PER_WRITE: u64 = 100;
/// Bytes `reset-mid-frame` claims and how many of them it sends before the reset.
const RESET_CLAIMED: u64 = 1000;
const RESET_SENT: usize = 500;
/// How long `reset-mid-frame` waits for its half frame to leave before resetting.
const RESET_FLUSH: Duration = Duration::from_millis(100);

/// The attacks that play out over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BehaviourAttack {
    /// One 64 MiB binary message.
    OversizedMessage,
    /// Continuation frames forever.
    EndlessFragments,
    /// Thousands of pings.
    PingFlood,
    /// Never reads.
    NeverReads,
    /// Never answers the client's close.
    NoCloseReply,
    /// Half a frame, then a TCP reset.
    ResetMidFrame,
}

/// What streaming achieved.
#[derive(Debug)]
enum Streamed {
    /// Everything was written.
    Done,
    /// The client sent a close frame first.
    ClientClosed,
    /// The connection failed or ended.
    Gone,
}

/// Bytes to stream: `first`, then `repeated` `times` times (`None`: until stopped), then
/// `last`. Only these buffers are ever held.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) first: Vec<u8>,
    pub(super) repeated: Vec<u8>,
    pub(super) times: Option<u64>,
    pub(super) last: Vec<u8>,
}

impl BehaviourAttack {
    /// Every behaviour attack (the catalogue's test checks each has one entry).
    pub const ALL: [BehaviourAttack; 6] = [
        BehaviourAttack::OversizedMessage,
        BehaviourAttack::EndlessFragments,
        BehaviourAttack::PingFlood,
        BehaviourAttack::NeverReads,
        BehaviourAttack::NoCloseReply,
        BehaviourAttack::ResetMidFrame,
    ];

    /// Plays the attack on an upgraded `conn`; the caller bounds the time.
    pub async fn play(self, conn: &mut Conn) -> std::io::Result<()> {
        match self {
            BehaviourAttack::OversizedMessage => {
                let (head, used) = frame::header(true, 0, BINARY, None, OVERSIZED_LEN);
                let plan = Plan {
                    first: head[..used].to_vec(),
                    repeated: vec![b'Z'; CHUNK_LEN],
                    times: Some(OVERSIZED_LEN / CHUNK_LEN as u64),
                    last: Vec::new(),
                };
                stream_then_answer(conn, plan).await;
            }
            BehaviourAttack::EndlessFragments => {
                let payload = vec![b'a'; CHUNK_LEN];
                let (head, used) = frame::header(false, 0, TEXT, None, CHUNK_LEN as u64);
                let mut first = head[..used].to_vec();
                first.extend_from_slice(&payload);
                let (head, used) = frame::header(false, 0, CONTINUATION, None, CHUNK_LEN as u64);
                let mut repeated = head[..used].to_vec();
                repeated.extend_from_slice(&payload);
                let plan = Plan {
                    first,
                    repeated,
                    times: None,
                    last: Vec::new(),
                };
                stream_then_answer(conn, plan).await;
            }
            BehaviourAttack::PingFlood => {
                let mut repeated = Vec::new();
                for _ in 0..PINGS_PER_WRITE {
                    Frame::new(PING, b"flood").encode(&mut repeated);
                }
                let mut last = Vec::new();
                Frame::new(TEXT, b"ping-flood done").encode(&mut last);
                let plan = Plan {
                    first: Vec::new(),
                    repeated,
                    times: Some(PING_COUNT / PINGS_PER_WRITE),
                    last,
                };
                stream_then_answer(conn, plan).await;
            }
            BehaviourAttack::NeverReads => {
                conn.send_frames(&[Frame::new(TEXT, b"never-reads: this server will not read")])
                    .await?;
                tracing::debug!(peer = %conn.peer, "not reading any more");
                std::future::pending::<()>().await;
            }
            BehaviourAttack::NoCloseReply => {
                conn.send_frames(&[Frame::new(
                    TEXT,
                    b"no-close-reply: close me, I will not answer",
                )])
                .await?;
                let mut reader = ClientReader::default();
                while let Some(client_frame) = reader.next(&mut conn.tcp).await {
                    if let ClientFrame::Close(payload) = client_frame {
                        conn.client_closed(&payload);
                        tracing::debug!(peer = %conn.peer, "not answering the close frame");
                    }
                }
                // The client gave up; nothing is sent at shutdown either.
                conn.close_sent = true;
            }
            BehaviourAttack::ResetMidFrame => {
                let (head, used) = frame::header(true, 0, BINARY, None, RESET_CLAIMED);
                let mut half = head[..used].to_vec();
                half.extend_from_slice(&[b'r'; RESET_SENT]);
                conn.write(&half).await?;
                conn.tcp.flush().await?;
                // Give the half frame time to leave before the reset discards the send queue.
                tokio::time::sleep(RESET_FLUSH).await;
                // `set_zero_linger` needs tokio 1.50 (the workspace asks for 1.47); a zero
                // linger never blocks on drop, which is what the deprecation warns about.
                #[allow(deprecated)]
                conn.tcp.set_linger(Some(Duration::ZERO))?;
                tracing::debug!(peer = %conn.peer, "resetting the connection mid-frame");
                conn.close_sent = true;
            }
        }
        Ok(())
    }
}

/// Streams `plan` while reading the client; a client that closes (or goes) stops the
/// stream. If everything was written, the client's frames are then answered as usual.
pub(super) async fn stream_then_answer(conn: &mut Conn, plan: Plan) {
    let peer = conn.peer;
    let mut written = 0u64;
    let mut pongs = 0u64;
    let mut close = None;
    let outcome = {
        let (mut rd, mut wr) = conn.tcp.split();
        let mut reader = ClientReader::default();
        let write = async {
            wr.write_all(&plan.first).await?;
            written += plan.first.len() as u64;
            let mut sent = 0u64;
            while plan.times.is_none_or(|times| sent < times) {
                wr.write_all(&plan.repeated).await?;
                written += plan.repeated.len() as u64;
                sent += 1;
            }
            wr.write_all(&plan.last).await?;
            written += plan.last.len() as u64;
            wr.flush().await
        };
        tokio::pin!(write);
        loop {
            tokio::select! {
                done = &mut write => break if done.is_ok() { Streamed::Done } else { Streamed::Gone },
                client_frame = reader.next(&mut rd) => match client_frame {
                    None => break Streamed::Gone,
                    Some(ClientFrame::Close(payload)) => {
                        close = Some(payload);
                        break Streamed::ClientClosed;
                    }
                    Some(ClientFrame::Other { opcode }) => pongs += u64::from(opcode == PONG),
                },
            }
        }
    };
    conn.written += written;
    conn.stats
        .bytes_out
        .fetch_add(written, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(%peer, written, pongs, ?outcome, "streaming ended");
    if let Some(payload) = close {
        conn.client_closed(&payload);
    }
    match outcome {
        Streamed::Done => conn.answer_client().await,
        // Mid-frame: no valid close frame can follow, so the connection is just dropped.
        Streamed::ClientClosed | Streamed::Gone => conn.close_sent = true,
    }
}
