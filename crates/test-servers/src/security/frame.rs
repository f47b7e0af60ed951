//! A small WebSocket frame writer that sends what a well-behaved library refuses to: any
//! FIN/RSV bits, any opcode, a mask from the server, a length that lies, and a reader that
//! skims the client's frames (bounded) for its close code.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Opcode of a continuation frame.
pub const CONTINUATION: u8 = 0x0;
/// Opcode of a text frame.
pub const TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const PONG: u8 = 0xA;

/// Longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER: usize = 14;

/// One frame as the server sends it, lies included. `const` so that scenarios are data.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// The FIN bit.
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (`0b100` is RSV1).
    pub rsv: u8,
    /// The opcode (low four bits).
    pub opcode: u8,
    /// A masking key: servers must never mask, so setting one is an attack.
    pub mask: Option<[u8; 4]>,
    /// The length written in the header when it should differ from the payload's.
    pub claimed_len: Option<u64>,
    /// The payload bytes actually sent (masked with `mask` if there is one).
    pub payload: &'static [u8],
}

impl Frame {
    /// A final, unmasked frame with `opcode` and `payload`.
    pub const fn new(opcode: u8, payload: &'static [u8]) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            claimed_len: None,
            payload,
        }
    }

    /// The same frame without the FIN bit.
    pub const fn unfinished(mut self) -> Self {
        self.fin = false;
        self
    }

    /// The same frame with RSV bits `rsv` (`0b100` is RSV1).
    pub const fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv;
        self
    }

    /// The same frame, masked with `key`.
    pub const fn masked(mut self, key: [u8; 4]) -> Self {
        self.mask = Some(key);
        self
    }

    /// The same frame, its header claiming `len` payload bytes.
    pub const fn claiming(mut self, len: u64) -> Self {
        self.claimed_len = Some(len);
        self
    }

    /// Appends the encoded frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = self.claimed_len.unwrap_or(self.payload.len() as u64);
        let (header, used) = header(self.fin, self.rsv, self.opcode, self.mask, len);
        out.extend_from_slice(&header[..used]);
        match self.mask {
            Some(key) => out.extend(
                self.payload
                    .iter()
                    .enumerate()
                    .map(|(i, byte)| byte ^ key[i % 4]),
            ),
            None => out.extend_from_slice(self.payload),
        }
    }
}

/// Encodes a frame header with the shortest length form (7, 16 or 64 bits); the 64-bit
/// form is written as given, most significant bit included. Returns the bytes and how
/// many of them are used.
pub fn header(
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
) -> ([u8; MAX_HEADER], usize) {
    let mut out = [0u8; MAX_HEADER];
    out[0] = (u8::from(fin) << 7) | ((rsv & 0b111) << 4) | (opcode & 0x0F);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut used = 2;
    if len < 126 {
        out[1] = mask_bit | len as u8;
    } else if let Ok(short) = u16::try_from(len) {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&short.to_be_bytes());
        used = 4;
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&len.to_be_bytes());
        used = 10;
    }
    if let Some(key) = mask {
        out[used..used + 4].copy_from_slice(&key);
        used += 4;
    }
    (out, used)
}

/// A close frame payload: the code in network order followed by `reason`.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// An encoded, unmasked close frame with `code` and `reason` (at most 123 bytes).
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let payload = close_payload(code, crate::target::close_reason(reason));
    let (head, used) = header(true, 0, CLOSE, None, payload.len() as u64);
    let mut out = head[..used].to_vec();
    out.extend_from_slice(&payload);
    out
}

/// What the client sent, as far as a hostile server cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// A close frame with its payload (unmasked, at most 125 bytes).
    Close(Vec<u8>),
    /// Any other frame (its payload skipped, never buffered).
    Other {
        /// The frame's opcode.
        opcode: u8,
    },
}

/// Reads the client's frames one at a time, skipping payloads other than a close frame's,
/// so that memory stays bounded whatever the client sends. Cancel-safe: a read cut short
/// resumes where it stopped.
#[derive(Debug, Default)]
pub struct ClientReader {
    buffered: Vec<u8>,
    skipping: u64,
}

