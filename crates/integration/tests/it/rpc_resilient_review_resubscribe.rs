//! Review findings on subscriptions made again over a resilient connection, against raw
//! peers: a resubscribe answered after its timeout is undone on the server, a subscription
//! outlives an outage that follows a brief reconnect, orphans with the same id from two
//! connections are both made again, and the gap comes after the old notifications.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use ws_client::Error;
use ws_client::rpc::RpcClient;

use crate::raw_peer::RawServer;
use crate::rpc_resilient_review::{
    answer, configs, connect, dropped, notification, spawn_add, subscribe,
};
use crate::support::{within, within_for};

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

/// The gap sits after the old connection's notifications even when they fill the buffer
/// (the stream is read after the reconnect): a reader that re-reads its state at the gap
/// must not then get older notifications.
#[tokio::test]
async fn the_gap_comes_after_old_notifications_that_filled_the_buffer() {
    let server = RawServer::bind();
    let (resilient, mut rpc) = configs(&server, Duration::from_secs(10));
    rpc.subscription_buffer = 2;
    let (client, peer) = within(async {
        tokio::join!(
            RpcClient::connect_resilient(resilient, rpc),
            server.accept_peer()
        )
    })
    .await;
    let (client, mut peer) = (client.expect("connect"), peer);
    let mut events = client.events().unwrap();
    let mut a = subscribe(&client, &mut peer, json!({"name": "a"}), 1).await;
    for n in 0..3 {
        peer.send_json(&notification(1, n)).await; // the third finds the buffer full
    }
    drop(peer); // what it sent is routed before the drop is acted on
    dropped(&mut events, 1).await;
    let mut peer = server.accept_peer().await;
    let resubscribe = peer.next_value().await;
    peer.send_json(&answer(&resubscribe["id"], json!(5))).await;
    let add = spawn_add(&client);
    let request = peer.next_value().await;
    peer.send_json(&answer(&request["id"], json!(3))).await;
    // Answered after the resubscribe: the gap has been marked.
    assert_eq!(within(add).await.unwrap().unwrap(), json!(3));
    let mut items = Vec::new();
    for _ in 0..4 {
        items.push(format!("{:?}", within(a.next()).await.unwrap()));
    }
    peer.send_json(&notification(5, 10)).await;
    items.push(format!("{:?}", within(a.next()).await.unwrap()));
    assert_eq!(
        items,
        [
            "Err(SubscriptionLagged { missed: 1 })",
            "Ok(Object {\"n\": Number(0)})",
            "Ok(Object {\"n\": Number(1)})",
            "Err(SubscriptionGap)",
            "Ok(Object {\"n\": Number(10)})",
        ]
    );
}
