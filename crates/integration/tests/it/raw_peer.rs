//! Raw peers for tests that need a peer to misbehave exactly: a server on a tokio
//! `TcpListener` (127.0.0.1:0) that answers the upgrade by hand, a raw client that upgrades
//! by hand, then either exact bytes on the wire (the frames each side writes, unmasked from
//! a server, masked from a client, lying lengths, and a reader of the frames the other side
//! sent) or a [`RawPeer`] that reads and writes frames with `ws_client::wire` in the server
//! role (answer late, close without ending TCP, stop reading, never answer).

use std::net::SocketAddr;

use bytes::BytesMut;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use ws_client::wire::{Inbound, Outbound, ReadLimits, Role};
use ws_client::{Message, MessageType};

use crate::support::within;

/// Opcodes, as the tests write them.
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const CONTINUATION: u8 = 0x0;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

/// The key of every raw upgrade request (RFC 6455's example).
pub(crate) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A listening raw server.
#[derive(Debug)]
pub(crate) struct RawServer {
    listener: TcpListener,
}

impl RawServer {
    /// Listens on 127.0.0.1:0.
    pub(crate) fn bind() -> Self {
        Self::bind_with(None)
    }

    /// Listens on 127.0.0.1:0 with a small receive buffer (which turns off the kernel's
    /// autotuning), so that a client's writes back up soon once the peer stops reading.
    pub(crate) fn bind_small_receive_buffer() -> Self {
        Self::bind_with(Some(4096))
    }

    /// Listens on [::1]:0; `None` where the machine has no IPv6 loopback.
    pub(crate) fn bind_v6() -> Option<Self> {
        let socket = TcpSocket::new_v6().ok()?;
        socket.bind("[::1]:0".parse().unwrap()).ok()?;
        Some(Self {
            listener: socket.listen(16).ok()?,
        })
    }

    fn bind_with(receive_buffer: Option<u32>) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        Self {
            listener: socket.listen(16).unwrap(),
        }
    }

    /// The `ws://` URL of this server.
    pub(crate) fn url(&self) -> String {
        format!("ws://{}/", self.listener.local_addr().unwrap())
    }

    /// Accepts one TCP connection and does nothing else (no handshake of any kind).
    pub(crate) async fn accept_tcp(&self) -> TcpStream {
        within(self.listener.accept()).await.unwrap().0
    }

    /// Accepts one connection and answers its upgrade request with a valid 101.
    pub(crate) async fn accept(&self) -> TcpStream {
        let (mut tcp, request) = self.accept_request().await;
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            request.accept_key
        );
        within(tcp.write_all(response.as_bytes())).await.unwrap();
        tcp
    }

    /// Accepts one connection and reads its upgrade request, byte by byte (nothing past
    /// its head is read), leaving the answer to the caller.
    pub(crate) async fn accept_request(&self) -> (TcpStream, UpgradeRequest) {
        let mut tcp = self.accept_tcp().await;
        let request = read_upgrade_request(&mut tcp).await;
        (tcp, request)
    }

    /// Accepts one connection, answers its upgrade, and reads and writes its frames with
    /// `ws_client::wire` in the server role.
    pub(crate) async fn accept_peer(&self) -> RawPeer {
        let (read, write) = self.accept().await.into_split();
        let limits = ReadLimits {
            message: 64 << 20,
            frame: 64 << 20,
            read_size: 64 << 10,
        };
        // `accept` reads the request byte by byte: nothing past its head was read.
        RawPeer {
            inbound: Inbound::new(read, BytesMut::new(), limits, Role::Server),
            outbound: Outbound::new(write, Role::Server),
        }
    }

    /// Accepts one connection, reads its upgrade request and answers it with `response`
    /// (an HTTP refusal such as a 503), then closes it.
    pub(crate) async fn refuse(&self, response: &str) {
        let (mut tcp, _) = self.accept_request().await;
        within(tcp.write_all(response.as_bytes()))
            .await
            .expect("write the refusal");
    }
}

/// Reads an upgrade request from `stream`, byte by byte (nothing past its head is read).
pub(crate) async fn read_upgrade_request<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> UpgradeRequest {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        assert_eq!(
            within(stream.read(&mut byte)).await.unwrap(),
            1,
            "no request"
        );
        request.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&request).into_owned();
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("a Sec-WebSocket-Key header");
    let accept_key = derive_accept_key(key.as_bytes());
    UpgradeRequest { head, accept_key }
}

