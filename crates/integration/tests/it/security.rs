//! `security` mode, seen by a raw TCP client: `--list` covers the catalogue, unknown paths
//! get a 404 naming the scenarios, and each tested scenario sends exactly the bytes it
//! promises (wrong accept value, RSV1, mask bit, lying lengths, invalid close codes...).

use std::time::Duration;

use integration::{TestServer, run_test_servers};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::within;

/// The key of RFC 6455's example, and the accept value it must produce.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Scenarios the security issue asks for by name.
const REQUIRED: [&str; 33] = [
    "bad-accept",
    "bad-status",
    "no-upgrade-header",
    "unoffered-subprotocol",
    "unoffered-extension",
    "slow-handshake",
    "no-response",
    "header-flood",
    "length-msb-set",
    "length-huge",
    "oversized-message",
    "endless-fragments",
    "fragmented-ping",
    "oversized-ping",
    "reserved-bits",
    "reserved-opcode-data",
    "reserved-opcode-control",
    "masked-frame",
    "orphan-continuation",
    "invalid-utf8",
    "invalid-utf8-fragmented",
    "invalid-close-utf8",
    "close-code-0",
    "close-code-999",
    "close-code-1005",
    "close-code-1006",
    "close-code-5000",
    "close-one-byte",
    "ping-flood",
    "never-reads",
    "no-close-reply",
    "reset-mid-frame",
    "data-after-close",
];

/// A raw connection that has sent an upgrade request and read the response head.
struct Raw {
    tcp: TcpStream,
    head: String,
    /// Bytes read after the head (the first frames).
    rest: Vec<u8>,
}

impl Raw {
    /// Connects to `path` on `server`, sends an upgrade request, reads the response head.
    async fn open(server: &TestServer, path: &str) -> Raw {
        Raw::open_with(server, path, "").await
    }

    /// The same with the `extra` header lines (each ending in CRLF) in the request.
    async fn open_with(server: &TestServer, path: &str, extra: &str) -> Raw {
        let mut tcp = within(TcpStream::connect(server.addr())).await.unwrap();
        let request = format!(
            "GET /{path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
            server.addr()
        );
        within(tcp.write_all(request.as_bytes())).await.unwrap();
        let mut bytes = Vec::new();
        let mut scratch = [0u8; 4096];
        let end = loop {
            if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = within(tcp.read(&mut scratch)).await.unwrap();
            assert!(
                n > 0,
                "connection ended inside the response head: {bytes:?}"
            );
            bytes.extend_from_slice(&scratch[..n]);
        };
        let rest = bytes.split_off(end);
        let head = String::from_utf8(bytes).unwrap();
        Raw { tcp, head, rest }
    }

    /// The value of header `name` in the response head.
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then_some(value.trim())
        })
    }

    /// The next `n` bytes after the head.
    async fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.rest.len() < n {
            let mut scratch = [0u8; 4096];
            let got = within(self.tcp.read(&mut scratch)).await.unwrap();
            assert!(got > 0, "connection ended after {:?}", self.rest);
            self.rest.extend_from_slice(&scratch[..got]);
        }
        self.rest.drain(..n).collect()
    }

    /// Reads until the server ends the connection; returns what came and how it ended.
    async fn until_end(&mut self) -> (Vec<u8>, std::io::Result<()>) {
        let mut all = std::mem::take(&mut self.rest);
        let mut scratch = [0u8; 4096];
        loop {
            match within(self.tcp.read(&mut scratch)).await {
                Ok(0) => return (all, Ok(())),
                Ok(n) => all.extend_from_slice(&scratch[..n]),
                Err(e) => return (all, Err(e)),
            }
        }
    }

    /// Sends a masked close frame with `code`, as a client must.
    async fn send_close(&mut self, code: u16) {
        let key = [1u8, 2, 3, 4];
        let mut frame = vec![0x88, 0x82];
        frame.extend_from_slice(&key);
        frame.extend(code.to_be_bytes().iter().zip(key).map(|(b, k)| b ^ k));
        within(self.tcp.write_all(&frame)).await.unwrap();
    }
}

