//! Tests of `Inbound` against an in-memory peer: framing in both roles, fragments,
//! cancellation, rule-breaking sequences, what follows a close, limits (the extreme ones
//! included).

use std::time::Duration;

use tokio::io::{AsyncWriteExt, DuplexStream};

use super::*;
use crate::wire::Outbound;

const LIMITS: ReadLimits = ReadLimits {
    message: 1 << 20,
    frame: 1 << 20,
    read_size: 256,
};

/// A frame as a server sends it (unmasked) or a client (masked with `key`).
fn frame(fin: bool, opcode: OpCode, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_header(&mut out, fin, opcode, payload.len(), key);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = key {
        frame::apply_mask(&mut out[start..], key);
    }
    out
}

fn reader(role: Role) -> (Inbound<DuplexStream>, DuplexStream) {
    let (theirs, ours) = tokio::io::duplex(1 << 16);
    (Inbound::new(ours, BytesMut::new(), LIMITS, role), theirs)
}

async fn next<R: AsyncRead + Unpin>(inbound: &mut Inbound<R>) -> Result<Option<Message>, Error> {
    tokio::time::timeout(Duration::from_secs(5), inbound.next())
        .await
        .expect("no message within 5 s")
}

#[tokio::test]
async fn fragments_are_joined_around_an_interleaved_ping() {
    let (mut inbound, mut peer) = reader(Role::Client);
    let mut bytes = frame(false, OpCode::Text, b"hel", None);
    bytes.extend(frame(true, OpCode::Ping, b"p", None));
    bytes.extend(frame(false, OpCode::Continuation, b"lo ", None));
    bytes.extend(frame(true, OpCode::Continuation, b"world", None));
    peer.write_all(&bytes).await.unwrap();
    let ping = next(&mut inbound).await.unwrap().unwrap();
    assert_eq!(
        (ping.message_type, ping.data.as_slice()),
        (MessageType::Ping, &b"p"[..])
    );
    let text = next(&mut inbound).await.unwrap().unwrap();
    assert_eq!(text.as_text().unwrap(), "hello world");
    drop(peer);
    assert!(
        next(&mut inbound).await.unwrap().is_none(),
        "clean end between frames"
    );
}

#[tokio::test]
async fn masked_frames_dribbled_byte_by_byte_are_unmasked_by_a_server() {
    let (mut inbound, mut peer) = reader(Role::Server);
    // Larger than the read size, so both the buffered and the direct path run.
    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let mut bytes = frame(false, OpCode::Binary, &payload[..3], Some([1, 2, 3, 4]));
    bytes.extend(frame(
        true,
        OpCode::Continuation,
        &payload[3..],
        Some([9, 8, 7, 6]),
    ));
    let writer = tokio::spawn(async move {
        for chunk in bytes.chunks(7) {
            peer.write_all(chunk).await.unwrap();
            tokio::task::yield_now().await;
        }
        peer
    });
    let message = next(&mut inbound).await.unwrap().unwrap();
    assert_eq!(message.message_type, MessageType::Binary);
    assert_eq!(message.data, payload);
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn what_an_outbound_writes_an_inbound_of_the_other_role_reads() {
    for (writer_role, reader_role) in [(Role::Client, Role::Server), (Role::Server, Role::Client)] {
        let (theirs, ours) = tokio::io::duplex(1 << 20);
        let mut outbound = Outbound::new(theirs, writer_role);
        let mut inbound = Inbound::new(ours, BytesMut::new(), LIMITS, reader_role);
        let large = vec![7u8; 100_000];
        outbound.encode(MessageType::Text, "small".as_bytes());
        outbound.encode_owned(Message::binary(large.clone()));
        outbound.encode(MessageType::Close, &Message::close(1000, "bye").data);
        outbound.flush().await.unwrap();
        assert_eq!(
            next(&mut inbound)
                .await
                .unwrap()
                .unwrap()
                .as_text()
                .unwrap(),
            "small"
        );
        assert_eq!(next(&mut inbound).await.unwrap().unwrap().data, large);
        let close = next(&mut inbound).await.unwrap().unwrap();
        assert_eq!(close.close_code(), Some(1000));
    }
}

#[tokio::test]
async fn a_cancelled_read_loses_nothing() {
    let (mut inbound, mut peer) = reader(Role::Client);
    let bytes = frame(true, OpCode::Binary, &[5u8; 1000], None);
    peer.write_all(&bytes[..600]).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(20), inbound.next()).await;
    assert!(early.is_err(), "half a frame is not a message");
    peer.write_all(&bytes[600..]).await.unwrap();
    assert_eq!(
        next(&mut inbound).await.unwrap().unwrap().data,
        vec![5u8; 1000]
    );
}

