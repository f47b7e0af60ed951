//! ws-client against the `security` server's deflate scenarios, one at a time, with
//! permessage-deflate offered (and without, where RSV1 must then be refused): every invalid
//! answer refused at connect with the reason named, every abuse of an agreed extension
//! failed with the close code RFC 6455 and RFC 7692 call for, each within [`BOUND`]. The
//! close code is checked on both sides: the error's, and the one the server received (its
//! `scenario` event). The deflate bomb runs in a child process (this test binary again, on
//! that one test), so that its peak resident memory is the client's alone. And the valid
//! edges next to the refused answers (8 bits, a quoted value) are accepted.

use std::process::Command;
use std::time::{Duration, Instant};

use integration::TestServer;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use ws_client::{DeflateConfig, Error, TransportConfig, WebSocketConnection};

use crate::raw_peer::{RawServer, server_frame};
use crate::support::{STEP_TIMEOUT, within, within_for};

/// The most any of these scenarios may take, connect included.
const BOUND: Duration = Duration::from_secs(3);
/// Set in the child: the URL of the deflate bomb it is to receive.
const BOMB_CHILD_URL: &str = "WS_CLIENT_DEFLATE_BOMB_CHILD_URL";
/// Peak resident memory the child may reach: the 16 MiB message limit, the test binary
/// and its runtime (about 29 MiB in all, measured). Inflating the whole bomb would take
/// over 1 GiB.
const BOMB_MEMORY_BOUND: u64 = 64 << 20;

/// `url` with permessage-deflate offered as `offer` says (`None`: not offered).
fn config(url: String, offer: Option<DeflateConfig>) -> TransportConfig {
    TransportConfig {
        compression: offer,
        connect_timeout: BOUND,
        close_timeout: BOUND,
        send_timeout: BOUND,
        ..TransportConfig::new(url)
    }
}

/// The server's `scenario` event for the run of `name` that just ended.
fn scenario_event(server: &TestServer, name: &str) -> Value {
    loop {
        let event = server
            .next_event(STEP_TIMEOUT)
            .unwrap_or_else(|| panic!("no scenario event for {name}"));
        if event["event"] == "scenario" {
            assert_eq!(event["name"], name, "{event}");
            return event;
        }
    }
}

/// Answers the client must refuse, with what its reason must name.
const REFUSED: &[(&str, &str)] = &[
    (
        "deflate-client-window-above-offer",
        "client_max_window_bits=\"16\" is not a window size",
    ),
    (
        "deflate-window-7",
        "server_max_window_bits=\"7\" is not a window size",
    ),
    (
        "deflate-window-16",
        "server_max_window_bits=\"16\" is not a window size",
    ),
    (
        "deflate-window-leading-zero",
        "server_max_window_bits=\"09\" is not a window size",
    ),
    (
        "deflate-window-no-value",
        "server_max_window_bits needs a value",
    ),
    ("deflate-unknown-param", "unknown parameter \"x_unknown\""),
    (
        "deflate-param-twice",
        "server_no_context_takeover appears twice",
    ),
    (
        "deflate-flag-with-value",
        "server_no_context_takeover takes no value",
    ),
    ("deflate-answered-twice", "the server enabled 2 extensions"),
];

#[tokio::test]
async fn every_invalid_deflate_answer_is_refused_at_connect_with_its_reason() {
    let server = TestServer::start("security");
    let narrow = DeflateConfig {
        client_max_window_bits: 12,
        ..DeflateConfig::default()
    };
    let cases = REFUSED
        .iter()
        .map(|&(name, reason)| (name, Some(DeflateConfig::default()), reason))
        .chain([
            // A limit in the offer: the answer goes one above it.
            (
                "deflate-client-window-above-offer",
                Some(narrow),
                "client_max_window_bits=13, above the 12 offered",
            ),
            // Nothing offered: any permessage-deflate answer is refused.
            ("deflate-window-16", None, "did not offer"),
        ]);
    for (name, offer, reason) in cases {
        let started = Instant::now();
        let url = server.url_with_path(name);
        let result = within_for(BOUND, WebSocketConnection::open(config(url, offer))).await;
        let took = started.elapsed();
        match &result {
            Err(Error::HandshakeRejected {
                status: Some(101),
                reason: got,
                ..
            }) => assert!(got.contains(reason), "{name}: {got:?} lacks {reason:?}"),
            other => panic!("{name}: expected HandshakeRejected, got {other:?}"),
        }
        drop(result);
        let event = scenario_event(&server, name);
        assert_eq!(event["client_close"], Value::Null, "{name}: {event}");
        eprintln!("{name:<36} {took:>8.2?}  refused: {reason}");
    }
}

/// Abuses of the extension: (scenario, offered, agreed, close code).
const FAILED: &[(&str, bool, bool, u16)] = &[
    ("deflate-compressed-ping", true, true, 1002),
    ("deflate-compressed-close", true, true, 1002),
    ("deflate-rsv1-continuation", true, true, 1002),
    ("deflate-invalid-data", true, true, 1002),
    ("deflate-invalid-utf8", true, true, 1007),
    // RSV1 with no extension agreed: offered and declined, or never offered.
    ("deflate-declined-rsv1", true, false, 1002),
    ("deflate-declined-rsv1", false, false, 1002),
    ("reserved-bits", true, false, 1002),
    ("reserved-bits", false, false, 1002),
    // Without an offer the server agrees to nothing, so its compressed text is RSV1
    // unnegotiated: 1002, not the 1007 of its content.
    ("deflate-invalid-utf8", false, false, 1002),
];

