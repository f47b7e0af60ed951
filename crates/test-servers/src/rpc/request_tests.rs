//! Unit tests of `request.rs`: the request checks, the fast path, batches kept within
//! their limit.

use serde_json::json;

use super::*;
use crate::rpc::protocol::{METHOD_NOT_FOUND, Reply};

fn json_of(response: Response) -> Value {
    serde_json::from_slice(&Framing::Json.encode(Reply::One(response)).data).unwrap()
}

fn check(text: &str) -> Item<'_> {
    let raw: &RawValue = serde_json::from_str(text).unwrap();
    check_json(raw)
}

#[test]
fn a_valid_call_and_a_notification_pass() {
    let text = r#"{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1, "x": {"y": 1}}"#;
    let call = check(text).unwrap();
    assert_eq!(
        call.id,
        Some(Output::Raw(RawValue::from_string("1".into()).unwrap()))
    );
    assert_eq!(call.method, "add");
    assert!(matches!(call.params, Params::Json(raw) if raw.get() == "[1, 2]"));
    let notification = check(r#"{"jsonrpc": "2.0", "method": "update"}"#).unwrap();
    assert!(notification.id.is_none());
    assert!(matches!(notification.params, Params::Absent));
    let escaped = check(r#"{"jsonrpc": "2\u002e0", "m\u0065thod": "x", "id": null}"#).unwrap();
    assert_eq!(escaped.method, "x");
    let decoded = check_value(json!({"jsonrpc": "2.0", "method": "add", "params": [1], "id": "a"}));
    assert_eq!(decoded.unwrap().id, Some(Output::Value(json!("a"))));
}

#[test]
fn invalid_requests_are_answered_with_minus_32600() {
    let expected = json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null});
    for bad in [
        "1",
        r#"{"foo": "boo"}"#,
        r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
        r#"{"jsonrpc": "1.0", "method": "x"}"#,
        r#"{"jsonrpc": "2.0", "method": "x", "id": [1]}"#,
        r#"{"jsonrpc": "2.0", "method": "x", "params": null, "id": null}"#,
        r#"["jsonrpc", "2.0"]"#,
    ] {
        assert_eq!(json_of(*check(bad).unwrap_err()), expected, "{bad}");
        let value = serde_json::from_str(bad).unwrap();
        assert_eq!(json_of(*check_value(value).unwrap_err()), expected, "{bad}");
    }
    let with_id = check(r#"{"jsonrpc": "2.0", "method": "x", "params": 3, "id": 7}"#);
    assert_eq!(json_of(*with_id.unwrap_err())["id"], 7);
}

#[test]
fn batches_keep_at_most_their_limit() {
    let batch = br#" [1, {"jsonrpc": "2.0", "method": "x", "id": 2}, [3]] "#;
    let Incoming::Batch(items) = parse(Framing::Json, batch, 3) else {
        panic!("a batch within its limit")
    };
    assert_eq!(items.len(), 3);
    assert!(items[1].is_ok());
    let Incoming::Oversized { len: 3, ids } = parse(Framing::Json, batch, 2) else {
        panic!("a batch over its limit")
    };
    let two = Output::Raw(RawValue::from_string("2".into()).unwrap());
    assert_eq!(ids, [two, Output::Value(Value::Null)]);
    assert!(matches!(
        parse(Framing::Json, b" [ ] ", 2),
        Incoming::EmptyBatch
    ));
    for unreadable in [&b"[1, 2"[..], b"[1] x", b"{\"a\":", b"", b"\"\\x\""] {
        assert!(
            matches!(parse(Framing::Json, unreadable, 2), Incoming::Unreadable(_)),
            "{}",
            String::from_utf8_lossy(unreadable)
        );
    }
    let packed = rmp_serde::to_vec(&json!([1, 2, 3])).unwrap();
    let Incoming::Oversized { len: 3, ids } = parse(Framing::MessagePack, &packed, 2) else {
        panic!("a batch over its limit")
    };
    assert_eq!(ids, [Output::Value(Value::Null)]);
}

#[test]
fn the_fast_path_takes_only_plain_calls() {
    let call =
        BorrowedCall::parse(br#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":7}"#).unwrap();
    assert_eq!(call.method, "add");
    assert!(matches!(call.params(), Params::Json(raw) if raw.get() == "[1,2]"));
    let text = BorrowedCall::parse_text(br#"{"jsonrpc":"2.0","method":"add","id":"x"}"#).unwrap();
    assert_eq!(text.owned_id().into_value(), json!("x"));
    let mut out = Vec::new();
    call.answer_into(&Ok(Output::Value(json!(3))), &mut out);
    assert_eq!(out, br#"{"jsonrpc":"2.0","result":3,"id":7}"#);
    let call =
        BorrowedCall::parse(r#"{"jsonrpc":"2.0","method":"nope","id":"é\"x"}"#.as_bytes()).unwrap();
    let mut out = Vec::new();
    call.answer_into(&Err(RpcFailure::standard(METHOD_NOT_FOUND)), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"é\"x"}"#
    );
    for unusual in [
        &br#"{"jsonrpc":"2.0","method":"update"}"#[..],
        br#"{"jsonrpc":"2.0","method":"x","params":null,"id":1}"#,
        br#"{"jsonrpc":"2.0","method":"x","params":3,"id":1}"#,
        br#"{"jsonrpc":"2.0","method":"x","id":[1]}"#,
        br#"{"jsonrpc":"1.0","method":"x","id":1}"#,
        br#"{"jsonrpc":"2.0","method":"x","id":1,"id":2}"#,
    ] {
        assert!(BorrowedCall::parse_text(unusual).is_none());
        assert!(
            BorrowedCall::parse(unusual).is_none(),
            "{}",
            String::from_utf8_lossy(unusual)
        );
    }
}