fn status_line(raw: &Raw) -> &str {
    raw.head.lines().next().unwrap_or_default()
}

/// Opens `path` and asserts a correct 101 response.
async fn upgraded(server: &TestServer, path: &str) -> Raw {
    let raw = Raw::open(server, path).await;
    assert!(
        status_line(&raw).starts_with("HTTP/1.1 101"),
        "{}",
        raw.head
    );
    assert_eq!(raw.header("sec-websocket-accept"), Some(ACCEPT));
    raw
}

#[test]
fn list_prints_every_scenario_as_a_table_and_as_json() {
    let output = run_test_servers(&["security", "--list"]);
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    let output = run_test_servers(&["security", "--list", "--json"]);
    assert!(output.status.success());
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let entries = json.as_array().unwrap();
    assert_eq!(table.lines().count(), entries.len() + 1, "{table}");
    for entry in entries {
        for field in ["name", "category", "attack", "expected"] {
            assert!(
                entry[field].as_str().is_some_and(|s| !s.is_empty()),
                "{entry}"
            );
        }
        let name = entry["name"].as_str().unwrap();
        assert!(
            table
                .lines()
                .any(|line| line.starts_with(&format!("{name} "))),
            "{name} missing from the table"
        );
    }
    for name in REQUIRED {
        assert!(entries.iter().any(|e| e["name"] == name), "{name} missing");
    }
}

#[tokio::test]
async fn an_unknown_path_gets_404_listing_the_scenarios() {
    let server = TestServer::start("security");
    assert_eq!(server.ready_line()["mode"], "security");
    let mut raw = Raw::open(&server, "no-such-attack").await;
    assert!(
        status_line(&raw).starts_with("HTTP/1.1 404"),
        "{}",
        raw.head
    );
    let (body, _) = raw.until_end().await;
    let body = String::from_utf8(body).unwrap();
    for name in REQUIRED {
        assert!(body.contains(&format!("/{name}\n")), "{body}");
    }
}

#[tokio::test]
async fn handshake_attacks_send_what_they_promise() {
    let server = TestServer::start("security");
    let raw = Raw::open(&server, "bad-accept").await;
    assert!(
        status_line(&raw).starts_with("HTTP/1.1 101"),
        "{}",
        raw.head
    );
    let accept = raw
        .header("sec-websocket-accept")
        .expect("an accept header");
    assert_ne!(accept, ACCEPT);

    let raw = Raw::open(&server, "bad-status").await;
    assert!(
        status_line(&raw).starts_with("HTTP/1.1 200"),
        "{}",
        raw.head
    );

    let raw = Raw::open(&server, "no-upgrade-header").await;
    assert_eq!(raw.header("sec-websocket-accept"), Some(ACCEPT));
    assert_eq!(raw.header("upgrade"), None);

    let raw = upgraded(&server, "unoffered-subprotocol").await;
    assert!(raw.header("sec-websocket-protocol").is_some());
    let raw = upgraded(&server, "unoffered-extension").await;
    assert_eq!(
        raw.header("sec-websocket-extensions"),
        Some("permessage-deflate")
    );

    let raw = upgraded(&server, "header-flood").await;
    assert!(raw.head.lines().count() > 10_000);

    let mut slow = within(TcpStream::connect(server.addr())).await.unwrap();
    let request = format!("GET /slow-handshake HTTP/1.1\r\nSec-WebSocket-Key: {KEY}\r\n\r\n");
    within(slow.write_all(request.as_bytes())).await.unwrap();
    let mut first = [0u8; 16];
    let n = within(slow.read(&mut first)).await.unwrap();
    assert_eq!(&first[..n], b"H", "one byte at a time");

    let mut silent = within(TcpStream::connect(server.addr())).await.unwrap();
    let request = format!("GET /no-response HTTP/1.1\r\nSec-WebSocket-Key: {KEY}\r\n\r\n");
    within(silent.write_all(request.as_bytes())).await.unwrap();
    let read = tokio::time::timeout(Duration::from_millis(300), silent.read(&mut first));
    assert!(read.await.is_err(), "no-response answered");

    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["scenarios"]["bad-accept"], 1, "{stopped}");
    assert_eq!(stopped["scenarios"]["no-response"], 1, "{stopped}");
}

