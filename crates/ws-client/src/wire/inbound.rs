//! `Inbound`: the read side of a connection. Bytes are read into one small buffer; each
//! frame header is checked before its payload is buffered, small whole frames become
//! messages with one copy, and the payload of a large frame is read straight into the
//! message's own memory.
//!
//! Text is checked as it arrives: a fragmented message fails at the first fragment whose
//! bytes can no longer become UTF-8. After a close frame nothing more is read (RFC 6455
//! section 5.5.1: what follows it is discarded).
//!
//! Cancel-safe: all progress lives in the struct, none in the future, so a caller may
//! drop a pending [`Inbound::next`] (a timeout, a `select!`) without losing bytes.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::AsyncRead;

use crate::error::{self, Error};
use crate::message::{Message, MessageType};
use crate::wire::Role;
use crate::wire::frame::{self, OpCode};
use crate::wire::socket::ReadHalf;

/// Most memory set aside for a frame's payload before its bytes arrive: a header alone
/// cannot make the client reserve its whole claimed length.
const RESERVE_AHEAD: usize = 1 << 20;

/// Most bytes asked of the socket per read, whatever [`ReadLimits::read_size`] says.
const MAX_READ_SIZE: usize = 16 << 20;

/// The limits a connection reads with. Any value is accepted: each is clamped to what the
/// platform can hold (`usize::MAX` means "as much as a buffer can hold", about
/// `isize::MAX` bytes).
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Largest message, in bytes: a larger one fails with [`Error::MessageTooLarge`].
    pub message: usize,
    /// Largest frame payload (the smaller of this and `message` applies), checked from the
    /// frame header before any of the payload is buffered.
    pub frame: usize,
    /// Bytes asked of the socket per read (clamped to 256 bytes - 16 MiB).
    pub read_size: usize,
}

/// A data message whose frames are still arriving.
#[derive(Debug)]
struct Assembly {
    message_type: MessageType,
    data: Vec<u8>,
    /// For text: how many bytes of `data` are known to be UTF-8. The rest (at most 3
    /// bytes) is the start of a character whose other bytes have not arrived yet.
    validated: usize,
}

impl Assembly {
    /// Checks the text that arrived since the last call: fails as soon as the bytes can
    /// no longer become UTF-8, whatever follows; an incomplete character at the end is
    /// kept for later.
    fn check_text(&mut self) -> Result<(), Error> {
        if self.message_type != MessageType::Text || self.validated == self.data.len() {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.validated..]) {
            Ok(_) => self.validated = self.data.len(),
            Err(e) if e.error_len().is_some() => return Err(Error::InvalidUtf8),
            Err(e) => self.validated += e.valid_up_to(),
        }
        Ok(())
    }
}

/// The read side of a connection: a socket (or its read half), its buffer and the
/// message being assembled. Cancel-safe (see the module documentation).
#[derive(Debug)]
pub struct Inbound<R = ReadHalf> {
    io: R,
    role: Role,
    buffer: BytesMut,
    limits: ReadLimits,
    assembly: Option<Assembly>,
    /// Payload bytes of the current data frame not yet moved into `assembly`.
    frame_remaining: usize,
    /// Whether the current data frame's payload is being read.
    in_payload: bool,
    /// Whether the current data frame is the message's last.
    frame_fin: bool,
    /// The current data frame's masking key (frames from a client) and how many of its
    /// payload bytes have been unmasked.
    frame_mask: Option<[u8; 4]>,
    frame_offset: usize,
    /// Whether a close frame was read: nothing after it is.
    closed: bool,
}

impl<R: AsyncRead + Unpin> Inbound<R> {
    /// Reads frames from `io` as `role` (a server expects masked frames, a client refuses
    /// them), starting with `buffered`: bytes that arrived with the handshake.
    pub fn new(io: R, buffered: BytesMut, limits: ReadLimits, role: Role) -> Self {
        Self {
            io,
            role,
            buffer: buffered,
            limits: ReadLimits {
                message: limits.message.min(frame::MAX_PAYLOAD),
                frame: limits.frame.min(limits.message).min(frame::MAX_PAYLOAD),
                read_size: limits.read_size.clamp(256, MAX_READ_SIZE),
            },
            assembly: None,
            frame_remaining: 0,
            in_payload: false,
            frame_fin: false,
            frame_mask: None,
            frame_offset: 0,
            closed: false,
        }
    }

