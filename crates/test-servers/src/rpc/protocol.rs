//! JSON-RPC 2.0 wire rules for the `rpc` server: decoding frames (JSON in text frames,
//! MessagePack in binary ones), checking request objects, and building responses exactly
//! as the specification shows them.

use std::cell::RefCell;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use ws_client::{Message, MessageType};

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined server error: a per-connection limit was reached.
pub const SERVER_BUSY: i64 = -32000;

/// How a request arrived, and so how its answer is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// JSON in a text frame.
    Json,
    /// MessagePack in a binary frame.
    MessagePack,
}

impl Framing {
    /// Decodes a frame's payload, or says why it is not a readable value.
    pub fn decode(self, payload: &[u8]) -> Result<Value, String> {
        match self {
            Framing::Json => serde_json::from_slice(payload).map_err(|e| e.to_string()),
            Framing::MessagePack => rmp_serde::from_slice(payload).map_err(|e| e.to_string()),
        }
    }

    /// Encodes a response (or a batch of them) as a frame.
    pub fn encode(self, value: &Value) -> Message {
        let mut data = Vec::new();
        let message_type = self.encode_into(value, &mut data);
        Message { data, message_type }
    }

    /// Appends the payload of [`encode`](Self::encode)'s frame to `out` and returns its
    /// type: answers given inline are encoded into a reused buffer and copied once, into
    /// the write buffer.
    pub fn encode_into(self, value: &Value, out: &mut Vec<u8>) -> MessageType {
        // Serializing a serde_json::Value into memory, as JSON or MessagePack, cannot fail.
        match self {
            Framing::Json => {
                let _ = serde_json::to_writer(&mut *out, value);
                MessageType::Text
            }
            Framing::MessagePack => {
                let _ = rmp_serde::encode::write_named(out, value);
                MessageType::Binary
            }
        }
    }
}

/// An error object, with an optional `data` member.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcFailure {
    /// The error code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// Extra data, left out of the answer when `None`.
    pub data: Option<Value>,
}

impl RpcFailure {
    /// A standard error with the specification's message and no data.
    pub fn standard(code: i64) -> Self {
        let message = match code {
            PARSE_ERROR => "Parse error",
            INVALID_REQUEST => "Invalid Request",
            METHOD_NOT_FOUND => "Method not found",
            INVALID_PARAMS => "Invalid params",
            _ => "Internal error",
        };
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Invalid params, with a hint in `data` saying what was expected.
    pub fn invalid_params(hint: impl Into<String>) -> Self {
        Self {
            data: Some(Value::String(hint.into())),
            ..Self::standard(INVALID_PARAMS)
        }
    }

    /// A server error (-32000) for a limit that was reached.
    pub fn busy(what: impl Into<String>) -> Self {
        Self {
            code: SERVER_BUSY,
            message: what.into(),
            data: None,
        }
    }
}

/// A checked request object.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `None` for a notification (no `id` member): it is never answered.
    pub id: Option<Value>,
    /// The method name.
    pub method: String,
    /// The params: an array, an object, or `Null` when absent.
    pub params: Value,
}

/// Checks one request object (section 4). On failure returns the answer to send, which
/// carries the request's id only when that id itself was valid.
pub fn check_request(value: Value) -> Result<Request, Value> {
    let Value::Object(mut object) = value else {
        return Err(error_response(
            Value::Null,
            &RpcFailure::standard(INVALID_REQUEST),
        ));
    };
    let id = object.remove("id");
    let id_is_valid = matches!(
        id,
        None | Some(Value::Null | Value::Number(_) | Value::String(_))
    );
    let invalid = || {
        let answer_id = if id_is_valid {
            id.clone().unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        error_response(answer_id, &RpcFailure::standard(INVALID_REQUEST))
    };
    if !id_is_valid || object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid());
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err(invalid()),
    };
    let params = match object.remove("params") {
        None => Value::Null,
        Some(params @ (Value::Array(_) | Value::Object(_))) => params,
        Some(_) => return Err(invalid()),
    };
    Ok(Request { id, method, params })
}

/// A success answer.
pub fn result_response(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "result": result, "id": id})
}

