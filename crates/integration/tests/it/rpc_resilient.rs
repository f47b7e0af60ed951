//! `RpcClient` over a resilient connection against `test-servers rpc` killed and restarted
//! on its port: calls in flight fail at once (idempotent ones are sent again), calls made
//! while down wait for the reconnect, subscriptions are made again with the gap reported,
//! no call outlives its timeout, and giving up fails everything with the reason.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use integration::TestServer;
use serde_json::{Value, json};
use ws_client::Error;
use ws_client::resilient::{Event, ReconnectPolicy, ResilientConfig};
use ws_client::rpc::{BatchEntry, CallOptions, RpcClient, RpcConfig, Subscription};

use crate::resilient_support::{quick_config, restart, wait_for};
use crate::support::{within, within_for};

/// A resilient RPC client of `server` with the quick reconnect policy.
async fn connect(server: &TestServer) -> RpcClient {
    let config = quick_config(server.url());
    within(RpcClient::connect_resilient(config, RpcConfig::default()))
        .await
        .expect("connect")
}

/// `a + b` as the server computes it.
async fn add(client: &RpcClient, a: i64, b: i64) -> Result<i64, Error> {
    let sum: Value = client.request("add", json!([a, b])).await?;
    Ok(sum["result"].as_i64().expect("a number"))
}

/// A `sleep` call of `ms` milliseconds, started on its own task.
fn spawn_sleep_call(
    client: &RpcClient,
    ms: u64,
    options: CallOptions,
) -> tokio::task::JoinHandle<Result<Value, Error>> {
    let client = client.clone();
    tokio::spawn(async move {
        let response = client
            .call_with("sleep", json!({"ms": ms}), options)
            .await?;
        response.into_result()
    })
}

