//! `Outbound`: the write side of a connection. Small frames are encoded (header plus
//! masked payload) straight into one buffer; a large payload is masked in place in the
//! message's own memory and written after its header with a vectored write, so it is never
//! copied. Either way a burst of frames costs as few system calls as possible.
//!
//! With permessage-deflate (see [`Outbound::with_deflate`]), a text or binary message at
//! or over the threshold is compressed into a frame with RSV1 set; messages are sent whole
//! (one frame each), compressed or not.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::AsyncWrite;

use crate::config::DeflateConfig;
use crate::message::{Message, MessageType};
use crate::wire::Role;
use crate::wire::deflate::Deflater;
use crate::wire::frame::{self, MAX_HEADER_LEN, OpCode};
use crate::wire::negotiate::DeflateParams;
use crate::wire::socket::WriteHalf;

/// Mask keys are drawn this many at a time from the thread's CSPRNG (RFC 6455 section 10.3
/// asks for unpredictable keys); one draw per frame would cost as much as encoding it.
const MASK_KEYS_PER_DRAW: usize = 64;
/// A client's payloads up to this size (a one-byte length) are framed on the stack.
const SMALL_PAYLOAD: usize = 125;
/// Payloads from this size on are written from their own memory instead of being copied
/// into the buffer.
pub const OWNED_PAYLOAD_FROM: usize = 16 << 10;
/// RSV1 in a frame's first byte: a compressed message (permessage-deflate).
const RSV1: u8 = 0x40;
/// A buffer grown past this is released once written, so a burst does not leave a large
/// buffer behind on an idle connection.
const KEEP_BUFFER_UP_TO: usize = 256 << 10;
/// With [`Outbound::count_records`], most bytes handed to a TLS writer at a time: one TLS
/// record's worth of plaintext (rustls's largest fragment), so that each write is one
/// record, which reaches the socket whole or not at all as far as the peer can read.
const TLS_RECORD: usize = 16 << 10;

/// The write side of a connection: a socket (or its write half) and the frames encoded
/// for it. Frames are masked when the role is [`Role::Client`].
#[derive(Debug)]
pub struct Outbound<W = WriteHalf> {
    io: W,
    role: Role,
    /// Encoded frames; `buffer[written..]` is still to be written.
    buffer: Vec<u8>,
    written: usize,
    /// A large masked payload that follows everything in `buffer`, and how much of it
    /// has been written.
    owned: Option<(Vec<u8>, usize)>,
    mask_keys: [[u8; 4]; MASK_KEYS_PER_DRAW],
    next_key: usize,
    /// Bytes of frames encoded, and of them written to the socket, since the start: a
    /// frame whose last byte is at or below `written_total` has left the process.
    encoded_total: u64,
    written_total: u64,
    /// `io` keeps bytes it took in a buffer of its own before the socket has them (TLS).
    buffering_io: bool,
    /// Exact `written_total` over a buffering `io` (see [`count_records`](Self::count_records)).
    records: bool,
    /// Bytes `io` took that are not known to have reached the socket yet (their record's
    /// flush has not completed); counted in `written_total` once it has.
    unconfirmed: u64,
    /// permessage-deflate's compressor, once negotiated.
    deflater: Option<Box<Deflater>>,
    /// Of the messages sent compressed: their bytes, and their compressed payloads' bytes.
    compressed_totals: (u64, u64),
}

impl<W: AsyncWrite + Unpin> Outbound<W> {
    /// Writes frames to `io` as `role`.
    pub fn new(io: W, role: Role) -> Self {
        Self {
            io,
            role,
            buffer: Vec::new(),
            written: 0,
            owned: None,
            mask_keys: [[0; 4]; MASK_KEYS_PER_DRAW],
            next_key: MASK_KEYS_PER_DRAW,
            encoded_total: 0,
            written_total: 0,
            buffering_io: false,
            records: false,
            unconfirmed: 0,
            deflater: None,
            compressed_totals: (0, 0),
        }
    }

    /// Compresses text and binary messages as agreed in `params` (permessage-deflate),
    /// with the level and threshold of `config` (this side's): those at or over the
    /// threshold go out compressed, with RSV1 set. Control frames never are.
    pub fn with_deflate(mut self, params: &DeflateParams, config: &DeflateConfig) -> Self {
        let deflater = Deflater::new(
            config,
            params.sender_window_bits(self.role),
            params.sender_resets(self.role),
        );
        self.deflater = Some(Box::new(deflater));
        self
    }

    /// Of the messages sent compressed so far: their bytes before compression, and their
    /// payloads' bytes after it (frame headers not included).
    pub fn compressed_totals(&self) -> (u64, u64) {
        self.compressed_totals
    }

