//! A raw WebSocket server peer for client-side fault tests: a `TcpListener` on 127.0.0.1:0
//! that does the server's half of the opening handshake by hand, then reads and writes
//! frames with `ws_client::wire` in the server role, so a test can misbehave exactly as it
//! needs to (answer late, close without ending TCP, stop reading, never answer).

use bytes::BytesMut;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use ws_client::wire::{Inbound, Outbound, ReadLimits, Role};
use ws_client::{Message, MessageType};

use crate::support::within;

/// A listening raw peer.
pub(crate) struct RawListener {
    listener: TcpListener,
    url: String,
}

impl RawListener {
    /// Binds an ephemeral loopback port.
    pub(crate) async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/", listener.local_addr().expect("local address"));
        Self { listener, url }
    }

    /// The URL a client connects to.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Accepts one connection and completes its upgrade handshake.
    pub(crate) async fn accept(&self) -> RawPeer {
        let (mut stream, _) = within(self.listener.accept()).await.expect("accept");
        let (head, end) = read_head(&mut stream).await;
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        let key = text
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .expect("the request has a Sec-WebSocket-Key");
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        within(stream.write_all(response.as_bytes()))
            .await
            .expect("write the upgrade response");
        let (read, write) = stream.into_split();
        let limits = ReadLimits {
            message: 64 << 20,
            frame: 64 << 20,
            read_size: 64 << 10,
        };
        RawPeer {
            inbound: Inbound::new(read, BytesMut::from(&head[end..]), limits, Role::Server),
            outbound: Outbound::new(write, Role::Server),
        }
    }

    /// Accepts one connection, reads its upgrade request and answers it with `response`
    /// (an HTTP refusal such as a 503), then closes it.
    pub(crate) async fn refuse(&self, response: &str) {
        let (mut stream, _) = within(self.listener.accept()).await.expect("accept");
        read_head(&mut stream).await;
        within(stream.write_all(response.as_bytes()))
            .await
            .expect("write the refusal");
    }
}

/// Reads a request head; returns the bytes read and where the head ends.
async fn read_head(stream: &mut tokio::net::TcpStream) -> (Vec<u8>, usize) {
    let mut head = Vec::new();
    loop {
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            return (head, at + 4);
        }
        let mut chunk = [0u8; 1024];
        let read = within(stream.read(&mut chunk)).await.expect("read head");
        assert!(read > 0, "the client left during the handshake");
        head.extend_from_slice(&chunk[..read]);
    }
}

/// One accepted connection, after the handshake.
pub(crate) struct RawPeer {
    inbound: Inbound<OwnedReadHalf>,
    outbound: Outbound<OwnedWriteHalf>,
}

impl RawPeer {
    /// The next frame the client sent (control frames included); `None` once the client
    /// has ended the TCP connection (EOF or reset).
    pub(crate) async fn next_message(&mut self) -> Option<Message> {
        within(self.inbound.next()).await.ok().flatten()
    }

    /// The next data message, decoded from JSON (text) or MessagePack (binary).
    pub(crate) async fn next_value(&mut self) -> Value {
        loop {
            let message = self
                .next_message()
                .await
                .expect("the client ended the connection");
            match message.message_type {
                MessageType::Text => return serde_json::from_slice(&message.data).expect("JSON"),
                MessageType::Binary => {
                    return rmp_serde::from_slice(&message.data).expect("MessagePack");
                }
                _ => {}
            }
        }
    }

    /// Sends one message.
    pub(crate) async fn send(&mut self, message_type: MessageType, data: &[u8]) {
        self.outbound.encode(message_type, data);
        within(self.outbound.flush()).await.expect("write a frame");
    }

    /// Sends `value` as JSON in a text frame.
    pub(crate) async fn send_json(&mut self, value: &Value) {
        self.send(MessageType::Text, value.to_string().as_bytes())
            .await;
    }

    /// Sends a close frame, and nothing else: the TCP connection stays open.
    pub(crate) async fn send_close(&mut self, code: u16, reason: &str) {
        self.send(MessageType::Close, &Message::close(code, reason).data)
            .await;
    }

    /// Reads (and drops) whatever the client sends until it ends the TCP connection;
    /// returns the message types seen on the way.
    pub(crate) async fn until_end(&mut self) -> Vec<MessageType> {
        let mut seen = Vec::new();
        while let Some(message) = self.next_message().await {
            seen.push(message.message_type);
        }
        seen
    }
}
