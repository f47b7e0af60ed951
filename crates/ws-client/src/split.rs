//! `WsSender` and `WsReceiver`: the two halves of a split connection, for use from two tasks.

use std::sync::Arc;

use futures_util::{
    StreamExt,
    stream::{SplitSink, SplitStream},
};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite;

use crate::connect::WsStream;
use crate::error::Error;
use crate::link::{self, ConnectionState, Link, Received};
use crate::message::{Message, MessageType};

type SharedSink = Arc<Mutex<SplitSink<WsStream, tungstenite::Message>>>;

/// The sending half of a split connection. Cheap to clone; clones send on the same
/// connection, one whole message at a time.
#[derive(Debug, Clone)]
pub struct WsSender {
    sink: SharedSink,
    link: Arc<Link>,
}

/// The receiving half of a split connection.
#[derive(Debug)]
pub struct WsReceiver {
    stream: SplitStream<WsStream>,
    sender: WsSender,
}

/// Splits an open stream into its halves.
pub(crate) fn split(stream: WsStream, link: Arc<Link>) -> (WsSender, WsReceiver) {
    let (sink, stream) = stream.split();
    let sender = WsSender {
        sink: Arc::new(Mutex::new(sink)),
        link,
    };
    let receiver = WsReceiver {
        stream,
        sender: sender.clone(),
    };
    (sender, receiver)
}

impl WsSender {
    /// Sends one message and flushes it.
    pub async fn send_message(&self, message: &Message) -> Result<(), Error> {
        self.send(message.clone()).await
    }

    /// Sends one message, taking ownership, and flushes it.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        let mut sink = self.sink.lock().await;
        link::send(&mut *sink, &self.link, message.into(), true).await
    }

    /// Queues one message without flushing (see
    /// [`WebSocketConnection::queue`](crate::WebSocketConnection::queue)).
    pub async fn queue(&self, message: impl Into<Message>) -> Result<(), Error> {
        let mut sink = self.sink.lock().await;
        link::send(&mut *sink, &self.link, message.into(), false).await
    }

    /// Writes out every queued message.
    pub async fn flush(&self) -> Result<(), Error> {
        let mut sink = self.sink.lock().await;
        link::flush(&mut *sink, &self.link).await
    }

    /// The sink, once no other task is writing.
    pub(crate) async fn lock(&self) -> SinkGuard<'_> {
        SinkGuard {
            sink: self.sink.lock().await,
            link: &self.link,
        }
    }

    /// Starts the close handshake with `code` and `reason`. The receiver then gets the
    /// peer's answering close message and, after it, [`Error::ConnectionClosed`].
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.send(Message::close(code, reason)).await
    }

    /// Where the connection is in its lifecycle.
    pub fn state(&self) -> ConnectionState {
        self.link.state()
    }
}

/// Exclusive use of a sender's sink, for several writes in a row.
pub(crate) struct SinkGuard<'a> {
    sink: tokio::sync::MutexGuard<'a, SplitSink<WsStream, tungstenite::Message>>,
    link: &'a Link,
}

impl SinkGuard<'_> {
    /// Queues the messages of `rest` without flushing; cancel-safe (see `link::send_queued`).
    pub(crate) async fn queue_all(
        &mut self,
        rest: &mut std::collections::VecDeque<Message>,
    ) -> Result<(), Error> {
        link::send_queued(&mut *self.sink, self.link, rest).await
    }

    /// Writes out everything queued.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        link::flush(&mut *self.sink, self.link).await
    }
}

impl WsReceiver {
    /// Waits for the next message; see
    /// [`WebSocketConnection::receive_message`](crate::WebSocketConnection::receive_message).
    pub async fn receive_message(&mut self) -> Result<Message, Error> {
        match link::receive(&mut self.stream, &self.sender.link).await {
            Received::Message(message) => {
                if message.message_type == MessageType::Close {
                    let _ = self.sender.flush().await;
                }
                Ok(message)
            }
            Received::Failed(error) => {
                let mut sink = self.sender.sink.lock().await;
                link::send_failure_close(&mut *sink, &self.sender.link, &error).await;
                Err(error)
            }
        }
    }

    /// Where the connection is in its lifecycle.
    pub fn state(&self) -> ConnectionState {
        self.sender.link.state()
    }

    /// A sender for this receiver's connection.
    pub fn sender(&self) -> WsSender {
        self.sender.clone()
    }
}