/// An error answer.
pub fn error_response(id: Value, failure: &RpcFailure) -> Value {
    let mut error = Map::new();
    error.insert("code".into(), failure.code.into());
    error.insert("message".into(), failure.message.clone().into());
    if let Some(data) = &failure.data {
        error.insert("data".into(), data.clone());
    }
    json!({"jsonrpc": "2.0", "error": error, "id": id})
}

/// The answer to a call with `id`: `None` for a notification.
pub fn answer(id: Option<Value>, outcome: Result<Value, RpcFailure>) -> Option<Value> {
    let id = id?;
    Some(match outcome {
        Ok(result) => result_response(id, result),
        Err(failure) => error_response(id, &failure),
    })
}

/// A well-formed JSON call, read without building a `Value` tree for its envelope (the
/// common case, and the hot path of a benchmark). Anything unusual (escapes, duplicate or
/// missing members, a notification) fails to parse and takes the general path instead.
#[derive(Debug, Deserialize)]
pub struct BorrowedCall<'a> {
    jsonrpc: &'a str,
    /// The method name.
    pub method: &'a str,
    #[serde(default, deserialize_with = "present")]
    params: Option<Value>,
    #[serde(borrow)]
    id: &'a RawValue,
}

impl<'a> BorrowedCall<'a> {
    /// Parses `payload` if it is a plain, valid call; `None` sends it down the general path.
    pub fn parse(payload: &'a [u8]) -> Option<Self> {
        Self::parse_str(std::str::from_utf8(payload).ok()?)
    }

    /// [`parse`](Self::parse) for text already known to be UTF-8: serde_json then does not
    /// check it a second time.
    pub fn parse_str(text: &'a str) -> Option<Self> {
        Self::checked(serde_json::from_str(text).ok()?)
    }

    /// [`parse`](Self::parse) for the payload of a text frame, which the wire reader has
    /// checked is UTF-8. Without `unsafe` (forbidden here) it cannot become a `str` for
    /// free, so it is parsed as bytes: serde_json then checks only the strings it keeps
    /// (method, id, params), not the whole payload a second time.
    pub fn parse_text(payload: &'a [u8]) -> Option<Self> {
        Self::checked(serde_json::from_slice(payload).ok()?)
    }

    /// The call, if its members are what a plain call has.
    fn checked(call: Self) -> Option<Self> {
        let id_is_valid = matches!(
            call.id.get().as_bytes().first(),
            Some(b'"' | b'-' | b'0'..=b'9' | b'n')
        );
        let params_are_valid =
            matches!(call.params, None | Some(Value::Array(_) | Value::Object(_)));
        (call.jsonrpc == "2.0" && id_is_valid && params_are_valid).then_some(call)
    }

    /// The params (`Null` when absent).
    pub fn take_params(&mut self) -> Value {
        self.params.take().unwrap_or(Value::Null)
    }

    /// The id as an owned value, for answers given later.
    pub fn owned_id(&self) -> Value {
        serde_json::from_str(self.id.get()).unwrap_or(Value::Null)
    }