#[tokio::test]
async fn framing_attacks_send_the_promised_headers() {
    let server = TestServer::start("security");
    let mut raw = upgraded(&server, "reserved-bits").await;
    assert_eq!(raw.bytes(2).await, [0xC1, 8], "FIN + RSV1 + text, 8 bytes");
    assert_eq!(raw.bytes(8).await, b"reserved");

    let mut raw = upgraded(&server, "masked-frame").await;
    let head = raw.bytes(6).await;
    assert_eq!(head[..2], [0x81, 0x80 | 6], "mask bit set");
    let payload: Vec<u8> = (raw.bytes(6).await.iter().enumerate())
        .map(|(i, b)| b ^ head[2 + i % 4])
        .collect();
    assert_eq!(payload, b"masked");

    let mut raw = upgraded(&server, "length-msb-set").await;
    assert_eq!(raw.bytes(10).await, [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]);
    let mut raw = upgraded(&server, "length-huge").await;
    assert_eq!(raw.bytes(10).await, [0x82, 127, 0x40, 0, 0, 0, 0, 0, 0, 0]);
    let mut raw = upgraded(&server, "oversized-message").await;
    assert_eq!(raw.bytes(10).await, [0x82, 127, 0, 0, 0, 0, 4, 0, 0, 0]);
    let mut raw = upgraded(&server, "oversized-ping").await;
    assert_eq!(raw.bytes(4).await, [0x89, 126, 0, 126]);
    let mut raw = upgraded(&server, "fragmented-ping").await;
    assert_eq!(raw.bytes(1).await, [0x09], "ping without FIN");
    let mut raw = upgraded(&server, "reserved-opcode-control").await;
    assert_eq!(raw.bytes(1).await, [0x8B]);
    let mut raw = upgraded(&server, "orphan-continuation").await;
    assert_eq!(raw.bytes(1).await, [0x80]);
    let mut raw = upgraded(&server, "ping-flood").await;
    for _ in 0..3 {
        assert_eq!(raw.bytes(7).await, b"\x89\x05flood");
    }
}

#[tokio::test]
async fn payload_attacks_send_invalid_close_frames_then_answer_the_client() {
    let server = TestServer::start("security");
    for (path, payload) in [
        ("close-code-0", &[0u8, 0][..]),
        ("close-code-999", &[0x03, 0xE7]),
        ("close-code-1005", &[0x03, 0xED]),
        ("close-code-5000", &[0x13, 0x88]),
        ("close-one-byte", &[0x03]),
    ] {
        let mut raw = upgraded(&server, path).await;
        let mut expected = vec![0x88, payload.len() as u8];
        expected.extend_from_slice(payload);
        assert_eq!(raw.bytes(expected.len()).await, expected, "{path}");
    }

    // A client that fails the connection with 1002 gets no second close frame (the server
    // already sent one) and sees the connection end.
    let mut raw = upgraded(&server, "close-code-1006").await;
    assert_eq!(raw.bytes(4).await, [0x88, 2, 0x03, 0xEE]);
    raw.send_close(1002).await;
    let (rest, _) = raw.until_end().await;
    assert!(rest.is_empty(), "{rest:?}");

    // Before its own close, the server answers the client's close frame with the same code.
    let mut raw = upgraded(&server, "invalid-utf8").await;
    let head = raw.bytes(2).await;
    assert_eq!(head[0], 0x81);
    let text = raw.bytes(usize::from(head[1])).await;
    assert!(std::str::from_utf8(&text).is_err());
    raw.send_close(1007).await;
    let (rest, _) = raw.until_end().await;
    assert_eq!(rest, [0x88, 2, 0x03, 0xEF]);

    let mut raw = upgraded(&server, "data-after-close").await;
    assert_eq!(raw.bytes(7).await, b"\x88\x05\x03\xe8bye");
    assert_eq!(raw.bytes(2).await, [0x81, 16]);
}

