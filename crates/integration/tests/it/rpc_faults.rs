//! `RpcClient` against servers that misbehave: a close frame without the end of TCP, a
//! silent server on close and drop, requests from the server, unmatchable batch answers,
//! a server that stops reading, deep MessagePack and late subscribe answers.
//! The servers are raw peers (see `raw_peer`) doing exactly the fault under test.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use ws_client::Error;
use ws_client::MessageType;
use ws_client::rpc::{BatchEntry, RpcClient, RpcCodec, RpcConfig, Subscription};

use crate::raw_peer::{RawPeer, RawServer};
use crate::support::{within, within_for};

/// A client connected to a fresh raw peer, and that peer.
pub(crate) async fn connected(config: impl FnOnce(RpcConfig) -> RpcConfig) -> (RpcClient, RawPeer) {
    let listener = RawServer::bind();
    let config = config(RpcConfig::new(listener.url()));
    let (client, peer) = tokio::join!(RpcClient::connect(config), listener.accept_peer());
    (client.expect("connect the RPC client"), peer)
}

/// Starts `client.subscribe(method, params, unsubscribe)` as a task of its own, so the test
/// can play the peer's side while it waits.
pub(crate) fn spawn_subscribe(
    client: &RpcClient,
    method: &'static str,
    params: Value,
    unsubscribe: &'static str,
) -> tokio::task::JoinHandle<Result<Subscription<Value>, ws_client::Error>> {
    let client = client.clone();
    tokio::spawn(async move { client.subscribe(method, params, unsubscribe).await })
}

/// The id of a call the peer has read.
fn id_of(request: &Value) -> i64 {
    request["id"].as_i64().expect("a numeric id")
}

/// A subscription to `subscribe_ticks` that `peer` accepted (with id 7).
async fn subscribed(client: &RpcClient, peer: &mut RawPeer) -> Subscription<Value> {
    let subscribing = spawn_subscribe(client, "subscribe_ticks", Value::Null, "unsubscribe");
    let subscribe = peer.next_value().await;
    peer.send_json(&json!({"jsonrpc": "2.0", "result": 7, "id": id_of(&subscribe)}))
        .await;
    within(subscribing).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_close_frame_without_tcp_eof_fails_calls_and_subscriptions_at_once() {
    let (client, mut peer) = connected(|config| config).await;
    let mut subscription = subscribed(&client, &mut peer).await;

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request::<Value>("echo", ["hanging"]).await }
    });
    peer.next_value().await; // the call is out; it will never be answered
    let started = Instant::now();
    peer.send_close(4000, "going").await;

    // Everything fails with the peer's close, long before the 30 s request timeout.
    let bound = Duration::from_secs(3);
    match within_for(bound, call).await.unwrap() {
        Err(Error::ClosedByPeer { code: 4000, reason }) => assert_eq!(reason, "going"),
        other => panic!("expected ClosedByPeer, got {other:?}"),
    }
    match within_for(bound, subscription.next()).await {
        Some(Err(Error::ClosedByPeer { code: 4000, .. })) => {}
        other => panic!("the subscription should end with the close, got {other:?}"),
    }
    assert!(within(subscription.next()).await.is_none());
    assert!(client.is_closed());
    assert!(started.elapsed() < bound);
    // The client echoes the close and lets the socket go, though the peer keeps TCP open.
    let seen = within_for(bound, peer.until_end()).await;
    assert_eq!(seen, [MessageType::Close]);
}

/// A config whose close handshake gives up quickly.
fn quick_close(config: RpcConfig) -> RpcConfig {
    let mut config = config;
    config.transport.close_timeout = Duration::from_millis(300);
    config
}

#[tokio::test]
async fn close_against_a_silent_server_lets_the_socket_go() {
    let (client, mut peer) = connected(quick_close).await;
    match within(client.close()).await {
        Err(Error::CloseTimeout { after }) => assert_eq!(after, Duration::from_millis(300)),
        other => panic!("expected CloseTimeout, got {other:?}"),
    }
    assert!(client.is_closed());
    // The peer never answered the close: the client must still end the TCP connection.
    let seen = within_for(Duration::from_secs(3), peer.until_end()).await;
    assert_eq!(seen, [MessageType::Close]);
}

