//! The split halves' whole API: a `WsSender` queues (owned and borrowed payloads), flushes
//! and sends in order, from any clone or from the receiver's own sender; a `WsReceiver`
//! sees the peer's close with its code and reason, then `ClosedByPeer`, and both halves
//! report the connection's state.

use ws_client::{ConnectionState, Error, Message, MessageType};

use crate::raw_peer::RawServer;
use crate::support::{connect, echo_server, within};

#[tokio::test]
async fn queued_messages_go_out_in_order_on_flush_then_sends_follow_them() {
    let server = echo_server(&[]);
    let (sender, mut receiver) = connect(server.url()).await.split().unwrap();
    assert_eq!(sender.state(), ConnectionState::Open);
    assert_eq!(receiver.state(), ConnectionState::Open);

    within(sender.queue("one")).await.unwrap();
    within(sender.queue_slice(MessageType::Binary, b"two"))
        .await
        .unwrap();
    within(sender.queue(Message::binary(vec![3u8; 3000])))
        .await
        .unwrap();
    within(sender.queue_slice(MessageType::Text, "four".as_bytes()))
        .await
        .unwrap();
    within(sender.flush()).await.unwrap();
    within(sender.send_message(&Message::text("five")))
        .await
        .unwrap();
    within(sender.send_slice(MessageType::Binary, &[6u8; 70_000]))
        .await
        .unwrap();
    // The receiver's own sender writes on the same connection, after the others.
    within(receiver.sender().send("seven")).await.unwrap();

    let expected = [
        Message::text("one"),
        Message::binary(b"two".to_vec()),
        Message::binary(vec![3u8; 3000]),
        Message::text("four"),
        Message::text("five"),
        Message::binary(vec![6u8; 70_000]),
        Message::text("seven"),
    ];
    for (i, want) in expected.iter().enumerate() {
        let echo = within(receiver.receive_message()).await.unwrap();
        assert!(
            echo == *want,
            "message {i}: {:?} of {} bytes",
            echo.message_type,
            echo.data.len()
        );
    }
    let (_, stopped) = server.stop();
    assert_eq!(stopped["messages_in"], expected.len());
}

#[tokio::test]
async fn a_flush_with_nothing_queued_is_a_no_op_and_a_refused_queue_sends_nothing() {
    let server = echo_server(&[]);
    let (sender, mut receiver) = connect(server.url()).await.split().unwrap();
    within(sender.flush()).await.unwrap();
    let not_utf8 = within(sender.queue_slice(MessageType::Text, &[0xff, 0xfe])).await;
    assert!(matches!(not_utf8, Err(Error::InvalidUtf8)), "{not_utf8:?}");
    let big_ping = within(sender.queue(Message::ping(vec![0u8; 126]))).await;
    assert!(
        matches!(big_ping, Err(Error::ControlFrameTooLarge { size: 126 })),
        "{big_ping:?}"
    );
    within(sender.queue("after the refusals")).await.unwrap();
    within(sender.flush()).await.unwrap();
    let echo = within(receiver.receive_message()).await.unwrap();
    assert_eq!(echo.as_text().unwrap(), "after the refusals");
    assert_eq!(sender.state(), ConnectionState::Open);
}

#[tokio::test]
async fn a_split_receiver_sees_the_peers_close_code_and_reason_and_then_closed_by_peer() {
    let server = RawServer::bind();
    let url = server.url();
    let (mut peer, connection) = tokio::join!(server.accept_peer(), connect(&url));
    let (sender, mut receiver) = connection.split().unwrap();

    peer.send(MessageType::Text, b"before the close").await;
    peer.send_close(4000, "maintenance").await;

    let text = within(receiver.receive_message()).await.unwrap();
    assert_eq!(text.as_text().unwrap(), "before the close");
    let close = within(receiver.receive_message()).await.unwrap();
    assert_eq!(close.message_type, MessageType::Close);
    assert_eq!(close.close_code(), Some(4000));
    assert_eq!(close.close_reason().as_deref(), Some("maintenance"));
    assert_eq!(receiver.state(), ConnectionState::Closed);
    assert_eq!(sender.state(), ConnectionState::Closed);

    let closed_by_peer = |error: Option<Error>| matches!(error, Some(Error::ClosedByPeer { code: 4000, reason }) if reason == "maintenance");
    let again = within(receiver.receive_message()).await;
    assert!(closed_by_peer(again.err()), "a second receive");
    let send = within(sender.send("too late")).await;
    assert!(closed_by_peer(send.err()), "a send");
    let queued = within(sender.queue_slice(MessageType::Binary, b"too late")).await;
    assert!(closed_by_peer(queued.err()), "a queued slice");
    let close = within(sender.close(1000, "")).await;
    assert!(closed_by_peer(close.err()), "a close");

    // The peer got the echo of its close (its code), and nothing after it.
    let echo = peer.next_message().await.expect("the close echo");
    assert_eq!(echo.message_type, MessageType::Close);
    assert_eq!(echo.close_code(), Some(4000));
    drop((sender, receiver));
    assert_eq!(peer.until_end().await, Vec::<MessageType>::new());
}
