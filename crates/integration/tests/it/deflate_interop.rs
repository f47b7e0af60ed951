//! permessage-deflate against a third-party server: Python `websockets` with compression
//! (`scripts/interop_deflate_server.py`), across its parameters and ours. Both sides must
//! agree on the parameters (the server reports what it agreed to) and every payload, 16 B
//! to 128 KiB, text and binary, must come back exact. Skipped with a message when python3
//! or its `websockets` package is missing, unless `WS_CLIENT_PYTHON=require`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use ws_client::{DeflateConfig, Message, TransportConfig};

use crate::support::{connect_with, within};

/// `require`: a missing python3 or `websockets` fails the test instead of skipping it.
const REQUIRE_ENV: &str = "WS_CLIENT_PYTHON";

/// The Python server; killed when dropped.
struct PythonServer {
    child: Child,
    port: u16,
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server with `params` (ServerPerMessageDeflateFactory's); `None` after saying
/// the test is skipped.
fn start(params: &Value) -> Option<PythonServer> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/interop_deflate_server.py");
    let spawned = Command::new("python3")
        .arg(&script)
        .arg(params.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let skip = |why: String| {
        let required = std::env::var(REQUIRE_ENV).is_ok_and(|value| value == "require");
        assert!(!required, "{why} and {REQUIRE_ENV}=require");
        eprintln!(
            "skipped: {why} (pip install websockets); {REQUIRE_ENV}=require makes this a failure"
        );
        None
    };
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return skip(format!("python3 cannot be started ({e})")),
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
            "the Python server did not start (is `websockets` installed?): {line:?}"
        ));
    };
    let port = ready["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("a port");
    Some(PythonServer { child, port })
}

/// What the server should report for `agreed`, in its own terms (it is the local side).
fn python_view(agreed: &ws_client::wire::DeflateParams) -> String {
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

#[tokio::test]
async fn python_websockets_with_compression_round_trips_across_parameters() {
    let ours = [
        DeflateConfig::default(),
        DeflateConfig::no_context_takeover(),
        DeflateConfig {
            server_max_window_bits: 10,
            client_max_window_bits: 12,
            level: 6,
            threshold: 0,
            ..DeflateConfig::default()
        },
    ];
    let theirs = [
        json!({}),
        json!({"server_no_context_takeover": true, "client_no_context_takeover": true}),
        json!({"server_max_window_bits": 11, "client_max_window_bits": 9}),
    ];
    for params in &theirs {
        let Some(server) = start(params) else {
            return;
        };
        for config in ours {
            let url = format!("ws://127.0.0.1:{}/", server.port);
            let mut connection = connect_with(TransportConfig {
                compression: Some(config),
                ..TransportConfig::new(url)
            })
            .await;
            let label = format!("ours {config:?}, theirs {params}");
            let agreed = *connection
                .compression()
                .unwrap_or_else(|| panic!("{label}: declined"));
            within(connection.send("extensions?")).await.unwrap();
            let view = within(connection.receive_message()).await.unwrap();
            assert_eq!(view.as_text().unwrap(), python_view(&agreed), "{label}");
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
    }
}