#[tokio::test]
async fn dropping_the_client_against_a_silent_server_lets_the_socket_go() {
    let (client, mut peer) = connected(quick_close).await;
    drop(client);
    let seen = within_for(Duration::from_secs(3), peer.until_end()).await;
    assert_eq!(seen, [MessageType::Close]);
}

/// Sends `value` in the framing of `codec`.
async fn send_in(peer: &mut RawPeer, codec: RpcCodec, value: &Value) {
    match codec {
        RpcCodec::Json => peer.send_json(value).await,
        _ => {
            let packed = rmp_serde::to_vec_named(value).expect("MessagePack");
            peer.send(MessageType::Binary, &packed).await;
        }
    }
}

#[tokio::test]
async fn a_request_from_the_server_is_never_taken_for_an_answer() {
    for codec in [RpcCodec::Json, RpcCodec::MessagePack] {
        let (client, mut peer) = connected(|config| RpcConfig { codec, ..config }).await;
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.request::<Value>("echo", ["x"]).await }
        });
        let id = id_of(&peer.next_value().await);
        // Requests from the server with the pending call's id, in several shapes.
        for request in [
            json!({"jsonrpc": "2.0", "method": "client_ping", "id": id}),
            json!({"jsonrpc": "2.0", "id": id, "method": "client_ping", "params": [1]}),
            json!({"jsonrpc": "2.0", "method": null, "id": id, "result": "not an answer"}),
        ] {
            send_in(&mut peer, codec, &request).await;
        }
        send_in(
            &mut peer,
            codec,
            &json!({"jsonrpc": "2.0", "result": "the answer", "id": id}),
        )
        .await;
        let answer = within(call).await.unwrap();
        assert_eq!(
            answer.ok(),
            Some(json!("the answer")),
            "{codec:?}: a request completed the call"
        );
    }
}

#[tokio::test]
async fn a_batch_answer_that_matches_no_call_fails_the_batch_at_once() {
    let (client, mut peer) = connected(|config| config).await;
    let entries = || {
        vec![
            BatchEntry::call("add", json!([1, 2])),
            BatchEntry::call("add", json!([3, 4])),
        ]
    };
    // One error object with id null instead of an array (a server refusing the batch).
    let batch = tokio::spawn({
        let client = client.clone();
        async move { client.batch(entries()).await }
    });
    let sent = peer.next_value().await;
    assert_eq!(sent.as_array().map(Vec::len), Some(2));
    let started = Instant::now();
    peer.send_json(&json!({"jsonrpc": "2.0", "id": null,
        "error": {"code": -32600, "message": "batch too large"}}))
        .await;
    match within(batch).await.unwrap() {
        Err(Error::Rpc { code, message, .. }) => {
            assert_eq!((code, message.as_str()), (-32600, "batch too large"));
        }
        other => panic!("expected the server's error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the batch waited"
    );

    // An array where one answer matches and the other has id null.
    let batch = tokio::spawn({
        let client = client.clone();
        async move { client.batch(entries()).await }
    });
    let sent = peer.next_value().await;
    peer.send_json(&json!([
        {"jsonrpc": "2.0", "result": 3, "id": id_of(&sent[0])},
        {"jsonrpc": "2.0", "id": null, "error": {"code": -32603, "message": "lost one"}},
    ]))
    .await;
    match within_for(Duration::from_secs(5), batch).await.unwrap() {
        Err(Error::Rpc { code: -32603, .. }) => {}
        other => panic!("expected the server's error, got {other:?}"),
    }
    // The connection goes on working.
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request::<i64>("add", [1, 1]).await }
    });
    let id = id_of(&peer.next_value().await);
    peer.send_json(&json!({"jsonrpc": "2.0", "result": 2, "id": id}))
        .await;
    assert_eq!(within(call).await.unwrap().unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_message_pack_answer_is_refused_not_a_crash() {
    let codec = RpcCodec::MessagePack;
    let (client, mut peer) = connected(|config| RpcConfig { codec, ..config }).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request::<Value>("echo", ["x"]).await }
    });
    let id = id_of(&peer.next_value().await);
    // About 1 KB: `{"jsonrpc": "2.0", "id": id, "result": [[[...1000 deep...]]]}`.
    let mut deep = rmp_serde::to_vec_named(&json!({"jsonrpc": "2.0", "id": id})).unwrap();
    deep[0] += 1; // one more member in the fixmap
    rmp_serde::encode::write(&mut deep, "result").unwrap();
    deep.extend(std::iter::repeat_n(0x91, 1000)); // a fixarray holding the next one
    deep.push(0xc0);
    peer.send(MessageType::Binary, &deep).await;
    // The reader refuses it (a codec error, logged) and goes on to the real answer.
    send_in(
        &mut peer,
        codec,
        &json!({"jsonrpc": "2.0", "result": "fine", "id": id}),
    )
    .await;
    assert_eq!(within(call).await.unwrap().unwrap(), json!("fine"));
    assert!(!client.is_closed());
}

