//! Answers whose result is well-formed JSON text but that serde_json's `Value` cannot read
//! (a lone surrogate escape, a number out of range, nesting past the limit, invalid UTF-8
//! in a binary frame), from a raw peer writing them byte for byte: read alike whatever
//! the answer's layout (the fast path's `{"jsonrpc":"2.0","result":R,"id":N}` or the same
//! answer with spaces, which takes the general path), each failing its own call at once
//! with `Error::Codec` naming the cause, for typed requests, plain calls and subscribes
//! alike, while another call waits and the connection goes on; and over a resilient
//! connection, resent calls and resubscribes answered both ways.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use ws_client::rpc::{CallOptions, RpcClient, RpcConfig, RpcMethod};
use ws_client::{Error, MessageType};

use crate::raw_peer::{RawPeer, RawServer};
use crate::rpc_faults::connected;
use crate::rpc_resilient_review::{connect, dropped, notification, subscribe};
use crate::support::within;

/// What the typed requests ask for: unknown members (where the bad values sit) are skipped.
#[derive(Debug, Deserialize, PartialEq)]
struct Named {
    name: String,
}

/// A result that passes a well-formedness skim but no `Value` reader: its label, the frame
/// it goes in, its bytes, and a word of serde_json's error for it.
fn unreadable_results() -> Vec<(&'static str, MessageType, Vec<u8>, &'static str)> {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    vec![
        (
            "lone surrogate",
            MessageType::Text,
            br#"{"name":"a","note":"\ud800"}"#.to_vec(),
            "escape",
        ),
        (
            "number out of range",
            MessageType::Text,
            br#"{"name":"a","note":1e400}"#.to_vec(),
            "out of range",
        ),
        (
            "nested past the limit",
            MessageType::Text,
            format!(r#"{{"name":"a","note":{deep}}}"#).into_bytes(),
            "recursion",
        ),
        (
            "invalid UTF-8 in a binary frame",
            MessageType::Binary,
            b"{\"name\":\"a\",\"note\":\"\xff\"}".to_vec(),
            "unicode",
        ),
    ]
}

/// The answer to call `id` with `result`, written as the fast path reads it or with spaces.
fn answer(id: i64, result: &[u8], spaced: bool) -> Vec<u8> {
    let (head, middle, tail) = if spaced {
        (r#"{"jsonrpc": "2.0", "result": "#, r#", "id": "#, " }")
    } else {
        (r#"{"jsonrpc":"2.0","result":"#, r#","id":"#, "}")
    };
    [
        head.as_bytes(),
        result,
        middle.as_bytes(),
        id.to_string().as_bytes(),
        tail.as_bytes(),
    ]
    .concat()
}

/// Reads the next request's id.
async fn next_id(peer: &mut RawPeer) -> i64 {
    peer.next_value().await["id"]
        .as_i64()
        .expect("a numeric id")
}

#[tokio::test]
async fn an_unreadable_result_fails_its_own_call_at_once_whatever_its_layout() {
    // Long enough for the call that waits through the whole test; a call failed by its
    // timeout instead of at once would stop the test at `within`'s limit first.
    let timeout = Duration::from_secs(60);
    let (client, mut peer) = connected(|config| RpcConfig {
        request_timeout: timeout,
        ..config
    })
    .await;
    // A call that waits through all of it, answered at the end.
    let bystander = {
        let client = client.clone();
        tokio::spawn(async move { client.request::<Named>("wait", json!([])).await })
    };
    let bystander_id = next_id(&mut peer).await;

    for (label, frame, result, cause) in unreadable_results() {
        for spaced in [false, true] {
            for kind in ["request", "call", "subscribe"] {
                let started = Instant::now();
                let client = client.clone();
                let call = tokio::spawn(async move {
                    match kind {
                        "request" => client.request::<Named>("read", json!([])).await.map(drop),
                        "call" => client
                            .call("read", json!([]), RpcMethod::Call)
                            .await
                            .map(drop),
                        _ => (client.subscribe::<Value>("sub", json!([]), "unsub").await).map(drop),
                    }
                });
                let id = next_id(&mut peer).await;
                peer.send(frame, &answer(id, &result, spaced)).await;
                let what = format!("{label}, {kind}, spaced: {spaced}");
                match within(call).await.unwrap() {
                    Err(Error::Codec(message)) => {
                        assert!(message.contains(cause), "{what}: {message}")
                    }
                    other => panic!("{what}: expected Error::Codec, got {other:?}"),
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{what}: not at once"
                );
            }
        }
    }

    // The call that waited meanwhile, and the connection, are fine.
    peer.send(
        MessageType::Text,
        &answer(bystander_id, br#"{"name":"b"}"#, false),
    )
    .await;
    let named = within(bystander)
        .await
        .unwrap()
        .expect("the waiting call's answer");
    assert_eq!(named, Named { name: "b".into() });
    let next = {
        let client = client.clone();
        tokio::spawn(async move { client.request::<Named>("next", json!([])).await })
    };
    let id = next_id(&mut peer).await;
    peer.send(MessageType::Text, &answer(id, br#"{"name":"c"}"#, true))
        .await;
    assert_eq!(
        within(next).await.unwrap().unwrap(),
        Named { name: "c".into() }
    );
    assert!(!RpcClient::is_closed(&client));
}

/// Over a resilient connection: after a reconnect, a resubscribe answered on the fast path
/// moves its stream to the new id, an idempotent call sent again gets its fast-path answer,
/// and a resubscribe answered with a result no `Value` holds ends its stream at once with
/// `Error::Codec` (it waited for its timeout, then ended with `CallTimeout`).
#[tokio::test]
async fn resent_calls_and_resubscribes_read_fast_and_unreadable_answers() {
    let server = RawServer::bind();
    let (client, mut peer) = connect(&server, Duration::from_secs(60)).await;
    let mut events = client.events().unwrap();
    let mut kept = subscribe(&client, &mut peer, json!({"name": "kept"}), 1).await;
    let mut lost = subscribe(&client, &mut peer, json!({"name": "lost"}), 2).await;
    let resent = {
        let client = client.clone();
        tokio::spawn(async move {
            let options = CallOptions {
                timeout: Some(Duration::from_secs(60)),
                idempotent: true,
            };
            client.call_with("read", json!([]), options).await
        })
    };
    assert_eq!(peer.next_value().await["method"], "read");
    drop(peer);
    dropped(&mut events, 1).await;

    let mut peer = server.accept_peer().await;
    for _ in 0..3 {
        let request = peer.next_value().await;
        let id = request["id"].as_i64().expect("a numeric id");
        let result: &[u8] = match (&request["method"], &request["params"]["name"]) {
            (method, _) if method == "read" => br#"{"name":"r"}"#,
            (_, name) if name == "kept" => b"11",
            _ => br#"{"n": 1e400}"#,
        };
        let spaced = result.starts_with(br#"{"n""#);
        peer.send(MessageType::Text, &answer(id, result, spaced))
            .await;
    }
    let response = within(resent)
        .await
        .unwrap()
        .expect("the resent call's answer");
    assert_eq!(response.into_result().unwrap(), json!({"name": "r"}));
    match within(lost.next()).await {
        Some(Err(Error::Codec(message))) => assert!(message.contains("out of range"), "{message}"),
        other => panic!("expected the stream to end with Error::Codec, got {other:?}"),
    }
    assert!(within(lost.next()).await.is_none());
    peer.send_json(&notification(11, 5)).await;
    assert!(matches!(
        within(kept.next()).await,
        Some(Err(Error::SubscriptionGap))
    ));
    assert_eq!(within(kept.next()).await.unwrap().unwrap(), json!({"n": 5}));
}
