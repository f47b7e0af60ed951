//! `rpc` mode's memory under large calls: a slow call keeps its params as text, within a
//! per-connection limit (`--max-message-size`), and a large array is never expanded into a
//! value tree (parsed JSON takes about 16 times its text for arrays of small numbers).

use integration::TestServer;
use serde_json::Value;
use ws_client::WebSocketConnection;

use crate::perf::stats_line_where;
use crate::support::{connect, within};

const MIB: u64 = 1 << 20;

/// A JSON array of `bytes` bytes of small numbers (`[1,1,...,1]`).
fn small_numbers(bytes: usize) -> String {
    format!("[{}1]", "1,".repeat(bytes / 2 - 2))
}

/// Sends `text` and returns the next answer, parsed.
async fn answer_to(connection: &mut WebSocketConnection, text: &str) -> Value {
    within(connection.send(text)).await.unwrap();
    let answer = within(connection.receive_message()).await.unwrap();
    serde_json::from_slice(&answer.data).unwrap()
}

/// The peak resident memory of the server so far, where the platform tells it (Linux).
fn peak_resident_bytes(server: &TestServer) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::test]
async fn sleeping_calls_keep_their_params_as_text_within_the_connections_limit() {
    let server = TestServer::start_with("rpc", &["--stats-interval", "100ms"]);
    let mut connection = connect(server.url()).await;
    // Six calls of 7 MiB each. The old server held each as a tree (about 130 MB) for the
    // whole sleep: some 800 MB in all.
    let pad = small_numbers(7 << 20);
    for id in 1..=6 {
        let call = format!(
            r#"{{"jsonrpc":"2.0","method":"sleep","params":{{"ms":30000,"pad":{pad}}},"id":{id}}}"#
        );
        within(connection.send(call.as_str())).await.unwrap();
    }
    stats_line_where(&server, |line| line["messages_in"] == 6);
    // One more line: every call read by then has been handled too.
    let line = stats_line_where(&server, |_| true);
    if let Some(rss) = line["rss_bytes"].as_u64() {
        assert!(rss < 200 * MIB, "the sleeping calls hold {} MiB", rss / MIB);
    }
    // Two calls fit the 16 MiB the connection may keep; the others are refused at once.
    for id in 3..=6 {
        let answer = within(connection.receive_message()).await.unwrap();
        let answer: Value = serde_json::from_slice(&answer.data).unwrap();
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["error"]["code"], -32000, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("--max-message-size"), "{message}");
    }
    // The connection goes on serving.
    let echo = answer_to(
        &mut connection,
        r#"{"jsonrpc":"2.0","method":"echo","params":[1],"id":7}"#,
    )
    .await;
    assert_eq!(echo["result"], serde_json::json!([1]));
}

#[tokio::test]
async fn a_large_array_is_echoed_as_it_came_without_a_tree() {
    let server = TestServer::start("rpc");
    let mut connection = connect(server.url()).await;
    let params = small_numbers(11 << 20).replace("1,1,", "1, 1,");
    for framing in ["plain", "batch"] {
        let call = format!(r#"{{"jsonrpc":"2.0","method":"echo","params":{params},"id":1}}"#);
        let call = if framing == "batch" {
            format!("[{call}]")
        } else {
            call
        };
        within(connection.send(call.as_str())).await.unwrap();
        let answer = within(connection.receive_message()).await.unwrap();
        let expected = format!(r#"{{"jsonrpc":"2.0","result":{params},"id":1}}"#);
        let expected = if framing == "batch" {
            format!("[{expected}]")
        } else {
            expected
        };
        assert!(
            answer.data == expected.as_bytes(),
            "{framing}: the echo is not the params as sent"
        );
    }
    if let Some(peak) = peak_resident_bytes(&server) {
        // The frame, the answer and the write buffer: four copies of 14 MiB at most. A
        // tree of its seven million numbers alone would take over 200 MiB.
        assert!(peak < 150 * MIB, "echoing took {} MiB", peak / MIB);
    }
}
