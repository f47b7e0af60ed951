//! `RpcClient` against raw peers sending what a server rarely sends: a ping between
//! answers, unreadable or unmatchable answers (with and without a batch waiting), string
//! subscription ids and notifications that match no subscription, a subscribe result that
//! is no id, a close while a subscribe waits, a message over the client's limit; and the
//! configurations `RpcClient` refuses.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use ws_client::rpc::{BatchEntry, RpcClient, RpcConfig, Subscription};
use ws_client::{Error, MessageType};

use crate::raw_peer::{RawPeer, RawServer};
use crate::rpc_faults::{connected, spawn_subscribe};
use crate::support::within;

/// Answers the next request the peer reads with `result`.
async fn answer_next(peer: &mut RawPeer, result: Value) {
    let request = peer.next_value().await;
    peer.send_json(&json!({"jsonrpc": "2.0", "result": result, "id": request["id"]}))
        .await;
}

/// Spawns `client.request(method, params)`.
fn spawn_request(
    client: &RpcClient,
    method: &'static str,
    params: Value,
) -> tokio::task::JoinHandle<Result<Value, Error>> {
    let client = client.clone();
    tokio::spawn(async move { client.request::<Value>(method, params).await })
}

#[tokio::test]
async fn a_ping_between_answers_is_answered_and_the_call_goes_on() {
    let (client, mut peer) = connected(|config| config).await;
    let call = spawn_request(&client, "echo", json!(["x"]));
    let request = peer.next_value().await;
    peer.send(MessageType::Ping, b"still there?").await;
    let pong = peer.next_message().await.expect("the pong");
    assert_eq!(
        (pong.message_type, &pong.data[..]),
        (MessageType::Pong, &b"still there?"[..])
    );
    peer.send_json(&json!({"jsonrpc": "2.0", "result": ["x"], "id": request["id"]}))
        .await;
    assert_eq!(within(call).await.unwrap().unwrap(), json!(["x"]));
}

#[tokio::test]
async fn a_batch_fails_at_once_on_a_batch_answer_it_cannot_read_or_one_matching_no_call() {
    let (client, mut peer) = connected(|config| config).await;
    let batch = || {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .batch(vec![
                    BatchEntry::call("add", json!([1, 2])),
                    BatchEntry::notification("log", json!(["x"])),
                ])
                .await
        })
    };
    // An array, so a batch answer, but of things that are no answers.
    let unreadable = batch();
    peer.next_value().await;
    peer.send_json(&json!([1, "two"])).await;
    let failed = within(unreadable).await.unwrap();
    assert!(
        matches!(&failed, Err(Error::Codec(m)) if m.starts_with("batch answer")),
        "{failed:?}"
    );
    // A single answer with an id this client never uses (it sends numbers).
    let unmatched = batch();
    peer.next_value().await;
    peer.send_json(&json!({"jsonrpc": "2.0", "result": 3, "id": "x-1"}))
        .await;
    let failed = within(unmatched).await.unwrap();
    assert!(
        matches!(&failed, Err(Error::Codec(m)) if m.contains("matching no call (id Some(String(\"x-1\")))")),
        "{failed:?}"
    );
    // The connection goes on.
    let call = spawn_request(&client, "add", json!([2, 2]));
    answer_next(&mut peer, json!(4)).await;
    assert_eq!(within(call).await.unwrap().unwrap(), json!(4));
}

#[tokio::test]
async fn an_unmatchable_answer_with_no_batch_waiting_leaves_the_calls_waiting() {
    let (client, mut peer) = connected(|config| config).await;
    let call = spawn_request(&client, "echo", json!(["mine"]));
    let request = peer.next_value().await;
    // What a server sends for a request it could not read: not this call's answer.
    peer.send_json(&json!({"jsonrpc": "2.0", "id": null,
        "error": {"code": -32700, "message": "Parse error"}}))
        .await;
    peer.send_json(&json!({"jsonrpc": "2.0", "result": "stray", "id": 999_999}))
        .await;
    peer.send_json(&json!({"jsonrpc": "2.0", "result": ["mine"], "id": request["id"]}))
        .await;
    assert_eq!(within(call).await.unwrap().unwrap(), json!(["mine"]));
}

