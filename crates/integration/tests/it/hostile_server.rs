//! ws-client against every `security` scenario: each run must end within a time bound,
//! without a panic, with the outcome RFC 6455 (and RFC 7692 for the `deflate` category,
//! where the client offers permessage-deflate) prescribes for that attack (the table
//! [`EXPECTED`]). The outcomes are printed on stderr (`--nocapture` shows them).

use std::collections::BTreeMap;
use std::time::Duration;

use integration::{TestServer, run_test_servers};
use serde_json::Value;
use ws_client::{DeflateConfig, Message, MessageType, TransportConfig, WebSocketConnection};

use crate::support::within_for;

/// Bounds given to the client: short, so that every scenario ends quickly.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the client waits for another message before moving on.
const QUIET: Duration = Duration::from_secs(1);
/// Most messages read from one scenario (the ping flood sends 10000 pings).
const MAX_MESSAGES: usize = 20_000;
/// Sends tried on each connection (1 MiB each): enough to fill a peer that never reads.
const SENDS: usize = 64;

/// The longest one scenario may take with the client's 2 s timeouts.
const SCENARIO_BOUND: Duration = Duration::from_secs(15);

/// What ws-client must report for each scenario: the start of the run's log, naming the
/// typed error of the step that ended it (the `Debug` form of [`ws_client::Error`]).
const EXPECTED: &[(&str, &str)] = &[
    (
        "bad-accept",
        "connect: HandshakeRejected { status: Some(101)",
    ),
    (
        "bad-status",
        "connect: HandshakeRejected { status: Some(200)",
    ),
    (
        "no-upgrade-header",
        "connect: HandshakeRejected { status: Some(101)",
    ),
    (
        "unoffered-subprotocol",
        "connect: HandshakeRejected { status: Some(101)",
    ),
    (
        "unoffered-extension",
        "connect: HandshakeRejected { status: Some(101)",
    ),
    ("slow-handshake", "connect: ConnectTimeout"),
    ("no-response", "connect: ConnectTimeout"),
    ("header-flood", "connect: HandshakeRejected { status: None"),
    // Refused from the frame header, before any payload is buffered (close 1009).
    ("length-msb-set", "connected; receive: MessageTooLarge"),
    ("length-huge", "connected; receive: MessageTooLarge"),
    ("oversized-message", "connected; receive: MessageTooLarge"),
    ("endless-fragments", "connected; receive: MessageTooLarge"),
    // Protocol violations: the connection is failed with close 1002.
    ("fragmented-ping", "connected; receive: Protocol("),
    ("oversized-ping", "connected; receive: Protocol("),
    ("reserved-bits", "connected; receive: Protocol("),
    ("reserved-opcode-data", "connected; receive: Protocol("),
    ("reserved-opcode-control", "connected; receive: Protocol("),
    ("masked-frame", "connected; receive: Protocol("),
    ("orphan-continuation", "connected; receive: Protocol("),
    ("close-one-byte", "connected; receive: Protocol("),
    ("close-code-0", "connected; receive: Protocol("),
    ("close-code-999", "connected; receive: Protocol("),
    ("close-code-1005", "connected; receive: Protocol("),
    ("close-code-1006", "connected; receive: Protocol("),
    ("close-code-5000", "connected; receive: Protocol("),
    // What follows a close frame is discarded (RFC 6455 section 5.5.1): the close is
    // delivered, then the peer's code.
    (
        "data-after-close",
        "connected; receive: ClosedByPeer { code: 1000, reason: \"bye\" }; received {\"close\": 1}",
    ),
    // Invalid UTF-8: failed with close 1007.
    ("invalid-utf8", "connected; receive: InvalidUtf8"),
    ("invalid-utf8-fragmented", "connected; receive: InvalidUtf8"),
    ("invalid-close-utf8", "connected; receive: InvalidUtf8"),
    // Every ping answered; the connection stays usable and closes cleanly.
    (
        "ping-flood",
        "connected; received {\"ping\": 10000, \"text\": 1}; sent 64 MiB; disconnect: ok",
    ),
    // Sends back up: the send times out instead of buffering without bound.
    ("never-reads", "connected; received {\"text\": 1}; send #"),
    (
        "no-close-reply",
        "connected; received {\"text\": 1}; sent 64 MiB; disconnect: CloseTimeout",
    ),
    ("reset-mid-frame", "connected; receive: ConnectionLost("),
    // permessage-deflate offered: answers the offer did not allow are refused...
    ("deflate-client-window-above-offer", REFUSED_101),
    ("deflate-window-7", REFUSED_101),
    ("deflate-window-16", REFUSED_101),
    ("deflate-window-leading-zero", REFUSED_101),
    ("deflate-window-no-value", REFUSED_101),
    ("deflate-unknown-param", REFUSED_101),
    ("deflate-param-twice", REFUSED_101),
    ("deflate-flag-with-value", REFUSED_101),
    ("deflate-answered-twice", REFUSED_101),
    // ...a bomb stops at the message limit (1009), RSV1 where it may not be and data that
    // does not inflate are protocol errors (1002), inflated text is checked (1007).
    ("deflate-bomb", "connected; receive: MessageTooLarge"),
    ("deflate-compressed-ping", "connected; receive: Protocol("),
    ("deflate-compressed-close", "connected; receive: Protocol("),
    ("deflate-rsv1-continuation", "connected; receive: Protocol("),
    ("deflate-invalid-data", "connected; receive: Protocol("),
    ("deflate-invalid-utf8", "connected; receive: InvalidUtf8"),
    ("deflate-declined-rsv1", "connected; receive: Protocol("),
];

