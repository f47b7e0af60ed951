//! `RpcClient::request::<T>` decoding a result straight into `T` from the fast path (an
//! answer written `{"jsonrpc":"2.0","result":...,"id":N}`), against a raw peer that writes
//! answers byte for byte and against `test-servers rpc`: typed results, a result of the
//! wrong type, and a result too deeply nested for serde_json, which fails its own call at
//! once (not by its timeout) and leaves the connection working.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use ws_client::rpc::{RpcClient, RpcConfig, RpcMethod};
use ws_client::{Error, MessageType};

use crate::raw_peer::RawPeer;
use crate::rpc_faults::{connected, spawn_subscribe};
use crate::support::within;
use integration::TestServer;

#[derive(Debug, Deserialize, PartialEq)]
struct Reading {
    name: String,
    values: Vec<u32>,
}

/// Reads the next request and answers it with `answer(id)`, written exactly as given.
async fn answer_raw(peer: &mut RawPeer, answer: impl FnOnce(i64) -> String) {
    let request = peer.next_value().await;
    let id = request["id"].as_i64().expect("a numeric id");
    peer.send(MessageType::Text, answer(id).as_bytes()).await;
}

/// A JSON array nested `depth` levels deep.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn a_typed_request_reads_its_result_straight_from_the_answer() {
    let (client, mut peer) = connected(|config| config).await;
    let call = {
        let client = client.clone();
        tokio::spawn(async move { client.request::<Reading>("read", json!(["a"])).await })
    };
    answer_raw(&mut peer, |id| {
        format!(r#"{{"jsonrpc":"2.0","result":{{"name":"a\"b","values":[1,2,3]}},"id":{id}}}"#)
    })
    .await;
    let reading = within(call).await.unwrap().expect("a typed result");
    assert_eq!(
        reading,
        Reading {
            name: "a\"b".into(),
            values: vec![1, 2, 3]
        }
    );

    // The id first, as some servers write it; a result that is not a `u32`.
    let wrong = {
        let client = client.clone();
        tokio::spawn(async move { client.request::<u32>("count", json!([])).await })
    };
    answer_raw(&mut peer, |id| {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"many"}}"#)
    })
    .await;
    match within(wrong).await.unwrap() {
        Err(Error::Codec(message)) => {
            assert!(message.contains("\"count\""), "names the method: {message}")
        }
        other => panic!("expected a codec error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_result_nested_too_deep_fails_its_call_at_once_and_the_connection_goes_on() {
    let timeout = Duration::from_secs(20);
    let (client, mut peer) = connected(|config| RpcConfig {
        request_timeout: timeout,
        ..config
    })
    .await;
    let deep = nested(10_000);
    for typed in [true, false] {
        let started = Instant::now();
        let call = {
            let client = client.clone();
            tokio::spawn(async move {
                if typed {
                    client.request::<Value>("deep", json!([])).await.map(|_| ())
                } else {
                    client
                        .call("deep", json!([]), RpcMethod::Call)
                        .await
                        .map(|_| ())
                }
            })
        };
        answer_raw(&mut peer, |id| {
            format!(r#"{{"jsonrpc":"2.0","result":{deep},"id":{id}}}"#)
        })
        .await;
        match within(call).await.unwrap() {
            Err(Error::Codec(message)) => assert!(message.contains("recursion"), "{message}"),
            other => panic!("expected a codec error (typed: {typed}), got {other:?}"),
        }
        assert!(started.elapsed() < timeout / 2, "failed by its timeout");
    }
    let next = {
        let client = client.clone();
        tokio::spawn(async move { client.request::<Vec<u8>>("next", json!([])).await })
    };
    answer_raw(&mut peer, |id| {
        format!(r#"{{"jsonrpc":"2.0","result":[1,2],"id":{id}}}"#)
    })
    .await;
    assert_eq!(within(next).await.unwrap().unwrap(), vec![1, 2]);
}

#[tokio::test]
async fn a_subscribe_answered_on_the_fast_path_delivers_its_notifications() {
    let (client, mut peer) = connected(|config| config).await;
    let subscribing = spawn_subscribe(&client, "subscribe_ticks", json!([]), "unsubscribe");
    answer_raw(&mut peer, |id| {
        format!(r#"{{"jsonrpc":"2.0","result":7,"id":{id}}}"#)
    })
    .await;
    let mut ticks = within(subscribing).await.unwrap().expect("subscribed");
    peer.send_json(
        &json!({"jsonrpc": "2.0", "method": "tick", "params": {"subscription": 7, "result": 1}}),
    )
    .await;
    let tick = within(ticks.next())
        .await
        .expect("a tick")
        .expect("no error");
    assert_eq!(tick, json!(1));

    // A result nested too deep for a `Value` is no subscription id: the subscribe fails,
    // saying why (not "returned null").
    let refused = spawn_subscribe(&client, "subscribe_ticks", json!([]), "unsubscribe");
    let deep = nested(10_000);
    answer_raw(&mut peer, |id| {
        format!(r#"{{"jsonrpc":"2.0","result":{deep},"id":{id}}}"#)
    })
    .await;
    match within(refused).await.unwrap() {
        Err(Error::Codec(message)) => assert!(message.contains("recursion"), "{message}"),
        other => panic!("expected a codec error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn typed_requests_against_test_servers_rpc() {
    #[derive(Debug, Deserialize, PartialEq)]
    struct Sum {
        result: i64,
    }
    let server = TestServer::start("rpc");
    let client = within(RpcClient::connect(RpcConfig::new(server.url())))
        .await
        .expect("connect");
    let sum: Sum = within(client.request("add", [40, 2])).await.unwrap();
    assert_eq!(sum, Sum { result: 42 });
    let echoed: (String, bool) = within(client.request("echo", ("x", true))).await.unwrap();
    assert_eq!(echoed, ("x".to_owned(), true));
    match within(client.request::<Sum>("echo", ["x"])).await {
        Err(Error::Codec(message)) => assert!(message.contains("\"echo\""), "{message}"),
        other => panic!("expected a codec error, got {other:?}"),
    }
    within(client.close()).await.unwrap();
}
