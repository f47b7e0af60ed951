//! The framing scenarios: a correct handshake, then frame headers that break RFC 6455
//! (lengths, fragmented or oversized control frames, reserved bits and opcodes, a mask).

use super::super::behaviour::BehaviourAttack;
use super::super::frame::{BINARY, CONTINUATION, Frame, PING, TEXT};
use super::{Category::Framing, FAIL_1002, Play, Scenario, frames, scenario};

/// 126 bytes of ping payload (more than the 125 a control frame may carry).
const LONG_PING: &[u8; 126] = &[b'p'; 126];

/// The framing scenarios, in the order `--list` shows them.
pub(super) const SCENARIOS: &[Scenario] = &[
    frames(
        "length-msb-set",
        Framing,
        "binary frame header with a 64-bit length of 2^63 (most significant bit set)",
        FAIL_1002,
        &[Frame::new(BINARY, b"xxxx").claiming(1 << 63)],
    ),
    frames(
        "length-huge",
        Framing,
        "binary frame header claiming 2^62 bytes, then 4 bytes",
        "fail the connection with 1009 (or 1002) from the header, without allocating",
        &[Frame::new(BINARY, b"xxxx").claiming(1 << 62)],
    ),
    scenario(
        "oversized-message",
        Framing,
        "one real 64 MiB binary message, streamed",
        "fail the connection with 1009 from the header, memory bounded",
        Play::Behaviour(BehaviourAttack::OversizedMessage),
    ),
    scenario(
        "endless-fragments",
        Framing,
        "a text message whose continuation frames never end (bounded by time)",
        "fail with 1009 once the message exceeds its limit",
        Play::Behaviour(BehaviourAttack::EndlessFragments),
    ),
    frames(
        "fragmented-ping",
        Framing,
        "ping frame with FIN=0",
        FAIL_1002,
        &[Frame::new(PING, b"frag").unfinished()],
    ),
    frames(
        "oversized-ping",
        Framing,
        "ping frame with a 126-byte payload (16-bit length)",
        FAIL_1002,
        &[Frame::new(PING, LONG_PING)],
    ),
    frames(
        "reserved-bits",
        Framing,
        "text frame with RSV1 set, no extension negotiated",
        FAIL_1002,
        &[Frame::new(TEXT, b"reserved").rsv(0b100)],
    ),
    frames(
        "reserved-opcode-data",
        Framing,
        "frame with reserved data opcode 0x3",
        FAIL_1002,
        &[Frame::new(0x3, b"reserved")],
    ),
    frames(
        "reserved-opcode-control",
        Framing,
        "frame with reserved control opcode 0xB",
        FAIL_1002,
        &[Frame::new(0xB, b"reserved")],
    ),
    frames(
        "masked-frame",
        Framing,
        "text frame with the mask bit set (servers must not mask)",
        FAIL_1002,
        &[Frame::new(TEXT, b"masked").masked([0x37, 0xFA, 0x21, 0x3D])],
    ),
    frames(
        "orphan-continuation",
        Framing,
        "continuation frame with no message to continue",
        FAIL_1002,
        &[Frame::new(CONTINUATION, b"orphan")],
    ),
];
