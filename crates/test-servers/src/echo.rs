//! `echo` mode: sends every text and binary message back unchanged.
//!
//! Replies are batched: everything already readable is echoed into the write buffer, and
//! the buffer is flushed once nothing more is waiting, so a pipelining client is answered
//! with few system calls and a lone message is answered at once.
//!
//! Every write is bounded ([`Session::write`]): a client that stops reading is dropped
//! after the stall timeout, and at shutdown a pending write is abandoned for the 1001
//! close (itself dropped if the client takes nothing).

use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

use crate::session::{self, Event, ServerStream, Session, WriteStop};
use crate::upgrade::Handler;

/// The echo server.
#[derive(Debug, Default)]
pub struct EchoServer;

impl Handler for EchoServer {
    async fn serve(&self, mut ws: ServerStream, session: Session) {
        loop {
            let mut event = session.next(&mut ws).await;
            loop {
                match event {
                    Event::Message(message @ (Message::Text(_) | Message::Binary(_))) => {
                        match session.write(session.feed(&mut ws, message)).await {
                            Ok(()) => {}
                            Err(stop) => return stopped(&mut ws, stop).await,
                        }
                    }
                    // Pings are answered by tungstenite on the flush below; pongs need nothing;
                    // a close is answered by tungstenite, which then ends the stream.
                    Event::Message(_) => {}
                    Event::Ended | Event::Failed => return,
                    Event::Shutdown => {
                        return session::close_gracefully(
                            &mut ws,
                            CloseCode::Away,
                            "server shutting down",
                        )
                        .await;
                    }
                    Event::Idle => {
                        return session::close_gracefully(&mut ws, CloseCode::Away, "idle timeout")
                            .await;
                    }
                }
                match session.next_ready(&mut ws).await {
                    Some(next) => event = next,
                    None => break,
                }
            }
            if let Err(stop) = session.write(futures_util::SinkExt::flush(&mut ws)).await {
                return stopped(&mut ws, stop).await;
            }
        }
    }
}

/// Ends a session whose write did not finish: at shutdown with a 1001 close (bounded),
/// otherwise (the socket failed, or the client stopped reading) by dropping it.
async fn stopped(ws: &mut ServerStream, stop: WriteStop) {
    if let WriteStop::Shutdown = stop {
        session::close_gracefully(ws, CloseCode::Away, "server shutting down").await;
    }
}
