//! `echo` mode: sends every text and binary message back unchanged.
//!
//! Replies are batched: everything already readable is echoed into the write buffer, and
//! the buffer is flushed once nothing more is waiting, so a pipelining client is answered
//! with few system calls and a lone message is answered at once.

use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

use crate::server::Handler;
use crate::session::{self, Event, ServerStream, Session};

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
                        if session.feed(&mut ws, message).await.is_err() {
                            return;
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
            if futures_util::SinkExt::flush(&mut ws).await.is_err() {
                return;
            }
        }
    }
}
