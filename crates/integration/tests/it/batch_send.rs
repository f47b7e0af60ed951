//! `send_batch` / `send_messages` over real sockets against `test-servers perf`: the sink
//! counts every message and byte of long batches (plain and with permessage-deflate, each
//! message compressed on its own), and clones of a split sender sending batches at once
//! never interleave inside a batch.

use integration::TestServer;
use ws_client::{DeflateConfig, Message, MessageType, TransportConfig};

use crate::support::{connect, connect_with, pattern, within};

/// A batch many times the write buffer (64 KiB), messages of mixed types and sizes: the
/// sink counts exactly what was sent.
#[tokio::test]
async fn the_sink_counts_every_message_of_long_batches() {
    let server = TestServer::start_with("perf", &[]);
    let mut connection = connect(&server.url_with_path("/sink")).await;
    let messages: Vec<Message> = (0..20_000usize)
        .map(|i| match i % 3 {
            0 => Message::text("x".repeat(i % 200)),
            1 => Message::binary(pattern(i % 100, i as u8)),
            _ => Message::binary(pattern(16, i as u8)),
        })
        .collect();
    let bytes: u64 = messages.iter().map(|m| m.data.len() as u64).sum();
    let sent = within(connection.send_messages(&messages)).await.unwrap();
    assert_eq!(sent, messages.len());
    let payloads = (0..5_000u32).map(|i| i.to_be_bytes());
    let sent = within(connection.send_batch(MessageType::Binary, payloads))
        .await
        .unwrap();
    assert_eq!(sent, 5_000);
    // The server answers the close only after reading everything sent before it.
    within(connection.disconnect()).await.unwrap();
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["messages_in"], 25_000);
    assert_eq!(stopped["bytes_in"], bytes + 4 * 5_000);
}

/// With permessage-deflate each message of a batch is compressed on its own: every message
/// arrives (the sink inflates each), and the payload bytes on the wire fall well below
/// the bytes sent.
#[tokio::test]
async fn a_batch_with_permessage_deflate_compresses_each_message() {
    let server = TestServer::start_with("perf", &[]);
    let config = TransportConfig {
        compression: Some(DeflateConfig::default()),
        ..TransportConfig::new(server.url_with_path("/sink"))
    };
    let mut connection = connect_with(config).await;
    assert!(connection.compression().is_some(), "the sink takes deflate");
    let text = "{\"jsonrpc\":\"2.0\",\"method\":\"tick\",\"params\":[1,2,3]} ".repeat(8);
    let sent = within(connection.send_batch(MessageType::Text, (0..2_000).map(|_| &text)))
        .await
        .unwrap();
    assert_eq!(sent, 2_000);
    within(connection.disconnect()).await.unwrap();
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["messages_in"], 2_000);
    let plain = stopped["bytes_in"].as_u64().unwrap();
    let wire = stopped["wire_bytes_in"].as_u64().unwrap();
    assert_eq!(plain, 2_000 * text.len() as u64);
    assert!(wire * 4 < plain, "not compressed: {wire} of {plain}");
}

/// Four clones of a split sender send batches at once to an echo: the echoes of each batch
/// come back together and in order (a batch is written under one hold of the write side).
#[tokio::test]
async fn batches_from_clones_of_a_sender_never_interleave() {
    let server = TestServer::start_with("perf", &[]);
    let connection = connect(&server.url_with_path("/echo")).await;
    let (sender, mut receiver) = connection.split().unwrap();
    let (clones, batches, per_batch) = (4u32, 20u32, 500u32);
    let mut tasks = Vec::new();
    for clone in 0..clones {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            for batch in 0..batches {
                let payloads = (0..per_batch)
                    .map(|i| [clone.to_be_bytes(), batch.to_be_bytes(), i.to_be_bytes()].concat());
                sender
                    .send_batch(MessageType::Binary, payloads)
                    .await
                    .unwrap();
            }
        }));
    }
    let field = |data: &[u8], at: usize| u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
    let mut next_batch = vec![0u32; clones as usize];
    for _ in 0..clones * batches {
        let first = within(receiver.receive_message()).await.unwrap();
        let (clone, batch) = (field(&first.data, 0), field(&first.data, 4));
        assert_eq!(
            batch, next_batch[clone as usize],
            "batches of a clone in order"
        );
        next_batch[clone as usize] += 1;
        assert_eq!(field(&first.data, 8), 0);
        for i in 1..per_batch {
            let echo = within(receiver.receive_message()).await.unwrap();
            let got = (
                field(&echo.data, 0),
                field(&echo.data, 4),
                field(&echo.data, 8),
            );
            assert_eq!(got, (clone, batch, i), "inside a batch");
        }
    }
    for task in tasks {
        within(task).await.unwrap();
    }
    within(sender.close(1000, "")).await.unwrap();
}
