//! Regression tests for the findings of an adversarial review: each one failed on the code
//! before its fix. Raw peers (see `raw_peer`) play the server exactly.

use std::time::Duration;

use serde_json::{Value, json};
use ws_client::rpc::{RpcClient, RpcConfig};

use crate::raw_peer::{RawPeer, RawServer};
use crate::support::{within, within_for};

/// A client connected to a fresh raw peer, and that peer.
async fn connected(config: impl FnOnce(RpcConfig) -> RpcConfig) -> (RpcClient, RawPeer) {
    let listener = RawServer::bind();
    let config = config(RpcConfig::new(listener.url()));
    let (client, peer) = tokio::join!(RpcClient::connect(config), listener.accept_peer());
    (client.expect("connect the RPC client"), peer)
}

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
