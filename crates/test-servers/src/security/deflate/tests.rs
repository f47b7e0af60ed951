//! The deflate attacks' bytes checked against flate2's inflater: the precomputed payloads
//! say what their names say, the bomb inflates to what it claims from a small stream, and
//! offers are read and answered as RFC 7692 asks.

use flate2::{Decompress, FlushDecompress, Status};

use super::*;

/// The tail a sender removes and a receiver puts back (RFC 7692 section 7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Inflates one small message's payload (tail put back) with a window of `bits`.
fn inflate(payload: &[u8], bits: u8) -> Result<Vec<u8>, flate2::DecompressError> {
    let mut inflater = Decompress::new_with_window_bits(false, bits);
    let mut input = payload.to_vec();
    input.extend_from_slice(&TAIL);
    let mut out = Vec::with_capacity(4096);
    inflater.decompress_vec(&input, &mut out, FlushDecompress::Sync)?;
    Ok(out)
}

#[test]
fn the_precomputed_payloads_inflate_to_what_they_say() {
    assert_eq!(inflate(COMPRESSED_PING, 15).unwrap(), b"compressed ping");
    assert_eq!(
        inflate(COMPRESSED_TEXT, 15).unwrap(),
        b"compressed text, but nothing was negotiated"
    );
    let text = inflate(COMPRESSED_INVALID_UTF8, 15).unwrap();
    assert_eq!(
        text,
        b"inflates to invalid UTF-8: \xed\xa0\x80 (a surrogate)".as_slice()
    );
    assert!(std::str::from_utf8(&text).is_err());
    assert_eq!(
        inflate(&COMPRESSED_HALVES.concat(), 15).unwrap(),
        b"a compressed message in two frames"
    );
    assert!(inflate(NOT_DEFLATE, 15).is_err());
    assert!(COMPRESSED_PING.len() <= 125, "a control frame's payload");
}

/// The payload of one encoded server frame (no mask) and its first header byte.
fn payload(frame: &[u8]) -> (u8, &[u8]) {
    let (start, len) = match frame[1] {
        126 => (4, u64::from(u16::from_be_bytes([frame[2], frame[3]]))),
        127 => (10, u64::from_be_bytes(frame[2..10].try_into().unwrap())),
        n => (2, u64::from(n)),
    };
    assert_eq!(frame.len() as u64, start as u64 + len, "one whole frame");
    (frame[0], &frame[start..])
}

/// Feeds `input` to `inflater` through a fixed buffer; returns the bytes it produced and
/// whether the first buffer held only zeros.
fn feed(inflater: &mut Decompress, mut input: &[u8], buffer: &mut [u8]) -> (u64, bool) {
    let before = inflater.total_out();
    let mut zeros = true;
    let mut first = true;
    while !input.is_empty() {
        let taken = inflater.total_in();
        let made = inflater.total_out();
        let status = inflater
            .decompress(input, buffer, FlushDecompress::Sync)
            .expect("valid deflate data");
        assert_eq!(status, Status::Ok);
        let used = usize::try_from(inflater.total_in() - taken).unwrap();
        let produced = usize::try_from(inflater.total_out() - made).unwrap();
        if first {
            zeros = buffer[..produced].iter().all(|&b| b == 0);
            first = false;
        }
        input = &input[used..];
    }
    (inflater.total_out() - before, zeros)
}

#[test]
fn the_bomb_is_a_small_stream_of_frames_that_inflates_to_a_gibibyte() {
    for window in [15, 9] {
        let plan = bomb(window).unwrap();
        let (first_byte, first) = payload(&plan.first);
        assert_eq!(first_byte, 0x40 | BINARY, "RSV1, binary, not final");
        let (repeated_byte, repeated) = payload(&plan.repeated);
        assert_eq!(repeated_byte, CONTINUATION, "a continuation, no RSV1");
        assert_eq!(plan.last, [0x80 | CONTINUATION, 0], "an empty final frame");
        let times = plan.times.unwrap();
        let wire = first.len() as u64 + times * repeated.len() as u64;
        assert!(wire < 2 << 20, "{wire} compressed bytes");

        // A window of `window` bits reads it: the first frame, then the repeated one
        // twice (it can follow itself), then the tail a receiver adds.
        let mut inflater = Decompress::new_with_window_bits(false, window);
        let mut buffer = vec![1u8; 1 << 20];
        let (opening, zeros) = feed(&mut inflater, first, &mut buffer);
        assert_eq!(opening, BOMB_FRAME);
        assert!(zeros);
        for _ in 0..2 {
            let (more, zeros) = feed(&mut inflater, repeated, &mut buffer);
            assert_eq!(more, BOMB_FRAME);
            assert!(zeros);
        }
        assert_eq!(feed(&mut inflater, &TAIL, &mut buffer).0, 0);
        assert_eq!(BOMB_FRAME * (times + 1), BOMB_LEN);
    }
}

#[test]
fn offers_are_read_and_agreed_to_with_what_they_ask_of_the_server() {
    assert_eq!(Offer::parse(""), None);
    assert_eq!(Offer::parse("x-webkit-deflate-frame"), None);
    // ws-client's default offer.
    let offer = Offer::parse("permessage-deflate; client_max_window_bits").unwrap();
    assert_eq!(offer.client_max_window_bits, Some(None));
    assert_eq!(offer.agreeing_answer(), "permessage-deflate");
    assert_eq!(offer.client_window_above(), 16);
    assert_eq!(offer.server_window_bits(), 15);

    let offer = Offer::parse(
        "x-other, PerMessage-Deflate ; server_no_context_takeover; \
         server_max_window_bits=\"10\"; client_max_window_bits=12, permessage-deflate",
    )
    .unwrap();
    assert_eq!(
        offer,
        Offer {
            server_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(Some(12)),
        }
    );
    assert_eq!(
        offer.agreeing_answer(),
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
    );
    assert_eq!(offer.client_window_above(), 13);

    let offer = Offer::parse("permessage-deflate; server_max_window_bits=8").unwrap();
    assert_eq!(offer.server_window_bits(), 9, "zlib's least");
    assert_eq!(
        offer.client_window_above(),
        10,
        "not offered: any value is wrong"
    );
}