    /// The next message, ping, pong or close; `Ok(None)` when the peer ended the TCP
    /// connection between frames, and from the call after a close frame on (without
    /// reading: what follows a close is discarded). Pings and closes are not answered
    /// here: that is the caller's to do, on its write side.
    pub async fn next(&mut self) -> Result<Option<Message>, Error> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The socket (or read half), for example to drain it after failing the connection.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.io
    }

    /// The next message if it has already been read in whole, without waiting: for
    /// answering a burst of messages with one write.
    pub fn next_buffered(&mut self) -> Result<Option<Message>, Error> {
        self.parse()
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, Error>> {
        loop {
            if let Some(message) = self.parse()? {
                return Poll::Ready(Ok(Some(message)));
            }
            if self.closed {
                return Poll::Ready(Ok(None));
            }
            let read = std::task::ready!(self.poll_read(cx)).map_err(error::from_io)?;
            if read == 0 {
                let mid_message =
                    self.in_payload || !self.buffer.is_empty() || self.assembly.is_some();
                return Poll::Ready(if mid_message {
                    Err(Error::ConnectionLost(
                        "the peer ended the TCP connection in the middle of a message".into(),
                    ))
                } else {
                    Ok(None)
                });
            }
        }
    }

    /// Reads more bytes: straight into the message when a large payload is pending,
    /// into the buffer otherwise.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let io = Pin::new(&mut self.io);
        if self.in_payload
            && self.buffer.is_empty()
            && self.frame_remaining >= self.limits.read_size
        {
            if let Some(assembly) = &mut self.assembly {
                assembly
                    .data
                    .reserve(self.frame_remaining.min(RESERVE_AHEAD));
                let start = assembly.data.len();
                let mut into = (&mut assembly.data).limit(self.frame_remaining);
                let read = std::task::ready!(tokio_util::io::poll_read_buf(io, cx, &mut into))?;
                if let Some(key) = self.frame_mask {
                    frame::apply_mask_at(&mut assembly.data[start..], key, self.frame_offset);
                }
                self.frame_offset += read;
                self.frame_remaining -= read;
                return Poll::Ready(Ok(read));
            }
        }
        self.buffer.reserve(self.limits.read_size);
        tokio_util::io::poll_read_buf(io, cx, &mut self.buffer)
    }

    /// Takes the next message out of what has been read, if it is all there.
    fn parse(&mut self) -> Result<Option<Message>, Error> {
        loop {
            if self.closed {
                return Ok(None);
            }
            if self.in_payload {
                let take = self.frame_remaining.min(self.buffer.len());
                if let Some(assembly) = &mut self.assembly {
                    let bytes = &self.buffer[..take];
                    match self.frame_mask {
                        Some(key) => frame::extend_masked_at(
                            &mut assembly.data,
                            bytes,
                            key,
                            self.frame_offset,
                        ),
                        None => assembly.data.extend_from_slice(bytes),
                    }
                    // Also covers what a direct read put in since the last call.
                    assembly.check_text()?;
                }
                self.frame_offset += take;
                self.buffer.advance(take);
                self.frame_remaining -= take;
                if self.frame_remaining > 0 {
                    return Ok(None);
                }
                self.in_payload = false;
                if self.frame_fin {
                    return self.finish_message().map(Some);
                }
                continue;
            }
            let Some(header) = frame::parse_header(&self.buffer, self.limits.frame)? else {
                return Ok(None);
            };
            match (self.role, header.mask.is_some()) {
                (Role::Client, true) => {
                    return Err(Error::Protocol(
                        "the server sent a masked frame (RFC 6455 section 5.1 forbids it)".into(),
                    ));
                }
                (Role::Server, false) => {
                    return Err(Error::Protocol(
                        "the client sent an unmasked frame (RFC 6455 section 5.1 forbids it)"
                            .into(),
                    ));
                }
                _ => {}
            }
            let whole = header.frame_len();
            match header.opcode {
                OpCode::Close | OpCode::Ping | OpCode::Pong => {
                    if self.buffer.len() < whole {
                        return Ok(None);
                    }
                    let payload = self.take_payload(&header);
                    return self.control(header.opcode, payload).map(Some);
                }
                OpCode::Text | OpCode::Binary => {
                    if self.assembly.is_some() {
                        return Err(Error::Protocol(
                            "a new message started before the fragmented one was finished".into(),
                        ));
                    }
                    let message_type = if header.opcode == OpCode::Text {
                        MessageType::Text
                    } else {
                        MessageType::Binary
                    };
                    if header.fin && self.buffer.len() >= whole {
                        // The common case: a whole message in the buffer, one copy out.
                        let data = self.take_payload(&header);
                        return checked(Message { data, message_type }).map(Some);
                    }
                    self.assembly = Some(Assembly {
                        message_type,
                        data: Vec::with_capacity(header.payload_len.min(RESERVE_AHEAD)),
                        validated: 0,
                    });
                }
                OpCode::Continuation => {
                    let Some(assembly) = &self.assembly else {
                        return Err(Error::Protocol(
                            "a continuation frame arrived with no message to continue".into(),
                        ));
                    };
                    let size = assembly.data.len().saturating_add(header.payload_len);
                    if size > self.limits.message {
                        return Err(Error::MessageTooLarge {
                            size,
                            limit: self.limits.message,
                        });
                    }
                }
            }
            self.buffer.advance(header.header_len);
            self.in_payload = true;
            self.frame_remaining = header.payload_len;
            self.frame_fin = header.fin;
            self.frame_mask = header.mask;
            self.frame_offset = 0;
        }
    }

    /// Copies out (and unmasks) the payload of a frame that is all in the buffer.
    fn take_payload(&mut self, header: &frame::Header) -> Vec<u8> {
        let whole = header.frame_len();
        let bytes = &self.buffer[header.header_len..whole];
        let payload = match header.mask {
            Some(key) => {
                let mut payload = Vec::with_capacity(bytes.len());
                frame::extend_masked(&mut payload, bytes, key);
                payload
            }
            None => bytes.to_vec(),
        };
        self.buffer.advance(whole);
        payload
    }

    /// The assembled message, once its last frame is in.
    fn finish_message(&mut self) -> Result<Message, Error> {
        let assembly = self.assembly.take().ok_or_else(|| {
            Error::Protocol("a frame ended a message that had not started".into())
        })?;
        if assembly.message_type == MessageType::Text && assembly.validated != assembly.data.len() {
            // The message ends in the middle of a character.
            return Err(Error::InvalidUtf8);
        }
        Ok(Message {
            data: assembly.data,
            message_type: assembly.message_type,
        })
    }

    /// A control frame as a message, after the checks RFC 6455 asks for a close frame.
    fn control(&mut self, opcode: OpCode, payload: Vec<u8>) -> Result<Message, Error> {
        let message_type = match opcode {
            OpCode::Ping => MessageType::Ping,
            OpCode::Pong => MessageType::Pong,
            _ => {
                check_close_payload(&payload)?;
                // The end of the conversation: whatever follows is discarded.
                self.closed = true;
                self.buffer = BytesMut::new();
                self.assembly = None;
                MessageType::Close
            }
        };
        Ok(Message {
            data: payload,
            message_type,
        })
    }
}

