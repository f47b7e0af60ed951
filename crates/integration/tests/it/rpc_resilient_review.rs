//! Review findings on `RpcClient` over a resilient connection, each against raw peers (so
//! the test decides exactly what each connection sees): no request goes out on a newer
//! connection with a subscription id of an older one, a call given up on during an outage
//! is never written later, a resubscribe answered after its timeout is undone on the
//! server, and a subscription outlives an outage that follows a brief reconnect.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use ws_client::Error;
use ws_client::resilient::{Event, EventStream, ResilientConfig};
use ws_client::rpc::{CallOptions, RpcClient, RpcConfig, RpcMethod, Subscription};

use crate::raw_peer::{
    RawPeer, RawServer, TEXT, client_frame_head, read_client_frame, server_frame,
};
use crate::resilient_support::{quick_config, wait_for};
use crate::support::{within, within_for};

/// The resilient settings (quick reconnects, no heartbeat: raw peers answer no pings) and
/// the RPC settings with `request_timeout`.
fn configs(server: &RawServer, request_timeout: Duration) -> (ResilientConfig, RpcConfig) {
    let resilient = ResilientConfig {
        heartbeat: None,
        ..quick_config(&server.url())
    };
    let rpc = RpcConfig {
        request_timeout,
        max_queued_bytes: 64 << 20,
        ..RpcConfig::default()
    };
    (resilient, rpc)
}

/// A resilient client of `server` and the raw peer of its first connection.
async fn connect(server: &RawServer, request_timeout: Duration) -> (RpcClient, RawPeer) {
    let (resilient, rpc) = configs(server, request_timeout);
    let (client, peer) = within(async {
        tokio::join!(
            RpcClient::connect_resilient(resilient, rpc),
            server.accept_peer()
        )
    })
    .await;
    (client.expect("connect"), peer)
}

/// Waits until the client has seen connection `generation` drop.
async fn dropped(events: &mut EventStream, generation: u64) {
    wait_for(
        events,
        |e| matches!(e, Event::Disconnected { generation: g, .. } if *g == generation),
    )
    .await;
}

/// The answer to request `id` with `result`.
fn answer(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A notification of subscription `id`.
fn notification(id: u64, n: u64) -> Value {
    json!({"jsonrpc": "2.0", "method": "tick", "params": {"subscription": id, "result": {"n": n}}})
}

/// Subscribes to `subscribe_ticks` with `params`; `peer` answers with subscription `id`.
async fn subscribe(
    client: &RpcClient,
    peer: &mut RawPeer,
    params: Value,
    id: u64,
) -> Subscription<Value> {
    let made = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .subscribe("subscribe_ticks", params, "unsubscribe")
                .await
        }
    });
    let request = peer.next_value().await;
    assert_eq!(request["method"], "subscribe_ticks");
    peer.send_json(&answer(&request["id"], json!(id))).await;
    within(made).await.unwrap().expect("subscribed")
}

/// A call to `add` on its own task (the marker that everything queued before it went out).
fn spawn_add(client: &RpcClient) -> tokio::task::JoinHandle<Result<Value, Error>> {
    let client = client.clone();
    tokio::spawn(async move {
        let options = CallOptions {
            timeout: Some(Duration::from_secs(10)),
            idempotent: false,
        };
        client
            .call_with("add", json!([1, 2]), options)
            .await?
            .into_result()
    })
}

/// The requests `peer` reads until it has seen one of each method in `wanted`.
async fn requests_until(peer: &mut RawPeer, wanted: &[&str]) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    while !wanted
        .iter()
        .all(|method| seen.iter().any(|r| r["method"] == *method))
    {
        seen.push(peer.next_value().await);
    }
    seen
}

/// The first request of `method` in `requests`.
fn find<'a>(requests: &'a [Value], method: &str) -> &'a Value {
    requests
        .iter()
        .find(|r| r["method"] == method)
        .unwrap_or_else(|| panic!("no {method} in {requests:#?}"))
}