#[tokio::test]
async fn notifications_reach_a_string_id_subscription_and_the_unmatchable_are_ignored() {
    let (client, mut peer) = connected(|config| config).await;
    let subscribing = tokio::spawn({
        let client = client.clone();
        async move { client.subscribe::<i64>("watch", json!([]), "unwatch").await }
    });
    answer_next(&mut peer, json!("sub-a")).await;
    let mut subscription: Subscription<i64> = within(subscribing).await.unwrap().unwrap();
    for ignored in [
        json!({"jsonrpc": "2.0", "method": "watch", "params": [1]}),
        json!({"jsonrpc": "2.0", "method": "watch"}),
        json!({"jsonrpc": "2.0", "method": "watch", "params": {"result": 2}}),
        json!({"jsonrpc": "2.0", "method": "watch", "params": {"subscription": true, "result": 3}}),
        json!({"jsonrpc": "2.0", "method": "watch", "params": {"subscription": "sub-b", "result": 4}}),
        json!({"jsonrpc": "2.0", "method": "watch", "params": {"subscription": "sub-a", "result": 5}}),
        json!({"jsonrpc": "2.0", "method": "watch", "params": {"subscription": "sub-a", "result": 6}}),
    ] {
        peer.send_json(&ignored).await;
    }
    assert_eq!(within(subscription.next()).await.unwrap().unwrap(), 5);
    assert_eq!(within(subscription.next()).await.unwrap().unwrap(), 6);
    drop(subscription);
    let unsubscribe = peer.next_value().await;
    assert_eq!(
        unsubscribe,
        json!({"jsonrpc": "2.0", "method": "unwatch", "params": ["sub-a"]})
    );
}

#[tokio::test]
async fn a_subscribe_whose_result_is_no_subscription_id_fails_with_a_codec_error() {
    let (client, mut peer) = connected(|config| config).await;
    for result in [json!({"id": 1}), json!(1.5), json!(null)] {
        let subscribing = spawn_subscribe(&client, "watch", json!([]), "unwatch");
        answer_next(&mut peer, result.clone()).await;
        let failed = within(subscribing).await.unwrap();
        assert!(
            matches!(&failed, Err(Error::Codec(m)) if m.contains("not a subscription id")),
            "{result}: {failed:?}"
        );
    }
}

#[tokio::test]
async fn a_close_while_a_subscribe_waits_fails_it_and_every_later_call_with_that_close() {
    let (client, mut peer) = connected(|config| config).await;
    let subscribing = spawn_subscribe(&client, "watch", json!([]), "unwatch");
    peer.next_value().await;
    peer.send_close(4001, "moving").await;
    let by_the_close = |error: Option<Error>| matches!(error, Some(Error::ClosedByPeer { code: 4001, reason }) if reason == "moving");
    let subscribed = within(subscribing).await.unwrap();
    assert!(by_the_close(subscribed.err()), "the subscribe");
    let notified = within(client.notify("log", json!(["late"]))).await;
    assert!(by_the_close(notified.err()), "a notification");
    let called = within(client.request::<Value>("echo", json!([]))).await;
    assert!(by_the_close(called.err()), "a call");
    // Closing an ended client, twice, is fine.
    within(client.close()).await.unwrap();
    within(client.close()).await.unwrap();
    assert_eq!(peer.until_end().await, [MessageType::Close]);
}