#[tokio::test]
async fn deflate_attacks_answer_the_offer_as_promised() {
    let server = TestServer::start("security");
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
                 server_max_window_bits=10; client_max_window_bits=12\r\n";
    let agreed = "permessage-deflate; server_no_context_takeover; server_max_window_bits=10";
    let mut raw = Raw::open_with(&server, "deflate-bomb", offer).await;
    assert_eq!(raw.header("sec-websocket-extensions"), Some(agreed));
    assert_eq!(raw.bytes(1).await, [0x42], "RSV1, binary, not final");
    let raw = Raw::open_with(&server, "deflate-client-window-above-offer", offer).await;
    let above = format!("{agreed}; client_max_window_bits=13");
    assert_eq!(raw.header("sec-websocket-extensions"), Some(above.as_str()));
    let raw = Raw::open_with(&server, "deflate-answered-twice", offer).await;
    let answers = raw
        .head
        .lines()
        .filter(|l| l.starts_with("Sec-WebSocket-Extensions:"));
    assert_eq!(answers.count(), 2, "{}", raw.head);

    // Declined, or not offered: a 101 without the extension, the same RSV1 frames.
    let mut raw = upgraded(&server, "deflate-compressed-ping").await;
    assert_eq!(raw.header("sec-websocket-extensions"), None);
    assert_eq!(raw.bytes(2).await, [0xC9, 17], "FIN + RSV1 + ping");
    let mut raw = Raw::open_with(&server, "deflate-declined-rsv1", offer).await;
    assert_eq!(raw.header("sec-websocket-extensions"), None);
    assert_eq!(raw.bytes(2).await, [0xC1, 45], "FIN + RSV1 + text");

    // Each run's end is reported, with the client's close code.
    raw.send_close(1002).await;
    let _ = raw.until_end().await;
    drop(raw);
    let event = std::iter::from_fn(|| server.next_event(Duration::from_secs(5)))
        .find(|e| e["event"] == "scenario" && e["name"] == "deflate-declined-rsv1")
        .expect("a scenario event");
    assert_eq!(event["client_close"], 1002, "{event}");
    assert!(event["bytes_out"].as_u64().unwrap() > 47, "{event}");
}

#[tokio::test]
async fn behaviour_attacks_reset_and_say_goodbye_at_shutdown() {
    let server = TestServer::start("security");
    let mut raw = upgraded(&server, "reset-mid-frame").await;
    assert_eq!(
        raw.bytes(4).await,
        [0x82, 126, 0x03, 0xE8],
        "claims 1000 bytes"
    );
    let (rest, end) = raw.until_end().await;
    assert!(rest.len() < 1000, "only half a frame: {}", rest.len());
    #[cfg(target_os = "linux")]
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    #[cfg(not(target_os = "linux"))]
    let _ = end;

    let mut raw = upgraded(&server, "no-close-reply").await;
    let first = raw.bytes(2).await;
    assert_eq!(first[0], 0x81);
    raw.bytes(usize::from(first[1])).await;
    raw.send_close(1000).await;
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["scenarios"]["no-close-reply"], 1, "{stopped}");
    // The server ignored the close but still says goodbye (1001) when it shuts down.
    let (rest, _) = raw.until_end().await;
    assert_eq!(rest[..4], [0x88, 22, 0x03, 0xE9], "{rest:?}");
}
