//! Regression tests for the findings of an adversarial review: each one failed on the code
//! before its fix. Raw peers (see `raw_peer`) play the server exactly.

use std::time::Duration;

use integration::TestServer;
use serde_json::{Value, json};
use ws_client::rpc::{BatchEntry, RpcClient, RpcConfig};
use ws_client::{ConnectionState, Error, MessageType, TransportConfig};

use crate::cancel_safety::fill;
use crate::raw_peer::{
    BINARY, CLOSE, PING, PONG, RawPeer, RawServer, close_payload, read_frames, server_frame,
};
use crate::rpc_faults::{connected, spawn_subscribe};
use crate::support::{connect, connect_with, within, within_for};

/// Makes one round trip through the client's reader: once it returns, the reader has
/// routed everything the peer sent before.
async fn round_trip(client: &RpcClient, peer: &mut RawPeer) {
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request::<Value>("echo", ["sync"]).await }
    });
    let request = peer.next_value().await;
    assert_eq!(request["method"], "echo");
    peer.send_json(&json!({"jsonrpc": "2.0", "result": "sync", "id": request["id"]}))
        .await;
    within(call).await.unwrap().unwrap();
}

/// A subscribe whose answer reached the client, but whose caller was dropped before it
/// looked at it, started a subscription nobody will read: the client must end it on the
/// server, as it does for an answer that comes after the caller gave up.
#[tokio::test]
async fn a_subscribe_dropped_after_its_answer_arrived_is_unsubscribed() {
    let (client, mut peer) = connected(|config| config).await;
    let mut subscribing =
        Box::pin(client.subscribe::<Value>("subscribe_ticks", Value::Null, "unsubscribe"));
    // One poll sends the request; the future then waits for its answer.
    assert!(futures_util::poll!(subscribing.as_mut()).is_pending());
    let request = peer.next_value().await;
    assert_eq!(request["method"], "subscribe_ticks");
    peer.send_json(&json!({"jsonrpc": "2.0", "result": 42, "id": request["id"]}))
        .await;
    // The reader has handed the answer over; the caller goes away without reading it.
    round_trip(&client, &mut peer).await;
    drop(subscribing);
    let unsubscribe = within_for(Duration::from_secs(3), peer.next_value()).await;
    assert_eq!(
        unsubscribe,
        json!({"jsonrpc": "2.0", "method": "unsubscribe", "params": [42]})
    );
}

