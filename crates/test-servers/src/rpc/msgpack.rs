//! Decoding MessagePack requests into a value tree, within bounds: MessagePack has no
//! lazy form like JSON's `RawValue`, and a tree costs far more than the bytes it came from
//! (a one-byte integer becomes a 32-byte `Value`, 16 MiB of them half a GiB). So the bytes
//! are first walked (without recursion) to count the values they hold, and a message with
//! more than [`MAX_VALUES`] is refused before anything is built.
//!
//! Nesting is limited to [`MAX_DEPTH`] levels, as serde_json limits JSON: rmp-serde's own
//! default (1,024) lets a 1 KB message overflow a 2 MiB worker stack in a debug build,
//! which aborts the whole server.

use serde::Deserialize;
use serde_json::Value;

use crate::rpc::protocol::{PARSE_ERROR, RpcFailure};

/// Most values (scalars, arrays, maps, keys) one MessagePack request may hold: a tree of
/// this many values takes some tens of MiB at most. Batches are at most
/// `--max-batch-size` requests, so only a huge `echo` or `sleep` payload comes near.
pub const MAX_VALUES: u64 = 1 << 18;

/// Deepest nesting of arrays and maps decoded: serde_json's limit for JSON.
pub const MAX_DEPTH: usize = 128;

/// Decodes a MessagePack request, or says why it is refused (as a parse error).
pub fn decode(payload: &[u8]) -> Result<Value, RpcFailure> {
    if let Err(why) = count_values(payload) {
        tracing::debug!(%why, "MessagePack request refused");
        return Err(RpcFailure::with_hint(PARSE_ERROR, why));
    }
    let mut reader = rmp_serde::Deserializer::from_read_ref(payload);
    reader.set_max_depth(MAX_DEPTH);
    Value::deserialize(&mut reader).map_err(|error| {
        tracing::debug!(%error, "unparseable MessagePack request");
        match error {
            rmp_serde::decode::Error::DepthLimitExceeded => RpcFailure::with_hint(
                PARSE_ERROR,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ),
            _ => RpcFailure::standard(PARSE_ERROR),
        }
    })
}

/// Walks the first MessagePack value in `bytes` and counts what it holds; fails when that
/// is more than [`MAX_VALUES`] or the bytes end too soon.
fn count_values(bytes: &[u8]) -> Result<u64, String> {
    let too_short = || String::from("the MessagePack message ends too soon");
    let mut at = 0usize;
    let mut read = |n: usize| -> Result<&[u8], String> {
        let end = at.checked_add(n).filter(|&end| end <= bytes.len());
        let end = end.ok_or_else(too_short)?;
        let taken = &bytes[at..end];
        at = end;
        Ok(taken)
    };
    let big_endian = |b: &[u8]| b.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
    // Values still to read: the one message, then whatever its arrays and maps announce.
    let mut pending: u64 = 1;
    let mut values: u64 = 0;
    while pending > 0 {
        pending -= 1;
        values += 1;
        if values > MAX_VALUES {
            return Err(format!(
                "more than {MAX_VALUES} values in one MessagePack message"
            ));
        }
        let marker = read(1)?[0];
        // (bytes of a length field, bytes after the length, what the length counts)
        let (length_bytes, extra, counts) = match marker {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => (0, 0, Counts::Nothing),
            0x80..=0x8f => {
                pending += 2 * u64::from(marker & 0x0f);
                continue;
            }
            0x90..=0x9f => {
                pending += u64::from(marker & 0x0f);
                continue;
            }
            0xa0..=0xbf => {
                read(usize::from(marker & 0x1f))?;
                continue;
            }
            0xc4 | 0xd9 => (1, 0, Counts::Bytes),
            0xc5 | 0xda => (2, 0, Counts::Bytes),
            0xc6 | 0xdb => (4, 0, Counts::Bytes),
            0xc7 => (1, 1, Counts::Bytes),
            0xc8 => (2, 1, Counts::Bytes),
            0xc9 => (4, 1, Counts::Bytes),
            0xca | 0xce | 0xd2 => (0, 4, Counts::Nothing),
            0xcb | 0xcf | 0xd3 => (0, 8, Counts::Nothing),
            0xcc | 0xd0 => (0, 1, Counts::Nothing),
            0xcd | 0xd1 => (0, 2, Counts::Nothing),
            0xd4 => (0, 2, Counts::Nothing),
            0xd5 => (0, 3, Counts::Nothing),
            0xd6 => (0, 5, Counts::Nothing),
            0xd7 => (0, 9, Counts::Nothing),
            0xd8 => (0, 17, Counts::Nothing),
            0xdc => (2, 0, Counts::Elements(1)),
            0xdd => (4, 0, Counts::Elements(1)),
            0xde => (2, 0, Counts::Elements(2)),
            0xdf => (4, 0, Counts::Elements(2)),
            0xc1 => return Err(String::from("0xc1 is not a MessagePack marker")),
        };
        let length = big_endian(read(length_bytes)?);
        read(extra)?;
        match counts {
            Counts::Nothing => {}
            Counts::Bytes => {
                read(usize::try_from(length).map_err(|_| too_short())?)?;
            }
            // At most 2^33 more: no overflow, and the next reads fail if they are not there.
            Counts::Elements(per_entry) => pending += per_entry * length,
        }
    }
    Ok(values)
}

/// What the length field of a marker counts.
enum Counts {
    /// There is none.
    Nothing,
    /// Bytes of a string, binary or extension.
    Bytes,
    /// Entries of an array (1 value each) or a map (2).
    Elements(u64),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_are_counted_as_encoded() {
        let request = json!({"jsonrpc": "2.0", "method": "echo", "params": [1, -2, 3.5, "x", null, true, {"k": [300, 70000, 5000000000u64]}], "id": 1});
        let bytes = rmp_serde::to_vec_named(&request).unwrap();
        // 1 map + 4 keys + 3 scalars + 1 array + 6 scalars + 1 map + 1 key + 1 array + 3
        assert_eq!(count_values(&bytes), Ok(21));
        assert_eq!(decode(&bytes).unwrap(), request);
        assert!(count_values(&bytes[..bytes.len() - 1]).is_err());
        assert!(count_values(&[0xc1]).is_err());
        assert!(count_values(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn nesting_is_limited_as_in_json() {
        let nested = |depth: usize| {
            let mut bytes = vec![0x91; depth];
            bytes.push(0x01);
            bytes
        };
        assert!(decode(&nested(MAX_DEPTH - 1)).is_ok());
        let failure = decode(&nested(MAX_DEPTH)).unwrap_err();
        assert_eq!(failure.code, PARSE_ERROR);
        assert!(decode(&nested(100_000)).is_err());
    }

    #[test]
    fn too_many_values_are_refused_before_decoding() {
        let fits = rmp_serde::to_vec(&vec![1u8; MAX_VALUES as usize - 1]).unwrap();
        assert!(decode(&fits).is_ok());
        let over = rmp_serde::to_vec(&vec![1u8; MAX_VALUES as usize]).unwrap();
        let failure = decode(&over).unwrap_err();
        assert_eq!(failure.code, PARSE_ERROR);
        assert!(failure.data.is_some());
    }
}
