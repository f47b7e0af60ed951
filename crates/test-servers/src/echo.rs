//! `echo` mode: sends every text and binary message back unchanged, on `ws_client::wire`
//! (server role), with permessage-deflate when the client offers it (so a browser's echo
//! really is compressed; `--no-deflate` turns it off).
//!
//! Replies are batched: everything already readable is echoed into the write buffer, and
//! the buffer is flushed once nothing more is waiting, so a pipelining client is answered
//! with few system calls and a lone message is answered at once.
//!
//! Every write is bounded (see [`WireSession::flush`]): a client that stops reading is
//! dropped after the stall timeout, and at shutdown a pending write is abandoned for the
//! 1001 close. `load` mode echoes on tungstenite, so a client can still be tested against
//! framing code that is not ws-client's.

use ws_client::wire::ReadLimits;

use crate::session::{ServerStream, Session};
use crate::upgrade::Handler;
use crate::wire_session::{Next, WireSession};

/// The echo server.
#[derive(Debug)]
pub struct EchoServer {
    /// What connections read with: `--max-message-size`, `--max-frame-size` and
    /// `--read-buffer-size`.
    pub limits: ReadLimits,
}

impl Handler for EchoServer {
    async fn serve(&self, ws: ServerStream, session: Session) {
        serve_bursts(WireSession::new(ws, session, self.limits), true).await;
    }

    fn deflate_on(_path: &str) -> bool {
        true
    }
}

/// The loop of `echo` mode and of perf's `/sink` and `/echo`: everything already read is
/// handled (and, with `echo`, answered into the write buffer), then the buffer is written
/// once nothing more is waiting (pongs included). Whole single-frame messages are taken
/// where they lie in the read buffer ([`WireSession::drain_in_place`]: no allocation per
/// message); the rest (control frames, fragments, compressed messages) one by one.
pub async fn serve_bursts(mut ws: WireSession, echo: bool) {
    loop {
        let mut next = ws.next().await;
        loop {
            match next {
                Next::Data(message) if echo => {
                    if ws.feed(message).await.is_err() {
                        return;
                    }
                }
                Next::Data(_) | Next::Control => {}
                Next::Ended | Next::Failed => return,
                Next::Shutdown => return ws.close_gracefully(1001, "server shutting down").await,
                Next::Idle => return ws.close_gracefully(1001, "idle timeout").await,
            }
            if let Err(error) = ws.drain_in_place(echo) {
                return ws.fail(error).await;
            }
            match ws.next_buffered().await {
                Some(event) => next = event,
                None => break,
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}
