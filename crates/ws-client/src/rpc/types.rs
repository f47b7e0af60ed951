//! JSON-RPC 2.0 types: ids, requests, notifications, responses, error objects and the
//! standard error codes (specification sections 4 and 5).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The standard error codes of JSON-RPC 2.0 (section 5.1).
pub mod error_code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Lowest code of the range reserved for implementation-defined server errors.
    pub const SERVER_ERROR_MIN: i64 = -32099;
    /// Highest code of the range reserved for implementation-defined server errors.
    pub const SERVER_ERROR_MAX: i64 = -32000;

    /// The message the specification gives for a standard code, if it is one.
    pub fn standard_message(code: i64) -> Option<&'static str> {
        match code {
            PARSE_ERROR => Some("Parse error"),
            INVALID_REQUEST => Some("Invalid Request"),
            METHOD_NOT_FOUND => Some("Method not found"),
            INVALID_PARAMS => Some("Invalid params"),
            INTERNAL_ERROR => Some("Internal error"),
            _ => None,
        }
    }
}

/// A request id: a number, a string, or null (only in answers to unreadable requests).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// A numeric id (this client always sends numbers).
    Number(i64),
    /// A string id.
    String(String),
    /// `null`: the server could not tell which request it answers.
    Null,
}

impl Id {
    /// The id as a JSON value.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Id::Number(n) => Value::from(*n),
            Id::String(s) => Value::from(s.as_str()),
            Id::Null => Value::Null,
        }
    }
}

/// Whether an invocation expects an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcMethod {
    /// A call: carries an id and waits for the response.
    Call,
    /// A notification: no id, no response; the call returns once it is sent.
    Notification,
}

/// A JSON-RPC request or notification as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcRequest {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The method name.
    pub method: String,
    /// Positional (array) or named (object) parameters; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// The id; omitted for a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
}

impl RpcRequest {
    /// A call with `id`.
    pub fn call(method: impl Into<String>, params: Option<Value>, id: Id) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params,
            id: Some(id),
        }
    }

    /// A notification (no id, no answer).
    pub fn notification(method: impl Into<String>, params: Option<Value>) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params,
            id: None,
        }
    }
}

/// A JSON-RPC response: exactly one of `result` and `error` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcResponse {
    /// The id of the request this answers (`Null` for unreadable requests, and for the
    /// empty response a notification returns).
    pub id: Id,
    /// The result on success. `Some(Value::Null)` is a successful `null` result.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub result: Option<Value>,
    /// The error object on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl RpcResponse {
    /// The result, or the error object as [`crate::Error::Rpc`].
    pub fn into_result(self) -> Result<Value, crate::Error> {
        match (self.result, self.error) {
            (_, Some(error)) => Err(error.into()),
            (Some(result), None) => Ok(result),
            (None, None) => Ok(Value::Null),
        }
    }
}

/// The error object of a failed call (section 5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// The error code (see [`error_code`]).
    pub code: i64,
    /// A short description.
    pub message: String,
    /// Additional information, if the server gave any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl From<RpcError> for crate::Error {
    fn from(error: RpcError) -> Self {
        crate::Error::Rpc {
            code: error.code,
            message: error.message,
            data: error.data,
        }
    }
}

/// Keeps a present `null` as `Some(Value::Null)`, so a `null` result is told apart from a
/// missing one.
pub(crate) fn present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_result_is_kept_apart_from_a_missing_one() {
        let with_null: RpcResponse =
            serde_json::from_value(json!({"jsonrpc": "2.0", "result": null, "id": 1})).unwrap();
        assert_eq!(with_null.result, Some(Value::Null));
        let error: RpcResponse = serde_json::from_value(
            json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}),
        )
        .unwrap();
        assert_eq!(error.result, None);
        assert_eq!(error.id, Id::String("1".into()));
        assert_eq!(error.error.unwrap().code, error_code::METHOD_NOT_FOUND);
    }

    #[test]
    fn notifications_have_no_id_member() {
        let text = serde_json::to_string(&RpcRequest::notification("update", Some(json!([1, 2]))))
            .unwrap();
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","method":"update","params":[1,2]}"#
        );
    }

    /// The error objects of the specification's examples (section 7) read as written, and
    /// an error object is written back in the same shape (`data` only when there is some).
    #[test]
    fn error_objects_round_trip_as_the_specification_writes_them() {
        let examples = [
            (
                r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#,
                Id::Null,
                error_code::PARSE_ERROR,
            ),
            (
                r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#,
                Id::Null,
                error_code::INVALID_REQUEST,
            ),
            (
                r#"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#,
                Id::String("1".into()),
                error_code::METHOD_NOT_FOUND,
            ),
        ];
        for (text, id, code) in examples {
            let response: RpcResponse = serde_json::from_str(text).unwrap();
            assert_eq!(response.id, id, "{text}");
            let error = response.error.clone().unwrap();
            assert_eq!(error.code, code, "{text}");
            assert_eq!(
                Some(error.message.as_str()),
                error_code::standard_message(code)
            );
            assert_eq!(
                serde_json::to_value(&error).unwrap(),
                json!({"code": code, "message": error.message}),
                "no data member when there is no data"
            );
            let result = response.into_result();
            assert!(
                matches!(&result, Err(crate::Error::Rpc { code: got, data: None, .. }) if *got == code),
                "{text}: {result:?}"
            );
        }
        let with_data =
            json!({"code": -32000, "message": "Server error", "data": {"retry": [1, 2]}});
        let error: RpcError = serde_json::from_value(with_data.clone()).unwrap();
        assert_eq!(error.data, Some(json!({"retry": [1, 2]})));
        assert_eq!(serde_json::to_value(&error).unwrap(), with_data);
    }

    /// Section 5.1: the five predefined codes have their messages; the server-error range
    /// and anything else are implementation-defined.
    #[test]
    fn only_the_predefined_codes_have_a_standard_message() {
        let table = [
            (-32700, "Parse error"),
            (-32600, "Invalid Request"),
            (-32601, "Method not found"),
            (-32602, "Invalid params"),
            (-32603, "Internal error"),
        ];
        for (code, message) in table {
            assert_eq!(error_code::standard_message(code), Some(message));
        }
        for code in [
            error_code::SERVER_ERROR_MIN,
            error_code::SERVER_ERROR_MAX,
            -32604,
            -32768,
            0,
            1,
        ] {
            assert_eq!(error_code::standard_message(code), None, "{code}");
        }
    }

    /// An id is a number, a string or null on the wire, and `to_value` (used for the
    /// params of an unsubscribe) writes each as serde does.
    #[test]
    fn ids_round_trip_in_each_form() {
        for (id, text) in [
            (Id::Number(-7), "-7"),
            (Id::String("abc".into()), r#""abc""#),
            (Id::Null, "null"),
        ] {
            assert_eq!(serde_json::to_string(&id).unwrap(), text);
            assert_eq!(serde_json::from_str::<Id>(text).unwrap(), id);
            assert_eq!(id.to_value(), serde_json::to_value(&id).unwrap());
        }
    }

    /// The empty response a sent notification returns has neither member: a `null`
    /// result, not an error.
    #[test]
    fn a_response_with_neither_result_nor_error_is_a_null_result() {
        let empty = RpcResponse {
            id: Id::Null,
            result: None,
            error: None,
        };
        assert_eq!(empty.into_result().unwrap(), Value::Null);
        let answer: RpcResponse =
            serde_json::from_str(r#"{"jsonrpc": "2.0", "result": 19, "id": 1}"#).unwrap();
        assert_eq!(answer.into_result().unwrap(), json!(19));
    }
}
