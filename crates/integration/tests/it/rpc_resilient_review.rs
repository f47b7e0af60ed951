//! Review findings on `RpcClient` over a resilient connection, each against raw peers (so
//! the test decides exactly what each connection sees): no request goes out on a newer
//! connection with a subscription id of an older one, and a call given up on during an
//! outage is never written later. Subscriptions made again are in
//! `rpc_resilient_review_resubscribe`, with the helpers here.

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
use crate::support::within;

/// The resilient settings (quick reconnects, no heartbeat: raw peers answer no pings) and
/// the RPC settings with `request_timeout`.
pub(crate) fn configs(
    server: &RawServer,
    request_timeout: Duration,
) -> (ResilientConfig, RpcConfig) {
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
pub(crate) async fn connect(server: &RawServer, request_timeout: Duration) -> (RpcClient, RawPeer) {
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
pub(crate) async fn dropped(events: &mut EventStream, generation: u64) {
    wait_for(
        events,
        |e| matches!(e, Event::Disconnected { generation: g, .. } if *g == generation),
    )
    .await;
}

/// The answer to request `id` with `result`.
pub(crate) fn answer(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A notification of subscription `id`.
pub(crate) fn notification(id: u64, n: u64) -> Value {
    json!({"jsonrpc": "2.0", "method": "tick", "params": {"subscription": id, "result": {"n": n}}})
}

/// Subscribes to `subscribe_ticks` with `params`; `peer` answers with subscription `id`.
pub(crate) async fn subscribe(
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
pub(crate) fn spawn_add(client: &RpcClient) -> tokio::task::JoinHandle<Result<Value, Error>> {
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
