//! Reading JSON-RPC 2.0 requests for the `rpc` server: a borrowed fast path for plain JSON
//! calls, and the general path for everything else (batches, notifications, invalid
//! requests, MessagePack), with the request checks of section 4.
//!
//! Nothing a client sends is expanded into a value tree beyond what it costs as bytes:
//! JSON is read as borrowed text ([`RawValue`]) with only the four request members looked
//! at, a batch keeps at most `--max-batch-size` elements, and MessagePack (which has no
//! lazy form) is first checked by [`crate::rpc::msgpack`] for how many values it holds.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::rpc::msgpack;
use crate::rpc::params::Params;
use crate::rpc::protocol::{
    Framing, INVALID_REQUEST, Output, PARSE_ERROR, Response, RpcFailure, write_response,
};

/// A valid request object.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// `None` for a notification (no `id` member): it is never answered.
    pub id: Option<Output>,
    /// The method name.
    pub method: String,
    /// The params.
    pub params: Params<'a>,
}

/// One request of a frame: a valid call, or the answer an invalid one gets.
pub type Item<'a> = Result<Call<'a>, Box<Response>>;

/// What a frame holds.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// One request.
    Single(Item<'a>),
    /// A batch within the limit, not empty.
    Batch(Vec<Item<'a>>),
    /// `[]`.
    EmptyBatch,
    /// A batch of more than `--max-batch-size` requests, which is not run.
    Oversized {
        /// How many elements the batch has.
        len: usize,
        /// Whom to answer: the id of each valid request that has one, in order, then one
        /// `null` standing for all the invalid elements (if any). Notifications have none.
        ids: Vec<Output>,
    },
    /// Not JSON (or MessagePack) this server reads: the error to answer with.
    Unreadable(RpcFailure),
}

/// Reads a frame's payload (anything but a plain call, which [`BorrowedCall`] takes).
pub fn parse(framing: Framing, payload: &[u8], max_batch: usize) -> Incoming<'_> {
    match framing {
        Framing::Json => parse_json(payload, max_batch),
        Framing::MessagePack => match msgpack::decode(payload) {
            Ok(Value::Array(items)) if items.is_empty() => Incoming::EmptyBatch,
            Ok(Value::Array(items)) if items.len() > max_batch => Incoming::Oversized {
                len: items.len(),
                ids: refused_ids(items.into_iter().map(check_value)),
            },
            Ok(Value::Array(items)) => {
                Incoming::Batch(items.into_iter().map(check_value).collect())
            }
            Ok(single) => Incoming::Single(check_value(single)),
            Err(failure) => Incoming::Unreadable(failure),
        },
    }
}

fn parse_json(payload: &[u8], max_batch: usize) -> Incoming<'_> {
    let unreadable = |error: serde_json::Error| {
        tracing::debug!(%error, "unparseable request");
        Incoming::Unreadable(RpcFailure::standard(PARSE_ERROR))
    };
    let mut reader = serde_json::Deserializer::from_slice(payload);
    let starts_a_batch = payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if !starts_a_batch {
        return match <&RawValue>::deserialize(&mut reader).and_then(|raw| {
            reader.end()?;
            Ok(raw)
        }) {
            Ok(raw) => Incoming::Single(check_json(raw)),
            Err(error) => unreadable(error),
        };
    }
    let batch = reader
        .deserialize_seq(BatchReader { max: max_batch })
        .and_then(|batch| {
            reader.end()?;
            Ok(batch)
        });
    match batch {
        Err(error) => unreadable(error),
        Ok(Elements::Kept(kept)) if kept.is_empty() => Incoming::EmptyBatch,
        Ok(Elements::Kept(kept)) => Incoming::Batch(kept.into_iter().map(check_json).collect()),
        Ok(Elements::Refused { len, ids }) => Incoming::Oversized { len, ids },
    }
}

/// Whom a batch that is not run answers (see [`Incoming::Oversized`]), gathered element
/// by element.
#[derive(Default)]
struct Refusal {
    ids: Vec<Output>,
    invalid: bool,
}

impl Refusal {
    fn add(&mut self, item: Item<'_>) {
        match item {
            Ok(call) => self.ids.extend(call.id),
            Err(_) => self.invalid = true,
        }
    }

    fn into_ids(mut self) -> Vec<Output> {
        if self.invalid {
            self.ids.push(Output::Value(Value::Null));
        }
        self.ids
    }
}

/// The ids to answer for a batch that is not run.
fn refused_ids<'a>(items: impl Iterator<Item = Item<'a>>) -> Vec<Output> {
    let mut refusal = Refusal::default();
    items.for_each(|item| refusal.add(item));
    refusal.into_ids()
}

/// The elements of a JSON batch: at most `max` of them, kept as borrowed text; or, for a
/// batch of more, only what its refusal needs.
enum Elements<'a> {
    Kept(Vec<&'a RawValue>),
    Refused { len: usize, ids: Vec<Output> },
}

/// Reads a JSON batch into [`Elements`].
struct BatchReader {
    max: usize,
}

impl<'de> de::Visitor<'de> for BatchReader {
    type Value = Elements<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch (an array)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        while kept.len() < self.max {
            match seq.next_element::<&RawValue>()? {
                Some(element) => kept.push(element),
                None => return Ok(Elements::Kept(kept)),
            }
        }
        let Some(first_over) = seq.next_element::<&RawValue>()? else {
            return Ok(Elements::Kept(kept));
        };
        // Over the limit: each element is checked as it is read, and only ids are kept.
        let mut len = kept.len() + 1;
        let mut refusal = Refusal::default();
        kept.into_iter()
            .chain([first_over])
            .for_each(|element| refusal.add(check_json(element)));
        while let Some(element) = seq.next_element::<&RawValue>()? {
            len += 1;
            refusal.add(check_json(element));
        }
        Ok(Elements::Refused {
            len,
            ids: refusal.into_ids(),
        })
    }
}