#[tokio::test]
async fn every_abuse_of_the_extension_fails_the_connection_with_the_rfc_close_code() {
    let server = TestServer::start("security");
    for &(name, offered, agreed, code) in FAILED {
        let started = Instant::now();
        let offer = offered.then(DeflateConfig::default);
        let url = server.url_with_path(name);
        let mut connection = within_for(BOUND, WebSocketConnection::open(config(url, offer)))
            .await
            .unwrap_or_else(|e| panic!("{name}: connect: {e}"));
        assert_eq!(connection.compression().is_some(), agreed, "{name}");
        let error = within_for(BOUND, connection.receive_message())
            .await
            .expect_err(name);
        let took = started.elapsed();
        let kind_ok = match code {
            1007 => matches!(error, Error::InvalidUtf8),
            _ => matches!(error, Error::Protocol(_)),
        };
        assert!(kind_ok, "{name} (offered: {offered}): {error:?}");
        assert_eq!(error.close_code(), Some(code), "{name}: {error:?}");
        assert!(took < BOUND, "{name}: {took:?}");
        drop(connection);
        let event = scenario_event(&server, name);
        assert_eq!(event["client_close"], code, "{name}: {event}");
        eprintln!("{name:<28} offered {offered:<5} {took:>8.2?}  {error}");
    }
}

/// The peak resident memory of this process so far, where the platform tells it (Linux).
fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::test]
async fn a_deflate_bomb_fails_with_1009_in_bounded_time_and_memory() {
    if let Ok(url) = std::env::var(BOMB_CHILD_URL) {
        // The child: the only test in this process, so the peak memory is the bomb's.
        let started = Instant::now();
        let offer = Some(DeflateConfig::default());
        let mut connection = within_for(BOUND, WebSocketConnection::open(config(url, offer)))
            .await
            .unwrap();
        assert!(connection.compression().is_some());
        let result = within_for(BOUND, connection.receive_message()).await;
        let took = started.elapsed();
        assert!(
            matches!(result, Err(Error::MessageTooLarge { limit, .. }) if limit == 16 << 20),
            "{result:?}"
        );
        assert!(took < BOUND, "{took:?}");
        drop(connection);
        let peak = peak_resident_bytes();
        eprintln!("deflate-bomb: failed after {took:?}; peak resident memory {peak:?} bytes");
        if let Some(peak) = peak {
            assert!(
                peak < BOMB_MEMORY_BOUND,
                "peak resident memory {peak} bytes"
            );
        }
        return;
    }
    let server = TestServer::start("security");
    let name = concat!(
        module_path!(),
        "::a_deflate_bomb_fails_with_1009_in_bounded_time_and_memory"
    );
    let name = name.split_once("::").map_or(name, |(_, test)| test);
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([name, "--exact", "--nocapture", "--test-threads=1"]);
    command.env(BOMB_CHILD_URL, server.url_with_path("deflate-bomb"));
    let output = within(tokio::task::spawn_blocking(move || {
        integration::run_to_completion(command, STEP_TIMEOUT)
    }))
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(at) = stderr.find("deflate-bomb:") {
        eprintln!("{}", stderr[at..].lines().next().unwrap_or_default());
    }
    let event = scenario_event(&server, "deflate-bomb");
    assert_eq!(event["client_close"], 1009, "{event}");
    assert!(
        event["elapsed_ms"].as_u64().unwrap() < BOUND.as_millis() as u64,
        "{event}"
    );
    eprintln!("deflate-bomb, as the server saw it: {event}");
}

#[tokio::test]
async fn the_valid_edges_of_an_answer_are_accepted_and_read() {
    // RFC 7692 allows 8 bits (zlib-based senders use 9, which an inflater for 8 must
    // still read: ws-client inflates with 15) and, by RFC 6455 section 9.1, a value as a
    // quoted string.
    // "compressed ping", deflated with a sync flush, its tail removed.
    let deflated = b"\x4a\xce\xcf\x2d\x28\x4a\x2d\x2e\x4e\x4d\x51\x28\xc8\xcc\x4b\x07\x00";
    for (answer, bits) in [
        ("permessage-deflate; server_max_window_bits=8", 8),
        ("permessage-deflate; server_max_window_bits=\"10\"", 10),
    ] {
        let server = RawServer::bind();
        let offer = Some(DeflateConfig::default());
        let config = config(server.url(), offer);
        let serving = tokio::spawn(async move {
            let (mut tcp, request) = server.accept_request().await;
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: {answer}\r\n\r\n",
                request.accept_key
            );
            within(tcp.write_all(response.as_bytes())).await.unwrap();
            // RSV1 + text: 0x41 as the opcode byte `server_frame` takes.
            let text = server_frame(0x41, true, deflated);
            within(tcp.write_all(&text)).await.unwrap();
            tcp
        });
        let mut connection = within(WebSocketConnection::open(config)).await.unwrap();
        let agreed = connection.compression().copied().expect(answer);
        assert_eq!(agreed.server_max_window_bits, bits, "{answer}");
        let message = within(connection.receive_message()).await.unwrap();
        assert_eq!(message.as_text().unwrap(), "compressed ping", "{answer}");
        drop(serving.await.unwrap());
    }
}
