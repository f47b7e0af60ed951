//! Fuzz target: JSON-RPC message decoding on both sides — the client's codecs (JSON and
//! MessagePack answers and batches) and the server's request checks and fast path. None may
//! panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use test_servers::rpc::params::Params;
use test_servers::rpc::protocol::{Framing, Output};
use test_servers::rpc::request::{self, BorrowedCall, Incoming};
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
    if let Some(call) = BorrowedCall::parse(data) {
        read_params(call.params());
        call.answer_into(&Ok(Output::Value(serde_json::Value::Null)), &mut Vec::new());
    }
    for framing in [Framing::Json, Framing::MessagePack] {
        let items = match request::parse(framing, data, 4) {
            Incoming::Single(item) => vec![item],
            Incoming::Batch(items) => items,
            _ => Vec::new(),
        };
        for call in items.into_iter().flatten() {
            read_params(call.params);
        }
    }
});

/// Reads params the ways the methods do.
fn read_params(params: Params<'_>) {
    let _ = params.member::<u64>("ms", 0);
    let _ = params.member_output("data", 2);
    let _ = params.fold_numbers(0.into(), |a, _| Ok(a.clone()), || {
        test_servers::rpc::protocol::RpcFailure::standard(-32602)
    });
    let _ = params.into_text();
}
