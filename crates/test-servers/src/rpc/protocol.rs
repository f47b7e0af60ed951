//! JSON-RPC 2.0 answers for the `rpc` server: error codes, the framings (JSON in text
//! frames, MessagePack in binary ones), and responses written exactly as the specification
//! shows them. Reading requests is `request.rs`.

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

/// Largest answer buffer kept between answers.
pub const MAX_KEPT_SCRATCH: usize = 64 * 1024;

/// How a request arrived, and so how its answer is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// JSON in a text frame.
    Json,
    /// MessagePack in a binary frame.
    MessagePack,
}

/// A JSON value held for an answer: a tree, or JSON text kept as the client wrote it (so
/// that a large `echo` or `sleep` payload is never expanded into a tree).
#[derive(Debug, Clone)]
pub enum Output {
    /// A value tree.
    Value(Value),
    /// JSON text, written back verbatim.
    Raw(Box<RawValue>),
}

/// Raw text compares as text (for tests: equal values may be written differently).
impl PartialEq for Output {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Output::Value(a), Output::Value(b)) => a == b,
            (Output::Raw(a), Output::Raw(b)) => a.get() == b.get(),
            _ => false,
        }
    }
}

impl From<Value> for Output {
    fn from(value: Value) -> Self {
        Output::Value(value)
    }
}

impl Output {
    /// Appends the JSON text of the value to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            // Serializing a serde_json::Value into memory cannot fail.
            Output::Value(value) => {
                let _ = serde_json::to_writer(&mut *out, value);
            }
            Output::Raw(raw) => out.extend_from_slice(raw.get().as_bytes()),
        }
    }

    /// The value as a tree (for MessagePack answers). Raw text here was written by this
    /// server or checked by serde_json, so it parses; `null` stands in if it ever did not.
    pub fn into_value(self) -> Value {
        match self {
            Output::Value(value) => value,
            Output::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
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
    pub data: Option<Output>,
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

    /// A standard error with a hint in `data` (a string).
    pub fn with_hint(code: i64, hint: impl Into<String>) -> Self {
        Self {
            data: Some(Output::Value(Value::String(hint.into()))),
            ..Self::standard(code)
        }
    }

    /// Invalid params, with a hint in `data` saying what was expected.
    pub fn invalid_params(hint: impl Into<String>) -> Self {
        Self::with_hint(INVALID_PARAMS, hint)
    }

    /// A server error (-32000) for a limit that was reached.
    pub fn busy(what: impl Into<String>) -> Self {
        Self {
            code: SERVER_BUSY,
            message: what.into(),
            data: None,
        }
    }

    /// Appends the error object's JSON text to `out`.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"code":"#);
        out.extend_from_slice(self.code.to_string().as_bytes());
        out.extend_from_slice(br#","message":"#);
        // Serializing a string into memory cannot fail.
        let _ = serde_json::to_writer(&mut *out, &self.message);
        if let Some(data) = &self.data {
            out.extend_from_slice(br#","data":"#);
            data.write_json(out);
        }
        out.push(b'}');
    }

    fn into_value(self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), self.code.into());
        error.insert("message".into(), self.message.into());
        if let Some(data) = self.data {
            error.insert("data".into(), data.into_value());
        }
        Value::Object(error)
    }
}

/// One response object.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request it answers (`null` when that could not be read).
    pub id: Output,
    /// The result, or the error.
    pub outcome: Result<Output, RpcFailure>,
}

impl Response {
    /// An error answer to a request whose id could not be read.
    pub fn error_without_id(failure: RpcFailure) -> Self {
        Self {
            id: Output::Value(Value::Null),
            outcome: Err(failure),
        }
    }

    /// Appends the response's JSON text to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        write_response(&self.outcome, out, |out| self.id.write_json(out));
    }

    fn into_value(self) -> Value {
        let id = self.id.into_value();
        match self.outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "result": result.into_value(), "id": id}),
            Err(failure) => json!({"jsonrpc": "2.0", "error": failure.into_value(), "id": id}),
        }
    }
}

