//! `RpcClient` against `test-servers rpc` over a real socket: calls, concurrency, timeouts,
//! notifications, batches, subscriptions, failure of the server, and the binary codec.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use ws_client::Error;
use ws_client::rpc::{BatchEntry, Id, RpcClient, RpcCodec, RpcConfig, RpcMethod, Subscription};

use crate::support::{within, within_for};
use integration::TestServer;

async fn rpc_client(server: &TestServer) -> RpcClient {
    rpc_client_with(RpcConfig::new(server.url())).await
}

async fn rpc_client_with(config: RpcConfig) -> RpcClient {
    within(RpcClient::connect(config))
        .await
        .expect("connect the RPC client")
}

#[tokio::test]
async fn echo_and_add_as_in_the_original_design() {
    let server = TestServer::start("rpc");
    let client = rpc_client(&server).await;
    let params = json!({"message": "hello", "n": [1, 2, 3]});
    let response = within(client.call("echo", params.clone(), RpcMethod::Call))
        .await
        .unwrap();
    assert_eq!(response.result, Some(params));
    assert!(response.error.is_none());
    assert!(matches!(response.id, Id::Number(_)));

    let response = within(client.call("add", json!({"a": 5, "b": 3}), RpcMethod::Call))
        .await
        .unwrap();
    assert_eq!(response.result.unwrap()["result"], 8);
    let sum: Value = within(client.request("add", [5, 3])).await.unwrap();
    assert_eq!(sum, json!({"result": 8}));
    within(client.close()).await.unwrap();
}

#[tokio::test]
async fn a_thousand_concurrent_calls_with_mixed_sleeps_each_get_their_own_answer() {
    let server = TestServer::start("rpc");
    let client = rpc_client(&server).await;
    let calls = (0..1000u64).map(|tag| {
        let client = client.clone();
        async move {
            let params = json!({"ms": (tag * 7) % 50, "tag": tag});
            let answer: Value = client.request("sleep", &params).await.unwrap();
            assert_eq!(answer, params, "call {tag} got another call's answer");
            tag
        }
    });
    let done = within(futures_util::future::join_all(calls)).await;
    assert_eq!(done.len(), 1000);
}

#[tokio::test]
async fn a_slow_call_does_not_hold_up_a_fast_one() {
    let server = TestServer::start("rpc");
    let client = rpc_client(&server).await;
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.request::<Value>("sleep", json!({"ms": 3000})).await }
    });
    let started = Instant::now();
    let sum: Value = within(client.request("add", [1, 2])).await.unwrap();
    assert_eq!(sum["result"], 3);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the fast call waited for the slow one"
    );
    slow.abort();
}

