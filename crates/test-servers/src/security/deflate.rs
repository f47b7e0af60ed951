//! permessage-deflate attacks (RFC 7692): answers a client must refuse (a window size out
//! of range or above its offer, a parameter unknown, repeated or with a value it may not
//! have, the extension twice), and, once agreed, compressed data it must refuse: a deflate
//! bomb, RSV1 where it may not be, data that does not inflate or inflates to invalid UTF-8.
//!
//! The offer is read and answered here by hand, and the compressed bytes are made with
//! flate2 directly (or precomputed and checked against flate2 in the tests), never with
//! `ws_client::wire`'s negotiation or codec: the client is tested against code it does not
//! share. Without an offer, the attacks that follow an agreement answer a plain 101 and send
//! the same frames (RSV1 then unnegotiated: 1002).

use flate2::{Compress, Compression, FlushCompress};

use super::behaviour::{Plan, stream_then_answer};
use super::conn::Conn;
use super::frame::{self, BINARY, CONTINUATION, Frame};

/// RSV1 as [`Frame::rsv`] takes it: "this message is compressed".
pub const RSV1: u8 = 0b100;

/// "compressed ping", deflated with a sync flush and its `00 00 ff ff` tail removed.
pub const COMPRESSED_PING: &[u8] =
    b"\x4a\xce\xcf\x2d\x28\x4a\x2d\x2e\x4e\x4d\x51\x28\xc8\xcc\x4b\x07\x00";
/// "compressed text, but nothing was negotiated", deflated the same way.
pub const COMPRESSED_TEXT: &[u8] =
    b"\x4a\xce\xcf\x2d\x28\x4a\x2d\x2e\x4e\x4d\x51\x28\x49\xad\x28\xd1\
    \x51\x48\x2a\x2d\x51\xc8\xcb\x2f\xc9\xc8\xcc\x4b\x57\x28\x4f\x2c\x56\xc8\x4b\x4d\xcf\x2f\xc9\
    \x4c\x2c\x49\x4d\x01\x00";
/// "inflates to invalid UTF-8: ED A0 80 (a surrogate)" with those three bytes raw, deflated.
pub const COMPRESSED_INVALID_UTF8: &[u8] = b"\xca\xcc\x4b\xcb\x49\x2c\x49\x2d\x56\x28\xc9\x57\
    \xc8\xcc\x2b\x4b\xcc\xc9\x4c\x51\x08\x0d\x71\xd3\xb5\xb0\x52\x78\xbb\xa0\x41\x41\x23\x51\xa1\
    \xb8\xb4\xa8\x28\x3f\x1d\xa8\x46\x13\x00";
/// "a compressed message in two frames", deflated, cut in two.
pub const COMPRESSED_HALVES: [&[u8]; 2] = [
    b"\x4a\x54\x48\xce\xcf\x2d\x28\x4a\x2d\x2e\x4e\x4d\x51\xc8\x05\x52\x89",
    b"\xe9\xa9\x0a\x99\x79\x0a\x25\xe5\xf9\x0a\x69\x45\x89\x40\x11\x00\x00",
];
/// Not deflate data: the first block's header is final with the reserved block type 3.
pub const NOT_DEFLATE: &[u8] = b"\xff\xff\xff\xff";

/// What `deflate-bomb` inflates to: 1 GiB of zeros.
pub const BOMB_LEN: u64 = 1 << 30;
/// Zeros compressed at a time (each flushed piece about 1 KiB).
const BOMB_PIECE: usize = 1 << 20;
/// Zeros each frame of the bomb inflates to (64 pieces, about 64 KiB on the wire).
const BOMB_FRAME: u64 = 64 << 20;

/// The permessage-deflate attacks.
#[derive(Debug, Clone, Copy)]
pub enum DeflateAttack {
    /// Answers the upgrade with these `Sec-WebSocket-Extensions` values, one header line
    /// each, then reads what the client does.
    Answer(&'static [&'static str]),
    /// Agrees to the offer but with `client_max_window_bits` above what it allows.
    ClientWindowAboveOffer,
    /// Agrees to the offer, then sends these frames and reads what the client does.
    Frames(&'static [Frame]),
    /// Agrees to the offer, then streams one message that inflates to [`BOMB_LEN`] bytes.
    Bomb,
}

/// A client's first permessage-deflate offer, as far as the attacks care (anything else
/// in it is ignored: this server need not judge offers).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// `server_no_context_takeover` was asked for.
    pub server_no_context_takeover: bool,
    /// `server_max_window_bits`, if the offer named it with a valid value.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits`: `Some(None)` when named without a value.
    pub client_max_window_bits: Option<Option<u8>>,
}