#[tokio::test]
async fn rule_breaking_sequences_are_refused() {
    let cases: [(Vec<u8>, Role); 5] = [
        (frame(true, OpCode::Continuation, b"x", None), Role::Client),
        (
            [
                frame(false, OpCode::Text, b"a", None),
                frame(true, OpCode::Text, b"b", None),
            ]
            .concat(),
            Role::Client,
        ),
        (
            frame(true, OpCode::Text, b"x", Some([1, 1, 1, 1])),
            Role::Client,
        ),
        (frame(true, OpCode::Text, b"x", None), Role::Server),
        (frame(true, OpCode::Close, &[3], None), Role::Client),
    ];
    for (i, (bytes, role)) in cases.into_iter().enumerate() {
        let (mut inbound, mut peer) = reader(role);
        peer.write_all(&bytes).await.unwrap();
        let outcome = next(&mut inbound).await;
        assert!(
            matches!(outcome, Err(Error::Protocol(_))),
            "case {i}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn what_follows_a_close_frame_is_discarded_unread() {
    for (role, key) in [(Role::Client, None), (Role::Server, Some([4, 3, 2, 1]))] {
        let (mut inbound, mut peer) = reader(role);
        let mut bytes = frame(true, OpCode::Close, &[3, 232, b'o', b'k'], key);
        bytes.extend(frame(true, OpCode::Text, b"late", key));
        bytes.extend(frame(true, OpCode::Binary, &[0; 600], key));
        peer.write_all(&bytes).await.unwrap();
        let close = next(&mut inbound).await.unwrap().unwrap();
        assert_eq!(close.close_code(), Some(1000), "{role:?}");
        // The peer is still connected and writing: nothing more is read anyway.
        peer.write_all(&frame(true, OpCode::Text, b"later", key))
            .await
            .unwrap();
        assert!(next(&mut inbound).await.unwrap().is_none(), "{role:?}");
        assert!(inbound.next_buffered().unwrap().is_none(), "{role:?}");
    }
}

#[tokio::test]
async fn text_fails_at_the_first_bytes_that_cannot_become_utf8() {
    // Followed by nothing, and the peer stays connected: the reader must not wait for
    // the rest of the message to know (the cases are `assembly`'s tests).
    let (mut inbound, mut peer) = reader(Role::Server);
    let key = Some([7, 7, 1, 2]);
    let mut sent = frame(false, OpCode::Text, b"fine \xE2\x82", key);
    sent.extend(frame(false, OpCode::Continuation, b"\xAC \xF4\x90", key));
    peer.write_all(&sent).await.unwrap();
    assert!(matches!(next(&mut inbound).await, Err(Error::InvalidUtf8)));
    // Within one large frame too, before its payload is all in.
    let (mut inbound, mut peer) = reader(Role::Client);
    let mut payload = vec![b'x'; 5000];
    payload[100] = 0xFF;
    peer.write_all(&frame(true, OpCode::Text, &payload, None)[..1000])
        .await
        .unwrap();
    assert!(matches!(next(&mut inbound).await, Err(Error::InvalidUtf8)));
}

#[tokio::test]
async fn extreme_limits_and_lengths_fail_cleanly() {
    // "No limit" (usize::MAX) and a zero limit, against the largest length a header
    // can claim and a few around the platform's allocation bound.
    let claims = [
        u64::MAX,
        u64::MAX - 1,
        isize::MAX as u64,
        (isize::MAX as u64) - 9,
    ];
    for limit in [usize::MAX, usize::MAX - 1, isize::MAX as usize, 0] {
        for claim in claims {
            for role in [Role::Client, Role::Server] {
                let limits = ReadLimits {
                    message: limit,
                    frame: limit,
                    read_size: limit,
                };
                let mut bytes = vec![0x82, 127];
                bytes.extend_from_slice(&claim.to_be_bytes());
                if role == Role::Server {
                    bytes[1] |= 0x80;
                    bytes.extend_from_slice(&[1, 2, 3, 4]);
                }
                bytes.push(0);
                let mut inbound = Inbound::new(&bytes[..], BytesMut::new(), limits, role);
                let outcome = next(&mut inbound).await;
                assert!(
                    matches!(outcome, Err(Error::MessageTooLarge { .. })),
                    "limit {limit} claim {claim} {role:?}: {outcome:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn limits_and_text_are_checked() {
    let (mut inbound, mut peer) = reader(Role::Client);
    peer.write_all(&frame(true, OpCode::Text, &[0xff, 0xfe], None))
        .await
        .unwrap();
    assert!(matches!(next(&mut inbound).await, Err(Error::InvalidUtf8)));

    let (mut inbound, mut peer) = reader(Role::Client);
    let half = vec![0u8; LIMITS.message / 2 + 1];
    let writer = tokio::spawn(async move {
        let _ = peer
            .write_all(&frame(false, OpCode::Binary, &half, None))
            .await;
        let _ = peer
            .write_all(&frame(true, OpCode::Continuation, &half, None))
            .await;
    });
    assert!(matches!(
        next(&mut inbound).await,
        Err(Error::MessageTooLarge { limit, .. }) if limit == LIMITS.message
    ));
    drop(inbound);
    writer.await.unwrap();

    let (mut inbound, mut peer) = reader(Role::Client);
    peer.write_all(&frame(true, OpCode::Binary, b"cut", None)[..3])
        .await
        .unwrap();
    drop(peer);
    assert!(matches!(
        next(&mut inbound).await,
        Err(Error::ConnectionLost(_))
    ));
}