#[tokio::test]
async fn a_per_call_timeout_frees_the_call_and_its_late_answer_is_discarded() {
    let server = TestServer::start("rpc");
    let client = rpc_client(&server).await;
    let started = Instant::now();
    let late = within(client.call_with_timeout(
        "sleep",
        json!({"ms": 300, "tag": "late"}),
        Duration::from_millis(50),
    ))
    .await;
    match late {
        Err(Error::CallTimeout { method, after }) => {
            assert_eq!(method, "sleep");
            assert_eq!(after, Duration::from_millis(50));
        }
        other => panic!("expected CallTimeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(250));
    // This answer comes after the late one; it must reach this call, not the dead one.
    let answer: Value = within(client.request("sleep", json!({"ms": 500, "tag": "on time"})))
        .await
        .unwrap();
    assert_eq!(answer["tag"], "on time");
}

#[tokio::test]
async fn the_client_wide_default_timeout_applies() {
    let server = TestServer::start("rpc");
    let client = rpc_client_with(RpcConfig {
        request_timeout: Duration::from_millis(200),
        ..RpcConfig::new(server.url())
    })
    .await;
    match within(client.call("sleep", json!({"ms": 5000}), RpcMethod::Call)).await {
        Err(Error::CallTimeout { after, .. }) => assert_eq!(after, Duration::from_millis(200)),
        other => panic!("expected CallTimeout, got {other:?}"),
    }
}

#[tokio::test]
async fn callers_beyond_the_in_flight_cap_wait_for_a_slot() {
    let server = TestServer::start("rpc");
    let client = rpc_client_with(RpcConfig {
        max_in_flight: 2,
        ..RpcConfig::new(server.url())
    })
    .await;
    let started = Instant::now();
    let calls = (0..6).map(|i| client.request::<Value>("sleep", json!({"ms": 200, "i": i})));
    for answer in within(futures_util::future::join_all(calls)).await {
        answer.expect("every caller is served, none refused");
    }
    // Six calls through two slots take at least three rounds of 200 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_notification_gets_no_answer() {
    let server = TestServer::start("rpc");
    let client = rpc_client(&server).await;
    within(client.notify("update", json!([1, 2, 3])))
        .await
        .unwrap();
    let response = within(client.call("notify_hello", json!([7]), RpcMethod::Notification))
        .await
        .unwrap();
    assert_eq!(
        (response.id, response.result, response.error),
        (Id::Null, None, None)
    );
    // Had the server answered the notifications, the answers would be logged and dropped;
    // the connection goes on working either way, and the raw-frame test checks silence.
    let echoed: Value = within(client.request("echo", ["after"])).await.unwrap();
    assert_eq!(echoed, json!(["after"]));
}

#[tokio::test]
async fn a_batch_mixing_calls_an_unknown_method_and_a_notification() {
    let server = TestServer::start("rpc");
    let client = rpc_client(&server).await;
    let answers = within(client.batch(vec![
        BatchEntry::call("add", json!([5, 3])),
        BatchEntry::call("foobar", Value::Null),
        BatchEntry::notification("update", json!([1])),
        BatchEntry::call("sleep", json!({"ms": 30})),
        BatchEntry::call("echo", json!({"x": 1})),
    ]))
    .await
    .unwrap();
    assert_eq!(answers.len(), 5);
    assert_eq!(
        answers[0].as_ref().unwrap().result,
        Some(json!({"result": 8}))
    );
    assert_eq!(
        answers[1].as_ref().unwrap().error.as_ref().unwrap().code,
        -32601
    );
    assert!(answers[2].is_none(), "a notification has no answer");
    assert_eq!(answers[3].as_ref().unwrap().result, Some(json!({"ms": 30})));
    assert_eq!(answers[4].as_ref().unwrap().result, Some(json!({"x": 1})));
}

#[tokio::test]
async fn rpc_errors_become_typed_errors() {
    let server = TestServer::start("rpc");
    let client = rpc_client(&server).await;
    match within(client.request::<Value>(
        "fail",
        json!({"code": -32050, "message": "nope", "data": {"why": 1}}),
    ))
    .await
    {
        Err(Error::Rpc {
            code,
            message,
            data,
        }) => {
            assert_eq!((code, message.as_str()), (-32050, "nope"));
            assert_eq!(data, Some(json!({"why": 1})));
        }
        other => panic!("expected Error::Rpc, got {other:?}"),
    }
    match within(client.request::<Value>("no_such_method", ())).await {
        Err(Error::Rpc { code: -32601, .. }) => {}
        other => panic!("expected -32601, got {other:?}"),
    }
    match within(client.request::<String>("add", [1, 2])).await {
        Err(Error::Codec(_)) => {}
        other => panic!("a result of the wrong type is a codec error, got {other:?}"),
    }
}

async fn ticks(subscription: &mut Subscription<Value>, count: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    for _ in 0..count {
        let tick = within(subscription.next())
            .await
            .expect("a tick")
            .expect("a good tick");
        seen.push(tick["n"].as_u64().unwrap());
    }
    seen
}

#[tokio::test]
async fn a_subscription_receives_its_ticks_in_order_and_stops_after_unsubscribe() {
    let server = TestServer::start("rpc");
    let client = rpc_client(&server).await;
    let mut five: Subscription<Value> = within(client.subscribe(
        "subscribe_ticks",
        json!({"count": 5, "interval_ms": 5}),
        "unsubscribe",
    ))
    .await
    .unwrap();
    assert_eq!(ticks(&mut five, 5).await, [0, 1, 2, 3, 4]);

    let mut endless: Subscription<Value> = within(client.subscribe(
        "subscribe_ticks",
        json!({"count": 100000, "interval_ms": 5}),
        "unsubscribe",
    ))
    .await
    .unwrap();
    let id = endless.id().clone();
    assert_eq!(ticks(&mut endless, 3).await, [0, 1, 2]);
    assert_eq!(within(endless.unsubscribe()).await.unwrap(), json!(true));
    let Id::Number(id) = id else {
        panic!("numeric id")
    };
    let again: bool = within(client.request("unsubscribe", [id])).await.unwrap();
    assert!(
        !again,
        "the server still had the subscription after unsubscribe"
    );

    // Dropping a subscription unsubscribes too.
    let dropped: Subscription<Value> = within(client.subscribe(
        "subscribe_ticks",
        json!({"count": 100000, "interval_ms": 5}),
        "unsubscribe",
    ))
    .await
    .unwrap();
    let Id::Number(dropped_id) = dropped.id().clone() else {
        panic!("numeric id")
    };
    drop(dropped);
    let still_there: bool = within(client.request("unsubscribe", [dropped_id]))
        .await
        .unwrap();
    assert!(!still_there, "dropping the stream did not unsubscribe");
}

#[tokio::test]
async fn a_slow_subscription_reader_is_told_how_many_ticks_it_missed() {
    let server = TestServer::start("rpc");
    let client = rpc_client_with(RpcConfig {
        subscription_buffer: 4,
        ..RpcConfig::new(server.url())
    })
    .await;
    let mut fast: Subscription<Value> = within(client.subscribe(
        "subscribe_ticks",
        json!({"count": 50, "interval_ms": 0}),
        "unsubscribe",
    ))
    .await
    .unwrap();
    // Let all 50 ticks arrive while nobody reads; a call after them proves they came.
    let _: Value = within(client.request("sleep", json!({"ms": 100})))
        .await
        .unwrap();
    match within(fast.next()).await {
        Some(Err(Error::SubscriptionLagged { missed })) => assert_eq!(missed, 46),
        other => panic!("expected SubscriptionLagged, got {other:?}"),
    }
    assert_eq!(
        ticks(&mut fast, 4).await,
        [0, 1, 2, 3],
        "the buffered ticks are the oldest"
    );
}

#[tokio::test]
async fn killing_the_server_fails_every_pending_call_promptly() {
    let mut server = TestServer::start("rpc");
    let client = rpc_client(&server).await;
    let mut subscription: Subscription<Value> = within(client.subscribe(
        "subscribe_ticks",
        json!({"count": 100000, "interval_ms": 1000}),
        "unsubscribe",
    ))
    .await
    .unwrap();
    let pending: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(
                async move { client.request::<Value>("sleep", json!({"ms": 30000})).await },
            )
        })
        .collect();
    // Make sure every call is in flight before the kill: a later call's answer proves it.
    let _: Value = within(client.request("echo", ())).await.unwrap();
    server.kill();
    let started = Instant::now();
    for call in pending {
        match within_for(Duration::from_secs(5), call).await.unwrap() {
            Err(Error::ConnectionLost(_)) => {}
            other => panic!("expected ConnectionLost, got {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    match within(subscription.next()).await {
        Some(Err(Error::ConnectionLost(_))) => {}
        other => panic!("the subscription should end with ConnectionLost, got {other:?}"),
    }
    assert!(within(subscription.next()).await.is_none());
    assert!(client.is_closed());
    assert!(matches!(
        within(client.request::<Value>("echo", ())).await,
        Err(Error::ConnectionLost(_))
    ));
}

#[tokio::test]
async fn the_message_pack_codec_works_end_to_end() {
    let server = TestServer::start("rpc");
    let client = rpc_client_with(RpcConfig {
        codec: RpcCodec::MessagePack,
        ..RpcConfig::new(server.url())
    })
    .await;
    let sum: Value = within(client.request("add", json!({"a": 5, "b": 3})))
        .await
        .unwrap();
    assert_eq!(sum["result"], 8);
    let echoed: Value =
        within(client.request("echo", json!({"bytes": [1, 2, 255], "text": "héllo"})))
            .await
            .unwrap();
    assert_eq!(echoed, json!({"bytes": [1, 2, 255], "text": "héllo"}));
    let mut ticks_stream: Subscription<Value> = within(client.subscribe(
        "subscribe_ticks",
        json!({"count": 3, "interval_ms": 1}),
        "unsubscribe",
    ))
    .await
    .unwrap();
    assert_eq!(ticks(&mut ticks_stream, 3).await, [0, 1, 2]);
    match within(client.request::<Value>("nope", ())).await {
        Err(Error::Rpc { code: -32601, .. }) => {}
        other => panic!("expected -32601 over MessagePack, got {other:?}"),
    }
}

#[tokio::test]
async fn calls_after_close_fail_at_once() {
    let server = TestServer::start("rpc");
    let client = rpc_client(&server).await;
    within(client.close()).await.unwrap();
    assert!(client.is_closed());
    assert!(matches!(
        within(client.request::<Value>("echo", ())).await,
        Err(Error::ConnectionClosed)
    ));
}
