//! `Inbound`: the read side of a connection. Bytes are read into one small buffer; each
//! frame header is checked before its payload is buffered, small whole frames become
//! messages with one copy, and the payload of a large frame is read straight into the
//! message's own memory. Turning payloads into checked messages (fragments, UTF-8 as it
//! arrives, close payloads) is `assembly`'s job.
//!
//! With permessage-deflate (see [`Inbound::with_deflate`]), a compressed message's
//! payloads are unmasked in the buffer and inflated into the message, checked against the
//! message limit as they inflate.
//!
//! A server that only counts or echoes what it reads can take whole single-frame messages
//! where they lie in the buffer ([`Inbound::next_in_place`], in `inbound/in_place.rs`):
//! no copy, no allocation, the same checks.
//!
//! After a close frame nothing more is read (RFC 6455 section 5.5.1: what follows it is
//! discarded).
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
use crate::wire::assembly::{self, Assembly};
use crate::wire::deflate::Inflater;
use crate::wire::frame::{self, OpCode};
use crate::wire::negotiate::DeflateParams;
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

/// The read side of a connection: a socket (or its read half), its buffer and the
/// message being assembled. Cancel-safe (see the module documentation).
#[derive(Debug)]
pub struct Inbound<R = ReadHalf> {
    io: R,
    role: Role,
    buffer: BytesMut,
    /// Bytes at the start of `buffer` taken by messages handed out in place
    /// ([`next_in_place`](Self::next_in_place)): dropped from it before anything else
    /// looks at the buffer.
    consumed: usize,
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
    /// permessage-deflate's inflater, once negotiated.
    inflater: Option<Box<Inflater>>,
    /// Of the compressed messages read: their bytes, and their compressed payloads' bytes.
    compressed_totals: (u64, u64),
}

impl<R: AsyncRead + Unpin> Inbound<R> {
    /// Reads frames from `io` as `role` (a server expects masked frames, a client refuses
    /// them), starting with `buffered`: bytes that arrived with the handshake.
    pub fn new(io: R, buffered: BytesMut, limits: ReadLimits, role: Role) -> Self {
        Self {
            io,
            role,
            buffer: buffered,
            consumed: 0,
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
            inflater: None,
            compressed_totals: (0, 0),
        }
    }

    /// Reads compressed messages as agreed in `params` (permessage-deflate): RSV1 on a
    /// message's first frame marks it compressed. A compressed message is held to
    /// [`ReadLimits::message`] as it inflates, so a deflate bomb fails with
    /// [`Error::MessageTooLarge`] once the limit is passed; its compressed size is held
    /// to the limit plus an eighth (deflate's overhead is far smaller), so a stream of
    /// data that inflates to nothing cannot go on for ever either.
    pub fn with_deflate(mut self, params: &DeflateParams) -> Self {
        let peer = match self.role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        self.inflater = Some(Box::new(Inflater::new(params.sender_resets(peer))));
        self
    }

