//! The payload scenarios: well-formed frames carrying invalid payloads (UTF-8, close
//! codes).

use super::super::frame::{CLOSE, CONTINUATION, Frame, TEXT};
use super::{Category::Payload, FAIL_1002, FAIL_1007, Scenario, frames};

/// The payload scenarios, in the order `--list` shows them.
pub(super) const SCENARIOS: &[Scenario] = &[
    frames(
        "invalid-utf8",
        Payload,
        "text frame whose payload is not UTF-8 (a UTF-16 surrogate, ED A0 80)",
        FAIL_1007,
        &[Frame::new(
            TEXT,
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
        )],
    ),
    frames(
        "invalid-utf8-fragmented",
        Payload,
        "fragmented text message, an invalid sequence split across fragments (F0 9F | 28 8C)",
        FAIL_1007,
        &[
            Frame::new(TEXT, b"split \xf0\x9f").unfinished(),
            Frame::new(CONTINUATION, b"\x28\x8c here"),
        ],
    ),
    frames(
        "invalid-close-utf8",
        Payload,
        "close frame 1000 whose reason is not UTF-8",
        FAIL_1007,
        &[Frame::new(CLOSE, b"\x03\xe8bad \xff\xfe")],
    ),
    frames(
        "close-code-0",
        Payload,
        "close frame with code 0",
        FAIL_1002,
        &[Frame::new(CLOSE, b"\x00\x00")],
    ),
    frames(
        "close-code-999",
        Payload,
        "close frame with code 999",
        FAIL_1002,
        &[Frame::new(CLOSE, b"\x03\xe7")],
    ),
    frames(
        "close-code-1005",
        Payload,
        "close frame with code 1005 (reserved: no status)",
        FAIL_1002,
        &[Frame::new(CLOSE, b"\x03\xed")],
    ),
    frames(
        "close-code-1006",
        Payload,
        "close frame with code 1006 (reserved: abnormal closure)",
        FAIL_1002,
        &[Frame::new(CLOSE, b"\x03\xee")],
    ),
    frames(
        "close-code-5000",
        Payload,
        "close frame with code 5000 (outside every range)",
        FAIL_1002,
        &[Frame::new(CLOSE, b"\x13\x88")],
    ),
    frames(
        "close-one-byte",
        Payload,
        "close frame with a 1-byte payload",
        FAIL_1002,
        &[Frame::new(CLOSE, b"\x03")],
    ),
];
