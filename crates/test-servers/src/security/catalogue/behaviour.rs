//! The behaviour scenarios: misbehaviour over time (floods, silence, resets, data after a
//! close).

use super::super::behaviour::BehaviourAttack;
use super::super::frame::{CLOSE, Frame, TEXT};
use super::{Category::Behaviour, Play, Scenario, frames, scenario};

/// The behaviour scenarios, in the order `--list` shows them.
pub(super) const SCENARIOS: &[Scenario] = &[
    scenario(
        "ping-flood",
        Behaviour,
        "10000 pings as fast as the client reads, then the text message \"ping-flood done\"",
        "answer with pongs (or coalesce them), memory bounded, still receive the final message",
        Play::Behaviour(BehaviourAttack::PingFlood),
    ),
    scenario(
        "never-reads",
        Behaviour,
        "completes the handshake, sends one text message, never reads",
        "time out its sends (no unbounded send buffer) and give up",
        Play::Behaviour(BehaviourAttack::NeverReads),
    ),
    scenario(
        "no-close-reply",
        Behaviour,
        "sends one text message, reads but never answers the client's close frame",
        "time out the close handshake and drop the TCP connection",
        Play::Behaviour(BehaviourAttack::NoCloseReply),
    ),
    scenario(
        "reset-mid-frame",
        Behaviour,
        "sends half of a binary frame, then a TCP reset (SO_LINGER 0)",
        "report the connection lost, no hang",
        Play::Behaviour(BehaviourAttack::ResetMidFrame),
    ),
    frames(
        "data-after-close",
        Behaviour,
        "close frame 1000, then a text frame",
        "closed by peer with code 1000; the text frame never delivered (ignored, or failed as a protocol error)",
        &[
            Frame::new(CLOSE, b"\x03\xe8bye"),
            Frame::new(TEXT, b"data after close"),
        ],
    ),
];
