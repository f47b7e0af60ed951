//! What the client reads from the server: `Incoming` (a response or a notification), read
//! either by serde or, for the commonest answer, by a fast path that reads the same thing.

use std::ops::Range;

use serde::de::{self, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::rpc::raw::{Checked, RawResult};
use crate::rpc::types::{Id, RpcError, present};

/// One JSON-RPC message from the server: a response or a notification.
#[derive(Deserialize)]
pub(crate) struct Incoming {
    #[serde(default, deserialize_with = "any_id")]
    pub(crate) id: Option<Id>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) result: Option<Value>,
    #[serde(default)]
    pub(crate) error: Option<RpcError>,
    /// Whether there is a `method` member at all, whatever its value (`null` included): a
    /// message with one is a request or a notification from the server, never an answer,
    /// even if its id is that of a pending call. Its value is not copied.
    #[serde(default, deserialize_with = "member_present")]
    pub(crate) method: bool,
    #[serde(default)]
    pub(crate) params: Option<Value>,
    /// The result of an answer read by the fast path, not decoded yet (`result` is then
    /// `None`); never set by serde.
    #[serde(skip)]
    pub(crate) raw: Option<RawResult>,
}

impl Incoming {
    /// The successful answer `result` to call `id`, decoded.
    #[cfg(test)]
    pub(crate) fn answer(id: i64, result: Value) -> Self {
        Self {
            id: Some(Id::Number(id)),
            result: Some(result),
            error: None,
            method: false,
            params: None,
            raw: None,
        }
    }

    /// The successful answer to call `id` whose result is `raw`, not decoded yet.
    pub(crate) fn raw_answer(id: i64, raw: RawResult) -> Self {
        Self {
            id: Some(Id::Number(id)),
            result: None,
            error: None,
            method: false,
            params: None,
            raw: Some(raw),
        }
    }
}

/// What can still be read of a message the general path refused: its id, and whether it
/// has a `method` member; everything else is skipped unread (in JSON without a depth
/// limit, so an answer whose result is nested too deep still shows its id).
#[derive(Deserialize)]
pub(crate) struct Skimmed {
    #[serde(default, deserialize_with = "any_id")]
    id: Option<Id>,
    #[serde(default, deserialize_with = "member_present")]
    method: bool,
}

impl Skimmed {
    /// The call this answers, if it is an answer to one: a numeric id and no `method` (a
    /// request from the server is never an answer).
    pub(crate) fn call(&self) -> Option<i64> {
        match (&self.id, self.method) {
            (Some(Id::Number(id)), false) => Some(*id),
            _ => None,
        }
    }
}

/// Called only for a member that is there: skips its value and says it was there.
fn member_present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// Reads an id (number, string; null is none) straight from the input. `Id`'s own untagged
/// derive buffers the value and tries each variant in turn, which allocates per answer.
fn any_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Id>, D::Error> {
    struct IdVisitor;

    impl<'de> de::Visitor<'de> for IdVisitor {
        type Value = Option<Id>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number, a string or null")
        }

        fn visit_i64<E: de::Error>(self, id: i64) -> Result<Self::Value, E> {
            Ok(Some(Id::Number(id)))
        }

        fn visit_u64<E: de::Error>(self, id: u64) -> Result<Self::Value, E> {
            i64::try_from(id)
                .map(|id| Some(Id::Number(id)))
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(id), &self))
        }

        fn visit_str<E: de::Error>(self, id: &str) -> Result<Self::Value, E> {
            Ok(Some(Id::String(id.to_owned())))
        }

        fn visit_string<E: de::Error>(self, id: String) -> Result<Self::Value, E> {
            Ok(Some(Id::String(id)))
        }

        // `null` reads as no id, as `Option<Id>`'s own deserializer reads it.
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    deserializer.deserialize_any(IdVisitor)
}