impl ClientReader {
    /// The next frame's kind, or `None` at end of stream or on a read error.
    pub async fn next(&mut self, io: &mut (impl AsyncRead + Unpin)) -> Option<ClientFrame> {
        self.skip(io).await?;
        self.fill(io, 2).await?;
        let opcode = self.buffered[0] & 0x0F;
        let masked = self.buffered[1] & 0x80 != 0;
        let short = self.buffered[1] & 0x7F;
        let extra = match short {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + extra + if masked { 4 } else { 0 };
        self.fill(io, header_len).await?;
        let len = match short {
            126 => u64::from(u16::from_be_bytes([self.buffered[2], self.buffered[3]])),
            127 => u64::from_be_bytes(self.buffered[2..10].try_into().ok()?),
            n => u64::from(n),
        };
        let key: Option<[u8; 4]> = if masked {
            Some(self.buffered[header_len - 4..header_len].try_into().ok()?)
        } else {
            None
        };
        if opcode == CLOSE && len <= 125 {
            self.fill(io, header_len + len as usize).await?;
            let mut payload: Vec<u8> = self
                .buffered
                .drain(..header_len + len as usize)
                .skip(header_len)
                .collect();
            if let Some(key) = key {
                payload
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, byte)| *byte ^= key[i % 4]);
            }
            return Some(ClientFrame::Close(payload));
        }
        self.buffered.drain(..header_len);
        self.skipping = len;
        Some(ClientFrame::Other { opcode })
    }

    async fn fill(&mut self, io: &mut (impl AsyncRead + Unpin), want: usize) -> Option<()> {
        let mut scratch = [0u8; 512];
        while self.buffered.len() < want {
            let n = io.read(&mut scratch).await.ok().filter(|&n| n > 0)?;
            self.buffered.extend_from_slice(&scratch[..n]);
        }
        Some(())
    }

    /// Discards the rest of the previous frame's payload.
    async fn skip(&mut self, io: &mut (impl AsyncRead + Unpin)) -> Option<()> {
        let held = (self.buffered.len() as u64).min(self.skipping);
        self.buffered.drain(..held as usize);
        self.skipping -= held;
        let mut scratch = [0u8; 4096];
        while self.skipping > 0 {
            let want = usize::try_from(self.skipping)
                .unwrap_or(usize::MAX)
                .min(scratch.len());
            let n = io
                .read(&mut scratch[..want])
                .await
                .ok()
                .filter(|&n| n > 0)?;
            self.skipping -= n as u64;
        }
        Some(())
    }
}

/// The close code in a close payload, if it has one.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(payload.get(..2)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: Frame) -> Vec<u8> {
        let mut out = Vec::new();
        frame.encode(&mut out);
        out
    }

    #[test]
    fn lengths_use_7_16_and_64_bits() {
        assert_eq!(header(true, 0, TEXT, None, 5).0[..2], [0x81, 5]);
        let (bytes, used) = header(true, 0, PING, None, 126);
        assert_eq!(bytes[..used], [0x89, 126, 0, 126]);
        let (bytes, used) = header(false, 0, BINARY, None, 1 << 63);
        assert_eq!(bytes[..used], [0x02, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn bits_and_masks_are_written_as_asked() {
        assert_eq!(encoded(Frame::new(TEXT, b"a").rsv(0b100)), [0xC1, 1, b'a']);
        assert_eq!(
            encoded(Frame::new(TEXT, b"ab").masked([1, 2, 3, 4])),
            [0x81, 0x82, 1, 2, 3, 4, b'a' ^ 1, b'b' ^ 2]
        );
        assert_eq!(encoded(Frame::new(PING, b"").unfinished()), [0x09, 0]);
        assert_eq!(
            encoded(Frame::new(BINARY, b"").claiming(1 << 62))[..3],
            [0x82, 127, 0x40]
        );
        assert_eq!(close_frame(1000, "ok"), [0x88, 4, 0x03, 0xE8, b'o', b'k']);
    }

    #[tokio::test]
    async fn the_reader_skips_data_and_unmasks_close() {
        let mut wire = Vec::new();
        Frame::new(BINARY, &[7; 300])
            .masked([9, 9, 9, 9])
            .encode(&mut wire);
        Frame::new(CLOSE, &[0x03, 0xEA])
            .masked([1, 2, 3, 4])
            .encode(&mut wire);
        let mut io = wire.as_slice();
        let mut reader = ClientReader::default();
        assert_eq!(
            reader.next(&mut io).await,
            Some(ClientFrame::Other { opcode: BINARY })
        );
        let Some(ClientFrame::Close(payload)) = reader.next(&mut io).await else {
            panic!("no close frame")
        };
        assert_eq!(close_code(&payload), Some(1002));
        assert_eq!(reader.next(&mut io).await, None);
    }
}