#[tokio::test]
async fn against_a_server_that_stops_reading_notifications_fail_instead_of_piling_up() {
    let (client, mut peer) = connected(|config| RpcConfig {
        request_timeout: Duration::from_millis(300),
        ..config
    })
    .await;
    let subscription = subscribed(&client, &mut peer).await;
    // From here on the peer reads nothing. Notifications of about 1 KiB each: the queue
    // (1 MiB by default) and the socket buffers fill, then `notify` must fail.
    let params = json!(["x".repeat(1000)]);
    let ceiling = 64 << 20;
    let mut accepted = 0usize;
    let started = Instant::now();
    let refused = loop {
        match within(client.notify("update", params.clone())).await {
            Ok(()) => accepted += 1000,
            Err(error) => break error,
        }
        assert!(
            accepted < ceiling,
            "{accepted} bytes of notifications accepted by a server that reads nothing"
        );
    };
    match refused {
        Error::QueueFull { method, after } => {
            assert_eq!(
                (method.as_str(), after),
                ("update", Duration::from_millis(300))
            );
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    // Batches of notifications and calls wait for room within their timeout too (each
    // a little larger than the notification that found no room).
    let batch = vec![BatchEntry::notification("update", params.clone())];
    match within(client.batch(batch)).await {
        Err(Error::CallTimeout { .. }) => {}
        other => panic!("expected CallTimeout for the batch, got {other:?}"),
    }
    match within(client.request::<Value>("echo", &params)).await {
        Err(Error::CallTimeout { .. }) => {}
        other => panic!("expected CallTimeout for the call, got {other:?}"),
    }
    // Dropping a subscription does not wait for room (its unsubscribe is dropped instead).
    within(async move { drop(subscription) }).await;
    drop(peer);
}

#[tokio::test]
async fn a_subscribe_answered_after_its_caller_gave_up_is_unsubscribed() {
    let timeout = Duration::from_millis(200);
    let (client, mut peer) = connected(|config| RpcConfig {
        request_timeout: timeout,
        ..config
    })
    .await;
    let subscribe = || {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .subscribe::<Value>("subscribe_ticks", Value::Null, "unsubscribe")
                .await
        })
    };
    // Answered after the subscribe timed out.
    let timed_out = subscribe();
    let id = id_of(&peer.next_value().await);
    match within(timed_out).await.unwrap() {
        Err(Error::CallTimeout { after, .. }) => assert_eq!(after, timeout),
        other => panic!("expected CallTimeout, got {other:?}"),
    }
    peer.send_json(&json!({"jsonrpc": "2.0", "result": 42, "id": id}))
        .await;
    let unsubscribe = within_for(Duration::from_secs(3), peer.next_value()).await;
    assert_eq!(
        unsubscribe,
        json!({"jsonrpc": "2.0", "method": "unsubscribe", "params": [42]})
    );

    // Answered after the subscribing task was dropped.
    let dropped = subscribe();
    let id = id_of(&peer.next_value().await);
    dropped.abort();
    assert!(within(dropped).await.unwrap_err().is_cancelled());
    peer.send_json(&json!({"jsonrpc": "2.0", "result": "s-7", "id": id}))
        .await;
    let unsubscribe = within_for(Duration::from_secs(3), peer.next_value()).await;
    assert_eq!(unsubscribe["params"], json!(["s-7"]));

    // A late error answer started nothing: nothing to undo; the next message is a call.
    let failed = subscribe();
    let id = id_of(&peer.next_value().await);
    assert!(within(failed).await.unwrap().is_err());
    peer.send_json(&json!({"jsonrpc": "2.0", "id": id,
        "error": {"code": -32000, "message": "no"}}))
        .await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request::<Value>("echo", ["after"]).await }
    });
    assert_eq!(peer.next_value().await["method"], "echo");
    call.abort();
}
