//! ws-client against every `security` scenario: records what the client reports for each
//! (on stderr, shown with `--nocapture`) and asserts only that each run ends in bounded
//! time without a panic. Judging each outcome against the catalogue's `expected` is later.

use std::collections::BTreeMap;
use std::time::Duration;

use integration::{TestServer, run_test_servers};
use serde_json::Value;
use ws_client::{Message, MessageType, TransportConfig, WebSocketConnection};

use crate::support::within_for;

/// Bounds given to the client: short, so that every scenario ends quickly.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the client waits for another message before moving on.
const QUIET: Duration = Duration::from_secs(1);
/// Most messages read from one scenario (the ping flood sends 10000 pings).
const MAX_MESSAGES: usize = 20_000;
/// Sends tried on each connection (1 MiB each): enough to fill a peer that never reads.
const SENDS: usize = 64;

/// Connects to `url`, reads until error or quiet, sends, then disconnects; describes
/// every step's outcome.
async fn exercise(url: String) -> String {
    let config = TransportConfig {
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
async fn ws_client_survives_every_hostile_scenario() {
    let output = run_test_servers(&["security", "--list", "--json"]);
    assert!(output.status.success());
    let catalogue: Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<String> = catalogue
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap().to_owned())
        .collect();
    let server = TestServer::start_with("security", &["--max-scenario-time", "20s"]);
    let runs = names.iter().map(|name| {
        let url = server.url_with_path(name);
        async move {
            let outcome = tokio::spawn(exercise(url)).await;
            (name, outcome)
        }
    });
    let outcomes = within_for(
        Duration::from_secs(60),
        futures_util::future::join_all(runs),
    )
    .await;
    let mut panics = Vec::new();
    for (name, outcome) in outcomes {
        match outcome {
            Ok(outcome) => eprintln!("{name:<26} {outcome}"),
            Err(e) => panics.push(format!("{name}: {e}")),
        }
    }
    assert!(panics.is_empty(), "{panics:?}");
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
        }) => {
            assert!(reason.contains("did not offer"), "{reason}");
        }
        other => panic!("expected HandshakeRejected, got {other:?}"),
    }
}
