//! permessage-deflate in test-servers: `echo`, perf's `/echo` and `/sink`, and `rpc`
//! accept ws-client's offer and compress what they send, the stopped line's `wire_bytes_*`
//! (payload bytes after compression) falling well below `bytes_*` (before it);
//! `--no-deflate` declines, `--deflate-no-context-takeover` answers no context takeover
//! both ways, and what is served on tungstenite (`load`, perf's `/source`) never agrees.

use integration::TestServer;
use serde_json::{Value, json};
use ws_client::rpc::RpcConfig;
use ws_client::{DeflateConfig, Message, RpcClient, TransportConfig};

use crate::perf::stats_line_where;
use crate::support::{connect_with, within};

/// JSON-like text of about `size` bytes.
fn json_text(size: usize, seed: usize) -> String {
    let mut text = String::from("[");
    let mut i = seed;
    while text.len() < size {
        text.push_str(&format!(
            "{{\"id\":{i},\"name\":\"item {i}\",\"ok\":true}},"
        ));
        i += 1;
    }
    text.truncate(size);
    text
}

fn offering(url: String) -> TransportConfig {
    TransportConfig {
        compression: Some(DeflateConfig::default()),
        ..TransportConfig::new(url)
    }
}

/// Sends compressible messages (echoed back when `echoed`) to `url`; returns what was agreed.
async fn exchange(url: String, echoed: bool) -> Option<ws_client::wire::DeflateParams> {
    let mut connection = connect_with(offering(url)).await;
    let agreed = connection.compression().copied();
    for (seed, size) in [100, 5000, 70_000].into_iter().enumerate() {
        let message = Message::text(json_text(size, seed));
        within(connection.send_message(&message)).await.unwrap();
        if echoed {
            assert_eq!(within(connection.receive_message()).await.unwrap(), message);
        }
    }
    within(connection.disconnect()).await.unwrap();
    agreed
}

/// The stopped line's payload bytes before and after compression, each way.
fn compression(stopped: &Value) -> [(u64, u64); 2] {
    let get = |field: &str| stopped[field].as_u64().expect(field);
    [
        (get("bytes_in"), get("wire_bytes_in")),
        (get("bytes_out"), get("wire_bytes_out")),
    ]
}

#[tokio::test]
async fn echo_and_perf_compress_both_ways_and_report_it() {
    for (mode, path, echoed) in [
        ("echo", "/", true),
        ("perf", "/echo", true),
        ("perf", "/sink", false),
    ] {
        let server = TestServer::start_with(mode, &[]);
        let agreed = exchange(server.url_with_path(path), echoed).await;
        assert!(agreed.is_some(), "{mode} {path} declined");
        let (status, stopped) = server.stop();
        assert!(status.success());
        let [(plain_in, wire_in), (plain_out, wire_out)] = compression(&stopped);
        assert_eq!(plain_in, 75_100, "{stopped}");
        assert!(wire_in * 4 < plain_in, "{mode} {path}: {stopped}");
        if echoed {
            assert!(
                plain_out == plain_in && wire_out * 4 < plain_out,
                "{stopped}"
            );
        } else {
            assert_eq!((plain_out, wire_out), (0, 0));
        }
    }
}

#[tokio::test]
async fn rpc_answers_compressed() {
    let server = TestServer::start_with("rpc", &[]);
    let config = RpcConfig {
        transport: offering(server.url().to_owned()),
        ..RpcConfig::default()
    };
    let client = within(RpcClient::connect(config)).await.unwrap();
    let text = json_text(20_000, 1);
    for _ in 0..5 {
        let answer: Value = within(client.request("echo", json!([text]))).await.unwrap();
        assert_eq!(answer, json!([text]));
    }
    within(client.close()).await.unwrap();
    let (_, stopped) = server.stop();
    let [(plain_in, wire_in), (plain_out, wire_out)] = compression(&stopped);
    assert!(plain_in > 100_000 && wire_in * 4 < plain_in, "{stopped}");
    assert!(plain_out > 100_000 && wire_out * 4 < plain_out, "{stopped}");
}

#[tokio::test]
async fn no_deflate_declines_and_the_bytes_are_the_same_both_ways() {
    let server = TestServer::start_with("echo", &["--no-deflate"]);
    assert_eq!(exchange(server.url().to_owned(), true).await, None);
    let (_, stopped) = server.stop();
    let [(plain_in, wire_in), (plain_out, wire_out)] = compression(&stopped);
    assert_eq!((plain_in, plain_out), (75_100, 75_100), "{stopped}");
    assert_eq!((wire_in, wire_out), (plain_in, plain_out), "{stopped}");
}

#[tokio::test]
async fn no_context_takeover_is_answered_both_ways() {
    let server = TestServer::start_with("echo", &["--deflate-no-context-takeover"]);
    let agreed = exchange(server.url().to_owned(), true)
        .await
        .expect("agreed");
    assert!(agreed.server_no_context_takeover && agreed.client_no_context_takeover);
    let (_, stopped) = server.stop();
    let [(plain_in, wire_in), _] = compression(&stopped);
    assert!(wire_in * 4 < plain_in, "{stopped}");
}

#[tokio::test]
async fn what_is_served_on_tungstenite_never_agrees() {
    for (mode, path) in [("load", "/"), ("perf", "/source?count=3&size=100")] {
        let server = TestServer::start_with(mode, &[]);
        let mut connection = connect_with(offering(server.url_with_path(path))).await;
        assert_eq!(connection.compression(), None, "{mode} {path}");
        if mode == "load" {
            let message = Message::text(json_text(5000, 0));
            within(connection.send_message(&message)).await.unwrap();
            assert_eq!(within(connection.receive_message()).await.unwrap(), message);
        }
        drop(connection);
    }
}

/// A server that keeps no context keeps no compression memory per idle connection (README,
/// `DeflateConfig`), even after answering a large message that compresses to little: 40
/// connections each echo 1.5 MiB of zeros (about 15 KiB compressed) and stay open. Before
/// the fix each kept its compressor's output buffer, sized by the message (750 KiB): 30 MiB
/// of heap in all, resident as far as the allocator had touched it before.
#[tokio::test]
async fn echoing_a_large_message_that_compresses_small_leaves_no_large_buffer_per_connection() {
    let args = ["--deflate-no-context-takeover", "--threads", "1"];
    let server = TestServer::start_with(
        "echo",
        &[&args[..], &["--stats-interval", "100ms"]].concat(),
    );
    let zeros = Message::binary(vec![0u8; 1_500_000]);
    let mut connections = Vec::new();
    let mut heap = Vec::new();
    for round in [1u64, 41] {
        while (connections.len() as u64) < round {
            let mut connection = connect_with(offering(server.url().to_owned())).await;
            within(connection.send_message(&zeros)).await.unwrap();
            assert_eq!(within(connection.receive_message()).await.unwrap(), zeros);
            connections.push(connection);
        }
        stats_line_where(&server, |line| line["messages_in"] == round);
        // One more line: the last echo has been written and its memory freed by then.
        stats_line_where(&server, |_| true);
        let Some(bytes) = data_segment_bytes(&server) else {
            return; // not Linux
        };
        heap.push(bytes);
    }
    let grown = heap[1].saturating_sub(heap[0]);
    assert!(
        grown < 12 << 20,
        "40 idle connections hold {} KiB more",
        grown >> 10
    );
}

/// The server's data segment (heap and anonymous mappings, `VmData`), where the platform
/// tells it (Linux): memory held, whether or not its pages were touched yet.
fn data_segment_bytes(server: &TestServer) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmData:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
