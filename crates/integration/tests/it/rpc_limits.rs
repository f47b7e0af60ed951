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