    /// The socket (or write half), for example to write bytes this type would not.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.io
    }

    /// Says that `io` keeps what it takes in a buffer of its own before the socket has it,
    /// as a TLS stream does: bytes it took are not yet written (see
    /// [`count_records`](Self::count_records)).
    pub fn set_buffering_io(&mut self, buffering: bool) {
        self.buffering_io = buffering;
    }

    /// Makes [`written_total`](Self::written_total) exact over a buffering `io` (TLS): at
    /// most one record's worth of plaintext is handed over at a time, and its bytes count
    /// as written only once `io`'s flush has pushed them to the socket. Costs a system call
    /// per 16 KiB of a large burst, so only a caller that needs the count turns it on (the
    /// resilient connection). Without a buffering `io` it changes nothing.
    pub fn count_records(&mut self) {
        self.records = self.buffering_io;
    }

    /// Bytes of frames encoded since the start: right after a frame is encoded, the
    /// position of its last byte in everything this side writes.
    pub fn encoded_total(&self) -> u64 {
        self.encoded_total
    }

    /// Bytes the socket has taken since the start. A frame whose end (see
    /// [`encoded_total`](Self::encoded_total)) is at or below this has been written whole.
    /// Over a buffering `io` (TLS) this counts what `io` took, some of which may still sit
    /// in its buffer, unless [`count_records`](Self::count_records) is on.
    pub fn written_total(&self) -> u64 {
        self.written_total
    }

    /// Bytes encoded but not yet written.
    pub fn pending(&self) -> usize {
        let owned = self.owned.as_ref().map_or(0, |(data, at)| data.len() - at);
        self.buffer.len() - self.written + owned
    }

    /// Whether another frame can be encoded before a flush: fewer than `threshold` bytes
    /// are waiting, and no large payload (nothing may be appended behind one).
    pub fn has_room(&self, threshold: usize) -> bool {
        self.owned.is_none() && self.pending() < threshold
    }

    /// A fresh masking key for a client's frame; none for a server's.
    #[inline]
    fn mask_key(&mut self) -> Option<[u8; 4]> {
        if self.role == Role::Server {
            return None;
        }
        if self.next_key == MASK_KEYS_PER_DRAW {
            let mut bytes = [0u8; 4 * MASK_KEYS_PER_DRAW];
            rand::fill(&mut bytes);
            for (key, drawn) in self.mask_keys.iter_mut().zip(bytes.chunks_exact(4)) {
                key.copy_from_slice(drawn);
            }
            self.next_key = 0;
        }
        let key = self.mask_keys[self.next_key];
        self.next_key += 1;
        Some(key)
    }

    #[inline]
    fn reset_if_written(&mut self) {
        if self.written == self.buffer.len() {
            self.buffer.clear();
            self.written = 0;
        }
    }

    /// Keeps frames in order when one is encoded behind a large payload that is still
    /// being written: the payload's rest moves into the buffer. The senders of this crate
    /// flush first (see [`has_room`](Self::has_room)), so this is the rare path.
    #[inline]
    fn absorb_owned(&mut self) {
        if self.owned.is_some() {
            self.absorb_owned_now();
        }
    }

    #[cold]
    fn absorb_owned_now(&mut self) {
        if let Some((data, at)) = self.owned.take() {
            self.buffer.extend_from_slice(&data[at..]);
        }
    }

    /// Appends one whole (unfragmented) frame carrying a copy of `payload`. The caller
    /// checks first that the message may be sent (see `Message::check_sendable`) and that
    /// there is room ([`has_room`](Self::has_room)).
    #[inline]
    pub fn encode(&mut self, message_type: MessageType, payload: &[u8]) {
        if self.deflater.is_some() && self.encode_compressed(message_type, payload) {
            return;
        }
        self.encode_frame(opcode(message_type), 0, payload);
    }

    /// Appends one whole frame carrying a copy of `payload`; `rsv1` is OR-ed into its
    /// first byte.
    #[inline]
    fn encode_frame(&mut self, opcode: OpCode, rsv1: u8, payload: &[u8]) {
        self.absorb_owned();
        self.reset_if_written();
        let key = self.mask_key();
        if let Some(key) = key
            && payload.len() <= SMALL_PAYLOAD
        {
            // Header and masked payload built on the stack and appended in one copy.
            let mut small = [0u8; 6 + SMALL_PAYLOAD];
            small[0] = 0x80 | rsv1 | opcode as u8;
            small[1] = 0x80 | payload.len() as u8;
            small[2..6].copy_from_slice(&key);
            let len = 6 + payload.len();
            frame::mask_into(&mut small[6..len], payload, key);
            self.buffer.extend_from_slice(&small[..len]);
            self.encoded_total += len as u64;
            return;
        }
        self.buffer.reserve(MAX_HEADER_LEN + payload.len());
        let before = self.buffer.len();
        frame::encode_header(&mut self.buffer, true, opcode, payload.len(), key);
        if rsv1 != 0 {
            self.buffer[before] |= rsv1;
        }
        match key {
            Some(key) => frame::extend_masked(&mut self.buffer, payload, key),
            None => self.buffer.extend_from_slice(payload),
        }
        self.encoded_total += (self.buffer.len() - before) as u64;
    }

    /// Like [`encode`](Self::encode), taking the message: a large payload (from
    /// [`OWNED_PAYLOAD_FROM`] bytes) is masked where it is and written from there.
    pub fn encode_owned(&mut self, message: Message) {
        let payload = message.data;
        if payload.len() < OWNED_PAYLOAD_FROM {
            return self.encode(message.message_type, &payload);
        }
        if self.deflater.is_some() && self.encode_compressed(message.message_type, &payload) {
            return;
        }
        self.encode_owned_frame(opcode(message.message_type), 0, payload);
    }

    /// Encodes a text or binary message compressed, if the deflater takes it; `false`
    /// (nothing encoded) for a control frame or a message to go uncompressed.
    #[cold]
    fn encode_compressed(&mut self, message_type: MessageType, payload: &[u8]) -> bool {
        let Some(deflater) = self.deflater.as_mut() else {
            return false;
        };
        if !matches!(message_type, MessageType::Text | MessageType::Binary)
            || !deflater.compress(payload)
        {
            return false;
        }
        let compressed = std::mem::take(&mut deflater.out);
        self.compressed_totals.0 += payload.len() as u64;
        self.compressed_totals.1 += compressed.len() as u64;
        let opcode = opcode(message_type);
        if compressed.len() >= OWNED_PAYLOAD_FROM {
            self.encode_owned_frame(opcode, RSV1, compressed);
        } else {
            self.encode_frame(opcode, RSV1, &compressed);
            // Kept for the next message.
            if let Some(deflater) = self.deflater.as_mut() {
                deflater.out = compressed;
            }
        }
        true
    }

    /// Appends one whole frame whose `payload` is masked in place and written from its own
    /// memory; `rsv1` is OR-ed into its first byte.
    fn encode_owned_frame(&mut self, opcode: OpCode, rsv1: u8, mut payload: Vec<u8>) {
        self.absorb_owned();
        self.reset_if_written();
        let key = self.mask_key();
        let before = self.buffer.len();
        frame::encode_header(&mut self.buffer, true, opcode, payload.len(), key);
        if rsv1 != 0 {
            self.buffer[before] |= rsv1;
        }
        self.encoded_total += (self.buffer.len() - before + payload.len()) as u64;
        if let Some(key) = key {
            frame::apply_mask(&mut payload, key);
        }
        self.owned = Some((payload, 0));
    }

    /// Writes out everything encoded, then flushes the socket (TLS needs it).
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        loop {
            // Counting records: the last one goes out before the next is handed over.
            self.poll_confirm(cx)?;
            if self.unconfirmed > 0 {
                return Poll::Pending;
            }
            let limit = if self.records { TLS_RECORD } else { usize::MAX };
            let head = &self.buffer[self.written..];
            let head = &head[..head.len().min(limit)];
            let n = match &self.owned {
                None if head.is_empty() => break,
                None => std::task::ready!(Pin::new(&mut self.io).poll_write(cx, head))?,
                Some((_, _)) if head.len() == limit => {
                    std::task::ready!(Pin::new(&mut self.io).poll_write(cx, head))?
                }
                Some((data, at)) => {
                    let rest = &data[*at..];
                    let rest = &rest[..rest.len().min(limit - head.len())];
                    let slices = [IoSlice::new(head), IoSlice::new(rest)];
                    std::task::ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices))?
                }
            };
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            if self.records {
                self.unconfirmed += n as u64;
            } else {
                self.written_total += n as u64;
            }
            let from_head = n.min(head.len());
            self.written += from_head;
            if let Some((data, at)) = &mut self.owned {
                *at += n - from_head;
                if *at == data.len() {
                    self.owned = None;
                }
            }
        }
        self.buffer.clear();
        self.written = 0;
        if self.buffer.capacity() > KEEP_BUFFER_UP_TO {
            self.buffer = Vec::new();
        }
        std::task::ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        self.written_total += std::mem::take(&mut self.unconfirmed);
        Poll::Ready(Ok(()))
    }

    /// Counting records, with bytes handed to `io` not known to be out: flushes `io`, and
    /// counts them written once that completed. `Pending` leaves them unconfirmed.
    fn poll_confirm(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        if self.unconfirmed > 0 {
            if let Poll::Ready(result) = Pin::new(&mut self.io).poll_flush(cx) {
                result?;
                self.written_total += std::mem::take(&mut self.unconfirmed);
            }
        }
        Ok(())
    }

    /// Flushes as far as the socket takes bytes right now; `Ok(true)` when all went out.
    /// No waker is registered: call [`poll_flush`](Self::poll_flush) to wait.
    pub fn flush_now(&mut self) -> std::io::Result<bool> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_flush(&mut cx) {
            Poll::Ready(result) => result.map(|()| true),
            Poll::Pending => Ok(false),
        }
    }

    /// Writes out everything encoded. Unbounded: wrap it in a timeout.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Shuts the write direction down once everything is written (after a close frame).
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        tokio::io::AsyncWriteExt::shutdown(&mut self.io).await
    }
}

/// The frame opcode of a message type.
fn opcode(message_type: MessageType) -> OpCode {
    match message_type {
        MessageType::Text => OpCode::Text,
        MessageType::Binary => OpCode::Binary,
        MessageType::Ping => OpCode::Ping,
        MessageType::Pong => OpCode::Pong,
        MessageType::Close => OpCode::Close,
    }
}

#[cfg(test)]
mod tests;