/// An orphaned subscription unsubscribed during an outage: its old id means nothing to the
/// next server, which may have given it to another subscription (test-servers numbers them
/// per connection from 1), so no request may carry it there.
#[tokio::test]
async fn unsubscribing_an_orphaned_subscription_sends_no_stale_id() {
    let server = RawServer::bind();
    let (client, mut peer) = connect(&server, Duration::from_secs(10)).await;
    let mut events = client.events().unwrap();
    let mut a = subscribe(&client, &mut peer, json!({"name": "a"}), 1).await;
    let b = subscribe(&client, &mut peer, json!({"name": "b"}), 2).await;
    drop(peer);
    dropped(&mut events, 1).await;
    let unsubscribed = tokio::spawn(b.unsubscribe());

    let mut peer = server.accept_peer().await;
    let add = spawn_add(&client);
    let requests = requests_until(&mut peer, &["add", "subscribe_ticks"]).await;
    assert!(
        requests.iter().all(|r| r["method"] != "unsubscribe"),
        "a stale unsubscribe went out on the new connection: {requests:#?}"
    );
    // The new server gives a's subscription the id b had on the old one.
    let resubscribe = find(&requests, "subscribe_ticks");
    assert_eq!(resubscribe["params"], json!({"name": "a"}));
    peer.send_json(&answer(&resubscribe["id"], json!(2))).await;
    peer.send_json(&answer(&find(&requests, "add")["id"], json!(3)))
        .await;
    peer.send_json(&notification(2, 0)).await;
    assert!(matches!(
        within(a.next()).await,
        Some(Err(Error::SubscriptionGap))
    ));
    assert_eq!(within(a.next()).await.unwrap().unwrap(), json!({"n": 0}));
    assert_eq!(within(add).await.unwrap().unwrap(), json!(3));
    assert!(within(unsubscribed).await.unwrap().is_ok());
}

/// A subscription dropped while the connection is up but its writes are stuck (the server
/// stopped reading): its unsubscribe waits in the queue. The connection then drops: that
/// unsubscribe names a subscription of the dead connection and must not go out on the next.
#[tokio::test]
async fn an_unsubscribe_queued_before_a_drop_is_not_sent_on_the_next_connection() {
    let server = RawServer::bind_small_receive_buffer();
    let (resilient, rpc) = configs(&server, Duration::from_secs(10));
    let (client, tcp) = within(async {
        tokio::join!(
            RpcClient::connect_resilient(resilient, rpc),
            server.accept()
        )
    })
    .await;
    let (client, mut tcp) = (client.expect("connect"), tcp);
    let mut events = client.events().unwrap();
    let mut subscriptions = Vec::new();
    for (name, id) in [("a", 1), ("b", 2)] {
        let made = tokio::spawn({
            let client = client.clone();
            async move {
                let params = json!({"name": name});
                client
                    .subscribe::<Value>("subscribe_ticks", params, "unsubscribe")
                    .await
            }
        });
        let (opcode, payload) = read_client_frame(&mut tcp).await;
        assert_eq!(opcode, TEXT);
        let request: Value = serde_json::from_slice(&payload).unwrap();
        let reply = answer(&request["id"], json!(id)).to_string();
        within(tcp.write_all(&server_frame(TEXT, true, reply.as_bytes())))
            .await
            .unwrap();
        subscriptions.push(within(made).await.unwrap().expect("subscribed"));
    }
    let b = subscriptions.pop().unwrap();
    let mut a = subscriptions.pop().unwrap();
    // A request far larger than the socket buffers: once its head is here, the writer is
    // stuck in it.
    let big = tokio::spawn({
        let client = client.clone();
        async move {
            let blob = "x".repeat(12 << 20);
            client
                .call("echo", json!({"blob": blob}), RpcMethod::Call)
                .await
        }
    });
    let (_, length, _) = client_frame_head(&mut tcp).await;
    assert!(length > 12 << 20, "{length}");
    drop(b);
    drop(tcp); // unread data: a reset
    dropped(&mut events, 1).await;
    assert!(matches!(
        within(big).await.unwrap(),
        Err(Error::CallInterrupted)
    ));

    let mut peer = server.accept_peer().await;
    let add = spawn_add(&client);
    let requests = requests_until(&mut peer, &["add", "subscribe_ticks"]).await;
    assert!(
        requests.iter().all(|r| r["method"] != "unsubscribe"),
        "an unsubscribe of the old connection went out on the new one: {requests:#?}"
    );
    let resubscribe = find(&requests, "subscribe_ticks");
    peer.send_json(&answer(&resubscribe["id"], json!(2))).await;
    peer.send_json(&answer(&find(&requests, "add")["id"], json!(3)))
        .await;
    assert!(matches!(
        within(a.next()).await,
        Some(Err(Error::SubscriptionGap))
    ));
    assert_eq!(within(add).await.unwrap().unwrap(), json!(3));
}

