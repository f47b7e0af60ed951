//! `rpc` mode at its limits, over raw frames: deeply nested MessagePack is refused with a
//! parse error (the debug build the harness runs once died of it, every connection with
//! it), and a batch over `--max-batch-size` is answered per the specification.

use integration::TestServer;
use serde_json::{Value, json};
use ws_client::{Message, MessageType, WebSocketConnection};

use crate::support::{connect, within};

/// Sends `frame` and returns the answer, decoded from its framing.
async fn exchange(connection: &mut WebSocketConnection, frame: Message) -> Value {
    within(connection.send(frame)).await.unwrap();
    let answer = within(connection.receive_message()).await.unwrap();
    match answer.message_type {
        MessageType::Text => serde_json::from_slice(&answer.data).unwrap(),
        MessageType::Binary => rmp_serde::from_slice(&answer.data).unwrap(),
        other => panic!("expected an answer, got {other:?}"),
    }
}

/// A MessagePack call of `method` with `params`, id `id`.
fn packed_call(method: &str, params: Value, id: u64) -> Message {
    let call = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
    Message::binary(rmp_serde::to_vec_named(&call).unwrap())
}

/// `depth` nested one-element arrays around the integer 1, as MessagePack.
fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut bytes = vec![0x91; depth];
    bytes.push(0x01);
    bytes
}

#[tokio::test]
async fn deeply_nested_message_pack_is_a_parse_error_and_every_connection_lives_on() {
    let server = TestServer::start("rpc");
    let mut bystander = connect(server.url()).await;
    let mut attacker = connect(server.url()).await;
    // About 1 KB: a request whose params are nested 1,000 deep, then bare nesting.
    let mut request =
        rmp_serde::to_vec_named(&json!({"jsonrpc": "2.0", "method": "echo", "id": 1})).unwrap();
    request[0] += 1; // one more map entry: "params"
    request.extend_from_slice(&[0xa6]);
    request.extend_from_slice(b"params");
    request.extend_from_slice(&nested_arrays(1000));
    for attack in [request, nested_arrays(1000)] {
        let answer = exchange(&mut attacker, Message::binary(attack)).await;
        assert_eq!(answer["error"]["code"], -32700, "{answer}");
        assert_eq!(answer["id"], Value::Null, "{answer}");
    }
    // Nesting the JSON way (128 levels) still works.
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let answer = exchange(&mut attacker, packed_call("echo", deep.clone(), 2)).await;
    assert_eq!(answer["result"], deep);
    let answer = exchange(&mut bystander, packed_call("add", json!([2, 3]), 3)).await;
    assert!(answer.get("result").is_some(), "{answer}");
}

/// Asserts that `answer` is the batch refusal for exactly `ids`, in that order.
fn assert_refused(answer: &Value, ids: &[Value]) {
    let Value::Array(items) = answer else {
        panic!("a non-empty batch must be answered with an array: {answer}")
    };
    let answered: Vec<&Value> = items.iter().map(|item| &item["id"]).collect();
    assert_eq!(answered, ids.iter().collect::<Vec<_>>(), "{answer}");
    for item in items {
        assert_eq!(item["jsonrpc"], "2.0", "{item}");
        assert_eq!(item["error"]["code"], -32600, "{item}");
        let data = item["error"]["data"].as_str().unwrap_or_default();
        assert!(data.contains("--max-batch-size"), "{item}");
    }
}

#[tokio::test]
async fn a_batch_over_the_limit_gets_an_error_per_request_in_an_array() {
    let server = TestServer::start_with("rpc", &["--max-batch-size", "3"]);
    let mut connection = connect(server.url()).await;
    let calls = [
        json!({"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}),
        json!({"jsonrpc": "2.0", "method": "update", "params": [1]}),
        json!({"jsonrpc": "2.0", "method": "echo", "id": "b"}),
        json!(7),
        json!({"jsonrpc": "2.0", "method": "sleep", "params": {"ms": 1}, "id": null}),
    ];
    // The notification gets nothing; the invalid element is answered with id null, after
    // the requests; nothing is run.
    let expected = [json!(1), json!("b"), Value::Null, Value::Null];
    let text = Message::text(Value::from(calls.to_vec()).to_string());
    assert_refused(&exchange(&mut connection, text).await, &expected);
    let packed = Message::binary(rmp_serde::to_vec_named(&calls).unwrap());
    assert_refused(&exchange(&mut connection, packed).await, &expected);

    // A batch within the limit is run.
    let within_limit = Value::from(calls[..3].to_vec()).to_string();
    let answer = exchange(&mut connection, Message::text(within_limit)).await;
    assert_eq!(answer.as_array().map(Vec::len), Some(2), "{answer}");

    // Notifications only: no answer, so the next frame answers the next call.
    let notifications = json!([
        {"jsonrpc": "2.0", "method": "update"},
        {"jsonrpc": "2.0", "method": "update"},
        {"jsonrpc": "2.0", "method": "update"},
        {"jsonrpc": "2.0", "method": "update"}
    ]);
    within(connection.send(notifications.to_string()))
        .await
        .unwrap();
    let marker = json!({"jsonrpc": "2.0", "method": "echo", "params": ["m"], "id": "m"});
    let answer = exchange(&mut connection, Message::text(marker.to_string())).await;
    assert_eq!(answer["id"], "m", "{answer}");
}
