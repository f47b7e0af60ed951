//! The fault set of `chaos` mode and its JSON form (the control API's), with the limits the
//! command-line flags (`flags.rs`) share. Bad JSON is refused with a message that names the
//! field.

use serde::Serialize;
use serde_json::{Map, Value};

/// Longest latency, jitter or slicer pause, in milliseconds (one hour).
pub const MAX_DELAY_MS: u64 = 3_600_000;
/// Longest `reset_after_ms`, in milliseconds (one day).
pub const MAX_TIMER_MS: u64 = 86_400_000;
/// Highest bandwidth limit, in kilobits per second (100 Gbit/s).
pub const MAX_BANDWIDTH_KBPS: u64 = 100_000_000;
/// Largest slicer piece, in bytes.
pub const MAX_SLICE_BYTES: u64 = 1 << 20;

/// Which way bytes flow through a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// From the client to the upstream.
    Upstream,
    /// From the upstream to the client.
    Downstream,
}

/// Which ways the shaping faults (latency, jitter, bandwidth, slicer) apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Both ways, each on its own (50 ms of latency adds 100 ms to a round trip).
    #[default]
    Both,
    /// Client to upstream only.
    Upstream,
    /// Upstream to client only.
    Downstream,
}

impl Direction {
    /// Whether bytes flowing `way` are shaped.
    pub fn includes(self, way: Way) -> bool {
        match self {
            Direction::Both => true,
            Direction::Upstream => way == Way::Upstream,
            Direction::Downstream => way == Way::Downstream,
        }
    }
}

/// How a connection ends when one of its byte limits is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Reset both sockets (RST).
    Reset,
    /// Close both ways gracefully (FIN).
    Close,
}

/// Everything the proxy does to the connections it forwards. The default does nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// Delay added to every chunk of bytes, in the ways `direction` names.
    pub latency_ms: u64,
    /// Each chunk's delay varies by up to this much either side of `latency_ms` (never
    /// below zero, never reordering bytes).
    pub jitter_ms: u64,
    /// Which ways latency, jitter, bandwidth and the slicer apply to.
    pub direction: Direction,
    /// Bandwidth limit per connection and way, in kilobits (1000 bits) per second.
    pub bandwidth_kbps: Option<u64>,
    /// Write what is forwarded in pieces of at most this many bytes.
    pub slice_bytes: Option<u64>,
    /// Pause after each slicer piece.
    pub slice_delay_ms: u64,
    /// Reset a connection once this many bytes (both ways together) were forwarded on it.
    pub reset_after_bytes: Option<u64>,
    /// Reset a connection this long after it was accepted.
    pub reset_after_ms: Option<u64>,
    /// Close a connection gracefully once this many bytes (both ways together) were
    /// forwarded on it.
    pub close_after_bytes: Option<u64>,
    /// Forward nothing either way and keep the sockets open (a half-open connection);
    /// what was sent meanwhile is delivered once it is lifted.
    pub black_hole: bool,
    /// Reset new connections as soon as they are accepted.
    pub down: bool,
}

/// The names the JSON object may use, in the order they are documented.
const FIELDS: [&str; 11] = [
    "latency_ms",
    "jitter_ms",
    "direction",
    "bandwidth_kbps",
    "slice_bytes",
    "slice_delay_ms",
    "reset_after_bytes",
    "reset_after_ms",
    "close_after_bytes",
    "black_hole",
    "down",
];