/// A request larger than the transport's `max_message_size` is the mistake of its caller:
/// it fails alone with `MessageTooLarge`, instead of failing the writing task and with it
/// every call in flight and the connection.
#[tokio::test]
async fn an_oversized_request_fails_alone_and_the_connection_lives_on() {
    let server = TestServer::start("rpc");
    let mut config = RpcConfig::new(server.url());
    config.transport.max_message_size = 4096;
    let client = within(RpcClient::connect(config)).await.unwrap();
    let big = "x".repeat(8192);
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.request::<Value>("sleep", json!({"ms": 300})).await }
    });
    match within(client.request::<Value>("echo", [&big])).await {
        Err(Error::MessageTooLarge { limit: 4096, .. }) => {}
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    match within(client.notify("update", json!([&big]))).await {
        Err(Error::MessageTooLarge { limit: 4096, .. }) => {}
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    let batch = vec![BatchEntry::call("echo", json!([&big]))];
    match within(client.batch(batch)).await {
        Err(Error::MessageTooLarge { limit: 4096, .. }) => {}
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    // The call in flight and the ones after it are not affected.
    assert_eq!(within(slow).await.unwrap().unwrap(), json!({"ms": 300}));
    let small: Value = within(client.request("echo", ["small"])).await.unwrap();
    assert_eq!(small, json!(["small"]));
    assert!(!client.is_closed());
    within(client.close()).await.unwrap();
}

/// `close` waits until the connection has ended, also when another clone is already
/// closing it: a second `close` returned at once, while the first still waited for the
/// server's answer, and the client was not closed yet.
#[tokio::test]
async fn a_second_concurrent_close_waits_for_the_end_too() {
    let (client, mut peer) = connected(|config| config).await;
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    // The first close has sent its close frame; the peer has not answered yet.
    let close = peer.next_message().await.expect("the client's close frame");
    assert_eq!(close.message_type, ws_client::MessageType::Close);
    let mut second = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    let early = tokio::time::timeout(Duration::from_millis(200), &mut second).await;
    assert!(
        early.is_err(),
        "the second close returned before the connection ended: {early:?}"
    );
    peer.send_close(1000, "").await;
    within(first).await.unwrap().unwrap();
    within(second).await.unwrap().unwrap();
    assert!(client.is_closed());
}

/// After our own close frame, a protocol error from the peer fails the receive, but no
/// second close frame (1002) goes out: an endpoint sends one close frame at most (RFC 6455
/// section 5.5.1), and tungstenite's peers log the second as a protocol error of ours.
#[tokio::test]
async fn a_protocol_error_after_our_close_sends_no_second_close_frame() {
    let server = RawServer::bind();
    let url = server.url();
    let (mut tcp, connection) = tokio::join!(server.accept(), connect(&url));
    let (sender, mut receiver) = connection.split().unwrap();
    within(sender.close(1000, "ours")).await.unwrap();
    let frames = within(read_frames(&mut tcp, true)).await;
    assert_eq!(frames.last().map(|f| f.opcode), Some(CLOSE));
    // A text frame with a reserved bit set: a protocol error.
    within(tokio::io::AsyncWriteExt::write_all(&mut tcp, &[0xC1, 0x00]))
        .await
        .unwrap();
    match within(receiver.receive_message()).await {
        Err(Error::Protocol(_)) => {}
        other => panic!("expected a protocol error, got {other:?}"),
    }
    drop((sender, receiver));
    let after = within(read_frames(&mut tcp, false)).await;
    assert!(
        after.iter().all(|f| f.opcode != CLOSE),
        "a second close frame: {after:?}"
    );
}

/// "No timeout" written as the largest duration works as it did before the timeouts
/// became deadlines: a deadline too far to be represented is no deadline, not a panic (an
/// `Instant` plus `Duration::MAX` overflows), whether it is armed by a ping from the peer,
/// by a failure's close frame or by closing a closed connection.
#[tokio::test]
async fn the_largest_timeouts_are_no_timeouts_not_a_panic() {
    let server = RawServer::bind();
    let config = TransportConfig {
        send_timeout: Duration::MAX,
        close_timeout: Duration::MAX,
        ..TransportConfig::new(server.url())
    };
    let (mut tcp, mut connection) = tokio::join!(server.accept(), connect_with(config));
    let ping = server_frame(PING, true, b"are you there");
    within(tokio::io::AsyncWriteExt::write_all(&mut tcp, &ping))
        .await
        .unwrap();
    let received = within(connection.receive_message()).await.unwrap();
    assert_eq!(received.message_type, MessageType::Ping);
    let close = server_frame(CLOSE, true, &close_payload(1000, "bye"));
    within(tokio::io::AsyncWriteExt::write_all(&mut tcp, &close))
        .await
        .unwrap();
    let received = within(connection.receive_message()).await.unwrap();
    assert_eq!(received.message_type, MessageType::Close);
    within(connection.disconnect()).await.unwrap();
    assert_eq!(connection.state(), ConnectionState::Closed);
    drop(connection);
    let frames = within(read_frames(&mut tcp, false)).await;
    let answers: Vec<u8> = frames.iter().map(|f| f.opcode).collect();
    assert_eq!(answers, [PONG, CLOSE]);
}

/// What a cancelled receive left owed (here the echo of the peer's close, and the close
/// message itself) goes with the connection when it is split: the receiver returns the
/// close and writes the echo, as the whole connection would have.
#[tokio::test]
async fn split_after_a_cancelled_receive_keeps_what_it_owed() {
    let server = RawServer::bind_small_receive_buffer();
    let config = TransportConfig {
        send_timeout: Duration::from_secs(10),
        close_timeout: Duration::from_secs(10),
        ..TransportConfig::new(server.url())
    };
    let (mut tcp, mut connection) = tokio::join!(server.accept(), connect_with(config));
    let filled = fill(async |message| connection.send(message).await).await;
    let close = close_payload(1000, "bye");
    within(tokio::io::AsyncWriteExt::write_all(
        &mut tcp,
        &server_frame(CLOSE, true, &close),
    ))
    .await
    .unwrap();
    let early =
        tokio::time::timeout(Duration::from_millis(300), connection.receive_message()).await;
    assert!(early.is_err(), "the echo cannot be written yet: {early:?}");

    let (sender, mut receiver) = connection.split().unwrap();
    let reader = tokio::spawn(async move { read_frames(&mut tcp, false).await });
    let received = within(receiver.receive_message()).await;
    assert_eq!(
        received.map(|m| m.message_type).ok(),
        Some(MessageType::Close),
        "the close message was lost in the split"
    );
    drop((sender, receiver));
    let frames = within(reader).await.unwrap();
    assert_eq!(frames.iter().filter(|f| f.opcode == BINARY).count(), filled);
    let controls: Vec<(u8, Vec<u8>)> = frames
        .iter()
        .filter(|f| f.opcode != BINARY)
        .map(|f| (f.opcode, f.payload.clone()))
        .collect();
    assert_eq!(controls, [(CLOSE, close[..2].to_vec())]);
}

/// An answer that matches no call (a server refusing a whole batch answers with one error
/// object, id null) fails the oldest batch *still waiting*: a batch whose answers have all
/// been routed, but whose caller has not run since, waits for nothing and is passed over.
#[tokio::test]
async fn an_unmatched_error_fails_the_batch_still_waiting_not_one_already_answered() {
    let (client, mut peer) = connected(|config| config).await;
    let mut answered = Box::pin(client.batch(vec![BatchEntry::call("echo", json!(["a"]))]));
    assert!(futures_util::poll!(answered.as_mut()).is_pending());
    let first = peer.next_value().await;
    let waiting = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .batch(vec![BatchEntry::call("echo", json!(["b"]))])
                .await
        }
    });
    let _second = peer.next_value().await;
    // The first batch is answered (its caller is not polled again yet), the second refused.
    peer.send_json(&json!([{"jsonrpc": "2.0", "result": ["a"], "id": first[0]["id"]}]))
        .await;
    round_trip(&client, &mut peer).await;
    peer.send_json(&json!({"jsonrpc": "2.0", "id": null,
        "error": {"code": -32600, "message": "Invalid Request"}}))
        .await;
    match within_for(Duration::from_secs(3), waiting).await.unwrap() {
        Err(Error::Rpc { code: -32600, .. }) => {}
        other => panic!("expected the refusal, got {other:?}"),
    }
    let answers = within(answered).await.unwrap();
    assert_eq!(answers[0].as_ref().unwrap().result, Some(json!(["a"])));
}

