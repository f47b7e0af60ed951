//! The catalogue of attacks: one `const` table read by both `--list` and the dispatcher, so
//! that what is listed is what is served. Each entry says what the server does and what a
//! correct client does about it.

use serde::Serialize;

use super::behaviour::BehaviourAttack;
use super::frame::{BINARY, CLOSE, CONTINUATION, Frame, PING, TEXT};
use super::handshake::HandshakeAttack;

/// The family an attack belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// The upgrade response is wrong, late or missing.
    Handshake,
    /// A correct handshake, then frames whose header breaks RFC 6455.
    Framing,
    /// Well-formed frames carrying invalid payloads (UTF-8, close codes).
    Payload,
    /// Misbehaviour over time: floods, silence, resets.
    Behaviour,
}

impl Category {
    /// The category's name as listed.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Handshake => "handshake",
            Category::Framing => "framing",
            Category::Payload => "payload",
            Category::Behaviour => "behaviour",
        }
    }
}

/// What the server does on a scenario's connection.
#[derive(Debug, Clone, Copy)]
pub enum Play {
    /// Answers the upgrade request the hostile way.
    Handshake(HandshakeAttack),
    /// Completes the handshake, sends these frames, then reads what the client does.
    Frames(&'static [Frame]),
    /// Completes the handshake, then misbehaves over time.
    Behaviour(BehaviourAttack),
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The URL path that selects it (`ws://host:port/<name>`).
    pub name: &'static str,
    /// Its family.
    pub category: Category,
    /// What the server does.
    pub attack: &'static str,
    /// What a correct client does.
    pub expected: &'static str,
    /// How the server does it.
    pub play: Play,
}

const FAIL_1002: &str = "fail the connection with close code 1002";
const FAIL_1007: &str = "fail the connection with close code 1007";
const REFUSE: &str = "refuse the handshake (no open connection)";

const fn scenario(
    name: &'static str,
    category: Category,
    attack: &'static str,
    expected: &'static str,
    play: Play,
) -> Scenario {
    Scenario {
        name,
        category,
        attack,
        expected,
        play,
    }
}

const fn frames(
    name: &'static str,
    category: Category,
    attack: &'static str,
    expected: &'static str,
    frames: &'static [Frame],
) -> Scenario {
    scenario(name, category, attack, expected, Play::Frames(frames))
}

use Category::{Behaviour, Framing, Handshake, Payload};

/// 126 bytes of ping payload (more than the 125 a control frame may carry).
const LONG_PING: &[u8; 126] = &[b'p'; 126];

/// Every scenario, in the order `--list` shows them.
pub const SCENARIOS: &[Scenario] = &[
    scenario(
        "bad-accept",
        Handshake,
        "101 response whose Sec-WebSocket-Accept does not match the key",
        REFUSE,
        Play::Handshake(HandshakeAttack::BadAccept),
    ),
    scenario(
        "bad-status",
        Handshake,
        "200 OK (with otherwise valid upgrade headers) instead of 101",
        REFUSE,
        Play::Handshake(HandshakeAttack::BadStatus),
    ),
    scenario(
        "no-upgrade-header",
        Handshake,
        "101 response without the Upgrade: websocket header",
        REFUSE,
        Play::Handshake(HandshakeAttack::NoUpgradeHeader),
    ),
    scenario(
        "unoffered-subprotocol",
        Handshake,
        "101 response selecting a Sec-WebSocket-Protocol the client did not offer",
        REFUSE,
        Play::Handshake(HandshakeAttack::UnofferedSubprotocol),
    ),
    scenario(
        "unoffered-extension",
        Handshake,
        "101 response enabling an extension the client did not offer (permessage-deflate)",
        REFUSE,
        Play::Handshake(HandshakeAttack::UnofferedExtension),
    ),
    scenario(
        "slow-handshake",
        Handshake,
        "valid 101 response dribbled one byte per second",
        "time out the handshake",
        Play::Handshake(HandshakeAttack::SlowHandshake),
    ),
    scenario(
        "no-response",
        Handshake,
        "reads the upgrade request and never answers",
        "time out the handshake",
        Play::Handshake(HandshakeAttack::NoResponse),
    ),
    scenario(
        "header-flood",
        Handshake,
        "101 response with 10000 extra headers (about 300 KB)",
        "refuse the handshake (too many or too large headers), memory bounded",
        Play::Handshake(HandshakeAttack::HeaderFlood),
    ),
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

/// The scenario served at `path` (`/reserved-bits`), if there is one.
pub fn find(path: &str) -> Option<&'static Scenario> {
    let name = path.trim_start_matches('/');
    SCENARIOS.iter().find(|scenario| scenario.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_kebab_case_paths() {
        for (i, scenario) in SCENARIOS.iter().enumerate() {
            assert!(
                scenario
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                scenario.name
            );
            assert!(
                SCENARIOS[i + 1..].iter().all(|s| s.name != scenario.name),
                "{} twice",
                scenario.name
            );
            let found = find(&format!("/{}", scenario.name)).unwrap();
            assert_eq!(found.name, scenario.name);
            assert!(!scenario.attack.is_empty() && !scenario.expected.is_empty());
        }
        assert!(find("/no-such-attack").is_none());
    }

    #[test]
    fn every_handler_has_exactly_one_entry() {
        // Every entry has a handler by construction (the dispatcher matches `Play`
        // exhaustively); this checks the other way round.
        for attack in HandshakeAttack::ALL {
            let uses = SCENARIOS
                .iter()
                .filter(|s| matches!(s.play, Play::Handshake(a) if a == attack))
                .count();
            assert_eq!(uses, 1, "{attack:?}");
        }
        for attack in BehaviourAttack::ALL {
            let uses = SCENARIOS
                .iter()
                .filter(|s| matches!(s.play, Play::Behaviour(a) if a == attack))
                .count();
            assert_eq!(uses, 1, "{attack:?}");
        }
        for scenario in SCENARIOS {
            if let Play::Frames(frames) = scenario.play {
                assert!(!frames.is_empty(), "{}", scenario.name);
            }
            if let Play::Handshake(_) = scenario.play {
                assert_eq!(scenario.category, Category::Handshake, "{}", scenario.name);
            }
        }
    }
}