/// A 101 response the client refused.
const REFUSED_101: &str = "connect: HandshakeRejected { status: Some(101)";

/// Connects to `url` (offering permessage-deflate if `deflate`), reads until error or
/// quiet, sends, then disconnects; describes every step's outcome.
async fn exercise(url: String, deflate: bool) -> String {
    let config = TransportConfig {
        compression: deflate.then(DeflateConfig::default),
        connect_timeout: CLIENT_TIMEOUT,
        close_timeout: CLIENT_TIMEOUT,
        send_timeout: CLIENT_TIMEOUT,
        ..TransportConfig::new(url)
    };
    let mut connection = match WebSocketConnection::open(config).await {
        Ok(connection) => connection,
        Err(e) => return format!("connect: {e:?}"),
    };
    let mut log = vec![String::from("connected")];
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = false;
    while received.values().sum::<usize>() < MAX_MESSAGES {
        match tokio::time::timeout(QUIET, connection.receive_message()).await {
            Err(_) => break,
            Ok(Ok(message)) => {
                let kind = match message.message_type {
                    MessageType::Text => "text",
                    MessageType::Binary => "binary",
                    MessageType::Ping => "ping",
                    MessageType::Pong => "pong",
                    MessageType::Close => "close",
                };
                *received.entry(kind.to_owned()).or_default() += 1;
            }
            Ok(Err(e)) => {
                log.push(format!("receive: {e:?}"));
                failed = true;
                break;
            }
        }
    }
    if !received.is_empty() {
        log.push(format!("received {received:?}"));
    }
    if !failed {
        let payload = vec![0u8; 1 << 20];
        let mut sent = 0;
        for _ in 0..SENDS {
            match connection
                .send_message(&Message::binary(payload.clone()))
                .await
            {
                Ok(()) => sent += 1,
                Err(e) => {
                    log.push(format!("send #{}: {e:?}", sent + 1));
                    break;
                }
            }
        }
        if sent == SENDS {
            log.push(format!("sent {sent} MiB"));
        }
    }
    log.push(match connection.disconnect().await {
        Ok(()) => String::from("disconnect: ok"),
        Err(e) => format!("disconnect: {e:?}"),
    });
    log.join("; ")
}

#[tokio::test]
async fn ws_client_meets_every_hostile_scenario_as_rfc_6455_prescribes() {
    let output = run_test_servers(&["security", "--list", "--json"]);
    assert!(output.status.success());
    let catalogue: Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<(String, bool)> = catalogue
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let name = entry["name"].as_str().unwrap().to_owned();
            (name, entry["category"] == "deflate")
        })
        .collect();
    let server = TestServer::start_with("security", &["--max-scenario-time", "20s"]);
    let runs = names.iter().map(|(name, deflate)| {
        let url = server.url_with_path(name);
        async move {
            let started = std::time::Instant::now();
            let outcome = tokio::spawn(exercise(url, *deflate)).await;
            (name, outcome, started.elapsed())
        }
    });
    let outcomes = within_for(
        Duration::from_secs(60),
        futures_util::future::join_all(runs),
    )
    .await;
    let mut wrong = Vec::new();
    for (name, outcome, took) in outcomes {
        let expected = EXPECTED.iter().find(|(scenario, _)| scenario == name);
        let Some((_, expected)) = expected else {
            wrong.push(format!("{name}: no expected outcome in EXPECTED"));
            continue;
        };
        match outcome {
            Ok(outcome) => {
                eprintln!("{name:<26} {took:>6.2?}  {outcome}");
                if !outcome.starts_with(expected) {
                    wrong.push(format!("{name}: got `{outcome}`, expected `{expected}...`"));
                }
                if name == "never-reads" && !outcome.contains("SendTimeout") {
                    wrong.push(format!(
                        "{name}: the blocked send did not time out: {outcome}"
                    ));
                }
            }
            Err(e) => wrong.push(format!("{name}: the client panicked: {e}")),
        }
        if took > SCENARIO_BOUND {
            wrong.push(format!(
                "{name}: took {took:?}, more than {SCENARIO_BOUND:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(
        names.len(),
        EXPECTED.len(),
        "EXPECTED lists scenarios the catalogue lacks"
    );
    let (status, stopped) = server.stop();
    assert!(status.success());
    eprintln!("{stopped}");
}

#[tokio::test]
async fn an_extension_the_client_did_not_offer_is_refused() {
    let server = TestServer::start("security");
    let url = format!("ws://{}/unoffered-extension", server.addr());
    match within_for(
        CLIENT_TIMEOUT * 2,
        WebSocketConnection::open(TransportConfig::new(url)),
    )
    .await
    {
        Err(ws_client::Error::HandshakeRejected {
            status: Some(101),
            reason,
            ..
        }) => {
            assert!(reason.contains("did not offer"), "{reason}");
        }
        other => panic!("expected HandshakeRejected, got {other:?}"),
    }
}
