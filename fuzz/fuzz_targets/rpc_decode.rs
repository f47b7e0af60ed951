//! Fuzz target: JSON-RPC message decoding on both sides — the client's codecs (JSON and
//! MessagePack answers and batches) and the server's request checks and fast path. None may
//! panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use test_servers::rpc::protocol::{BorrowedCall, Framing, check_request};
use ws_client::rpc::{Codec, JsonCodec, MessagePackCodec, RpcResponse};
use ws_client::{Message, MessageType};

fuzz_target!(|data: &[u8]| {
    for (codec_is_json, message_type) in [(true, MessageType::Text), (false, MessageType::Binary)] {
        let message = Message {
            data: data.to_vec(),
            message_type,
        };
        if codec_is_json {
            let _ = JsonCodec.decode::<RpcResponse>(&message);
            let _ = JsonCodec.decode::<Vec<RpcResponse>>(&message);
            let _ = JsonCodec.is_batch(&message);
        } else {
            let _ = MessagePackCodec.decode::<RpcResponse>(&message);
            let _ = MessagePackCodec.decode::<Vec<RpcResponse>>(&message);
            let _ = MessagePackCodec.is_batch(&message);
        }
    }
    if let Some(mut call) = BorrowedCall::parse(data) {
        let _ = call.take_params();
        let _ = call.answer(&Ok(serde_json::Value::Null));
    }
    for framing in [Framing::Json, Framing::MessagePack] {
        if let Ok(value) = framing.decode(data) {
            let _ = check_request(value);
        }
    }
});