/// Calls given up on while the connection is down (timed out, or dropped by their caller)
/// are never written to the next connection: the server must not run a call whose caller
/// was told it failed.
#[tokio::test]
async fn calls_given_up_on_during_an_outage_are_not_sent_after_the_reconnect() {
    let server = RawServer::bind();
    let (client, peer) = connect(&server, Duration::from_secs(10)).await;
    let mut events = client.events().unwrap();
    drop(peer);
    dropped(&mut events, 1).await;
    let short = |idempotent| CallOptions {
        timeout: Some(Duration::from_millis(200)),
        idempotent,
    };
    for (method, idempotent) in [("transfer", false), ("read_balance", true)] {
        let outcome = within(client.call_with(method, json!([100]), short(idempotent))).await;
        assert!(
            matches!(outcome, Err(Error::CallTimeout { .. })),
            "{outcome:?}"
        );
    }
    let long = CallOptions {
        timeout: Some(Duration::from_secs(10)),
        idempotent: false,
    };
    let dropped_call = tokio::time::timeout(
        Duration::from_millis(100),
        client.call_with("withdraw", json!([100]), long),
    )
    .await;
    assert!(dropped_call.is_err(), "the caller gave up on it");

    let mut peer = server.accept_peer().await;
    let add = spawn_add(&client);
    let first = peer.next_value().await;
    assert_eq!(
        first["method"], "add",
        "a call given up on went out: {first}"
    );
    peer.send_json(&answer(&first["id"], json!(3))).await;
    assert_eq!(within(add).await.unwrap().unwrap(), json!(3));
}

/// A resubscribe answered after its timeout (the stream has ended with `CallTimeout`) left
/// a subscription on the server that nobody reads: it must be ended there, as a late answer
/// to a plain subscribe is.
#[tokio::test]
async fn a_resubscribe_answered_after_its_timeout_is_undone_on_the_server() {
    let server = RawServer::bind();
    let timeout = Duration::from_millis(300);
    let (client, mut peer) = connect(&server, timeout).await;
    let mut events = client.events().unwrap();
    let mut a = subscribe(&client, &mut peer, json!({"name": "a"}), 1).await;
    drop(peer);
    dropped(&mut events, 1).await;
    let mut peer = server.accept_peer().await;
    let resubscribe = peer.next_value().await;
    assert_eq!(resubscribe["method"], "subscribe_ticks");
    match within(a.next()).await {
        Some(Err(Error::CallTimeout { .. })) => {}
        other => panic!("{other:?}"),
    }
    assert!(within(a.next()).await.is_none());

    let first = spawn_add(&client);
    let request = peer.next_value().await;
    assert_eq!(request["method"], "add");
    // The late answer, then the add's: once the add is answered, the late one was routed.
    peer.send_json(&answer(&resubscribe["id"], json!(7))).await;
    peer.send_json(&answer(&request["id"], json!(3))).await;
    assert_eq!(within(first).await.unwrap().unwrap(), json!(3));
    let second = spawn_add(&client);
    let next = peer.next_value().await;
    assert_eq!(next["method"], "unsubscribe", "{next}");
    assert_eq!(next["params"], json!([7]));
    let request = peer.next_value().await;
    peer.send_json(&answer(&request["id"], json!(3))).await;
    assert_eq!(within(second).await.unwrap().unwrap(), json!(3));
}

