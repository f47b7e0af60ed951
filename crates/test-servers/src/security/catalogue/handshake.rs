//! The handshake scenarios: the upgrade response is wrong, late or missing.

use super::super::handshake::HandshakeAttack;
use super::{Category::Handshake, Play, REFUSE, Scenario, scenario};

/// The handshake scenarios, in the order `--list` shows them.
pub(super) const SCENARIOS: &[Scenario] = &[
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
];
