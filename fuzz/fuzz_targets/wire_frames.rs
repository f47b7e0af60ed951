//! Fuzz target: `ws_client::wire::Inbound` reading arbitrary bytes in both roles, in memory
//! (no sockets, so far more runs per second than `client_frames`), without permessage-deflate
//! and with it (context kept, and not). The first input byte picks the limits, from small
//! ones the fuzzer reaches to the extremes (zero and "no limit", `usize::MAX`). It must never
//! panic, never yield a message over its limit (inflated ones included), and always end: with
//! an error or the end of input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_client::wire::{DeflateParams, Inbound, ReadLimits, Role, accept_deflate};
use ws_client::{DeflateConfig, MessageType};

/// The sizes a limit is picked from: small ones, so that the fuzzer reaches them, and the
/// extremes.
const SIZES: [usize; 8] = [
    0,
    1,
    125,
    1024,
    4096,
    1 << 20,
    isize::MAX as usize,
    usize::MAX,
];
/// The read sizes picked from: below the floor, ordinary, and absurd.
const READ_SIZES: [usize; 4] = [0, 256, 4096, usize::MAX];

/// The limits `selector` picks: three bits for the message limit, three for the frame
/// limit, two for the read size.
fn limits(selector: u8) -> ReadLimits {
    let selector = usize::from(selector);
    ReadLimits {
        message: SIZES[selector & 7],
        frame: SIZES[(selector >> 3) & 7],
        read_size: READ_SIZES[selector >> 6],
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let limits = limits(selector);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let agreed = |offer: &str| -> Option<DeflateParams> {
        Some(accept_deflate(&DeflateConfig::default(), [offer]).expect("accepted"))
    };
    let deflate = [
        None,
        agreed("permessage-deflate"),
        agreed("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ];
    for role in [Role::Client, Role::Server] {
        for params in &deflate {
            let mut inbound = Inbound::new(data, Default::default(), limits, role);
            if let Some(params) = params {
                inbound = inbound.with_deflate(params);
            }
            read_all(&runtime, inbound, limits, data.len());
        }
    }
});

/// Reads until the end of `len` input bytes or an error.
fn read_all(
    runtime: &tokio::runtime::Runtime,
    mut inbound: Inbound<&[u8]>,
    limits: ReadLimits,
    len: usize,
) {
    runtime.block_on(async {
        // Each message consumes at least two bytes, so this bound is never reached by a
        // reader that makes progress.
        for _ in 0..=len {
            match inbound.next().await {
                Ok(Some(message)) => {
                    assert!(
                        message.data.len() <= limits.message,
                        "message over the limit"
                    );
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
