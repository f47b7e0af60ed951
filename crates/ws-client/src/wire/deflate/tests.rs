//! Tests of the codec on its own: round trips at every window size with and without
//! context takeover, the window in effect, the threshold, a deflate bomb, the exact
//! limit, corrupt data and final blocks.

use std::time::{Duration, Instant};

use super::*;

/// JSON-like text, `size` bytes, different for each `seed`.
pub(crate) fn json(size: usize, seed: usize) -> Vec<u8> {
    let mut text = String::from("[");
    let mut i = seed;
    while text.len() < size {
        text.push_str(&format!(
            "{{\"id\":{i},\"name\":\"user {i}\",\"email\":\"user{i}@example.com\",\"score\":{}}},",
            i * 7919 % 1000
        ));
        i += 1;
    }
    text.truncate(size);
    text.into_bytes()
}

fn deflater(window_bits: u8, resets: bool, threshold: usize) -> Deflater {
    let config = DeflateConfig {
        threshold,
        ..DeflateConfig::default()
    };
    Deflater::new(&config, window_bits, resets)
}

/// Inflates one message's compressed bytes in `chunk`-byte pieces, as `Inbound` does.
fn inflate(
    inflater: &mut Inflater,
    compressed: &[u8],
    chunk: usize,
    limit: usize,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for piece in compressed.chunks(chunk.max(1)) {
        inflater.inflate(piece, &mut out, limit)?;
    }
    inflater.finish(&mut out, limit)?;
    Ok(out)
}

#[test]
fn messages_round_trip_at_every_window_with_and_without_context_takeover() {
    let sizes = [64, 100, 1000, 5000, 40_000, 131_072];
    for window_bits in 9..=15 {
        for resets in [false, true] {
            let mut sender = deflater(window_bits, resets, 0);
            let mut receiver = Inflater::new(resets);
            for (seed, size) in sizes.iter().enumerate() {
                let payload = json(*size, seed * 10);
                let label = format!("{window_bits} bits, resets {resets}, {size} bytes");
                assert!(sender.compress(&payload), "{label}: not compressed");
                if *size >= 1000 {
                    assert!(sender.out.len() < payload.len() / 2, "{label}: poor ratio");
                }
                let compressed = sender.out.clone();
                let read = inflate(&mut receiver, &compressed, 1000, 1 << 20).unwrap();
                assert_eq!(read, payload, "{label}");
            }
        }
    }
    // The window is the one asked for: a repeat 600 bytes back is found with 10 bits or
    // more (zlib reaches back the window less 262 bytes), not with 9. (zlib-rs's inflater
    // keeps 15 bits whatever it is told, so it cannot show a sender that overreaches.)
    let far = noise(600).repeat(60);
    for window_bits in 9..=15 {
        let mut sender = deflater(window_bits, true, 0);
        let compressed = sender.compress(&far) && sender.out.len() < far.len() / 2;
        assert_eq!(compressed, window_bits >= 10, "{window_bits} bits");
    }
}

#[test]
fn context_takeover_shrinks_a_repeated_message_and_its_absence_does_not() {
    let payload = json(2000, 1);
    let sizes = |resets| {
        let mut sender = deflater(15, resets, 0);
        let mut receiver = Inflater::new(resets);
        let mut sizes = Vec::new();
        for _ in 0..2 {
            assert!(sender.compress(&payload));
            sizes.push(sender.out.len());
            let read = inflate(&mut receiver, &sender.out.clone(), 64, 1 << 20).unwrap();
            assert_eq!(read, payload);
        }
        sizes
    };
    let kept = sizes(false);
    assert!(kept[1] * 10 < kept[0], "{kept:?}");
    let reset = sizes(true);
    assert_eq!(reset[0], reset[1], "each message on its own");
    // An inflater that drops its state after each message reads messages sent that way.
    let mut receiver = Inflater::new(true);
    assert!(receiver.state.is_none());
    let mut sender = deflater(15, true, 0);
    assert!(sender.compress(&payload));
    inflate(&mut receiver, &sender.out.clone(), 100, 1 << 20).unwrap();
    assert!(receiver.state.is_none(), "freed after the message");
}

