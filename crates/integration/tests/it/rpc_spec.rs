//! Every example exchange of section 7 of the JSON-RPC 2.0 specification, sent as raw text
//! frames to `test-servers rpc`, must get exactly the answer the specification shows.

use serde_json::{Value, json};
use ws_client::{Message, WebSocketConnection};

use crate::support::{connect, within};
use integration::TestServer;

/// Sends `request` as one text frame and returns the answer frame, parsed.
async fn exchange(connection: &mut WebSocketConnection, request: &str) -> Value {
    within(connection.send(request)).await.unwrap();
    let answer = within(connection.receive_message()).await.unwrap();
    serde_json::from_slice(&answer.data)
        .unwrap_or_else(|e| panic!("answer to {request} is not JSON: {e}"))
}

/// Sends `request`, which must not be answered: the next frame must be the answer to a
/// marker call sent right after it.
async fn expect_no_answer(connection: &mut WebSocketConnection, request: &str) {
    within(connection.send(request)).await.unwrap();
    let marker = r#"{"jsonrpc": "2.0", "method": "echo", "params": ["marker"], "id": "marker"}"#;
    let next = exchange(connection, marker).await;
    assert_eq!(
        next,
        json!({"jsonrpc": "2.0", "result": ["marker"], "id": "marker"}),
        "{request} was answered"
    );
}

/// Batch answers may come in any order (section 6): checks that `answer` holds exactly
/// the items of `expected`, in any order.
fn assert_same_batch(answer: &Value, expected: &Value) {
    let (Value::Array(answer_items), Value::Array(expected_items)) = (answer, expected) else {
        panic!("expected a batch answer, got {answer}")
    };
    let mut unmatched = answer_items.clone();
    for item in expected_items {
        let position = unmatched.iter().position(|candidate| candidate == item);
        let position =
            position.unwrap_or_else(|| panic!("{item} missing from the batch answer {answer}"));
        unmatched.remove(position);
    }
    assert!(
        unmatched.is_empty(),
        "unexpected items in the batch answer: {unmatched:?}"
    );
}

#[tokio::test]
async fn section_7_examples_get_exactly_the_specified_answers() {
    let server = TestServer::start("rpc");
    let mut c = connect(server.url()).await;

    // rpc call with positional parameters
    let answer = exchange(
        &mut c,
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "result": 19, "id": 1}));
    let answer = exchange(
        &mut c,
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "result": -19, "id": 2}));

    // rpc call with named parameters
    let answer = exchange(
        &mut c,
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "result": 19, "id": 3}));
    let answer = exchange(
        &mut c,
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "result": 19, "id": 4}));

    // a Notification
    expect_no_answer(
        &mut c,
        r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#,
    )
    .await;
    expect_no_answer(&mut c, r#"{"jsonrpc": "2.0", "method": "foobar"}"#).await;

    // rpc call of non-existent method
    let answer = exchange(
        &mut c,
        r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
    )
    .await;
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"})
    );

    // rpc call with invalid JSON
    let answer = exchange(
        &mut c,
        r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
    )
    .await;
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})
    );

    // rpc call with invalid Request object
    let answer = exchange(
        &mut c,
        r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
    )
    .await;
    let invalid = json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null});
    assert_eq!(answer, invalid);

    // rpc call Batch, invalid JSON
    let answer = exchange(
        &mut c,
        r#"[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]"#,
    )
    .await;
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})
    );

    // rpc call with an empty Array
    assert_eq!(exchange(&mut c, "[]").await, invalid);

    // rpc call with an invalid Batch (but not empty)
    assert_eq!(exchange(&mut c, "[1]").await, json!([invalid]));

    // rpc call with invalid Batch
    assert_eq!(
        exchange(&mut c, "[1,2,3]").await,
        json!([invalid, invalid, invalid])
    );

    // rpc call Batch
    let answer = exchange(
        &mut c,
        r#"[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]"#,
    )
    .await;
    let expected = json!([
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
    ]);
    assert_same_batch(&answer, &expected);

    // rpc call Batch (all notifications)
    expect_no_answer(
        &mut c,
        r#"[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]"#,
    )
    .await;
}

#[tokio::test]
async fn invalid_params_and_limits_are_answered_per_the_specification() {
    let server = TestServer::start_with("rpc", &["--max-batch-size", "3"]);
    let mut c = connect(server.url()).await;
    let answer = exchange(
        &mut c,
        r#"{"jsonrpc": "2.0", "method": "add", "params": {"a": "five"}, "id": 1}"#,
    )
    .await;
    assert_eq!(answer["error"]["code"], -32602);
    assert_eq!(answer["error"]["message"], "Invalid params");
    assert_eq!(answer["id"], 1);

    let answer = exchange(&mut c, r#"[{"jsonrpc":"2.0","method":"echo","id":1},{"jsonrpc":"2.0","method":"echo","id":2},{"jsonrpc":"2.0","method":"echo","id":3},{"jsonrpc":"2.0","method":"echo","id":4}]"#).await;
    // Not run; still a batch, so an array: an error for each request.
    let items = answer.as_array().expect("an array");
    assert_eq!(items.len(), 4, "{answer}");
    for (item, id) in items.iter().zip(1..) {
        assert_eq!(item["id"], id, "{answer}");
        assert_eq!(item["error"]["code"], -32600);
        let data = item["error"]["data"].as_str().unwrap();
        assert!(data.contains("limit of 3"), "{answer}");
    }

    let answer = exchange(&mut c, r#"{"jsonrpc": "2.0", "method": "fail", "params": {"code": -32001, "message": "nope", "data": [1]}, "id": 2}"#).await;
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "error": {"code": -32001, "message": "nope", "data": [1]}, "id": 2})
    );

    // A binary frame is read as MessagePack and answered in kind.
    let request = json!({"jsonrpc": "2.0", "method": "add", "params": [5, 3], "id": 7});
    within(c.send(Message::binary(rmp_serde::to_vec_named(&request).unwrap())))
        .await
        .unwrap();
    let answer = within(c.receive_message()).await.unwrap();
    let answer: Value = rmp_serde::from_slice(&answer.data).unwrap();
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "result": {"result": 8}, "id": 7})
    );
}
