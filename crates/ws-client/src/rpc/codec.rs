//! `Codec`: how JSON-RPC messages become WebSocket frames. `JsonCodec` uses text frames,
//! `MessagePackCodec` binary frames (rmp-serde, field names kept so both sides can read
//! the messages as plain maps).

use std::cell::RefCell;

use serde::{Serialize, de::DeserializeOwned};

use crate::error::Error;
use crate::message::{Message, MessageType};

/// Turns values into frames and frames back into values.
pub trait Codec: Send + Sync + std::fmt::Debug + 'static {
    /// Encodes `value` as one WebSocket message.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Message, Error>;
    /// Decodes one WebSocket message.
    fn decode<T: DeserializeOwned>(&self, message: &Message) -> Result<T, Error>;
    /// Whether an encoded message holds an array (a JSON-RPC batch) rather than an object.
    fn is_batch(&self, message: &Message) -> bool;
}

/// JSON in text frames: the JSON-RPC 2.0 default.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

/// Largest scratch buffer kept between encodings; a bigger one is let go after use.
const MAX_KEPT_SCRATCH: usize = 64 * 1024;

thread_local! {
    /// Where messages are serialized before being copied out at their exact size.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Serializes with `write` into a reused buffer and returns an exactly sized copy.
///
/// Why not serialize into a fresh `Vec`: its capacity would exceed its length, and turning
/// such a `Vec` into the transport's `Bytes` allocates a second time, so each request cost
/// two allocations (and the growth of a small `Vec` on the way). One exact allocation plus
/// a copy of a few dozen bytes is cheaper.
pub(crate) fn encode_exact(
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
) -> Result<Vec<u8>, Error> {
    SCRATCH.with(|scratch| {
        // A re-entrant encode (a `Serialize` impl that encodes) gets its own buffer.
        let Ok(mut scratch) = scratch.try_borrow_mut() else {
            let mut own = Vec::new();
            write(&mut own).map_err(Error::Codec)?;
            return Ok(own);
        };
        scratch.clear();
        let written = write(&mut scratch).map_err(Error::Codec);
        let data = written.map(|()| scratch.as_slice().to_vec());
        if scratch.capacity() > MAX_KEPT_SCRATCH {
            *scratch = Vec::new();
        }
        data
    })
}

impl Codec for JsonCodec {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Message, Error> {
        let data =
            encode_exact(|buffer| serde_json::to_writer(buffer, value).map_err(|e| e.to_string()))?;
        Ok(Message {
            data,
            message_type: MessageType::Text,
        })
    }

    fn decode<T: DeserializeOwned>(&self, message: &Message) -> Result<T, Error> {
        serde_json::from_slice(&message.data)
            .map_err(|e| Error::Codec(format!("invalid JSON: {e}")))
    }

    fn is_batch(&self, message: &Message) -> bool {
        message.data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
    }
}

/// Deepest nesting of arrays and maps a MessagePack message may have, as serde_json
/// allows for JSON (the same count: 127 levels pass, the 128th fails).
///
/// rmp-serde's own default (1024) is too deep: each level is a few stack frames of
/// recursive decoding, and a 1 KB message nested 1000 deep overflows a Tokio worker's
/// 2 MiB stack in a debug build, aborting the process. A deeper message is a codec error.
pub const MAX_MESSAGE_PACK_DEPTH: usize = 128;

/// MessagePack in binary frames: smaller and faster to parse than JSON. Nesting is limited
/// to [`MAX_MESSAGE_PACK_DEPTH`], as JSON's is.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePackCodec;

impl Codec for MessagePackCodec {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Message, Error> {
        let data = encode_exact(|buffer| {
            rmp_serde::encode::write_named(buffer, value).map_err(|e| e.to_string())
        })?;
        Ok(Message {
            data,
            message_type: MessageType::Binary,
        })
    }

    fn decode<T: DeserializeOwned>(&self, message: &Message) -> Result<T, Error> {
        let mut deserializer = rmp_serde::Deserializer::from_read_ref(&message.data);
        deserializer.set_max_depth(MAX_MESSAGE_PACK_DEPTH);
        T::deserialize(&mut deserializer)
            .map_err(|e| Error::Codec(format!("invalid MessagePack: {e}")))
    }

    fn is_batch(&self, message: &Message) -> bool {
        // fixarray (0x90-0x9f), array 16 (0xdc) and array 32 (0xdd).
        matches!(message.data.first(), Some(0x90..=0x9f | 0xdc | 0xdd))
    }
}

/// The codec an [`RpcClient`](crate::rpc::RpcClient) uses, chosen in its configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RpcCodec {
    /// [`JsonCodec`] (default).
    #[default]
    Json,
    /// [`MessagePackCodec`].
    MessagePack,
}

impl Codec for RpcCodec {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Message, Error> {
        match self {
            RpcCodec::Json => JsonCodec.encode(value),
            RpcCodec::MessagePack => MessagePackCodec.encode(value),
        }
    }

    fn decode<T: DeserializeOwned>(&self, message: &Message) -> Result<T, Error> {
        match self {
            RpcCodec::Json => JsonCodec.decode(message),
            RpcCodec::MessagePack => MessagePackCodec.decode(message),
        }
    }

