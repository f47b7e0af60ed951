//! Fuzz target: `ws_client::wire::Inbound` reading arbitrary bytes in both roles, in memory
//! (no sockets, so far more runs per second than `client_frames`). It must never panic,
//! never yield a message over its limit, and always end: with an error or the end of input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_client::MessageType;
use ws_client::wire::{Inbound, ReadLimits, Role};

/// Small limits, so that the fuzzer reaches them.
const LIMITS: ReadLimits = ReadLimits {
    message: 4096,
    frame: 1024,
    read_size: 256,
};

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    for role in [Role::Client, Role::Server] {
        let mut inbound = Inbound::new(data, Default::default(), LIMITS, role);
        runtime.block_on(async {
            // Each message consumes at least two bytes, so this bound is never reached by
            // a reader that makes progress.
            for _ in 0..=data.len() {
                match inbound.next().await {
                    Ok(Some(message)) => {
                        assert!(message.data.len() <= LIMITS.message, "message over the limit");
                        if message.message_type == MessageType::Text {
                            assert!(std::str::from_utf8(&message.data).is_ok(), "text not UTF-8");
                        }
                    }
                    Ok(None) | Err(_) => return,
                }
            }
            panic!("the reader made no progress");
        });
    }
});
