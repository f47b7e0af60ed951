//! The deflate scenarios (RFC 7692): answers to a permessage-deflate offer that a client
//! must refuse, and compressed data it must refuse once the extension is agreed. The
//! answer to an offer the client did not make at all is the handshake scenario
//! `unoffered-extension`.

use super::super::deflate::{
    COMPRESSED_HALVES, COMPRESSED_INVALID_UTF8, COMPRESSED_PING, COMPRESSED_TEXT, DeflateAttack,
    NOT_DEFLATE, RSV1,
};
use super::super::frame::{CLOSE, CONTINUATION, Frame, PING, TEXT};
use super::{Category::Deflate, FAIL_1002, FAIL_1007, Play, Scenario, frames, scenario};

/// What a correct client does about an answer its offer did not allow.
const REFUSE_ANSWER: &str =
    "refuse the handshake, naming what is wrong in the answer (no open connection)";

/// A scenario whose 101 response carries these `Sec-WebSocket-Extensions` lines.
const fn answer(
    name: &'static str,
    attack: &'static str,
    lines: &'static [&'static str],
) -> Scenario {
    scenario(
        name,
        Deflate,
        attack,
        REFUSE_ANSWER,
        Play::Deflate(DeflateAttack::Answer(lines)),
    )
}

/// A scenario that agrees to the offer, then sends `frames`.
const fn agreed(
    name: &'static str,
    attack: &'static str,
    expected: &'static str,
    frames: &'static [Frame],
) -> Scenario {
    scenario(
        name,
        Deflate,
        attack,
        expected,
        Play::Deflate(DeflateAttack::Frames(frames)),
    )
}

/// The deflate scenarios, in the order `--list` shows them.
pub(super) const SCENARIOS: &[Scenario] = &[
    scenario(
        "deflate-client-window-above-offer",
        Deflate,
        "101 agreeing to permessage-deflate with client_max_window_bits above the offer's \
         (10 if not offered, 16 if offered without a value, else the value + 1)",
        REFUSE_ANSWER,
        Play::Deflate(DeflateAttack::ClientWindowAboveOffer),
    ),
    answer(
        "deflate-window-7",
        "101 answering permessage-deflate; server_max_window_bits=7 (below 8-15)",
        &["permessage-deflate; server_max_window_bits=7"],
    ),
    answer(
        "deflate-window-16",
        "101 answering permessage-deflate; server_max_window_bits=16 (above 8-15)",
        &["permessage-deflate; server_max_window_bits=16"],
    ),
    answer(
        "deflate-window-leading-zero",
        "101 answering permessage-deflate; server_max_window_bits=09 (a leading zero)",
        &["permessage-deflate; server_max_window_bits=09"],
    ),
    answer(
        "deflate-window-no-value",
        "101 answering permessage-deflate; server_max_window_bits (an answer must give the value)",
        &["permessage-deflate; server_max_window_bits"],
    ),
    answer(
        "deflate-unknown-param",
        "101 answering permessage-deflate; x_unknown (a parameter RFC 7692 does not define)",
        &["permessage-deflate; x_unknown"],
    ),
    answer(
        "deflate-param-twice",
        "101 answering permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
    ),
    answer(
        "deflate-flag-with-value",
        "101 answering permessage-deflate; server_no_context_takeover=1 (a flag with a value)",
        &["permessage-deflate; server_no_context_takeover=1"],
    ),
    answer(
        "deflate-answered-twice",
        "101 with two Sec-WebSocket-Extensions lines, each agreeing to permessage-deflate",
        &["permessage-deflate", "permessage-deflate"],
    ),
    scenario(
        "deflate-bomb",
        Deflate,
        "agrees to permessage-deflate, then one binary message of 16 frames that inflates to \
         1 GiB of zeros (about 1 MiB compressed, streamed)",
        "fail with 1009 once the inflated message passes its limit, in bounded time and memory",
        Play::Deflate(DeflateAttack::Bomb),
    ),
    agreed(
        "deflate-compressed-ping",
        "agrees to permessage-deflate, then a ping with RSV1 set (a deflated payload)",
        FAIL_1002,
        &[Frame::new(PING, COMPRESSED_PING).rsv(RSV1)],
    ),
    agreed(
        "deflate-compressed-close",
        "agrees to permessage-deflate, then a close frame 1000 with RSV1 set",
        FAIL_1002,
        &[Frame::new(CLOSE, b"\x03\xe8").rsv(RSV1)],
    ),
    agreed(
        "deflate-rsv1-continuation",
        "agrees to permessage-deflate, then a compressed text message in two frames, RSV1 on both",
        FAIL_1002,
        &[
            Frame::new(TEXT, COMPRESSED_HALVES[0])
                .rsv(RSV1)
                .unfinished(),
            Frame::new(CONTINUATION, COMPRESSED_HALVES[1]).rsv(RSV1),
        ],
    ),
    agreed(
        "deflate-invalid-data",
        "agrees to permessage-deflate, then a text frame with RSV1 whose payload is not deflate \
         data (FF FF FF FF: a block of the reserved type 3)",
        "fail the connection (RFC 7692 names no code; 1002 as a protocol error)",
        &[Frame::new(TEXT, NOT_DEFLATE).rsv(RSV1)],
    ),
    agreed(
        "deflate-invalid-utf8",
        "agrees to permessage-deflate, then a compressed text message that inflates to invalid \
         UTF-8 (ED A0 80)",
        FAIL_1007,
        &[Frame::new(TEXT, COMPRESSED_INVALID_UTF8).rsv(RSV1)],
    ),
    frames(
        "deflate-declined-rsv1",
        Deflate,
        "declines the offer (a 101 without the extension), then a text frame with RSV1 whose \
         payload is valid deflate data",
        FAIL_1002,
        &[Frame::new(TEXT, COMPRESSED_TEXT).rsv(RSV1)],
    ),
];