/// Appends a response with `outcome` to `out`, its id written by `write_id`: the envelope
/// as literal bytes, in the specification's member order.
pub fn write_response(
    outcome: &Result<Output, RpcFailure>,
    out: &mut Vec<u8>,
    write_id: impl FnOnce(&mut Vec<u8>),
) {
    match outcome {
        Ok(result) => {
            out.extend_from_slice(br#"{"jsonrpc":"2.0","result":"#);
            result.write_json(out);
        }
        Err(failure) => {
            out.extend_from_slice(br#"{"jsonrpc":"2.0","error":"#);
            failure.write_json(out);
        }
    }
    out.extend_from_slice(br#","id":"#);
    write_id(out);
    out.push(b'}');
}

/// What one frame is answered with.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The answer to a single request.
    One(Response),
    /// The answers to a batch (never empty).
    Batch(Vec<Response>),
    /// The answers to a batch that was not run: the same error for each of `ids` (never
    /// empty), written without a response object per id in memory.
    Refused {
        /// The error.
        failure: RpcFailure,
        /// Whom to answer.
        ids: Vec<Output>,
    },
}

impl Framing {
    /// Encodes a reply as a frame.
    pub fn encode(self, reply: Reply) -> Message {
        let mut data = Vec::new();
        let message_type = self.encode_into(reply, &mut data);
        Message { data, message_type }
    }

    /// Appends the payload of [`encode`](Self::encode)'s frame to `out` and returns its
    /// type: answers given inline are encoded into a reused buffer and copied once, into
    /// the write buffer.
    pub fn encode_into(self, reply: Reply, out: &mut Vec<u8>) -> MessageType {
        match (self, reply) {
            (Framing::Json, Reply::One(response)) => response.write_json(out),
            (Framing::Json, Reply::Batch(responses)) => {
                out.push(b'[');
                for (i, response) in responses.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    response.write_json(out);
                }
                out.push(b']');
            }
            (Framing::Json, Reply::Refused { failure, ids }) => {
                let outcome = Err(failure);
                out.push(b'[');
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_response(&outcome, out, |out| id.write_json(out));
                }
                out.push(b']');
            }
            (Framing::MessagePack, Reply::Refused { failure, ids }) => {
                let all = ids
                    .into_iter()
                    .map(|id| {
                        Response {
                            id,
                            outcome: Err(failure.clone()),
                        }
                        .into_value()
                    })
                    .collect();
                return self.encode_value_into(&Value::Array(all), out);
            }
            (Framing::MessagePack, Reply::One(response)) => {
                return self.encode_value_into(&response.into_value(), out);
            }
            (Framing::MessagePack, Reply::Batch(responses)) => {
                let all = responses.into_iter().map(Response::into_value).collect();
                return self.encode_value_into(&Value::Array(all), out);
            }
        }
        MessageType::Text
    }

    /// Encodes a value (a notification) as a frame.
    pub fn encode_value(self, value: &Value) -> Message {
        let mut data = Vec::new();
        let message_type = self.encode_value_into(value, &mut data);
        Message { data, message_type }
    }

    fn encode_value_into(self, value: &Value, out: &mut Vec<u8>) -> MessageType {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(reply: Reply) -> String {
        String::from_utf8(Framing::Json.encode(reply).data).unwrap()
    }

    #[test]
    fn responses_are_written_in_the_specifications_shape() {
        let raw = RawValue::from_string("[1, 2]".into()).unwrap();
        let ok = Response {
            id: Output::Value(json!(7)),
            outcome: Ok(Output::Raw(raw)),
        };
        assert_eq!(
            json_of(Reply::One(ok.clone())),
            r#"{"jsonrpc":"2.0","result":[1, 2],"id":7}"#
        );
        let failed = Response::error_without_id(RpcFailure::invalid_params("two \"numbers\""));
        assert_eq!(
            json_of(Reply::One(failed.clone())),
            r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"two \"numbers\""},"id":null}"#
        );
        assert_eq!(
            json_of(Reply::Batch(vec![ok.clone(), failed.clone()])),
            format!(
                "[{},{}]",
                json_of(Reply::One(ok)),
                json_of(Reply::One(failed))
            )
        );
    }

    #[test]
    fn message_pack_answers_carry_the_same_values() {
        let raw = RawValue::from_string(r#"{"a": [1, "two", null]}"#.into()).unwrap();
        let reply = Reply::One(Response {
            id: Output::Value(json!("x")),
            outcome: Ok(Output::Raw(raw)),
        });
        let frame = Framing::MessagePack.encode(reply);
        assert_eq!(frame.message_type, MessageType::Binary);
        let value: Value = rmp_serde::from_slice(&frame.data).unwrap();
        assert_eq!(
            value,
            json!({"jsonrpc": "2.0", "result": {"a": [1, "two", null]}, "id": "x"})
        );
    }
}