#[tokio::test]
async fn a_message_over_the_clients_limit_fails_the_calls_with_the_reason() {
    let (client, mut peer) = connected(|mut config| {
        config.transport.max_message_size = 1024;
        config
    })
    .await;
    let call = spawn_request(&client, "echo", json!([]));
    let request = peer.next_value().await;
    let big = json!({"jsonrpc": "2.0", "result": "x".repeat(2000), "id": request["id"]});
    peer.send_json(&big).await;
    let failed = within(call).await.unwrap();
    assert!(
        matches!(&failed, Err(Error::ConnectionLost(m)) if m.contains("exceeds the limit of 1024 bytes")),
        "{failed:?}"
    );
    assert!(client.is_closed());
    // The client failed the connection with 1009, as RFC 6455 asks.
    let close = peer.next_message().await.expect("the client's close");
    assert_eq!(close.close_code(), Some(1009));
}

#[tokio::test]
async fn configurations_that_cannot_work_are_refused() {
    type Breaks = fn(&mut RpcConfig);
    let broken: [(&str, Breaks); 3] = [
        ("max_in_flight", |c| c.max_in_flight = 0),
        ("request_timeout", |c| c.request_timeout = Duration::ZERO),
        ("max_queued_bytes", |c| c.max_queued_bytes = 0),
    ];
    for (field, breaks) in broken {
        let listener = RawServer::bind();
        let mut config = RpcConfig::new(listener.url());
        breaks(&mut config);
        let (client, _peer) = tokio::join!(RpcClient::connect(config), listener.accept_peer());
        assert!(
            matches!(&client, Err(Error::InvalidConfig(m)) if m.contains("greater than zero")),
            "{field}: {client:?}"
        );
    }
    let listener = RawServer::bind();
    let config = RpcConfig {
        request_timeout: Duration::from_millis(1500),
        max_in_flight: 3,
        ..RpcConfig::new(listener.url())
    };
    let (client, _peer) = tokio::join!(RpcClient::connect(config), listener.accept_peer());
    let client = client.unwrap();
    assert_eq!(client.config().request_timeout, Duration::from_millis(1500));
    assert_eq!(client.config().max_in_flight, 3);
}

#[tokio::test]
async fn at_most_1024_abandoned_subscribes_are_remembered_for_an_unsubscribe() {
    const SUBSCRIBES: usize = 1100;
    let timeout = Duration::from_millis(300);
    let (client, mut peer) = connected(|config| RpcConfig {
        request_timeout: timeout,
        max_in_flight: 2 * SUBSCRIBES,
        ..config
    })
    .await;
    let subscribes: Vec<_> = (0..SUBSCRIBES)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .subscribe::<Value>("watch", json!([]), "unwatch")
                    .await
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(SUBSCRIBES);
    for _ in 0..SUBSCRIBES {
        ids.push(peer.next_value().await["id"].clone());
    }
    for subscribe in subscribes {
        let gave_up = within(subscribe).await.unwrap();
        assert!(
            matches!(gave_up, Err(Error::CallTimeout { .. })),
            "{gave_up:?}"
        );
    }
    // Every subscribe is answered late with a subscription, then a call made after them
    // all is answered: by then the client has read every late answer.
    let sync = spawn_request(&client, "echo", json!(["sync"]));
    let sync_request = peer.next_value().await;
    for (n, id) in ids.iter().enumerate() {
        peer.send_json(&json!({"jsonrpc": "2.0", "result": n, "id": id}))
            .await;
    }
    peer.send_json(&json!({"jsonrpc": "2.0", "result": ["sync"], "id": sync_request["id"]}))
        .await;
    within(sync).await.unwrap().unwrap();
    let marker = spawn_request(&client, "echo", json!(["marker"]));
    let mut unsubscribed = 0;
    loop {
        let message = peer.next_value().await;
        if message["method"] == "echo" {
            break;
        }
        assert_eq!(message["method"], "unwatch", "{message}");
        unsubscribed += 1;
    }
    // The table of abandoned subscribes is bounded: the rest are not undone.
    assert_eq!(unsubscribed, 1024);
    marker.abort();
}