/// A text message must be UTF-8 (RFC 6455 section 8.1; the connection fails with 1007).
#[inline]
fn checked(message: Message) -> Result<Message, Error> {
    if message.message_type == MessageType::Text && std::str::from_utf8(&message.data).is_err() {
        return Err(Error::InvalidUtf8);
    }
    Ok(message)
}

/// Whether a peer may put `code` in a close frame (RFC 6455 section 7.4: 1004-1006 and
/// 1015 are reserved for reporting, below 1000 and from 5000 up unassigned).
pub(crate) fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A close payload is empty, or a permitted code followed by a UTF-8 reason.
fn check_close_payload(payload: &[u8]) -> Result<(), Error> {
    match payload {
        [] => Ok(()),
        [_] => Err(Error::Protocol(
            "the peer's close frame had a 1-byte payload (a code takes 2)".into(),
        )),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_allowed(code) {
                return Err(Error::Protocol(format!(
                    "the peer's close frame carried code {code}, a close code RFC 6455 forbids"
                )));
            }
            std::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::wire::Outbound;

    const LIMITS: ReadLimits = ReadLimits {
        message: 1 << 20,
        frame: 1 << 20,
        read_size: 256,
    };

    /// A frame as a server sends it (unmasked) or a client (masked with `key`).
    fn frame(fin: bool, opcode: OpCode, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = Vec::new();
        frame::encode_header(&mut out, fin, opcode, payload.len(), key);
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = key {
            frame::apply_mask(&mut out[start..], key);
        }
        out
    }

    fn reader(role: Role) -> (Inbound<DuplexStream>, DuplexStream) {
        let (theirs, ours) = tokio::io::duplex(1 << 16);
        (Inbound::new(ours, BytesMut::new(), LIMITS, role), theirs)
    }

    async fn next<R: AsyncRead + Unpin>(
        inbound: &mut Inbound<R>,
    ) -> Result<Option<Message>, Error> {
        tokio::time::timeout(Duration::from_secs(5), inbound.next())
            .await
            .expect("no message within 5 s")
    }

    #[tokio::test]
    async fn fragments_are_joined_around_an_interleaved_ping() {
        let (mut inbound, mut peer) = reader(Role::Client);
        let mut bytes = frame(false, OpCode::Text, b"hel", None);
        bytes.extend(frame(true, OpCode::Ping, b"p", None));
        bytes.extend(frame(false, OpCode::Continuation, b"lo ", None));
        bytes.extend(frame(true, OpCode::Continuation, b"world", None));
        peer.write_all(&bytes).await.unwrap();
        let ping = next(&mut inbound).await.unwrap().unwrap();
        assert_eq!(
            (ping.message_type, ping.data.as_slice()),
            (MessageType::Ping, &b"p"[..])
        );
        let text = next(&mut inbound).await.unwrap().unwrap();
        assert_eq!(text.as_text().unwrap(), "hello world");
        drop(peer);
        assert!(
            next(&mut inbound).await.unwrap().is_none(),
            "clean end between frames"
        );
    }

    #[tokio::test]
    async fn masked_frames_dribbled_byte_by_byte_are_unmasked_by_a_server() {
        let (mut inbound, mut peer) = reader(Role::Server);
        // Larger than the read size, so both the buffered and the direct path run.
        let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut bytes = frame(false, OpCode::Binary, &payload[..3], Some([1, 2, 3, 4]));
        bytes.extend(frame(
            true,
            OpCode::Continuation,
            &payload[3..],
            Some([9, 8, 7, 6]),
        ));
        let writer = tokio::spawn(async move {
            for chunk in bytes.chunks(7) {
                peer.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
            peer
        });
        let message = next(&mut inbound).await.unwrap().unwrap();
        assert_eq!(message.message_type, MessageType::Binary);
        assert_eq!(message.data, payload);
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn what_an_outbound_writes_an_inbound_of_the_other_role_reads() {
        for (writer_role, reader_role) in
            [(Role::Client, Role::Server), (Role::Server, Role::Client)]
        {
            let (theirs, ours) = tokio::io::duplex(1 << 20);
            let mut outbound = Outbound::new(theirs, writer_role);
            let mut inbound = Inbound::new(ours, BytesMut::new(), LIMITS, reader_role);
            let large = vec![7u8; 100_000];
            outbound.encode(MessageType::Text, "small".as_bytes());
            outbound.encode_owned(Message::binary(large.clone()));
            outbound.encode(MessageType::Close, &Message::close(1000, "bye").data);
            outbound.flush().await.unwrap();
            assert_eq!(
                next(&mut inbound)
                    .await
                    .unwrap()
                    .unwrap()
                    .as_text()
                    .unwrap(),
                "small"
            );
            assert_eq!(next(&mut inbound).await.unwrap().unwrap().data, large);
            let close = next(&mut inbound).await.unwrap().unwrap();
            assert_eq!(close.close_code(), Some(1000));
        }
    }

    #[tokio::test]
    async fn a_cancelled_read_loses_nothing() {
        let (mut inbound, mut peer) = reader(Role::Client);
        let bytes = frame(true, OpCode::Binary, &[5u8; 1000], None);
        peer.write_all(&bytes[..600]).await.unwrap();
        let early = tokio::time::timeout(Duration::from_millis(20), inbound.next()).await;
        assert!(early.is_err(), "half a frame is not a message");
        peer.write_all(&bytes[600..]).await.unwrap();
        assert_eq!(
            next(&mut inbound).await.unwrap().unwrap().data,
            vec![5u8; 1000]
        );
    }

    #[tokio::test]
    async fn rule_breaking_sequences_are_refused() {
        let cases: [(Vec<u8>, Role); 5] = [
            (frame(true, OpCode::Continuation, b"x", None), Role::Client),
            (
                [
                    frame(false, OpCode::Text, b"a", None),
                    frame(true, OpCode::Text, b"b", None),
                ]
                .concat(),
                Role::Client,
            ),
            (
                frame(true, OpCode::Text, b"x", Some([1, 1, 1, 1])),
                Role::Client,
            ),
            (frame(true, OpCode::Text, b"x", None), Role::Server),
            (frame(true, OpCode::Close, &[3], None), Role::Client),
        ];
        for (i, (bytes, role)) in cases.into_iter().enumerate() {
            let (mut inbound, mut peer) = reader(role);
            peer.write_all(&bytes).await.unwrap();
            let outcome = next(&mut inbound).await;
            assert!(
                matches!(outcome, Err(Error::Protocol(_))),
                "case {i}: {outcome:?}"
            );
        }
    }

    #[tokio::test]
    async fn what_follows_a_close_frame_is_discarded_unread() {
        for (role, key) in [(Role::Client, None), (Role::Server, Some([4, 3, 2, 1]))] {
            let (mut inbound, mut peer) = reader(role);
            let mut bytes = frame(true, OpCode::Close, &[3, 232, b'o', b'k'], key);
            bytes.extend(frame(true, OpCode::Text, b"late", key));
            bytes.extend(frame(true, OpCode::Binary, &[0; 600], key));
            peer.write_all(&bytes).await.unwrap();
            let close = next(&mut inbound).await.unwrap().unwrap();
            assert_eq!(close.close_code(), Some(1000), "{role:?}");
            // The peer is still connected and writing: nothing more is read anyway.
            peer.write_all(&frame(true, OpCode::Text, b"later", key))
                .await
                .unwrap();
            assert!(next(&mut inbound).await.unwrap().is_none(), "{role:?}");
            assert!(inbound.next_buffered().unwrap().is_none(), "{role:?}");
        }
    }

    #[tokio::test]
    async fn characters_split_across_fragments_are_joined() {
        let text = "a\u{20ac}\u{1F600}z".as_bytes();
        for cut in 0..=text.len() {
            let (mut inbound, mut peer) = reader(Role::Client);
            let mut bytes = frame(false, OpCode::Text, &text[..cut], None);
            bytes.extend(frame(true, OpCode::Continuation, &text[cut..], None));
            peer.write_all(&bytes).await.unwrap();
            let message = next(&mut inbound).await.unwrap().unwrap();
            assert_eq!(message.data, text, "cut at {cut}");
        }
        // A message may not end in the middle of a character.
        let (mut inbound, mut peer) = reader(Role::Client);
        let mut bytes = frame(false, OpCode::Text, b"ok \xE2\x82", None);
        bytes.extend(frame(true, OpCode::Continuation, b"", None));
        peer.write_all(&bytes).await.unwrap();
        assert!(matches!(next(&mut inbound).await, Err(Error::InvalidUtf8)));
    }

    #[tokio::test]
    async fn text_fails_at_the_first_bytes_that_cannot_become_utf8() {
        // Each is followed by nothing, and the peer stays connected: the reader must not
        // wait for the rest of the message to know.
        let doomed: [&[u8]; 5] = [
            b"\xF4\x90",    // above U+10FFFF
            b"ok \xED\xA0", // a surrogate
            b"\xC0",        // an overlong encoding's lead byte
            b"\xE2\x82 ",   // a character cut short
            b"\xFF",
        ];
        for bytes in doomed {
            let (mut inbound, mut peer) = reader(Role::Client);
            let mut sent = frame(false, OpCode::Text, b"fine ", None);
            sent.extend(frame(false, OpCode::Continuation, bytes, None));
            peer.write_all(&sent).await.unwrap();
            let outcome = next(&mut inbound).await;
            assert!(
                matches!(outcome, Err(Error::InvalidUtf8)),
                "{bytes:?}: {outcome:?}"
            );
        }
        // Within one large frame too, before its payload is all in.
        let (mut inbound, mut peer) = reader(Role::Client);
        let mut payload = vec![b'x'; 5000];
        payload[100] = 0xFF;
        peer.write_all(&frame(true, OpCode::Text, &payload, None)[..1000])
            .await
            .unwrap();
        assert!(matches!(next(&mut inbound).await, Err(Error::InvalidUtf8)));
    }

    #[tokio::test]
    async fn extreme_limits_and_lengths_fail_cleanly() {
        // "No limit" (usize::MAX) and a zero limit, against the largest length a header
        // can claim and a few around the platform's allocation bound.
        let claims = [
            u64::MAX,
            u64::MAX - 1,
            isize::MAX as u64,
            (isize::MAX as u64) - 9,
        ];
        for limit in [usize::MAX, usize::MAX - 1, isize::MAX as usize, 0] {
            for claim in claims {
                for role in [Role::Client, Role::Server] {
                    let limits = ReadLimits {
                        message: limit,
                        frame: limit,
                        read_size: limit,
                    };
                    let mut bytes = vec![0x82, 127];
                    bytes.extend_from_slice(&claim.to_be_bytes());
                    if role == Role::Server {
                        bytes[1] |= 0x80;
                        bytes.extend_from_slice(&[1, 2, 3, 4]);
                    }
                    bytes.push(0);
                    let mut inbound = Inbound::new(&bytes[..], BytesMut::new(), limits, role);
                    let outcome = next(&mut inbound).await;
                    assert!(
                        matches!(outcome, Err(Error::MessageTooLarge { .. })),
                        "limit {limit} claim {claim} {role:?}: {outcome:?}"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn limits_and_text_are_checked() {
        let (mut inbound, mut peer) = reader(Role::Client);
        peer.write_all(&frame(true, OpCode::Text, &[0xff, 0xfe], None))
            .await
            .unwrap();
        assert!(matches!(next(&mut inbound).await, Err(Error::InvalidUtf8)));

        let (mut inbound, mut peer) = reader(Role::Client);
        let half = vec![0u8; LIMITS.message / 2 + 1];
        let writer = tokio::spawn(async move {
            let _ = peer
                .write_all(&frame(false, OpCode::Binary, &half, None))
                .await;
            let _ = peer
                .write_all(&frame(true, OpCode::Continuation, &half, None))
                .await;
        });
        assert!(matches!(
            next(&mut inbound).await,
            Err(Error::MessageTooLarge { limit, .. }) if limit == LIMITS.message
        ));
        drop(inbound);
        writer.await.unwrap();

        let (mut inbound, mut peer) = reader(Role::Client);
        peer.write_all(&frame(true, OpCode::Binary, b"cut", None)[..3])
            .await
            .unwrap();
        drop(peer);
        assert!(matches!(
            next(&mut inbound).await,
            Err(Error::ConnectionLost(_))
        ));
    }
}
