//! `RawResult`: the `result` of an answer read by the fast path, left as the JSON text it
//! arrived as (the received message and where the result lies in it), so that a caller who
//! asked for a type decodes it straight into that type, with no `serde_json::Value` between.

use std::ops::Range;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;

/// The JSON text of one answer's `result`: checked to be one well-formed JSON value, not
/// yet decoded. Holds the whole received message (moved, not copied).
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
        serde_json::from_slice(self.text())
            .map_err(|e| Error::Codec(format!("result of {method:?}: {e}")))
    }

    /// The result as a `Value`.
    pub(crate) fn to_value(&self) -> Result<Value, Error> {
        serde_json::from_slice(self.text()).map_err(|e| Error::Codec(format!("result: {e}")))
    }
}
