//! permessage-deflate against third-party servers: Python `websockets` with compression
//! (`scripts/interop_deflate_server.py`) and Node's `ws` (`scripts/node-interop/
//! deflate_server.mjs`), across their parameters and ours. Both sides must agree on the
//! parameters (the server reports what it agreed to) and every payload, 16 B to 128 KiB,
//! text and binary, must come back exact. Skipped with a message when the interpreter or
//! its package is missing, unless `WS_CLIENT_PYTHON=require` / `WS_CLIENT_NODE=require`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use ws_client::wire::DeflateParams;
use ws_client::{DeflateConfig, Message, TransportConfig};

use crate::support::{connect_with, within};

/// A third-party server program and how to get it.
struct Peer {
    program: &'static str,
    /// From the workspace root.
    script: &'static str,
    /// `require`: a missing interpreter or package fails the test instead of skipping it.
    require_env: &'static str,
    install: &'static str,
}

const PYTHON: Peer = Peer {
    program: "python3",
    script: "scripts/interop_deflate_server.py",
    require_env: "WS_CLIENT_PYTHON",
    install: "pip install websockets",
};

const NODE: Peer = Peer {
    program: "node",
    script: "scripts/node-interop/deflate_server.mjs",
    require_env: "WS_CLIENT_NODE",
    install: "npm ci --prefix scripts/node-interop",
};

