//! Tests of compressed messages (permessage-deflate) through `Outbound` and `Inbound`
//! over an in-memory pipe: round trips in both roles across the parameters, fragments,
//! RSV1 where it may not be, text checked after inflating, and the limits (a deflate
//! bomb, compressed data that inflates to nothing).

use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, DuplexStream};

use super::*;
use crate::config::DeflateConfig;
use crate::wire::deflate::tests::{bomb, json, noise};
use crate::wire::negotiate::{accept_deflate, offer};
use crate::wire::{Outbound, deflate::Deflater};

const LIMITS: ReadLimits = ReadLimits {
    message: 1 << 20,
    frame: 1 << 20,
    read_size: 4096,
};

/// What a server with `server` agrees to when a client offers `client`.
fn agreed(client: &DeflateConfig, server: &DeflateConfig) -> DeflateParams {
    accept_deflate(server, [offer(client).as_str()]).expect("agreed")
}

/// Frame bytes: `first` is the whole first header byte (FIN, RSV1, opcode).
fn raw_frame(first: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_header(&mut out, true, OpCode::Binary, payload.len(), key);
    out[0] = first;
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = key {
        frame::apply_mask(&mut out[start..], key);
    }
    out
}

/// A message compressed on its own, its tail removed.
fn compressed(payload: &[u8]) -> Vec<u8> {
    let mut deflater = Deflater::new(&DeflateConfig::default(), 15, true);
    assert!(deflater.compress(payload));
    deflater.out.clone()
}

fn client_reader(limits: ReadLimits) -> (Inbound<DuplexStream>, DuplexStream) {
    let (theirs, ours) = tokio::io::duplex(1 << 16);
    let params = agreed(&DeflateConfig::default(), &DeflateConfig::default());
    let inbound = Inbound::new(ours, BytesMut::new(), limits, Role::Client).with_deflate(&params);
    (inbound, theirs)
}

async fn next<R: AsyncRead + Unpin>(inbound: &mut Inbound<R>) -> Result<Option<Message>, Error> {
    tokio::time::timeout(Duration::from_secs(10), inbound.next())
        .await
        .expect("no message within 10 s")
}

