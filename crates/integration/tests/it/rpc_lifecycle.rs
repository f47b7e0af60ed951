//! `RpcClient` over its life: waiting for a call slot within the call's own timeout (or
//! without one), a server that stops reading failing the calls after the send timeout,
//! a client dropped outside any runtime, and what its `Debug` output shows.

use std::time::{Duration, Instant};

use integration::TestServer;
use serde_json::{Value, json};
use ws_client::Error;
use ws_client::rpc::{RpcClient, RpcConfig, Subscription};

use crate::raw_peer::RawServer;
use crate::rpc_faults::spawn_subscribe;
use crate::support::within;

#[tokio::test]
async fn a_call_waiting_for_a_slot_is_bounded_by_its_own_timeout() {
    let server = TestServer::start("rpc");
    let client = within(RpcClient::connect(RpcConfig {
        max_in_flight: 1,
        ..RpcConfig::new(server.url())
    }))
    .await
    .unwrap();
    // Polled once, the sleep takes the only slot and is sent.
    let mut sleeping = std::pin::pin!(client.request::<Value>("sleep", json!({"ms": 800})));
    assert!(futures_util::poll!(sleeping.as_mut()).is_pending());
    let short = Duration::from_millis(200);
    let started = Instant::now();
    let timed_out = within(client.call_with_timeout("echo", json!(["x"]), short)).await;
    assert!(
        matches!(&timed_out, Err(Error::CallTimeout { method, after }) if method == "echo" && *after == short),
        "{timed_out:?}"
    );
    assert!(started.elapsed() >= short, "{:?}", started.elapsed());
    // A timeout too long to be an instant is no timeout: the call waits as long as the
    // slot takes to free up.
    let waiting = client.call_with_timeout("echo", json!(["y"]), Duration::MAX);
    let (slept, waited) = within(async { tokio::join!(sleeping, waiting) }).await;
    assert_eq!(slept.unwrap(), json!({"ms": 800}));
    assert_eq!(waited.unwrap().into_result().unwrap(), json!(["y"]));
}

#[tokio::test]
async fn a_server_that_stops_reading_fails_the_calls_after_the_send_timeout() {
    let listener = RawServer::bind_small_receive_buffer();
    let mut config = RpcConfig {
        max_queued_bytes: 32 << 20,
        ..RpcConfig::new(listener.url())
    };
    config.transport.send_timeout = Duration::from_millis(500);
    let (client, _peer) = tokio::join!(RpcClient::connect(config), listener.accept_peer());
    let client = client.unwrap();
    // The peer reads nothing: 8 MiB of params cannot all be written.
    let started = Instant::now();
    let failed = within(client.request::<Value>("echo", json!(["x".repeat(8 << 20)]))).await;
    assert!(
        matches!(&failed, Err(Error::ConnectionLost(m)) if m.contains("send did not complete within 500ms")),
        "{failed:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed after the send timeout, not the request timeout: {:?}",
        started.elapsed()
    );
    assert!(client.is_closed());
}

#[test]
fn a_client_dropped_outside_any_runtime_lets_its_connection_go() {
    let server = TestServer::start("rpc");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(async {
        let client = within(RpcClient::connect(RpcConfig::new(server.url())))
            .await
            .unwrap();
        let sum: Value = within(client.request("add", [2, 3])).await.unwrap();
        assert_eq!(sum["result"], 5);
        client
    });
    // No runtime here to close politely in: the tasks are aborted, nothing panics.
    drop(client);
    runtime.shutdown_timeout(Duration::from_secs(5));
    let (status, stopped) = server.stop();
    assert!(status.success(), "{stopped}");
}

#[tokio::test]
async fn debug_output_counts_calls_and_subscriptions_without_dumping_them() {
    let listener = RawServer::bind();
    let (client, mut peer) = tokio::join!(
        RpcClient::connect(RpcConfig::new(listener.url())),
        listener.accept_peer()
    );
    let client = client.unwrap();
    let subscribing = spawn_subscribe(&client, "watch", json!([]), "unwatch");
    let request = peer.next_value().await;
    peer.send_json(&json!({"jsonrpc": "2.0", "result": 7, "id": request["id"]}))
        .await;
    let subscription: Subscription<Value> = within(subscribing).await.unwrap().unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request::<Value>("echo", json!(["secret"])).await }
    });
    peer.next_value().await; // the call is out, and waits

    let shown = format!("{client:?}");
    assert!(
        shown.contains("Router { pending: 1, subscriptions: 1, closed: None }"),
        "{shown}"
    );
    assert!(!shown.contains("secret"), "{shown}");
    let shown = format!("{subscription:?}");
    assert!(shown.contains("Number(7)"), "{shown}");
    assert!(shown.contains("SubscriptionSource { .. }"), "{shown}");
    call.abort();
}

#[tokio::test]
async fn the_reader_never_waits_for_room_to_unsubscribe_a_late_subscription() {
    let listener = RawServer::bind_small_receive_buffer();
    let config = RpcConfig {
        request_timeout: Duration::from_millis(300),
        max_queued_bytes: 8 << 10,
        ..RpcConfig::new(listener.url())
    };
    let (client, peer) = tokio::join!(RpcClient::connect(config), listener.accept_peer());
    let (client, mut peer) = (client.unwrap(), peer);
    let subscribing = spawn_subscribe(&client, "watch", json!([]), "unwatch");
    let subscribe_id = peer.next_value().await["id"].clone();
    let gave_up = within(subscribing).await.unwrap();
    assert!(
        matches!(gave_up, Err(Error::CallTimeout { .. })),
        "{gave_up:?}"
    );
    let long = Duration::from_secs(30);
    let sync = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call_with_timeout("echo", json!(["sync"]), long)
                .await
        }
    });
    let sync_id = peer.next_value().await["id"].clone();

    // From here the peer reads nothing until the outgoing queue is full: of large
    // notifications, then of ones smaller than an unsubscribe, so none fits any more.
    let mut queued = 0usize;
    for params in [json!(["x".repeat(1000)]), Value::Null] {
        loop {
            match within(client.notify("update", params.clone())).await {
                Ok(()) => queued += 1,
                Err(Error::QueueFull { .. }) => break,
                Err(other) => panic!("expected QueueFull, got {other}"),
            }
            assert!(queued < 64 << 10, "{queued} notifications queued");
        }
    }
    // The late answer asks for an unsubscribe the full queue cannot take: it is dropped,
    // and the answer behind it is delivered at once all the same.
    peer.send_json(&json!({"jsonrpc": "2.0", "result": "late-sub", "id": subscribe_id}))
        .await;
    peer.send_json(&json!({"jsonrpc": "2.0", "result": ["sync"], "id": sync_id}))
        .await;
    let answered = within(sync).await.unwrap().unwrap();
    assert_eq!(answered.result, Some(json!(["sync"])));

    let marker = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call_with_timeout("echo", json!(["marker"]), long)
                .await
        }
    });
    let mut notifications = 0;
    loop {
        let message = peer.next_value().await;
        match message["method"].as_str() {
            Some("update") => notifications += 1,
            Some("echo") => break,
            _ => panic!("unexpected message {message}"),
        }
    }
    assert_eq!(
        notifications, queued,
        "every queued notification, no unsubscribe"
    );
    marker.abort();
}