    fn is_batch(&self, message: &Message) -> bool {
        match self {
            RpcCodec::Json => JsonCodec.is_batch(message),
            RpcCodec::MessagePack => MessagePackCodec.is_batch(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{Id, RpcRequest, RpcResponse};
    use serde_json::json;

    fn round_trip(codec: RpcCodec) {
        let request = RpcRequest::call("add", Some(json!({"a": 5, "b": 3})), Id::Number(7));
        let message = codec.encode(&request).unwrap();
        assert!(!codec.is_batch(&message));
        let back: RpcRequest = codec.decode(&message).unwrap();
        assert_eq!(back, request);
        let batch = codec.encode(&[&request, &request]).unwrap();
        assert!(codec.is_batch(&batch));
        let response: RpcResponse = codec
            .decode(
                &codec
                    .encode(&json!({"jsonrpc": "2.0", "result": null, "id": "x"}))
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(response.result, Some(serde_json::Value::Null));
        assert_eq!(response.id, Id::String("x".into()));
    }

    #[test]
    fn json_round_trips() {
        round_trip(RpcCodec::Json);
        assert_eq!(
            RpcCodec::Json.encode(&json!(1)).unwrap().message_type,
            MessageType::Text
        );
    }

    #[test]
    fn message_pack_round_trips() {
        round_trip(RpcCodec::MessagePack);
        assert_eq!(
            RpcCodec::MessagePack
                .encode(&json!(1))
                .unwrap()
                .message_type,
            MessageType::Binary
        );
    }

    /// `{"jsonrpc": "2.0", "result": [[[...]]], "id": 1}` with `depth` nested arrays.
    fn nested_answer(depth: usize) -> Message {
        let mut data = rmp_serde::to_vec_named(&json!({"jsonrpc": "2.0", "id": 1})).unwrap();
        data[0] += 1; // one more member in the fixmap
        rmp_serde::encode::write(&mut data, "result").unwrap();
        data.extend(std::iter::repeat_n(0x91, depth)); // fixarray of one element
        data.push(0xc0); // nil
        Message::binary(data)
    }

    /// A deeply nested answer is a codec error, not a stack overflow: decoded on a Tokio
    /// worker thread (2 MiB of stack), as the client's reader does, in a debug build too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn deep_message_pack_is_a_codec_error_on_a_worker_thread() {
        let decoded = tokio::spawn(async {
            let deep = nested_answer(1000);
            (
                MessagePackCodec.decode::<RpcResponse>(&deep).err(),
                MessagePackCodec
                    .decode::<crate::rpc::incoming::Incoming>(&deep)
                    .err(),
            )
        })
        .await
        .unwrap();
        for error in [decoded.0, decoded.1] {
            assert!(
                matches!(&error, Some(Error::Codec(message)) if message.contains("depth")),
                "expected a codec error about depth, got {error:?}"
            );
        }
        // As deep as JSON allows is fine.
        let response: RpcResponse = MessagePackCodec.decode(&nested_answer(100)).unwrap();
        assert_eq!(response.id, Id::Number(1));
    }

    #[test]
    fn garbage_is_a_codec_error() {
        let garbage = Message::text("{not json");
        assert!(matches!(
            JsonCodec.decode::<RpcResponse>(&garbage),
            Err(Error::Codec(_))
        ));
    }

    /// A value whose `Serialize` encodes another value with the same codec (for example to
    /// embed it as a string): the inner encode gets a buffer of its own, and neither
    /// message is corrupted.
    #[test]
    fn an_encode_inside_an_encode_gets_its_own_buffer() {
        struct Embedded;
        impl Serialize for Embedded {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let inner = JsonCodec
                    .encode(&json!({"inner": [1, 2, 3]}))
                    .map_err(serde::ser::Error::custom)?;
                serializer.serialize_str(inner.as_text().map_err(serde::ser::Error::custom)?)
            }
        }
        let outer = JsonCodec
            .encode(&json!({"before": "x"}))
            .and_then(|_| JsonCodec.encode(&[Embedded, Embedded]))
            .unwrap();
        let back: Vec<String> = JsonCodec.decode(&outer).unwrap();
        assert_eq!(back, vec![r#"{"inner":[1,2,3]}"#; 2]);
    }

    /// A large message is returned at its exact size, and the scratch buffer it needed is
    /// not kept for the rest of the thread's life.
    #[test]
    fn a_large_encode_does_not_keep_a_large_scratch_buffer() {
        let big = "x".repeat(4 * MAX_KEPT_SCRATCH);
        let message = JsonCodec.encode(&big).unwrap();
        assert_eq!(message.data.len(), big.len() + 2);
        assert_eq!(message.data.capacity(), message.data.len());
        let kept = SCRATCH.with(|scratch| scratch.borrow().capacity());
        assert!(kept <= MAX_KEPT_SCRATCH, "{kept} bytes kept");
        let small = JsonCodec.encode(&json!([1])).unwrap();
        assert_eq!(small.data, b"[1]");
    }
}