#[tokio::test]
async fn messages_round_trip_in_both_roles_across_the_parameters() {
    let policies = [
        DeflateConfig::default(),
        DeflateConfig::no_context_takeover(),
        DeflateConfig {
            server_max_window_bits: 9,
            client_max_window_bits: 12,
            ..DeflateConfig::default()
        },
        DeflateConfig {
            server_max_window_bits: 8,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        },
    ];
    let sizes = [16, 100, 1000, 20_000, 131_072];
    for client in &policies {
        for server in &policies {
            let params = agreed(client, server);
            for (writer, config) in [(Role::Client, client), (Role::Server, server)] {
                let reader = if writer == Role::Client {
                    Role::Server
                } else {
                    Role::Client
                };
                let (theirs, ours) = tokio::io::duplex(1 << 16);
                let mut outbound = Outbound::new(theirs, writer).with_deflate(&params, config);
                let mut inbound =
                    Inbound::new(ours, BytesMut::new(), LIMITS, reader).with_deflate(&params);
                let messages: Vec<Message> = sizes
                    .iter()
                    .enumerate()
                    .flat_map(|(seed, size)| {
                        let text = String::from_utf8(json(*size, seed)).unwrap();
                        [Message::text(text), Message::binary(json(*size, seed + 50))]
                    })
                    .chain([Message::binary(noise(3000))])
                    .collect();
                let sent = messages.clone();
                let writing = tokio::spawn(async move {
                    for (k, message) in sent.into_iter().enumerate() {
                        // Both ways of encoding, borrowed and owned.
                        if k % 2 == 0 {
                            outbound.encode(message.message_type, &message.data);
                        } else {
                            outbound.encode_owned(message);
                        }
                        outbound.flush().await.unwrap();
                    }
                    outbound.compressed_totals()
                });
                for message in &messages {
                    let read = next(&mut inbound).await.unwrap().expect("a message");
                    assert_eq!(&read, message, "{params:?} from {writer:?}");
                }
                let (before, after) = writing.await.unwrap();
                let label = format!("{params:?} from {writer:?}: {before} -> {after}");
                assert_eq!(inbound.compressed_totals(), (before, after), "{label}");
                if params.sender_window_bits(writer) < 9 {
                    assert_eq!((before, after), (0, 0), "{label}");
                } else {
                    assert!(before > 250_000 && after * 4 < before, "{label}");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_compressed_message_in_masked_fragments_dribbled_with_a_ping_between() {
    let params = agreed(&DeflateConfig::default(), &DeflateConfig::default());
    let (theirs, ours) = tokio::io::duplex(1 << 16);
    let mut inbound =
        Inbound::new(ours, BytesMut::new(), LIMITS, Role::Server).with_deflate(&params);
    let text = "caf\u{e9} \u{1F600} ".repeat(2000);
    let packed = compressed(text.as_bytes());
    let third = packed.len() / 3;
    let key = Some([3, 1, 4, 1]);
    let mut bytes = raw_frame(0x41, &packed[..third], key); // RSV1, text, not FIN
    bytes.extend(raw_frame(0x89, b"ping", key));
    bytes.extend(raw_frame(0x00, &packed[third..2 * third], key));
    bytes.extend(raw_frame(0x80, &packed[2 * third..], key));
    let mut peer = theirs;
    let writer = tokio::spawn(async move {
        for chunk in bytes.chunks(5) {
            peer.write_all(chunk).await.unwrap();
            tokio::task::yield_now().await;
        }
        peer
    });
    let ping = next(&mut inbound).await.unwrap().unwrap();
    assert_eq!(ping.message_type, MessageType::Ping);
    let read = next(&mut inbound).await.unwrap().unwrap();
    assert_eq!(read.as_text().unwrap(), text);
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn rsv1_where_it_may_not_be_is_a_protocol_error() {
    let packed = compressed(&json(500, 0));
    let cases: [(&str, Vec<u8>, bool); 4] = [
        ("not negotiated", raw_frame(0xC2, &packed, None), false),
        ("on a ping", raw_frame(0xC9, b"p", None), true),
        (
            "on a continuation",
            [raw_frame(0x42, &packed, None), raw_frame(0xC0, b"", None)].concat(),
            true,
        ),
        ("RSV2", raw_frame(0xA2, &packed, None), true),
    ];
    for (case, bytes, negotiated) in cases {
        let (theirs, ours) = tokio::io::duplex(1 << 16);
        let mut inbound = Inbound::new(ours, BytesMut::new(), LIMITS, Role::Client);
        if negotiated {
            let params = agreed(&DeflateConfig::default(), &DeflateConfig::default());
            inbound = inbound.with_deflate(&params);
        }
        let mut peer = theirs;
        peer.write_all(&bytes).await.unwrap();
        let result = next(&mut inbound).await;
        assert!(
            matches!(result, Err(Error::Protocol(_))),
            "{case}: {result:?}"
        );
    }
}

#[tokio::test]
async fn text_is_checked_after_inflating_and_uncompressed_messages_still_pass() {
    let (mut inbound, mut peer) = client_reader(LIMITS);
    let mut bytes = raw_frame(0x81, b"plain", None);
    bytes.extend(raw_frame(0xC2, &compressed(&[0xFF; 100]), None)); // binary: fine
    bytes.extend(raw_frame(0xC1, &compressed(&[0xFF; 100]), None)); // text: not UTF-8
    peer.write_all(&bytes).await.unwrap();
    assert_eq!(
        next(&mut inbound)
            .await
            .unwrap()
            .unwrap()
            .as_text()
            .unwrap(),
        "plain"
    );
    assert_eq!(next(&mut inbound).await.unwrap().unwrap().data, [0xFF; 100]);
    assert!(matches!(next(&mut inbound).await, Err(Error::InvalidUtf8)));
}

#[tokio::test]
async fn a_deflate_bomb_fails_with_message_too_large_soon_after_the_limit() {
    let limits = ReadLimits {
        message: 16 << 20,
        frame: 16 << 20,
        read_size: 4096,
    };
    let bomb = bomb();
    for fragmented in [false, true] {
        let (mut inbound, peer) = client_reader(limits);
        let frames = if fragmented {
            let pieces: Vec<&[u8]> = bomb.chunks(1000).collect();
            let last = pieces.len() - 1;
            pieces
                .iter()
                .enumerate()
                .flat_map(|(k, piece)| {
                    let opcode = if k == 0 { 0x42 } else { 0x00 };
                    raw_frame(opcode | if k == last { 0x80 } else { 0 }, piece, None)
                })
                .collect()
        } else {
            raw_frame(0xC2, &bomb, None)
        };
        let writer = tokio::spawn(async move {
            let mut peer = peer;
            // Stops with an error once the reader is gone.
            let _ = peer.write_all(&frames).await;
        });
        let started = Instant::now();
        let result = next(&mut inbound).await;
        assert!(
            matches!(result, Err(Error::MessageTooLarge { limit, .. }) if limit == 16 << 20),
            "fragmented {fragmented}: {result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let held = inbound
            .assembly
            .as_ref()
            .map_or(0, |a| a.data_mut_capacity());
        assert!(held <= (16 << 20) + 1, "{held} bytes held");
        drop(inbound);
        writer.await.unwrap();
    }
}

#[tokio::test]
async fn compressed_data_that_inflates_to_nothing_cannot_go_on_for_ever() {
    let limits = ReadLimits {
        message: 1000,
        frame: 1000,
        read_size: 256,
    };
    let (mut inbound, mut peer) = client_reader(limits);
    // Empty stored blocks, 5 bytes each, one per frame: 1125 bytes is the most allowed.
    let mut bytes = raw_frame(0x42, &[0, 0, 0, 0xFF, 0xFF], None);
    for _ in 0..300 {
        bytes.extend(raw_frame(0x00, &[0, 0, 0, 0xFF, 0xFF], None));
    }
    peer.write_all(&bytes).await.unwrap();
    let result = next(&mut inbound).await;
    assert!(
        matches!(
            result,
            Err(Error::MessageTooLarge {
                size: 1130,
                limit: 1125
            })
        ),
        "{result:?}"
    );
}