fn idempotent() -> CallOptions {
    CallOptions {
        idempotent: true,
        ..CallOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_fail_at_once_and_idempotent_ones_are_sent_again_after_a_restart() {
    let mut server = TestServer::start("rpc");
    let port = server.addr().port();
    let client = connect(&server).await;
    let mut events = client.events().expect("a resilient client has events");
    assert_eq!(within(add(&client, 2, 3)).await.unwrap(), 5);

    let plain = spawn_sleep_call(&client, 10_000, CallOptions::default());
    let resent = spawn_sleep_call(&client, 200, idempotent());
    // Written in order, so once this is answered the server has read both sleeps.
    assert_eq!(within(add(&client, 1, 1)).await.unwrap(), 2);

    server.kill();
    let killed = Instant::now();
    let interrupted = within(plain).await.unwrap();
    assert!(
        matches!(interrupted, Err(Error::CallInterrupted)),
        "{interrupted:?}"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "failed {:?} after the kill",
        killed.elapsed()
    );
    wait_for(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;

    // Made while down: waits in the queue for the next connection.
    let during = tokio::spawn({
        let client = client.clone();
        async move { add(&client, 20, 22).await }
    });
    let _server = restart("rpc", port).await;
    wait_for(&mut events, |e| {
        matches!(e, Event::Connected { generation: 2, .. })
    })
    .await;
    assert_eq!(within(during).await.unwrap().unwrap(), 42);
    let slept = within(resent)
        .await
        .unwrap()
        .expect("sent again and answered");
    assert_eq!(
        slept,
        json!({"ms": 200}),
        "the sleep answers with its params"
    );
    assert_eq!(within(add(&client, 7, 8)).await.unwrap(), 15);
    within(client.close()).await.unwrap();
}

/// The next `count` tick numbers of `subscription`, or the first error.
async fn ticks(subscription: &mut Subscription<Value>, count: usize) -> Result<Vec<u64>, Error> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let item = within(subscription.next())
            .await
            .expect("the stream goes on")?;
        seen.push(item["n"].as_u64().unwrap_or(u64::MAX));
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_made_again_after_a_restart_and_report_the_gap() {
    let mut server = TestServer::start("rpc");
    let port = server.addr().port();
    let client = connect(&server).await;
    let params = json!({"count": 100_000, "interval_ms": 10});
    let mut subscription: Subscription<Value> =
        within(client.subscribe("subscribe_ticks", params, "unsubscribe"))
            .await
            .unwrap();
    assert_eq!(ticks(&mut subscription, 3).await.unwrap(), [0, 1, 2]);

    server.kill();
    let _server = restart("rpc", port).await;
    // Ticks of the old connection may still be buffered; then the gap, then the new
    // subscription's ticks, from 0 again.
    let mut before_gap = 0;
    loop {
        match within(subscription.next())
            .await
            .expect("the stream goes on")
        {
            Ok(_) => before_gap += 1,
            Err(Error::SubscriptionGap) => break,
            Err(other) => panic!("{other:?}"),
        }
        assert!(before_gap < 100_000, "no gap reported");
    }
    assert_eq!(ticks(&mut subscription, 3).await.unwrap(), [0, 1, 2]);
    assert!(matches!(subscription.id(), ws_client::rpc::Id::Number(_)));
    let stopped = within(subscription.unsubscribe()).await.unwrap();
    assert_eq!(
        stopped,
        json!(true),
        "the new subscription is the one ended"
    );
    within(client.close()).await.unwrap();
}

#[tokio::test]
async fn no_call_waits_past_its_timeout_while_the_server_is_away() {
    let mut server = TestServer::start("rpc");
    let client = connect(&server).await;
    let mut events = client.events().unwrap();
    assert_eq!(within(add(&client, 1, 2)).await.unwrap(), 3);
    server.kill();
    // Down now (a call made before the client noticed would be interrupted instead).
    wait_for(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    let timeout = Duration::from_millis(300);
    for options in [CallOptions::default(), idempotent()] {
        let options = CallOptions {
            timeout: Some(timeout),
            ..options
        };
        let started = Instant::now();
        let outcome = within(client.call_with("add", json!([1, 1]), options)).await;
        let took = started.elapsed();
        assert!(
            matches!(outcome, Err(Error::CallTimeout { after, .. }) if after == timeout),
            "{outcome:?}"
        );
        assert!(
            took >= timeout && took < timeout + Duration::from_millis(700),
            "{took:?}"
        );
    }
}

#[tokio::test]
async fn giving_up_fails_calls_and_ends_subscriptions_with_the_reason() {
    let mut server = TestServer::start("rpc");
    let config = ResilientConfig {
        reconnect: ReconnectPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_attempts: Some(2),
            ..ReconnectPolicy::default()
        },
        ..ResilientConfig::new(server.url())
    };
    let client = within(RpcClient::connect_resilient(config, RpcConfig::default()))
        .await
        .unwrap();
    let params = json!({"count": 100_000, "interval_ms": 10});
    let mut subscription: Subscription<Value> =
        within(client.subscribe("subscribe_ticks", params, "unsubscribe"))
            .await
            .unwrap();
    assert_eq!(ticks(&mut subscription, 1).await.unwrap(), [0]);
    let waiting = spawn_sleep_call(&client, 10_000, idempotent());
    assert_eq!(within(add(&client, 1, 1)).await.unwrap(), 2);

    server.kill();
    let ended = loop {
        match within(subscription.next()).await {
            Some(Ok(_)) => continue,
            Some(Err(error)) => break error,
            None => panic!("ended without saying why"),
        }
    };
    assert!(matches!(ended, Error::ReconnectGaveUp { .. }), "{ended:?}");
    assert!(within(subscription.next()).await.is_none());
    let failed = within(waiting).await.unwrap();
    assert!(
        matches!(failed, Err(Error::ReconnectGaveUp { .. })),
        "{failed:?}"
    );
    let later = within(add(&client, 1, 1)).await;
    assert!(
        matches!(later, Err(Error::ReconnectGaveUp { .. })),
        "{later:?}"
    );
    assert!(client.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_in_flight_is_interrupted_and_the_next_one_goes_through() {
    let mut server = TestServer::start("rpc");
    let port = server.addr().port();
    let client = connect(&server).await;
    let batch = tokio::spawn({
        let client = client.clone();
        async move {
            let entries = vec![
                BatchEntry::call("sleep", json!({"ms": 10_000})),
                BatchEntry::call("add", json!([1, 2])),
            ];
            client.batch(entries).await
        }
    });
    assert_eq!(within(add(&client, 1, 1)).await.unwrap(), 2);
    server.kill();
    let outcome = within(batch).await.unwrap();
    assert!(
        matches!(outcome, Err(Error::CallInterrupted)),
        "{outcome:?}"
    );
    let _server = restart("rpc", port).await;
    let entries = vec![
        BatchEntry::call("add", json!([1, 2])),
        BatchEntry::call("add", json!([3, 4])),
    ];
    let answers = within_for(Duration::from_secs(10), client.batch(entries))
        .await
        .unwrap();
    let sums: Vec<Value> = answers
        .into_iter()
        .map(|answer| answer.unwrap().result.unwrap()["result"].clone())
        .collect();
    assert_eq!(sums, [json!(3), json!(7)]);
}