#[test]
fn small_messages_tiny_windows_and_incompressible_data_go_uncompressed() {
    let mut sender = deflater(15, false, 64);
    assert!(!sender.compress(&json(63, 0)));
    assert!(sender.compress(&json(64, 0)));
    assert!(
        !deflater(8, false, 0).compress(&json(1000, 0)),
        "window of 8 bits"
    );
    let noise = noise(4096);
    assert!(
        !deflater(15, true, 0).compress(&noise),
        "no smaller, no takeover"
    );
    // With takeover the compressor has taken the message in: it must go compressed.
    assert!(deflater(15, false, 0).compress(&noise));
}

/// `len` bytes of xorshift noise: incompressible.
pub(crate) fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// 1 GiB of zeros in about 1 MiB: a first megabyte, then the same 1036 bytes 1023 times
/// (a compressor in its steady state on zeros writes the same bytes for each megabyte).
pub(crate) fn bomb() -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut compressor = Compress::new_with_window_bits(Compression::new(9), false, 15);
    let mut chunks = Vec::new();
    for _ in 0..3 {
        let mut out = Vec::new();
        assert!(run(&mut compressor, &zeros, &mut out));
        // Only the message's last tail is left for the receiver to put back.
        out.extend_from_slice(&TAIL);
        chunks.push(out);
    }
    assert_eq!(chunks[1], chunks[2], "the steady state repeats");
    let mut bomb = chunks[0].clone();
    for _ in 0..1023 {
        bomb.extend_from_slice(&chunks[1]);
    }
    bomb
}

