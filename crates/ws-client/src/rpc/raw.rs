//! `RawResult`: the `result` of an answer read by the fast path, left as the JSON text it
//! arrived as (the received message and where the result lies in it), so that a caller who
//! asked for a type decodes it straight into that type, with no `serde_json::Value` between.

use std::ops::Range;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::Error;

/// The JSON text of one answer's `result`: checked to be a value that `serde_json::Value`
/// would read where it stands in its message (see [`Checked`]), not yet decoded. Holds the
/// whole received message (moved, not copied).
pub(crate) struct RawResult {
    message: Vec<u8>,
    result: Range<usize>,
}

impl std::fmt::Debug for RawResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RawResult")
            .field(&String::from_utf8_lossy(self.text()))
            .finish()
    }
}

impl RawResult {
    /// The result at `result` in `message`; `result` must lie within it.
    pub(crate) fn new(message: Vec<u8>, result: Range<usize>) -> Self {
        debug_assert!(result.end <= message.len() && result.start <= result.end);
        Self { message, result }
    }

    /// The result's JSON text.
    fn text(&self) -> &[u8] {
        self.message.get(self.result.clone()).unwrap_or_default()
    }

    /// Decodes the result as `T`. Fails with [`Error::Codec`] naming `method` if it is not
    /// a `T` (or is nested deeper than serde_json's limit of 128 levels).
    pub(crate) fn decode<T: DeserializeOwned>(&self, method: &str) -> Result<T, Error> {
        serde_json::from_slice(self.text()).map_err(|e| not_a_result(method, &e))
    }

    /// The result as a `Value`.
    pub(crate) fn to_value(&self) -> Result<Value, Error> {
        serde_json::from_slice(self.text()).map_err(|e| Error::Codec(format!("result: {e}")))
    }
}

/// The error for a result of `method` that is not what its caller asked for.
pub(crate) fn not_a_result(method: &str, error: &serde_json::Error) -> Error {
    Error::Codec(format!("result of {method:?}: {error}"))
}

/// Most levels of arrays and objects a `result` may nest: the general path reads it as a
/// `Value` inside the message's own object, one level below serde_json's limit of 128.
const RESULT_DEPTH: usize = 126;

/// A JSON value checked exactly as reading it into a `Value` as an answer's `result` would
/// check it, without building it: every string decoded (escapes, surrogate pairs, UTF-8),
/// every number parsed (one out of range fails), nesting held to the general path's limit.
///
/// Skipping with `IgnoredAny` would not do: serde_json's skip checks the grammar only (a
/// lone surrogate escape, `1e400` or invalid UTF-8 in a binary frame pass) and has no depth
/// limit (a 16 MB `[[[...` is scanned to its end), so the fast path would take answers the
/// general path refuses, and the same answer would read differently with a space in it.
pub(crate) struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Check(RESULT_DEPTH)
            .deserialize(deserializer)
            .map(|()| Checked)
    }
}

/// Checks one value with this many more levels of nesting allowed.
#[derive(Clone, Copy)]
struct Check(usize);

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Check {
    /// The check for what lies one level further in, or the error for nesting too deep.
    fn inner<E: de::Error>(self) -> Result<Self, E> {
        match self.0.checked_sub(1) {
            Some(left) => Ok(Check(left)),
            None => Err(E::custom("recursion limit exceeded")),
        }
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}
