//! The example tests of the design the project started from (echo, binary, RPC echo, RPC
//! add, throughput, latency), against a real server: only the address and the server's
//! start-up differ from the original. Their loose floors are correctness checks; real
//! performance figures come from the benchmarks.

use std::time::{Duration, Instant};

use integration::TestServer;
use serde_json::json;
use ws_client::rpc::{RpcClient, RpcConfig, RpcMethod};
use ws_client::{Message, MessageType, TransportConfig, WebSocketConnection};

use crate::support::{echo_server, within};

#[tokio::test]
async fn test_echo() {
    let server = echo_server(&[]);
    let url = server.url().to_owned();
    let config = TransportConfig {
        url: url.clone(),
        ..Default::default()
    };
    let mut connection = within(WebSocketConnection::new(config)).await.unwrap();
    within(connection.connect(&url)).await.unwrap();
    let message = Message {
        data: b"Hello, WebSocket!".to_vec(),
        message_type: MessageType::Text,
    };
    within(connection.send_message(&message)).await.unwrap();
    let response = within(connection.receive_message()).await.unwrap();
    assert_eq!(response.data, message.data);
    assert_eq!(response.message_type, MessageType::Text);
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn test_binary() {
    let server = echo_server(&[]);
    let url = server.url().to_owned();
    let mut connection = within(WebSocketConnection::new(TransportConfig::new(&url)))
        .await
        .unwrap();
    within(connection.connect(&url)).await.unwrap();
    let message = Message {
        data: vec![0x00, 0x01, 0x02, 0x03, 0xFF],
        message_type: MessageType::Binary,
    };
    within(connection.send_message(&message)).await.unwrap();
    let response = within(connection.receive_message()).await.unwrap();
    assert_eq!(response, message);
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn test_rpc_echo() {
    let server = TestServer::start("rpc");
    let client = within(RpcClient::connect(RpcConfig::new(server.url())))
        .await
        .unwrap();
    let params = json!({"message": "Hello, RPC!"});
    let response = within(client.call("echo", params.clone(), RpcMethod::Call))
        .await
        .unwrap();
    assert_eq!(response.result.unwrap(), params);
    assert!(response.error.is_none());
}

#[tokio::test]
async fn test_rpc_add() {
    let server = TestServer::start("rpc");
    let client = within(RpcClient::connect(RpcConfig::new(server.url())))
        .await
        .unwrap();
    let response = within(client.call("add", json!({"a": 5, "b": 3}), RpcMethod::Call))
        .await
        .unwrap();
    assert!(response.result.unwrap()["result"] == 8);
}

#[tokio::test]
async fn test_throughput() {
    let server = echo_server(&[]);
    let url = server.url().to_owned();
    let mut connection = within(WebSocketConnection::new(TransportConfig::new(&url)))
        .await
        .unwrap();
    within(connection.connect(&url)).await.unwrap();
    let count = 1000;
    let started = Instant::now();
    for i in 0..count {
        let message = Message::text(format!("Message {i}"));
        within(connection.send_message(&message)).await.unwrap();
        let response = within(connection.receive_message()).await.unwrap();
        assert_eq!(response.data, message.data);
    }
    let rate = f64::from(count) / started.elapsed().as_secs_f64();
    assert!(
        rate > 100.0,
        "throughput {rate:.0} msg/s is not above 100 msg/s"
    );
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn test_latency() {
    let server = echo_server(&[]);
    let url = server.url().to_owned();
    let mut connection = within(WebSocketConnection::new(TransportConfig::new(&url)))
        .await
        .unwrap();
    within(connection.connect(&url)).await.unwrap();
    let rounds = 100u32;
    let mut total = Duration::ZERO;
    for _ in 0..rounds {
        let started = Instant::now();
        within(connection.send_message(&Message::text("ping")))
            .await
            .unwrap();
        within(connection.receive_message()).await.unwrap();
        total += started.elapsed();
    }
    let average = total / rounds;
    assert!(
        average < Duration::from_millis(10),
        "average latency {average:?} is not below 10 ms"
    );
    within(connection.disconnect()).await.unwrap();
}