/// A client's upgrade request, as a raw server read it.
#[derive(Debug)]
pub(crate) struct UpgradeRequest {
    /// The request head, as text.
    pub(crate) head: String,
    /// The `Sec-WebSocket-Accept` value that answers its key.
    pub(crate) accept_key: String,
}

/// A client's upgrade request for `path` on `addr`, with `extra` header lines (each ending
/// in CRLF) after the usual ones.
pub(crate) fn upgrade_request(addr: SocketAddr, path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A raw client connection to `addr` that completed the upgrade for `path`.
pub(crate) async fn upgraded_client(addr: SocketAddr, path: &str) -> TcpStream {
    let mut tcp = within(TcpStream::connect(addr)).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let request = upgrade_request(addr, path, "");
    within(tcp.write_all(request.as_bytes())).await.unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        let n = within(tcp.read(&mut byte)).await.unwrap();
        assert_eq!(n, 1, "the server closed during the handshake");
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    tcp
}

/// One frame, masked as a client writes it (`masked`) or not, as a server does, with the
/// length field saying `length`: the payload's real length unless the test lies.
pub(crate) fn frame(opcode: u8, fin: bool, payload: &[u8], masked: bool, length: u64) -> Vec<u8> {
    let mut bytes = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match length {
        0..=125 => bytes.push(mask_bit | length as u8),
        126..=0xffff => {
            bytes.push(mask_bit | 126);
            bytes.extend_from_slice(&(length as u16).to_be_bytes());
        }
        _ => {
            bytes.push(mask_bit | 127);
            bytes.extend_from_slice(&length.to_be_bytes());
        }
    }
    if masked {
        let mask = [0x5a, 0x13, 0xc7, 0x08];
        bytes.extend_from_slice(&mask);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        bytes.extend_from_slice(payload);
    }
    bytes
}

/// One frame as a server writes it: unmasked.
pub(crate) fn server_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    frame(opcode, fin, payload, false, payload.len() as u64)
}

/// One frame as a client writes it: masked.
pub(crate) fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    frame(opcode, fin, payload, true, payload.len() as u64)
}

/// A close frame's payload: the code, then the reason.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// A frame as read off the wire (unmasked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) opcode: u8,
    pub(crate) fin: bool,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    /// The close code, if this is a close frame with one.
    pub(crate) fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Takes the first whole frame (masked or not) off the front of `bytes`, if it is all there.
pub(crate) fn take_frame(bytes: &mut Vec<u8>) -> Option<Frame> {
    let [first, second, ..] = bytes[..] else {
        return None;
    };
    let (length, mut at) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        short => (u64::from(short), 2),
    };
    let mask = if second & 0x80 != 0 {
        let key: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(key)
    } else {
        None
    };
    let end = at + usize::try_from(length).ok()?;
    let mut payload = bytes.get(at..end)?.to_vec();
    if let Some(key) = mask {
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= key[i % 4];
        }
    }
    bytes.drain(..end);
    Some(Frame {
        opcode: first & 0x0f,
        fin: first & 0x80 != 0,
        payload,
    })
}

/// Reads frames from `tcp` until the connection ends (or fails), or, with
/// `stop_at_close`, until a close frame; returns them in order.
pub(crate) async fn read_frames(tcp: &mut TcpStream, stop_at_close: bool) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        while let Some(frame) = take_frame(&mut bytes) {
            let close = frame.opcode == CLOSE;
            frames.push(frame);
            if close && stop_at_close {
                return frames;
            }
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return frames,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads one whole client frame (small) off `tcp`: opcode and unmasked payload.
pub(crate) async fn read_client_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    let (opcode, length, mask) = client_frame_head(tcp).await;
    let mut payload = vec![0; usize::try_from(length).unwrap()];
    within(tcp.read_exact(&mut payload)).await.unwrap();
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    (opcode, payload)
}

/// Reads the head of the next client frame off `tcp` (none of its payload).
pub(crate) async fn client_frame_head(tcp: &mut TcpStream) -> (u8, u64, [u8; 4]) {
    let mut head = [0u8; 2];
    within(tcp.read_exact(&mut head)).await.unwrap();
    let length = match head[1] & 0x7f {
        126 => u64::from(within(tcp.read_u16()).await.unwrap()),
        127 => within(tcp.read_u64()).await.unwrap(),
        short => u64::from(short),
    };
    let mut mask = [0u8; 4];
    within(tcp.read_exact(&mut mask)).await.unwrap();
    (head[0] & 0x0f, length, mask)
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