impl Faults {
    /// The fault set a JSON object describes; fields left out are off.
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        Self::default().merged(body)
    }

    /// This fault set with the fields a JSON object gives replaced (`null` turns one off).
    pub fn merged(&self, body: &[u8]) -> Result<Self, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let Value::Object(object) = value else {
            return Err(r#"the body must be a JSON object, e.g. {"latency_ms":50}"#.into());
        };
        let mut faults = *self;
        faults.apply(&object)?;
        faults.check()?;
        Ok(faults)
    }

    /// Sets each field `object` names.
    fn apply(&mut self, object: &Map<String, Value>) -> Result<(), String> {
        for (field, value) in object {
            match field.as_str() {
                "latency_ms" => self.latency_ms = number(field, value, 0, MAX_DELAY_MS)?,
                "jitter_ms" => self.jitter_ms = number(field, value, 0, MAX_DELAY_MS)?,
                "direction" => self.direction = direction(value)?,
                "bandwidth_kbps" => {
                    self.bandwidth_kbps = optional(field, value, 1, MAX_BANDWIDTH_KBPS)?;
                }
                "slice_bytes" => self.slice_bytes = optional(field, value, 1, MAX_SLICE_BYTES)?,
                "slice_delay_ms" => self.slice_delay_ms = number(field, value, 0, MAX_DELAY_MS)?,
                "reset_after_bytes" => {
                    self.reset_after_bytes = optional(field, value, 0, u64::MAX)?
                }
                "reset_after_ms" => self.reset_after_ms = optional(field, value, 0, MAX_TIMER_MS)?,
                "close_after_bytes" => {
                    self.close_after_bytes = optional(field, value, 0, u64::MAX)?
                }
                "black_hole" => self.black_hole = flag(field, value)?,
                "down" => self.down = flag(field, value)?,
                _ => {
                    return Err(format!(
                        "unknown field `{field}`; the fields are {}",
                        FIELDS.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// Rules across fields.
    fn check(&self) -> Result<(), String> {
        if self.slice_delay_ms > 0 && self.slice_bytes.is_none() {
            return Err("slice_delay_ms: needs slice_bytes (the size of each piece)".into());
        }
        Ok(())
    }

    /// The byte count at which a connection is cut, and how; a reset wins a tie.
    pub fn byte_limit(&self) -> Option<(u64, Cut)> {
        match (self.reset_after_bytes, self.close_after_bytes) {
            (Some(reset), Some(close)) if close < reset => Some((close, Cut::Close)),
            (Some(reset), _) => Some((reset, Cut::Reset)),
            (None, Some(close)) => Some((close, Cut::Close)),
            (None, None) => None,
        }
    }

    /// The fault set as one line of JSON (for logs and the control API).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A whole number in `min..=max`; `null` is 0 (off).
fn number(field: &str, value: &Value, min: u64, max: u64) -> Result<u64, String> {
    if value.is_null() {
        return Ok(0);
    }
    value
        .as_u64()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{field}: expected a whole number from {min} to {max}, got {value}"))
}

/// Like [`number`], with `null` meaning not set.
fn optional(field: &str, value: &Value, min: u64, max: u64) -> Result<Option<u64>, String> {
    match value {
        Value::Null => Ok(None),
        _ => number(field, value, min, max).map(Some),
    }
}

/// `true` or `false`; `null` is false.
fn flag(field: &str, value: &Value) -> Result<bool, String> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(on) => Ok(*on),
        _ => Err(format!("{field}: expected true or false, got {value}")),
    }
}

/// `"both"`, `"upstream"` or `"downstream"`; `null` is both.
fn direction(value: &Value) -> Result<Direction, String> {
    match value.as_str() {
        _ if value.is_null() => Ok(Direction::Both),
        Some("both") => Ok(Direction::Both),
        Some("upstream") => Ok(Direction::Upstream),
        Some("downstream") => Ok(Direction::Downstream),
        _ => Err(format!(
            "direction: expected \"both\", \"upstream\" or \"downstream\", got {value}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_sets_the_fields_it_names_and_leaves_the_rest_off() {
        let faults = Faults::from_json(
            br#"{"latency_ms":50,"jitter_ms":10,"direction":"downstream","bandwidth_kbps":1000,
                 "slice_bytes":16,"slice_delay_ms":1,"reset_after_bytes":7,"reset_after_ms":9,
                 "close_after_bytes":8,"black_hole":true,"down":false}"#,
        )
        .unwrap();
        assert_eq!(faults.latency_ms, 50);
        assert_eq!(faults.jitter_ms, 10);
        assert_eq!(faults.direction, Direction::Downstream);
        assert_eq!(faults.bandwidth_kbps, Some(1000));
        assert_eq!((faults.slice_bytes, faults.slice_delay_ms), (Some(16), 1));
        assert_eq!(faults.reset_after_bytes, Some(7));
        assert_eq!(faults.reset_after_ms, Some(9));
        assert_eq!(faults.close_after_bytes, Some(8));
        assert!(faults.black_hole && !faults.down);
        assert_eq!(Faults::from_json(b"{}").unwrap(), Faults::default());
        // What is printed parses back to the same set.
        assert_eq!(
            Faults::from_json(faults.to_json().as_bytes()).unwrap(),
            faults
        );
    }

    #[test]
    fn merging_keeps_other_fields_and_null_turns_one_off() {
        let base = Faults::from_json(br#"{"latency_ms":50,"bandwidth_kbps":8}"#).unwrap();
        let merged = base.merged(br#"{"black_hole":true}"#).unwrap();
        assert_eq!((merged.latency_ms, merged.bandwidth_kbps), (50, Some(8)));
        assert!(merged.black_hole);
        let merged = merged.merged(br#"{"bandwidth_kbps":null}"#).unwrap();
        assert_eq!(merged.bandwidth_kbps, None);
    }

    #[test]
    fn bad_input_names_the_field() {
        let error = |body: &str| Faults::from_json(body.as_bytes()).unwrap_err();
        assert!(error(r#"{"latency_ms":"50"}"#).starts_with("latency_ms:"));
        assert!(error(r#"{"latency_ms":-1}"#).starts_with("latency_ms:"));
        assert!(error(r#"{"jitter_ms":1.5}"#).starts_with("jitter_ms:"));
        assert!(error(r#"{"latency_ms":3600001}"#).contains("3600000"));
        assert!(error(r#"{"bandwidth_kbps":0}"#).starts_with("bandwidth_kbps:"));
        assert!(error(r#"{"slice_bytes":0}"#).starts_with("slice_bytes:"));
        assert!(error(r#"{"slice_delay_ms":5}"#).starts_with("slice_delay_ms:"));
        assert!(error(r#"{"black_hole":1}"#).starts_with("black_hole:"));
        assert!(error(r#"{"direction":"sideways"}"#).starts_with("direction:"));
        assert!(error(r#"{"latncy_ms":5}"#).contains("`latncy_ms`"));
        assert!(error("[1]").contains("JSON object"));
        assert!(error("{").contains("not JSON"));
    }

    #[test]
    fn the_lower_byte_limit_cuts_and_a_reset_wins_a_tie() {
        let limit = |body: &str| Faults::from_json(body.as_bytes()).unwrap().byte_limit();
        assert_eq!(limit("{}"), None);
        assert_eq!(limit(r#"{"reset_after_bytes":5}"#), Some((5, Cut::Reset)));
        assert_eq!(limit(r#"{"close_after_bytes":5}"#), Some((5, Cut::Close)));
        assert_eq!(
            limit(r#"{"reset_after_bytes":5,"close_after_bytes":4}"#),
            Some((4, Cut::Close))
        );
        assert_eq!(
            limit(r#"{"reset_after_bytes":5,"close_after_bytes":5}"#),
            Some((5, Cut::Reset))
        );
    }

    #[test]
    fn directions_pick_the_ways_they_shape() {
        assert!(
            Direction::Both.includes(Way::Upstream) && Direction::Both.includes(Way::Downstream)
        );
        assert!(Direction::Upstream.includes(Way::Upstream));
        assert!(!Direction::Upstream.includes(Way::Downstream));
        assert!(!Direction::Downstream.includes(Way::Upstream));
    }
}