impl Offer {
    /// The first permessage-deflate element of `extensions` (the request's
    /// `Sec-WebSocket-Extensions` values, joined with commas), if there is one.
    pub fn parse(extensions: &str) -> Option<Self> {
        let element = extensions.split(',').find(|element| {
            let name = element.split(';').next().unwrap_or_default().trim();
            name.eq_ignore_ascii_case("permessage-deflate")
        })?;
        let mut offer = Offer::default();
        for param in element.split(';').skip(1) {
            let (name, value) = match param.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
                None => (param.trim(), None),
            };
            let bits = value
                .and_then(|v| v.parse::<u8>().ok())
                .filter(|b| (8..=15).contains(b));
            match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => offer.server_no_context_takeover = true,
                "server_max_window_bits" => offer.server_max_window_bits = bits,
                "client_max_window_bits" => offer.client_max_window_bits = Some(bits),
                _ => {}
            }
        }
        Some(offer)
    }

    /// The answer that agrees to this offer: the parameters it asked of the server (an
    /// answer must name them), nothing else.
    pub fn agreeing_answer(&self) -> String {
        let mut answer = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            answer.push_str(&format!("; server_max_window_bits={bits}"));
        }
        answer
    }

    /// A `client_max_window_bits` the offer does not allow: 10 when it did not name the
    /// parameter (RFC 7692 7.1.2.2: then the answer must not), one above its value, or 16
    /// when it named no value (any size up to 15 allowed).
    pub fn client_window_above(&self) -> u8 {
        match self.client_max_window_bits {
            None => 10,
            Some(None) => 16,
            Some(Some(bits)) => bits + 1,
        }
    }

    /// The window this server compresses with: what the offer allows, at least 9 (zlib's
    /// least). The bomb's matches are all one byte back, so 9 bits still honour an 8.
    fn server_window_bits(&self) -> u8 {
        self.server_max_window_bits.unwrap_or(15).max(9)
    }
}

impl DeflateAttack {
    /// Plays the attack on `conn`, whose upgrade request has been read; the caller bounds
    /// the time.
    pub async fn play(self, conn: &mut Conn) -> std::io::Result<()> {
        let offer = Offer::parse(&conn.request.extensions);
        match self {
            DeflateAttack::Answer(values) => {
                let extra: String = values
                    .iter()
                    .map(|value| format!("Sec-WebSocket-Extensions: {value}\r\n"))
                    .collect();
                conn.accept_with(&extra).await?;
                conn.answer_client().await;
            }
            DeflateAttack::ClientWindowAboveOffer => {
                let offer = offer.unwrap_or_default();
                let extra = format!(
                    "Sec-WebSocket-Extensions: {}; client_max_window_bits={}\r\n",
                    offer.agreeing_answer(),
                    offer.client_window_above()
                );
                conn.accept_with(&extra).await?;
                conn.answer_client().await;
            }
            DeflateAttack::Frames(frames) => {
                agree(conn, offer.as_ref()).await?;
                conn.send_frames(frames).await?;
                conn.answer_client().await;
            }
            DeflateAttack::Bomb => {
                agree(conn, offer.as_ref()).await?;
                let window = offer.map_or(15, |offer| offer.server_window_bits());
                let plan = bomb(window)?;
                stream_then_answer(conn, plan).await;
            }
        }
        Ok(())
    }
}

/// Completes the handshake agreeing to `offer`, or with a plain 101 without one.
async fn agree(conn: &mut Conn, offer: Option<&Offer>) -> std::io::Result<()> {
    match offer {
        Some(offer) => {
            let extra = format!("Sec-WebSocket-Extensions: {}\r\n", offer.agreeing_answer());
            conn.accept_with(&extra).await
        }
        None => conn.accept().await,
    }
}

/// The bomb as a [`Plan`]: a binary message with RSV1 in frames of [`BOMB_FRAME`]
/// inflated bytes, then an empty final continuation frame. Only one frame's worth of
/// compressed bytes (about 64 KiB) is ever held.
fn bomb(window_bits: u8) -> std::io::Result<Plan> {
    let mut compress = Compress::new_with_window_bits(Compression::best(), false, window_bits);
    let zeros = vec![0u8; BOMB_PIECE];
    let opening = sync_flush(&mut compress, &zeros)?;
    // Flushed on a window of zeros, the next piece refers only to zeros: it can follow the
    // opening piece, or itself, any number of times.
    let piece = sync_flush(&mut compress, &zeros)?;
    let pieces = (BOMB_FRAME / BOMB_PIECE as u64) as usize;
    let mut first_payload = opening;
    let mut repeated_payload = Vec::with_capacity(piece.len() * pieces);
    for i in 0..pieces {
        if i > 0 {
            first_payload.extend_from_slice(&piece);
        }
        repeated_payload.extend_from_slice(&piece);
    }
    let framed = |opcode: u8, rsv: u8, payload: &[u8]| {
        let (head, used) = frame::header(false, rsv, opcode, None, payload.len() as u64);
        let mut bytes = head[..used].to_vec();
        bytes.extend_from_slice(payload);
        bytes
    };
    let (last, used) = frame::header(true, 0, CONTINUATION, None, 0);
    Ok(Plan {
        first: framed(BINARY, RSV1, &first_payload),
        repeated: framed(CONTINUATION, 0, &repeated_payload),
        times: Some(BOMB_LEN / BOMB_FRAME - 1),
        last: last[..used].to_vec(),
    })
}

/// Compresses `input` and ends it with a sync flush (the `00 00 ff ff` tail kept: an empty
/// stored block mid-message is valid deflate).
fn sync_flush(compress: &mut Compress, input: &[u8]) -> std::io::Result<Vec<u8>> {
    let start = compress.total_in();
    let mut out = Vec::with_capacity(input.len() / 256 + 64);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        }
        let used = usize::try_from(compress.total_in() - start).unwrap_or(input.len());
        compress
            .compress_vec(&input[used..], &mut out, FlushCompress::Sync)
            .map_err(std::io::Error::other)?;
        let done = compress.total_in() - start == input.len() as u64;
        // A flush that left room in `out` is complete.
        if done && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests;
