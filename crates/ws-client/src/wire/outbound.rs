//! `Outbound`: the write side of a connection. Frames are encoded (header plus masked
//! payload) straight into one buffer and written with as few system calls as possible.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::AsyncWrite;

use crate::wire::frame::{self, MAX_HEADER_LEN, OpCode};
use crate::wire::socket::WriteHalf;

/// Mask keys are drawn this many at a time from the thread's CSPRNG (RFC 6455 section 10.3
/// asks for unpredictable keys); one draw per frame would cost as much as encoding it.
const MASK_KEYS_PER_DRAW: usize = 16;
/// A buffer grown past this by one large message is released once written, so a
/// connection that once sent 16 MiB does not hold 16 MiB for the rest of its life.
const KEEP_BUFFER_UP_TO: usize = 256 << 10;

/// The write half of a socket with its buffer of encoded frames.
#[derive(Debug)]
pub(crate) struct Outbound {
    io: WriteHalf,
    /// Encoded frames; `buffer[written..]` is still to be written.
    buffer: Vec<u8>,
    written: usize,
    mask_keys: [[u8; 4]; MASK_KEYS_PER_DRAW],
    next_key: usize,
}

impl Outbound {
    pub(crate) fn new(io: WriteHalf) -> Self {
        Self {
            io,
            buffer: Vec::new(),
            written: 0,
            mask_keys: [[0; 4]; MASK_KEYS_PER_DRAW],
            next_key: MASK_KEYS_PER_DRAW,
        }
    }

    /// Bytes encoded but not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.buffer.len() - self.written
    }

    fn mask_key(&mut self) -> [u8; 4] {
        if self.next_key == MASK_KEYS_PER_DRAW {
            self.mask_keys = rand::random();
            self.next_key = 0;
        }
        let key = self.mask_keys[self.next_key];
        self.next_key += 1;
        key
    }

    /// Appends one whole (unfragmented) frame carrying `payload`, masked as a client must.
    pub(crate) fn encode(&mut self, opcode: OpCode, payload: &[u8]) {
        if self.written == self.buffer.len() {
            self.buffer.clear();
            self.written = 0;
        }
        let key = self.mask_key();
        self.buffer.reserve(MAX_HEADER_LEN + payload.len());
        frame::encode_header(&mut self.buffer, true, opcode, payload.len(), Some(key));
        let start = self.buffer.len();
        self.buffer.extend_from_slice(payload);
        frame::apply_mask(&mut self.buffer[start..], key);
    }

    /// Writes out everything encoded, then flushes the socket (TLS needs it).
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.buffer.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.io).poll_write(cx, &self.buffer[self.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buffer.clear();
        self.written = 0;
        if self.buffer.capacity() > KEEP_BUFFER_UP_TO {
            self.buffer = Vec::new();
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Flushes as far as the socket takes bytes right now; `Ok(true)` when all went out.
    /// No waker is registered: call [`poll_flush`](Self::poll_flush) to wait.
    pub(crate) fn flush_now(&mut self) -> std::io::Result<bool> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_flush(&mut cx) {
            Poll::Ready(result) => result.map(|()| true),
            Poll::Pending => Ok(false),
        }
    }
}