/// Where the commonest answer, `{"jsonrpc":"2.0","result":R,"id":N}` (or with `id`
/// first) with an integer id and no whitespace between members (so no `method`: a request
/// from the server is never read as an answer here), keeps its id and its result: found
/// without going through serde's struct machinery (matching member names was the largest
/// share of decoding an answer), and without decoding the result (checked to be a value
/// the general path would read, left as text for its caller to decode into the type it
/// wants). Anything else, or anything odd in it, returns `None` and takes the general
/// path, which reads the same messages the same way.
pub(crate) fn plain_json_answer(data: &[u8]) -> Option<(i64, Range<usize>)> {
    let rest = data.strip_prefix(br#"{"jsonrpc":"2.0","#)?;
    if let Some(rest) = rest.strip_prefix(br#""result":"#) {
        let start = data.len() - rest.len();
        let rest = &rest[json_value_length(rest)?..];
        let end = data.len() - rest.len();
        let rest = rest.strip_prefix(br#","id":"#)?;
        Some((plain_integer(rest.strip_suffix(b"}")?)?, start..end))
    } else {
        let rest = rest.strip_prefix(br#""id":"#)?;
        let comma = rest.iter().position(|&b| b == b',')?;
        let id = plain_integer(&rest[..comma])?;
        let rest = rest[comma..].strip_prefix(br#","result":"#)?;
        let start = data.len() - rest.len();
        let end = start + json_value_length(rest)?;
        (&data[end..] == b"}").then_some((id, start..end))
    }
}

/// The length of the JSON value at the start of `data`, checked as the general path would
/// read it as a result (see [`Checked`]) without building it.
fn json_value_length(data: &[u8]) -> Option<usize> {
    let mut values = serde_json::Deserializer::from_slice(data).into_iter::<Checked>();
    values.next()?.ok()?;
    Some(values.byte_offset())
}

/// A JSON integer that fits an `i64`, exactly as JSON writes it (no `+`, no leading zero),
/// and not `-0`, which serde_json reads as a float (so the general path refuses it as an id).
fn plain_integer(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || negative)) {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(digit - b'0');
        // Accumulated negatively so that i64::MIN fits too.
        value = value.checked_mul(10)?.checked_sub(digit)?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path reads what the general path reads, or leaves the message to it.
    #[test]
    fn plain_answers_read_the_same_on_both_paths() {
        let taken = [
            r#"{"jsonrpc":"2.0","result":3,"id":7}"#,
            r#"{"jsonrpc":"2.0","id":7,"result":3}"#,
            r#"{"jsonrpc":"2.0","result":{"a":[1,"}",null]},"id":-9223372036854775808}"#,
            r#"{"jsonrpc":"2.0","result":"x,\"id\":1}","id":9223372036854775807}"#,
            r#"{"jsonrpc":"2.0","result":null,"id":0}"#,
            r#"{"jsonrpc":"2.0","id":12,"result":[1,2]}"#,
        ];
        for text in taken {
            let (id, result) = plain_json_answer(text.as_bytes()).expect(text);
            let fast = RawResult::new(text.as_bytes().to_vec(), result);
            let general: Incoming = serde_json::from_str(text).unwrap();
            assert_eq!(Some(Id::Number(id)), general.id, "{text}");
            assert_eq!(Some(fast.to_value().unwrap()), general.result, "{text}");
            assert!(general.error.is_none() && !general.method && general.params.is_none());
        }
        let left = [
            r#"{"jsonrpc":"2.0","result":3,"id":"7"}"#,
            r#"{"jsonrpc":"2.0","result":3,"id":07}"#,
            r#"{"jsonrpc":"2.0","result":3,"id":+7}"#,
            r#"{"jsonrpc":"2.0","result":3,"id":9223372036854775808}"#,
            r#"{"jsonrpc":"2.0","result":3,"id":1.5}"#,
            r#"{"jsonrpc":"2.0","result":3,"id":7 }"#,
            r#"{"jsonrpc":"2.0","result":3,"id":7}x"#,
            r#"{"jsonrpc":"2.0","result":3,"id":7,"error":null}"#,
            r#"{"jsonrpc":"2.0","result":3 ,"id":7}"#,
            r#"{"jsonrpc":"2.0","result":,"id":7}"#,
            r#"{"jsonrpc":"2.0","id":7,"result":3,"id":8}"#,
            r#"{"jsonrpc":"2.0","id":7,"result":3"#,
            r#"{"jsonrpc":"2.0","id":,"result":3}"#,
            r#"{"jsonrpc":"2.0","id":-,"result":3}"#,
            r#"{"jsonrpc":"2.0","error":{"code":1,"message":"m"},"id":7}"#,
            r#"{"jsonrpc":"2.0","method":"tick","params":{}}"#,
            r#"{"jsonrpc":"2.0","result":tru,"id":7}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"client_ping"}"#,
            r#"{"jsonrpc":"2.0","id":7,"result":3,"method":"client_ping"}"#,
            r#"{"jsonrpc":"2.0","result":3,"id":7,"method":null}"#,
        ];
        for text in left {
            assert!(plain_json_answer(text.as_bytes()).is_none(), "{text}");
        }
    }

    /// What `Value` cannot read as a result, the fast path leaves to the general path
    /// (which refuses it too), at every depth around serde_json's limit as well.
    #[test]
    fn the_fast_path_takes_only_results_the_general_path_reads() {
        let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let mut results: Vec<Vec<u8>> = (100..140).map(|depth| deep(depth).into_bytes()).collect();
        results.extend(
            [
                r#""\ud800""#,
                r#""\udc00x""#,
                r#""\ud83d\ude00""#,
                r#"{"\ud800":1}"#,
                "1e400",
                "-1e400",
                "1e-400",
                "-0",
                "18446744073709551616",
                r#"[1,"a",{"b":[null,true]}]"#,
            ]
            .map(|text| text.as_bytes().to_vec()),
        );
        results.push(b"\"\xff\"".to_vec());
        results.push(b"{\"\xc3\":1}".to_vec());
        for result in results {
            for id_first in [false, true] {
                let message = if id_first {
                    [br#"{"jsonrpc":"2.0","id":7,"result":"#, &result[..], b"}"].concat()
                } else {
                    [
                        br#"{"jsonrpc":"2.0","result":"#,
                        &result[..],
                        br#","id":7}"#,
                    ]
                    .concat()
                };
                let text = String::from_utf8_lossy(&message);
                let general = serde_json::from_slice::<Incoming>(&message);
                match plain_json_answer(&message) {
                    Some((id, range)) => {
                        let general = general.unwrap_or_else(|e| panic!("{text}: {e}"));
                        assert_eq!(Some(Id::Number(id)), general.id, "{text}");
                        let fast = RawResult::new(message.clone(), range).to_value();
                        assert_eq!(Some(fast.unwrap()), general.result, "{text}");
                    }
                    None => assert!(general.is_err(), "left to the general path: {text}"),
                }
            }
        }
        // `-0` is a float to serde_json: not an id on either path.
        let minus_zero = br#"{"jsonrpc":"2.0","result":1,"id":-0}"#;
        assert!(serde_json::from_slice::<Incoming>(minus_zero).is_err());
        assert!(plain_json_answer(minus_zero).is_none());
    }

    #[test]
    fn ids_are_read_without_buffering() {
        let incoming: Incoming =
            serde_json::from_str(r#"{"jsonrpc":"2.0","result":null,"id":7}"#).unwrap();
        assert_eq!(incoming.id, Some(Id::Number(7)));
        assert_eq!(incoming.result, Some(Value::Null));
        for (text, id) in [
            (r#"{"id":"x","result":1}"#, Some(Id::String("x".into()))),
            (r#"{"id":null,"error":{"code":1,"message":"m"}}"#, None),
            (r#"{"method":"tick","params":{}}"#, None),
        ] {
            let incoming: Incoming = serde_json::from_str(text).unwrap();
            assert_eq!(incoming.id, id, "{text}");
        }
        assert!(serde_json::from_str::<Incoming>(r#"{"id":[1],"result":1}"#).is_err());
        // Escaped text (not borrowed from the input) and owned strings (from a `Value`).
        let escaped: Incoming = serde_json::from_str(r#"{"id":"a\"b","result":1}"#).unwrap();
        assert_eq!(escaped.id, Some(Id::String("a\"b".into())));
        let owned: Incoming =
            serde_json::from_value(serde_json::json!({"id": "x", "result": 1})).unwrap();
        assert_eq!(owned.id, Some(Id::String("x".into())));
        let packed =
            rmp_serde::to_vec_named(&serde_json::json!({"id": 9, "result": [1, 2]})).unwrap();
        let incoming: Incoming = rmp_serde::from_slice(&packed).unwrap();
        assert_eq!(incoming.id, Some(Id::Number(9)));
        assert!(!incoming.method);
    }

    /// A `method` member marks a request or notification, whatever its value and codec.
    #[test]
    fn a_method_member_is_seen_whatever_its_value() {
        for message in [
            serde_json::json!({"jsonrpc": "2.0", "method": "client_ping", "id": 7}),
            serde_json::json!({"jsonrpc": "2.0", "method": null, "id": 7, "result": 1}),
            serde_json::json!({"jsonrpc": "2.0", "method": {"x": [1]}, "id": 7}),
        ] {
            let from_json: Incoming = serde_json::from_value(message.clone()).unwrap();
            assert!(from_json.method, "{message}");
            let packed = rmp_serde::to_vec_named(&message).unwrap();
            let from_pack: Incoming = rmp_serde::from_slice(&packed).unwrap();
            assert!(from_pack.method, "{message}");
        }
    }
}