/// `Subscription::unsubscribe` cancelled before its call went out (here it waits for a
/// call slot) still ends the subscription on the server, as dropping the stream would.
#[tokio::test]
async fn a_cancelled_unsubscribe_still_unsubscribes() {
    let (client, mut peer) = connected(|config| RpcConfig {
        max_in_flight: 1,
        ..config
    })
    .await;
    let subscribing = spawn_subscribe(&client, "subscribe_ticks", Value::Null, "unsubscribe");
    let request = peer.next_value().await;
    peer.send_json(&json!({"jsonrpc": "2.0", "result": 42, "id": request["id"]}))
        .await;
    let subscription = within(subscribing).await.unwrap().unwrap();
    // A call the peer never answers holds the only slot.
    let hanging = tokio::spawn({
        let client = client.clone();
        async move { client.request::<Value>("echo", ["hang"]).await }
    });
    assert_eq!(peer.next_value().await["method"], "echo");
    let cancelled =
        tokio::time::timeout(Duration::from_millis(200), subscription.unsubscribe()).await;
    assert!(
        cancelled.is_err(),
        "the unsubscribe had no slot: {cancelled:?}"
    );
    let unsubscribe = within_for(Duration::from_secs(3), peer.next_value()).await;
    assert_eq!(unsubscribe["method"], "unsubscribe");
    assert_eq!(unsubscribe["params"], json!([42]));
    hanging.abort();
}
