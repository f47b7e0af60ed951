//! Closing: from the client, from the server at shutdown (1001), and on an oversized
//! message (1009).

use ws_client::{ConnectionState, Error, Message, MessageType, TransportConfig};

use crate::support::{assert_echoes, connect, connect_with, echo_server, within};

#[tokio::test]
async fn client_disconnect_completes_the_close_handshake() {
    let server = echo_server(&[]);
    let mut connection = connect(server.url()).await;
    within(connection.send("bye")).await.unwrap();
    within(connection.receive_message()).await.unwrap();
    within(connection.disconnect())
        .await
        .expect("close handshake");
    assert_eq!(connection.state(), ConnectionState::Closed);
    assert!(matches!(
        within(connection.send("late")).await,
        Err(Error::ConnectionClosed)
    ));
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["connections_accepted"], 1);
    assert_eq!(stopped["connections_active"], 0);
    assert_eq!(stopped["protocol_errors"], 0);
}

#[tokio::test]
async fn server_shutdown_reaches_the_client_as_1001_going_away() {
    let server = echo_server(&[]);
    let mut connection = connect(server.url()).await;
    within(connection.send("hello")).await.unwrap();
    within(connection.receive_message()).await.unwrap();

    let stopping = tokio::task::spawn_blocking(move || server.stop());
    let close = within(connection.receive_message())
        .await
        .expect("the server's close frame");
    assert_eq!(close.message_type, MessageType::Close);
    assert_eq!(close.close_code(), Some(1001));
    match within(connection.receive_message()).await {
        Err(Error::ClosedByPeer { code: 1001, reason }) => {
            assert!(reason.contains("shutting down"), "{reason}")
        }
        other => panic!("expected ClosedByPeer 1001, got {other:?}"),
    }
    let (status, stopped) = within(stopping).await.unwrap();
    assert!(status.success());
    assert_eq!(
        stopped["clean"], true,
        "every session closed within the grace period"
    );
}

#[tokio::test]
async fn a_message_over_the_server_limit_is_closed_with_1009() {
    let server = echo_server(&["--max-message-size", "1024"]);
    let mut connection = connect(server.url()).await;
    within(connection.send(Message::binary(vec![7u8; 1024])))
        .await
        .unwrap();
    assert_eq!(
        within(connection.receive_message())
            .await
            .unwrap()
            .data
            .len(),
        1024
    );

    // Sending may or may not complete before the server reacts; the close must arrive.
    let _ = within(connection.send(Message::binary(vec![7u8; 2 << 20]))).await;
    let close = within(connection.receive_message())
        .await
        .expect("the server's close frame");
    assert_eq!(close.close_code(), Some(1009), "{close:?}");

    // One client breaking the limit does not disturb the next one.
    let mut next = connect(server.url()).await;
    assert_echoes(&mut next, "still serving").await;
    let (_, stopped) = server.stop();
    assert_eq!(stopped["protocol_errors"], 1);
}

#[tokio::test]
async fn the_client_refuses_to_send_over_its_own_limit() {
    let server = echo_server(&[]);
    let mut connection = connect_with(TransportConfig {
        max_message_size: 1000,
        ..TransportConfig::new(server.url())
    })
    .await;
    match within(connection.send(Message::binary(vec![0u8; 1001]))).await {
        Err(Error::MessageTooLarge {
            size: 1001,
            limit: 1000,
        }) => {}
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    // Nothing was sent, so the connection is still fine.
    within(connection.send(Message::binary(vec![1u8; 1000])))
        .await
        .unwrap();
    assert_eq!(
        within(connection.receive_message())
            .await
            .unwrap()
            .data
            .len(),
        1000
    );
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let server = echo_server(&["--idle-timeout", "300ms"]);
    let mut connection = connect(server.url()).await;
    let close = within(connection.receive_message())
        .await
        .expect("a close after the idle timeout");
    assert_eq!(close.close_code(), Some(1001));
    assert_eq!(close.close_reason().as_deref(), Some("idle timeout"));
}

#[tokio::test]
async fn a_message_over_the_client_limit_fails_with_message_too_large() {
    let server = integration::TestServer::start("perf");
    let url = server.url_with_path("/source?count=1&size=5000");
    let mut connection = connect_with(TransportConfig {
        max_message_size: 1000,
        ..TransportConfig::new(&url)
    })
    .await;
    match within(connection.receive_message()).await {
        Err(Error::MessageTooLarge { size, limit: 1000 }) => assert!(size >= 5000, "{size}"),
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert_eq!(connection.state(), ws_client::ConnectionState::Closed);
    let (_, stopped) = server.stop();
    assert_eq!(stopped["messages_out"], 1);
}