    /// Appends the answer text to `out`, written straight from borrowed parts: the
    /// envelope as literal bytes (serde would escape each member name at run time).
    pub fn answer_into(&self, outcome: &Result<Value, RpcFailure>, out: &mut Vec<u8>) {
        // Serializing values that were just parsed into memory cannot fail.
        let _ = match outcome {
            Ok(result) => {
                out.extend_from_slice(br#"{"jsonrpc":"2.0","result":"#);
                serde_json::to_writer(&mut *out, result)
            }
            Err(failure) => {
                out.extend_from_slice(br#"{"jsonrpc":"2.0","error":"#);
                serde_json::to_writer(&mut *out, &ErrorObject::from(failure))
            }
        };
        out.extend_from_slice(br#","id":"#);
        out.extend_from_slice(self.id.get().as_bytes());
        out.push(b'}');
    }

    /// The answer text as a `String` (see [`answer_into`](Self::answer_into)), written
    /// into a reused buffer and copied out at its exact size.
    pub fn answer(&self, outcome: &Result<Value, RpcFailure>) -> String {
        thread_local! {
            static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        // serde_json writes UTF-8 only: the fallback is never taken.
        let write = |out: &mut Vec<u8>| {
            self.answer_into(outcome, out);
            String::from_utf8(out.clone()).unwrap_or_default()
        };
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                scratch.clear();
                let text = write(&mut scratch);
                // Large answers (an `echo` of a big payload) are not kept around.
                if scratch.capacity() > MAX_KEPT_SCRATCH {
                    *scratch = Vec::new();
                }
                text
            }
            Err(_) => write(&mut Vec::new()),
        })
    }
}

/// Largest answer buffer kept between answers.
pub const MAX_KEPT_SCRATCH: usize = 64 * 1024;

/// The error member of an answer.
#[derive(Serialize)]
struct ErrorObject {
    code: i64,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

impl From<&RpcFailure> for ErrorObject {
    fn from(failure: &RpcFailure) -> Self {
        Self {
            code: failure.code,
            message: failure.message.clone(),
            data: failure.data.clone(),
        }
    }
}

/// Keeps a present `null` as `Some(Value::Null)`, so `"params": null` is told apart from
/// absent params (and refused).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_call_and_a_notification_pass() {
        let call =
            check_request(json!({"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}))
                .unwrap();
        assert_eq!(call.id, Some(json!(1)));
        let notification = check_request(json!({"jsonrpc": "2.0", "method": "update"})).unwrap();
        assert_eq!(notification.id, None);
        assert_eq!(notification.params, Value::Null);
    }

    #[test]
    fn invalid_requests_are_answered_with_minus_32600() {
        let expected = json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null});
        for bad in [
            json!(1),
            json!({"foo": "boo"}),
            json!({"jsonrpc": "2.0", "method": 1, "params": "bar"}),
            json!({"jsonrpc": "1.0", "method": "x"}),
            json!({"jsonrpc": "2.0", "method": "x", "id": [1]}),
        ] {
            assert_eq!(check_request(bad.clone()).unwrap_err(), expected, "{bad}");
        }
        let with_id = check_request(json!({"jsonrpc": "2.0", "method": "x", "params": 3, "id": 7}))
            .unwrap_err();
        assert_eq!(with_id["id"], 7);
    }

    #[test]
    fn the_fast_path_takes_only_plain_calls() {
        let mut call =
            BorrowedCall::parse(br#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":7}"#)
                .unwrap();
        assert_eq!(call.method, "add");
        assert_eq!(call.take_params(), json!([1, 2]));
        let text = BorrowedCall::parse_text(br#"{"jsonrpc":"2.0","method":"add","id":"x"}"#);
        assert_eq!(text.map(|call| call.owned_id()), Some(json!("x")));
        assert_eq!(
            call.answer(&Ok(json!(3))),
            r#"{"jsonrpc":"2.0","result":3,"id":7}"#
        );
        let call =
            BorrowedCall::parse_str(r#"{"jsonrpc":"2.0","method":"nope","id":"é\"x"}"#).unwrap();
        assert_eq!(
            call.answer(&Err(RpcFailure::standard(METHOD_NOT_FOUND))),
            r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"é\"x"}"#
        );
        assert_eq!(
            call.answer(&Err(RpcFailure::invalid_params("two numbers"))),
            r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"two numbers"},"id":"é\"x"}"#
        );
        assert_eq!(
            call.answer(&Ok(json!({"s": "\u{1}"}))),
            r#"{"jsonrpc":"2.0","result":{"s":"\u0001"},"id":"é\"x"}"#
        );
        for unusual in [
            &br#"{"jsonrpc":"2.0","method":"update"}"#[..],
            br#"{"jsonrpc":"2.0","method":"x","params":null,"id":1}"#,
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

    #[test]
    fn message_pack_frames_round_trip() {
        let value = json!({"jsonrpc": "2.0", "result": [1, "two", null], "id": 3});
        let frame = Framing::MessagePack.encode(&value);
        assert_eq!(Framing::MessagePack.decode(&frame.data).unwrap(), value);
    }
}