/// A running third-party server; killed when dropped.
struct PeerServer {
    child: Child,
    port: u16,
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `peer`'s server with `params` (its own option names); `None` after saying the
/// test is skipped.
fn start(peer: &Peer, params: &Value) -> Option<PeerServer> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(peer.script);
    let spawned = Command::new(peer.program)
        .arg(&script)
        .arg(params.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let skip = |why: String| {
        let required = std::env::var(peer.require_env).is_ok_and(|value| value == "require");
        assert!(!required, "{why} and {}=require", peer.require_env);
        eprintln!(
            "skipped: {why} ({}); {}=require makes this a failure",
            peer.install, peer.require_env
        );
        None
    };
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return skip(format!("{} cannot be started ({e})", peer.program)),
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, ready) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = ready
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_default();
    let Ok(ready) = serde_json::from_str::<Value>(&line) else {
        let _ = child.kill();
        let _ = child.wait();
        return skip(format!(
            "the {} server did not start (is its package installed?): {line:?}",
            peer.program
        ));
    };
    let port = ready["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("a port");
    Some(PeerServer { child, port })
}

/// What the Python server should report for `agreed`, in its own terms (it is the local
/// side).
fn python_view(agreed: &DeflateParams) -> String {
    let title = |flag: bool| if flag { "True" } else { "False" };
    format!(
        "[PerMessageDeflate(remote_no_context_takeover={}, local_no_context_takeover={}, \
         remote_max_window_bits={}, local_max_window_bits={})]",
        title(agreed.client_no_context_takeover),
        title(agreed.server_no_context_takeover),
        agreed.client_max_window_bits,
        agreed.server_max_window_bits,
    )
}

/// The parameters Node's server reports (RFC 7692's names, absent when not agreed to) read
/// into ours.
fn node_view(reported: &str) -> (bool, bool, u8, u8) {
    let params: Value = serde_json::from_str(reported).expect("JSON from the Node server");
    let flag = |name: &str| params.get(name).is_some_and(|v| v == &json!(true));
    // A window size is a number, or absent (15).
    let bits = |name: &str| {
        params
            .get(name)
            .and_then(Value::as_u64)
            .map_or(15, |bits| u8::try_from(bits).expect("window bits"))
    };
    (
        flag("server_no_context_takeover"),
        flag("client_no_context_takeover"),
        bits("server_max_window_bits"),
        bits("client_max_window_bits"),
    )
}

/// Our configurations, each tried against each of the peer's.
fn ours() -> [DeflateConfig; 3] {
    [
        DeflateConfig::default(),
        DeflateConfig::no_context_takeover(),
        DeflateConfig {
            server_max_window_bits: 10,
            client_max_window_bits: 12,
            level: 6,
            threshold: 0,
            ..DeflateConfig::default()
        },
    ]
}

/// Connects with `config` and checks that the peer agreed to the same parameters
/// (`matches` compares its report with ours) and echoes every payload exactly.
async fn round_trips(
    port: u16,
    config: DeflateConfig,
    label: &str,
    matches: impl Fn(&str, &DeflateParams),
) {
    let url = format!("ws://127.0.0.1:{port}/");
    let mut connection = connect_with(TransportConfig {
        compression: Some(config),
        ..TransportConfig::new(url)
    })
    .await;
    let agreed = *connection
        .compression()
        .unwrap_or_else(|| panic!("{label}: declined"));
    within(connection.send("extensions?")).await.unwrap();
    let view = within(connection.receive_message()).await.unwrap();
    matches(view.as_text().unwrap(), &agreed);
    for (seed, size) in [16usize, 64, 1000, 16_384, 131_072].into_iter().enumerate() {
        let mut text = String::new();
        for i in 0.. {
            if text.len() >= size {
                break;
            }
            text.push_str(&format!(
                "{{\"n\":{},\"v\":\"value {}\"}},",
                i + seed,
                i % 7
            ));
        }
        text.truncate(size);
        for message in [
            Message::text(text.clone()),
            Message::binary(text.into_bytes()),
        ] {
            within(connection.send_message(&message)).await.unwrap();
            let echo = within(connection.receive_message()).await.unwrap();
            assert_eq!(echo, message, "{label}: {size} bytes");
        }
    }
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn python_websockets_with_compression_round_trips_across_parameters() {
    let theirs = [
        json!({}),
        json!({"server_no_context_takeover": true, "client_no_context_takeover": true}),
        json!({"server_max_window_bits": 11, "client_max_window_bits": 9}),
    ];
    for params in &theirs {
        let Some(server) = start(&PYTHON, params) else {
            return;
        };
        for config in ours() {
            let label = format!("ours {config:?}, theirs {params}");
            round_trips(server.port, config, &label, |view, agreed| {
                assert_eq!(view, python_view(agreed), "{label}");
            })
            .await;
        }
    }
}

#[tokio::test]
async fn node_ws_with_compression_round_trips_across_parameters() {
    let theirs = [
        json!({}),
        json!({"serverNoContextTakeover": true, "clientNoContextTakeover": true}),
        json!({"serverMaxWindowBits": 10, "clientMaxWindowBits": 9}),
    ];
    for params in &theirs {
        let Some(server) = start(&NODE, params) else {
            return;
        };
        for config in ours() {
            let label = format!("ours {config:?}, theirs {params}");
            round_trips(server.port, config, &label, |view, agreed| {
                let ours = (
                    agreed.server_no_context_takeover,
                    agreed.client_no_context_takeover,
                    agreed.server_max_window_bits,
                    agreed.client_max_window_bits,
                );
                assert_eq!(node_view(view), ours, "{label}: Node reported {view}");
            })
            .await;
        }
    }
}

/// `ws` will not compress with a window smaller than its own setting, and when no offer is
/// acceptable it refuses the upgrade (HTTP 400) instead of declining the extension: the
/// client says so, with the server's words.
#[tokio::test]
async fn node_ws_refusing_a_narrower_server_window_is_a_clear_handshake_rejection() {
    let Some(server) = start(&NODE, &json!({"serverMaxWindowBits": 11})) else {
        return;
    };
    let config = DeflateConfig {
        server_max_window_bits: 10,
        ..DeflateConfig::default()
    };
    let opened = within(ws_client::WebSocketConnection::open(TransportConfig {
        compression: Some(config),
        ..TransportConfig::new(format!("ws://127.0.0.1:{}/", server.port))
    }))
    .await;
    match opened {
        Err(ws_client::Error::HandshakeRejected {
            status: Some(400),
            reason,
            ..
        }) => assert!(reason.contains("Sec-WebSocket-Extensions"), "{reason}"),
        other => panic!("expected a 400 rejection naming the extension header, got {other:?}"),
    }
}
