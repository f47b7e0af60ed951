//! permessage-deflate in test-servers: `echo`, perf's `/echo` and `/sink`, and `rpc`
//! accept ws-client's offer and compress what they send, the stopped line's `wire_bytes_*`
//! (payload bytes after compression) falling well below `bytes_*` (before it);
//! `--no-deflate` declines, `--deflate-no-context-takeover` answers no context takeover
//! both ways, and what is served on tungstenite (`load`, perf's `/source`) never agrees.

use integration::TestServer;
use serde_json::{Value, json};
use ws_client::rpc::RpcConfig;
use ws_client::{DeflateConfig, Message, RpcClient, TransportConfig};

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