/// Whether `raw` (an id member) is one the specification allows: a string, a number or
/// `null`.
fn is_valid_id(raw: &RawValue) -> bool {
    matches!(
        raw.get().as_bytes().first(),
        Some(b'"' | b'-' | b'0'..=b'9' | b'n')
    )
}

/// The four members of a request object, as borrowed text; other members are skipped.
#[derive(Default)]
struct Members<'a> {
    jsonrpc: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
}

impl<'de> de::Visitor<'de> for Members<'de> {
    type Value = Self;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self, A::Error> {
        // The last of duplicate members wins, as in a parsed object.
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let slot = match &*key {
                "jsonrpc" => &mut self.jsonrpc,
                "method" => &mut self.method,
                "params" => &mut self.params,
                "id" => &mut self.id,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(self)
    }
}

/// Checks one JSON request (section 4). An invalid one gets an answer carrying its id
/// only when that id itself was valid.
pub fn check_json(raw: &RawValue) -> Item<'_> {
    let invalid_without_id = || {
        Box::new(Response::error_without_id(RpcFailure::standard(
            INVALID_REQUEST,
        )))
    };
    let mut reader = serde_json::Deserializer::from_str(raw.get());
    // Anything but an object (a string, a number, an array) is refused here.
    let Ok(members) = reader.deserialize_map(Members::default()) else {
        return Err(invalid_without_id());
    };
    if members.id.is_some_and(|id| !is_valid_id(id)) {
        return Err(invalid_without_id());
    }
    let id = members.id.map(|id| Output::Raw(id.to_owned()));
    let string =
        |raw: Option<&RawValue>| raw.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    let method = string(members.method);
    let params = match members.params {
        None => Some(Params::Absent),
        Some(raw) if matches!(raw.get().as_bytes().first(), Some(b'[' | b'{')) => {
            Some(Params::Json(raw))
        }
        Some(_) => None,
    };
    match (string(members.jsonrpc).as_deref(), method, params) {
        (Some("2.0"), Some(method), Some(params)) => Ok(Call { id, method, params }),
        _ => Err(Box::new(Response {
            id: id.unwrap_or(Output::Value(Value::Null)),
            outcome: Err(RpcFailure::standard(INVALID_REQUEST)),
        })),
    }
}

/// Checks one decoded (MessagePack) request, as [`check_json`] does.
pub fn check_value(value: Value) -> Item<'static> {
    let invalid_without_id = || {
        Box::new(Response::error_without_id(RpcFailure::standard(
            INVALID_REQUEST,
        )))
    };
    let Value::Object(mut object) = value else {
        return Err(invalid_without_id());
    };
    let id = object.remove("id");
    if !matches!(
        id,
        None | Some(Value::Null | Value::Number(_) | Value::String(_))
    ) {
        return Err(invalid_without_id());
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => Some(method),
        _ => None,
    };
    let params = match object.remove("params") {
        None => Some(Params::Absent),
        Some(params @ (Value::Array(_) | Value::Object(_))) => Some(Params::Value(params)),
        Some(_) => None,
    };
    let jsonrpc = object.get("jsonrpc").and_then(Value::as_str);
    let id = id.map(Output::Value);
    match (jsonrpc, method, params) {
        (Some("2.0"), Some(method), Some(params)) => Ok(Call { id, method, params }),
        _ => Err(Box::new(Response {
            id: id.unwrap_or(Output::Value(Value::Null)),
            outcome: Err(RpcFailure::standard(INVALID_REQUEST)),
        })),
    }
}

/// A well-formed JSON call, read without building a `Value` tree (the common case, and
/// the hot path of a benchmark). Anything unusual (escapes, duplicate or missing members,
/// a notification) fails to parse and takes the general path instead.
#[derive(Debug, Deserialize)]
pub struct BorrowedCall<'a> {
    jsonrpc: &'a str,
    /// The method name.
    pub method: &'a str,
    #[serde(default, borrow, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    id: &'a RawValue,
}

impl<'a> BorrowedCall<'a> {
    /// Parses `payload` if it is a plain, valid call; `None` sends it down the general path.
    pub fn parse(payload: &'a [u8]) -> Option<Self> {
        Self::checked(serde_json::from_str(std::str::from_utf8(payload).ok()?).ok()?)
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
        let params_are_valid = call
            .params
            .is_none_or(|raw| matches!(raw.get().as_bytes().first(), Some(b'[' | b'{')));
        (call.jsonrpc == "2.0" && is_valid_id(call.id) && params_are_valid).then_some(call)
    }

    /// The params, borrowed from the frame.
    pub fn params(&self) -> Params<'a> {
        self.params.map_or(Params::Absent, Params::Json)
    }

    /// The id as an owned value, for answers given later.
    pub fn owned_id(&self) -> Output {
        Output::Raw(self.id.to_owned())
    }

    /// Appends the answer text to `out`, its id copied from the request.
    pub fn answer_into(&self, outcome: &Result<Output, RpcFailure>, out: &mut Vec<u8>) {
        write_response(outcome, out, |out| {
            out.extend_from_slice(self.id.get().as_bytes());
        });
    }
}

/// Keeps a present `null` as `Some`, so `"params": null` is told apart from absent params
/// (and refused).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