/// A connection that comes up and drops again before the resubscribe is answered, then an
/// outage longer than the request timeout: the subscription is made again on the
/// connection after, not ended by a timeout that ran while no server could answer.
#[tokio::test]
async fn a_subscription_outlives_an_outage_that_follows_a_brief_reconnect() {
    let server = RawServer::bind();
    let timeout = Duration::from_millis(300);
    let (client, mut peer) = connect(&server, timeout).await;
    let mut events = client.events().unwrap();
    let mut a = subscribe(&client, &mut peer, json!({"name": "a"}), 1).await;
    drop(peer);
    dropped(&mut events, 1).await;
    let mut peer = server.accept_peer().await;
    assert_eq!(peer.next_value().await["method"], "subscribe_ticks");
    drop(peer);
    dropped(&mut events, 2).await;
    // The outage: longer than the request timeout.
    tokio::time::sleep(timeout * 2).await; // tidy:allow-sleep: the outage is the test

    let mut peer = server.accept_peer().await;
    let resubscribe = peer.next_value().await;
    assert_eq!(resubscribe["method"], "subscribe_ticks");
    peer.send_json(&answer(&resubscribe["id"], json!(5))).await;
    peer.send_json(&notification(5, 0)).await;
    let items: Vec<String> = within_for(Duration::from_secs(5), async {
        let mut items = Vec::new();
        while items.len() < 2 {
            match a.next().await {
                Some(item) => items.push(format!("{item:?}")),
                None => break,
            }
        }
        items
    })
    .await;
    assert_eq!(
        items,
        ["Err(SubscriptionGap)", "Ok(Object {\"n\": Number(0)})"]
    );
}

/// Two connections give the same subscription id: `a` (id 1 on the first connection, its
/// resubscribe unanswered on the second) and `c` (made on the second, which gives it id 1
/// too). When the second drops, both are orphans: both are made again on the third, and
/// neither stream ends.
#[tokio::test]
async fn orphans_with_the_same_id_from_two_connections_are_both_made_again() {
    let server = RawServer::bind();
    let (client, mut peer) = connect(&server, Duration::from_secs(10)).await;
    let mut events = client.events().unwrap();
    let mut a = subscribe(&client, &mut peer, json!({"name": "a"}), 1).await;
    drop(peer);
    dropped(&mut events, 1).await;
    let mut peer = server.accept_peer().await;
    let resubscribe = peer.next_value().await;
    assert_eq!(resubscribe["params"], json!({"name": "a"}));
    let mut c = subscribe(&client, &mut peer, json!({"name": "c"}), 1).await;
    drop(peer);
    dropped(&mut events, 2).await;

    let mut peer = server.accept_peer().await;
    let mut names = Vec::new();
    for _ in 0..2 {
        let request = peer.next_value().await;
        assert_eq!(request["method"], "subscribe_ticks", "{request}");
        let name = request["params"]["name"].as_str().unwrap().to_owned();
        let id = if name == "a" { 10 } else { 11 };
        peer.send_json(&answer(&request["id"], json!(id))).await;
        peer.send_json(&notification(id, id)).await;
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["a", "c"]);
    for (subscription, n) in [(&mut a, 10), (&mut c, 11)] {
        let mut items = Vec::new();
        while items.len() < 2 {
            match within_for(Duration::from_secs(5), subscription.next()).await {
                Some(item) => items.push(format!("{item:?}")),
                None => break,
            }
        }
        assert_eq!(
            items,
            [
                "Err(SubscriptionGap)".to_owned(),
                format!("Ok(Object {{\"n\": Number({n})}})")
            ]
        );
    }
}
