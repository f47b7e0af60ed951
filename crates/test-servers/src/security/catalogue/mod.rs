//! The catalogue of attacks: one `const` table read by both `--list` and the dispatcher, so
//! that what is listed is what is served. Each entry says what the server does and what a
//! correct client does about it. The entries live in one file per category; [`SCENARIOS`]
//! joins them at compile time.

mod behaviour;
mod deflate;
mod framing;
mod handshake;
mod payload;

use serde::Serialize;

use super::behaviour::BehaviourAttack;
use super::deflate::DeflateAttack;
use super::frame::Frame;
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
    /// permessage-deflate (RFC 7692) answered wrongly or abused once agreed.
    Deflate,
}

impl Category {
    /// The category's name as listed.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Handshake => "handshake",
            Category::Framing => "framing",
            Category::Payload => "payload",
            Category::Behaviour => "behaviour",
            Category::Deflate => "deflate",
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
    /// Answers a permessage-deflate offer wrongly, or agrees on it and then abuses it.
    Deflate(DeflateAttack),
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

/// What a correct client does about a protocol violation.
const FAIL_1002: &str = "fail the connection with close code 1002";
/// What a correct client does about text that is not UTF-8.
const FAIL_1007: &str = "fail the connection with close code 1007";
/// What a correct client does about a wrong upgrade response.
const REFUSE: &str = "refuse the handshake (no open connection)";

/// An entry of the catalogue.
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

/// An entry that completes the handshake and sends `frames`.
const fn frames(
    name: &'static str,
    category: Category,
    attack: &'static str,
    expected: &'static str,
    frames: &'static [Frame],
) -> Scenario {
    scenario(name, category, attack, expected, Play::Frames(frames))
}

/// The categories' tables, in the order `--list` shows them.
const TABLES: [&[Scenario]; 5] = [
    handshake::SCENARIOS,
    framing::SCENARIOS,
    payload::SCENARIOS,
    behaviour::SCENARIOS,
    deflate::SCENARIOS,
];

/// How many scenarios the tables hold.
const COUNT: usize = {
    let mut count = 0;
    let mut table = 0;
    while table < TABLES.len() {
        count += TABLES[table].len();
        table += 1;
    }
    count
};

/// The tables joined into one array, at compile time.
const JOINED: [Scenario; COUNT] = {
    let mut joined = [TABLES[0][0]; COUNT];
    let (mut at, mut table) = (0, 0);
    while table < TABLES.len() {
        let mut entry = 0;
        while entry < TABLES[table].len() {
            joined[at] = TABLES[table][entry];
            at += 1;
            entry += 1;
        }
        table += 1;
    }
    joined
};

/// Every scenario, in the order `--list` shows them.
pub const SCENARIOS: &[Scenario] = &JOINED;

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
        let bombs = SCENARIOS
            .iter()
            .filter(|s| matches!(s.play, Play::Deflate(DeflateAttack::Bomb)))
            .count();
        let windows = SCENARIOS
            .iter()
            .filter(|s| matches!(s.play, Play::Deflate(DeflateAttack::ClientWindowAboveOffer)))
            .count();
        assert_eq!((bombs, windows), (1, 1));
        for scenario in SCENARIOS {
            match scenario.play {
                Play::Frames(frames) | Play::Deflate(DeflateAttack::Frames(frames)) => {
                    assert!(!frames.is_empty(), "{}", scenario.name);
                }
                Play::Deflate(DeflateAttack::Answer(lines)) => {
                    assert!(!lines.is_empty(), "{}", scenario.name);
                }
                _ => {}
            }
            if let Play::Handshake(_) = scenario.play {
                assert_eq!(scenario.category, Category::Handshake, "{}", scenario.name);
            }
            if let Play::Deflate(_) = scenario.play {
                assert_eq!(scenario.category, Category::Deflate, "{}", scenario.name);
            }
        }
    }

    #[test]
    fn each_table_holds_one_category_and_deflate_names_say_so() {
        let categories = [
            Category::Handshake,
            Category::Framing,
            Category::Payload,
            Category::Behaviour,
            Category::Deflate,
        ];
        for (table, category) in TABLES.iter().zip(categories) {
            assert!(!table.is_empty(), "{category:?}");
            for scenario in *table {
                assert_eq!(scenario.category, category, "{}", scenario.name);
                let deflate = scenario.name.starts_with("deflate-");
                assert_eq!(deflate, category == Category::Deflate, "{}", scenario.name);
            }
        }
        assert_eq!(
            SCENARIOS.len(),
            TABLES.iter().map(|t| t.len()).sum::<usize>()
        );
        assert_eq!(SCENARIOS[0].name, "bad-accept");
    }
}