    /// The next message, ping, pong or close; `Ok(None)` when the peer ended the TCP
    /// connection between frames, and from the call after a close frame on (without
    /// reading: what follows a close is discarded). Pings and closes are not answered
    /// here: that is the caller's to do, on its write side.
    pub async fn next(&mut self) -> Result<Option<Message>, Error> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Of the compressed messages read so far: their bytes once inflated, and their
    /// payloads' bytes as they arrived (frame headers not included).
    pub fn compressed_totals(&self) -> (u64, u64) {
        self.compressed_totals
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

    /// Drops from the buffer what [`next_in_place`](Self::next_in_place) handed out.
    #[inline]
    fn settle(&mut self) {
        if self.consumed > 0 {
            self.buffer.advance(std::mem::take(&mut self.consumed));
        }
    }

    /// Reads more bytes: straight into the message when a large payload is pending,
    /// into the buffer otherwise.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        self.settle();
        let io = Pin::new(&mut self.io);
        if self.in_payload
            && self.buffer.is_empty()
            && self.frame_remaining >= self.limits.read_size
        {
            // A compressed payload goes through the buffer to the inflater.
            if let Some(assembly) = self.assembly.as_mut().filter(|a| !a.compressed) {
                let data = assembly.data_mut();
                data.reserve(self.frame_remaining.min(RESERVE_AHEAD));
                let start = data.len();
                let mut into = data.limit(self.frame_remaining);
                let read = std::task::ready!(tokio_util::io::poll_read_buf(io, cx, &mut into))?;
                if let Some(key) = self.frame_mask {
                    frame::apply_mask_at(&mut data[start..], key, self.frame_offset);
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
        self.settle();
        loop {
            if self.closed {
                return Ok(None);
            }
            if self.in_payload {
                let take = self.frame_remaining.min(self.buffer.len());
                if let Some(assembly) = &mut self.assembly {
                    if assembly.compressed {
                        self.inflate(take)?;
                    } else {
                        assembly.extend(&self.buffer[..take], self.frame_mask, self.frame_offset);
                        // Also covers what a direct read put in since the last call.
                        assembly.check_text()?;
                    }
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
            let deflate = self.inflater.is_some();
            let Some(header) = frame::parse_header(&self.buffer, self.limits.frame, deflate)?
            else {
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
                    if header.fin && self.buffer.len() >= whole && !header.compressed {
                        // The common case: a whole message in the buffer, one copy out.
                        let data = self.take_payload(&header);
                        return assembly::whole_message(message_type, data).map(Some);
                    }
                    let capacity = header.payload_len.min(RESERVE_AHEAD);
                    self.assembly = Some(Assembly::new(message_type, capacity, header.compressed));
                }
                OpCode::Continuation => {
                    let Some(assembly) = &self.assembly else {
                        return Err(Error::Protocol(
                            "a continuation frame arrived with no message to continue".into(),
                        ));
                    };
                    let (size, limit) = if assembly.compressed {
                        let limit = self.limits.message;
                        let wire_limit = limit.saturating_add(limit / 8);
                        (
                            assembly.wire_len.saturating_add(header.payload_len),
                            wire_limit,
                        )
                    } else {
                        let size = assembly.len().saturating_add(header.payload_len);
                        (size, self.limits.message)
                    };
                    if size > limit {
                        return Err(Error::MessageTooLarge { size, limit });
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

    /// Unmasks the next `take` buffered bytes of a compressed payload in place and
    /// inflates them into the message.
    #[cold]
    fn inflate(&mut self, take: usize) -> Result<(), Error> {
        let (Some(assembly), Some(inflater)) = (&mut self.assembly, &mut self.inflater) else {
            return Ok(());
        };
        let input = &mut self.buffer[..take];
        if let Some(key) = self.frame_mask {
            frame::apply_mask_at(input, key, self.frame_offset);
        }
        assembly.wire_len += take;
        inflater.inflate(input, assembly.data_mut(), self.limits.message)?;
        assembly.check_text()
    }

    /// The assembled message, once its last frame is in.
    fn finish_message(&mut self) -> Result<Message, Error> {
        let mut assembly = self.assembly.take().ok_or_else(|| {
            Error::Protocol("a frame ended a message that had not started".into())
        })?;
        if assembly.compressed {
            if let Some(inflater) = &mut self.inflater {
                inflater.finish(assembly.data_mut(), self.limits.message)?;
            }
            self.compressed_totals.0 += assembly.len() as u64;
            self.compressed_totals.1 += assembly.wire_len as u64;
        }
        assembly.finish()
    }

    /// A control frame as a message. A close frame ends the conversation: whatever
    /// follows it is discarded.
    fn control(&mut self, opcode: OpCode, payload: Vec<u8>) -> Result<Message, Error> {
        let message = assembly::control_message(opcode, payload)?;
        if message.message_type == MessageType::Close {
            self.closed = true;
            self.buffer = BytesMut::new();
            self.assembly = None;
        }
        Ok(message)
    }
}

mod in_place;

pub use in_place::InPlace;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod deflate_tests;
