//! Echo over real sockets: frame-length boundaries, ordering, many clients, ping/pong.
//! The boundary tests run against `echo` (on `ws_client::wire`) and `load` (on
//! tungstenite), so ws-client's framing also meets framing code it does not share.

use integration::TestServer;
use ws_client::{Message, MessageType};

use crate::support::{assert_echoes, connect, echo_server, pattern, within};

/// An echo on ws-client's own framing and one on tungstenite's.
fn both_echoes() -> [TestServer; 2] {
    [echo_server(&[]), TestServer::start("load")]
}

/// Payload lengths around the 7-bit, 16-bit and 64-bit length encodings, and 1 MiB.
const BOUNDARY_SIZES: [usize; 7] = [0, 125, 126, 127, 65_535, 65_536, 1 << 20];

#[tokio::test]
async fn binary_echo_is_exact_at_every_frame_length_boundary() {
    for server in both_echoes() {
        binary_echoes(&server).await;
    }
}

async fn binary_echoes(server: &TestServer) {
    let mut connection = connect(server.url()).await;
    for (seed, size) in BOUNDARY_SIZES.into_iter().enumerate() {
        let payload = pattern(size, seed as u8);
        within(connection.send(Message::binary(payload.clone())))
            .await
            .unwrap();
        let echo = within(connection.receive_message()).await.unwrap();
        assert_eq!(echo.message_type, MessageType::Binary, "size {size}");
        assert_eq!(echo.data.len(), size);
        assert!(
            echo.data == payload,
            "binary payload of {size} bytes came back changed"
        );
    }
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn text_echo_is_exact_at_every_frame_length_boundary() {
    for server in both_echoes() {
        text_echoes(&server).await;
    }
}

async fn text_echoes(server: &TestServer) {
    let mut connection = connect(server.url()).await;
    for size in BOUNDARY_SIZES {
        let text: String = (0..size)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        within(connection.send_message(&Message::text(text.clone())))
            .await
            .unwrap();
        let echo = within(connection.receive_message()).await.unwrap();
        assert_eq!(echo.message_type, MessageType::Text, "size {size}");
        assert!(
            echo.as_text().unwrap() == text,
            "text of {size} bytes came back changed"
        );
    }
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn multibyte_text_survives_unchanged() {
    let server = echo_server(&[]);
    let mut connection = connect(server.url()).await;
    let text = "héllo wörld ✓ 🦀 ".repeat(5000);
    within(connection.send(text.as_str())).await.unwrap();
    let echo = within(connection.receive_message()).await.unwrap();
    assert_eq!(echo.as_text().unwrap(), text);
}

#[tokio::test]
async fn a_thousand_sequential_messages_come_back_in_order() {
    let server = echo_server(&[]);
    let mut connection = connect(server.url()).await;
    for i in 0..1000 {
        within(connection.send(format!("message {i}")))
            .await
            .unwrap();
        let echo = within(connection.receive_message()).await.unwrap();
        assert_eq!(echo.as_text().unwrap(), format!("message {i}"));
    }
    within(connection.disconnect()).await.unwrap();
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["messages_in"], 1000);
    assert_eq!(stopped["messages_out"], 1000);
}

#[tokio::test]
async fn a_thousand_pipelined_messages_come_back_in_order() {
    let server = echo_server(&[]);
    let mut connection = connect(server.url()).await;
    for i in 0..1000u32 {
        within(connection.queue(Message::binary(i.to_be_bytes().to_vec())))
            .await
            .unwrap();
    }
    within(connection.flush()).await.unwrap();
    for i in 0..1000u32 {
        let echo = within(connection.receive_message()).await.unwrap();
        assert_eq!(echo.data, i.to_be_bytes(), "echo {i} out of order");
    }
}

#[tokio::test]
async fn fifty_concurrent_clients_each_get_only_their_own_echoes() {
    let server = echo_server(&[]);
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..50u32 {
        let url = server.url().to_owned();
        clients.spawn(async move {
            let mut connection = connect(&url).await;
            for i in 0..20u32 {
                let text = format!("client {client} message {i}");
                within(connection.send(text.as_str())).await.unwrap();
                let echo = within(connection.receive_message()).await.unwrap();
                assert_eq!(echo.as_text().unwrap(), text);
            }
            within(connection.disconnect()).await.unwrap();
        });
    }
    while let Some(done) = within(clients.join_next()).await {
        done.expect("a client task failed");
    }
    let (_, stopped) = server.stop();
    assert_eq!(stopped["connections_accepted"], 50);
    assert_eq!(stopped["messages_in"], 50 * 20);
}

#[tokio::test]
async fn a_ping_is_answered_with_a_pong_carrying_the_same_payload() {
    let server = echo_server(&[]);
    let mut connection = connect(server.url()).await;
    within(connection.send(Message::ping(b"are you there?".to_vec())))
        .await
        .unwrap();
    let pong = within(connection.receive_message()).await.unwrap();
    assert_eq!(pong.message_type, MessageType::Pong);
    assert_eq!(pong.data, b"are you there?");
    // The connection keeps working after the control frame.
    assert_echoes(&mut connection, "after ping").await;
}

#[tokio::test]
async fn connecting_from_a_chosen_loopback_address_works() {
    let server = echo_server(&[]);
    let mut connection = crate::support::connect_with(ws_client::TransportConfig {
        local_address: Some("127.0.0.2".parse().unwrap()),
        ..ws_client::TransportConfig::new(server.url())
    })
    .await;
    assert_echoes(&mut connection, "from 127.0.0.2").await;
}