#[test]
fn a_deflate_bomb_stops_at_the_limit_in_bounded_time_and_memory() {
    let bomb = bomb();
    assert!(bomb.len() < (11 << 20) / 10, "{} bytes", bomb.len());
    let limit = 16 << 20;
    let started = Instant::now();
    let mut inflater = Inflater::new(false);
    let mut out = Vec::new();
    let mut fed = 0;
    let error = bomb
        .chunks(4096)
        .find_map(|piece| {
            fed += piece.len();
            inflater.inflate(piece, &mut out, limit).err()
        })
        .expect("refused");
    assert!(
        matches!(error, Error::MessageTooLarge { size, limit: l } if size == limit + 1 && l == limit),
        "{error}"
    );
    assert!(out.capacity() <= limit + 1, "{} bytes held", out.capacity());
    assert!(fed < 32 << 10, "stopped after {fed} compressed bytes");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_message_of_exactly_the_limit_passes_and_one_byte_more_fails() {
    let limit = 10_000;
    for (size, fits) in [(limit, true), (limit + 1, false)] {
        let payload = json(size, 3);
        let mut sender = deflater(15, false, 0);
        assert!(sender.compress(&payload));
        let result = inflate(&mut Inflater::new(false), &sender.out.clone(), 7, limit);
        match result {
            Ok(read) => assert!(fits && read == payload, "{size}"),
            Err(Error::MessageTooLarge { .. }) => assert!(!fits, "{size}"),
            Err(other) => panic!("{size}: {other}"),
        }
    }
}

#[test]
fn corrupt_data_is_a_protocol_error() {
    // BTYPE 11 is reserved.
    let result = inflate(&mut Inflater::new(false), &[0xFF, 0xFF, 0xFF], 10, 1 << 20);
    assert!(matches!(result, Err(Error::Protocol(_))), "{result:?}");
}

#[test]
fn a_message_ended_by_a_final_block_is_read_and_so_is_the_next() {
    let first = json(3000, 1);
    let second = json(3000, 2);
    let mut receiver = Inflater::new(false);
    for payload in [&first, &second] {
        // A sender that finishes a stream per message (RFC 7692 section 7.2.3.4).
        let mut compressor = Compress::new_with_window_bits(Compression::new(6), false, 15);
        let mut out = Vec::with_capacity(payload.len() + 64);
        let status = compressor
            .compress_vec(payload, &mut out, FlushCompress::Finish)
            .unwrap();
        assert_eq!(status, Status::StreamEnd);
        assert_eq!(&inflate(&mut receiver, &out, 50, 1 << 20).unwrap(), payload);
    }
}

/// A sender that keeps its context (RFC 7692 section 7.2.3.3: a message may end with a
/// final block) refers, in the next message, to everything in its 32 KiB window: the
/// messages before the one that ended the stream too, not that one alone.
#[test]
fn after_a_final_block_the_history_is_the_whole_window_not_the_last_message() {
    let first = json(2000, 1);
    let short = b"ok".to_vec();
    let mut sender = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let compress = |sender: &mut Compress, payload: &[u8], flush| {
        let mut out = Vec::with_capacity(payload.len() + 64);
        sender.compress_vec(payload, &mut out, flush).unwrap();
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        out
    };
    let one = compress(&mut sender, &first, FlushCompress::Sync);
    let two = compress(&mut sender, &short, FlushCompress::Finish);
    // A new stream whose window is what was sent so far.
    sender.reset();
    sender
        .set_dictionary(&[first.as_slice(), &short].concat())
        .unwrap();
    let three = compress(&mut sender, &first, FlushCompress::Sync);
    let mut receiver = Inflater::new(false);
    assert_eq!(inflate(&mut receiver, &one, 100, 1 << 20).unwrap(), first);
    assert_eq!(inflate(&mut receiver, &two, 100, 1 << 20).unwrap(), short);
    let third = inflate(&mut receiver, &three, 100, 1 << 20);
    let third = third.map(|out| out == first).map_err(|e| e.to_string());
    assert_eq!(third, Ok(true));
}

/// The history is cut back as it grows yet always holds the last 32 KiB: after 100 KB of
/// small messages, a final block and a new stream whose window is those 32 KiB, the next
/// message still inflates.
#[test]
fn the_history_after_many_messages_is_the_last_32_kib() {
    let mut sender = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let mut receiver = Inflater::new(false);
    let mut sent = Vec::new();
    for seed in 0..100 {
        let payload = json(1000, seed * 37);
        let flush = if seed == 99 {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        };
        let mut out = Vec::with_capacity(payload.len() + 64);
        sender.compress_vec(&payload, &mut out, flush).unwrap();
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        assert_eq!(inflate(&mut receiver, &out, 300, 1 << 20).unwrap(), payload);
        sent.extend_from_slice(&payload);
    }
    assert!(receiver.history.capacity() <= 2 * HISTORY);
    sender.reset();
    sender
        .set_dictionary(&sent[sent.len() - HISTORY..])
        .unwrap();
    // Text that matches what came 30 KB back, and nothing nearer.
    let far_back = sent[sent.len() - 30_000..sent.len() - 29_000].to_vec();
    let mut out = Vec::with_capacity(2000);
    sender
        .compress_vec(&far_back, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(
        out.len() < 100,
        "the sender used its window: {} bytes",
        out.len()
    );
    out.truncate(out.len() - TAIL.len());
    assert_eq!(
        inflate(&mut receiver, &out, 300, 1 << 20).unwrap(),
        far_back
    );
}

/// A large message that compresses to little (1.5 MiB of zeros: about 15 KiB at level 1)
/// leaves the output buffer, which `Outbound` keeps for the next message, about the size
/// of what it holds, not half the message: an echo server answering such a message held
/// 750 KiB more per connection, idle, than the memory figures say.
#[test]
fn a_large_message_that_compresses_small_leaves_no_large_buffer_behind() {
    for resets in [false, true] {
        let mut sender = deflater(15, resets, 0);
        assert!(sender.compress(&vec![0u8; 1_500_000]));
        assert!(sender.out.len() < 16 << 10, "{} bytes", sender.out.len());
        let held = sender.out.capacity();
        assert!(held <= 32 << 10, "resets {resets}: {held} bytes held");
    }
}
