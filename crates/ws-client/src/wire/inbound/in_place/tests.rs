//! Tests of `Inbound::next_in_place` as a server's read loop uses it (in place first, then
//! `next_buffered`, then `next`): the same messages, errors and order as `next` alone, for
//! bytes split across reads at every byte boundary and dribbled a byte at a time, in both
//! roles, with control frames between fragments, compressed messages, bad UTF-8 and
//! oversized frames.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

use crate::config::DeflateConfig;
use crate::error::Error;
use crate::message::MessageType;
use crate::wire::deflate::Deflater;
use crate::wire::frame::{self, OpCode};
use crate::wire::negotiate::{accept_deflate, offer};
use crate::wire::{Inbound, ReadLimits, Role};

/// Reads of 256 bytes: the 1100-byte message goes through the direct read into the message
/// at some splits.
const LIMITS: ReadLimits = ReadLimits {
    message: 1200,
    frame: 1200,
    read_size: 256,
};

/// A socket that hands out its chunks one per read (a read never spans two), then EOF.
struct Chunks(VecDeque<Vec<u8>>);

impl AsyncRead for Chunks {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(chunk) = self.0.front_mut() {
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                self.0.pop_front();
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// One frame; masked with a fixed key when a client sends it; `first` ORed into byte 0.
fn frame(role: Role, fin: bool, opcode: OpCode, first: u8, payload: &[u8]) -> Vec<u8> {
    let key = (role == Role::Client).then_some([0x37, 0xfa, 0x21, 0x3d]);
    let mut out = Vec::new();
    frame::encode_header(&mut out, fin, opcode, payload.len(), key);
    out[0] |= first;
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = key {
        frame::apply_mask(&mut out[start..], key);
    }
    out
}

/// What a reader saw: each message (type, payload, whether it came in place), then the
/// error that ended the stream, if any.
type Seen = (Vec<(MessageType, Vec<u8>, bool)>, Option<String>);

fn reader(role: Role, chunks: Vec<Vec<u8>>, deflate: bool) -> Inbound<Chunks> {
    let chunks = chunks.into_iter().filter(|c| !c.is_empty()).collect();
    let inbound = Inbound::new(Chunks(chunks), BytesMut::new(), LIMITS, role);
    if deflate {
        let config = DeflateConfig::default();
        let params = accept_deflate(&config, [offer(&config).as_str()]).expect("agreed");
        inbound.with_deflate(&params)
    } else {
        inbound
    }
}

/// Reads everything as test-servers' echo and sink loop does.
async fn read_in_place(mut inbound: Inbound<Chunks>) -> Seen {
    let mut seen = Vec::new();
    loop {
        loop {
            match inbound.next_in_place() {
                Ok(Some(message)) => {
                    let kind = message.message_type();
                    seen.push((kind, message.payload().to_vec(), true));
                }
                Ok(None) => break,
                Err(error) => return (seen, Some(error.to_string())),
            }
        }
        let read = match inbound.next_buffered() {
            Ok(None) => tokio::time::timeout(Duration::from_secs(5), inbound.next())
                .await
                .expect("a chunked reader never waits"),
            other => other,
        };
        match read {
            Ok(Some(message)) => seen.push((message.message_type, message.data, false)),
            Ok(None) => return (seen, None),
            Err(error) => return (seen, Some(error.to_string())),
        }
    }
}

/// Reads everything with `next` alone.
async fn read_plain(mut inbound: Inbound<Chunks>) -> Seen {
    let mut seen = Vec::new();
    loop {
        match inbound.next().await {
            Ok(Some(message)) => seen.push((message.message_type, message.data, false)),
            Ok(None) => return (seen, None),
            Err(error) => return (seen, Some(error.to_string())),
        }
    }
}

/// The messages of `seen`, without how each came.
fn messages(seen: &Seen) -> (Vec<(MessageType, &[u8])>, Option<&str>) {
    let list = seen.0.iter().map(|(kind, data, _)| (*kind, &data[..]));
    (list.collect(), seen.1.as_deref())
}

/// Checks that the in-place loop sees what `next` sees for `bytes` in one read, split in
/// two at every byte boundary and dribbled a byte at a time; returns the one-read view.
async fn same_as_next_at_every_split(role: Role, bytes: &[u8], deflate: bool) -> Seen {
    let whole = read_in_place(reader(role, vec![bytes.to_vec()], deflate)).await;
    let expected = read_plain(reader(role, vec![bytes.to_vec()], deflate)).await;
    assert_eq!(
        messages(&whole),
        messages(&expected),
        "{role:?} in one read"
    );
    for cut in 0..=bytes.len() {
        let chunks = vec![bytes[..cut].to_vec(), bytes[cut..].to_vec()];
        let seen = read_in_place(reader(role, chunks, deflate)).await;
        assert_eq!(
            messages(&seen),
            messages(&expected),
            "{role:?} cut at {cut}"
        );
    }
    let dribble = bytes.iter().map(|byte| vec![*byte]).collect();
    let seen = read_in_place(reader(role, dribble, deflate)).await;
    assert_eq!(
        messages(&seen),
        messages(&expected),
        "{role:?} byte by byte"
    );
    whole
}

/// Single-frame messages around a fragmented one with a ping between its fragments.
fn conversation(role: Role) -> Vec<u8> {
    let long: Vec<u8> = (0..300u32).map(|i| (i * 13 % 256) as u8).collect();
    let mut bytes = frame(role, true, OpCode::Binary, 0, &[7; 16]);
    bytes.extend(frame(
        role,
        true,
        OpCode::Text,
        0,
        "h\u{e9}llo \u{20ac}".as_bytes(),
    ));
    bytes.extend(frame(role, false, OpCode::Text, 0, b"frag"));
    bytes.extend(frame(role, true, OpCode::Ping, 0, b"mid"));
    bytes.extend(frame(
        role,
        false,
        OpCode::Continuation,
        0,
        "m\u{e9}".as_bytes(),
    ));
    bytes.extend(frame(role, true, OpCode::Continuation, 0, b"nted"));
    bytes.extend(frame(role, true, OpCode::Binary, 0, &long));
    bytes.extend(frame(role, true, OpCode::Text, 0, b""));
    bytes.extend(frame(role, true, OpCode::Binary, 0, &[3; 1100]));
    bytes.extend(frame(role, true, OpCode::Pong, 0, b"p"));
    bytes.extend(frame(role, true, OpCode::Binary, 0, b"last"));
    bytes.extend(frame(role, true, OpCode::Close, 0, &1000u16.to_be_bytes()));
    bytes.extend(frame(role, true, OpCode::Binary, 0, b"after the close"));
    bytes
}

#[tokio::test]
async fn a_conversation_reads_the_same_at_every_split_in_both_roles() {
    for (peer, reads_as) in [(Role::Client, Role::Server), (Role::Server, Role::Client)] {
        let seen = same_as_next_at_every_split(reads_as, &conversation(peer), false).await;
        let (list, error) = messages(&seen);
        assert_eq!(error, None);
        assert_eq!(list.len(), 10, "{list:?}");
        assert_eq!(list[2], (MessageType::Ping, &b"mid"[..]));
        assert_eq!(list[3], (MessageType::Text, "fragm\u{e9}nted".as_bytes()));
        assert_eq!(list[6], (MessageType::Binary, &[3; 1100][..]));
        assert_eq!(list[9].0, MessageType::Close, "nothing after the close");
        // The first message of a read comes from `next`; after it, small single-frame
        // data messages already read come in place, control frames and fragments never.
        let in_place: Vec<bool> = seen.0.iter().map(|m| m.2).collect();
        assert!(in_place[1], "the text right after the first message");
        for control_or_fragmented in [0, 2, 3, 7, 9] {
            assert!(!in_place[control_or_fragmented], "{control_or_fragmented}");
        }
    }
}

#[tokio::test]
async fn compressed_messages_are_left_to_the_inflating_path() {
    let text = "compress me, compress me, compress me".repeat(4);
    let mut deflater = Deflater::new(&DeflateConfig::default(), 15, true);
    assert!(deflater.compress(text.as_bytes()));
    let rsv1 = 0x40;
    let mut bytes = frame(Role::Client, true, OpCode::Binary, 0, b"plain");
    bytes.extend(frame(Role::Client, true, OpCode::Text, rsv1, &deflater.out));
    bytes.extend(frame(Role::Client, true, OpCode::Text, 0, b"plain text"));
    let seen = same_as_next_at_every_split(Role::Server, &bytes, true).await;
    let how: Vec<(MessageType, bool)> = seen.0.iter().map(|m| (m.0, m.2)).collect();
    assert_eq!(
        how,
        [
            (MessageType::Binary, false),
            (MessageType::Text, false),
            (MessageType::Text, true)
        ]
    );
    assert_eq!(seen.0[1].1, text.as_bytes());
    // Without the extension agreed, RSV1 is refused, in place or not.
    let refused = same_as_next_at_every_split(Role::Server, &bytes, false).await;
    assert_eq!(refused.0.len(), 1);
    assert!(refused.1.unwrap().contains("reserved bits"));
}

#[tokio::test]
async fn bad_text_fails_at_every_split_and_what_came_before_is_delivered() {
    let mut bytes = frame(Role::Client, true, OpCode::Binary, 0, b"good");
    bytes.extend(frame(
        Role::Client,
        true,
        OpCode::Text,
        0,
        b"ok \xC3\x28 then more",
    ));
    let seen = same_as_next_at_every_split(Role::Server, &bytes, false).await;
    assert_eq!(messages(&seen).0, [(MessageType::Binary, &b"good"[..])]);
    assert_eq!(seen.1, Some(Error::InvalidUtf8.to_string()));
    // A character cut short at the end of a whole message fails too.
    let cut_short = frame(Role::Client, true, OpCode::Text, 0, "ab\u{20ac}".as_bytes());
    let cut_short = [
        &cut_short[..1],
        &[cut_short[1] - 1],
        &cut_short[2..cut_short.len() - 1],
    ];
    let seen = same_as_next_at_every_split(Role::Server, &cut_short.concat(), false).await;
    assert_eq!(seen.1, Some(Error::InvalidUtf8.to_string()));
}

#[tokio::test]
async fn rule_breaking_frames_fail_as_next_fails_them() {
    let good = frame(Role::Client, true, OpCode::Binary, 0, b"good");
    let oversized = frame(Role::Client, true, OpCode::Binary, 0, &[0; 1201]);
    let at_limit = frame(Role::Client, true, OpCode::Binary, 0, &[0; 1200]);
    let unmasked = frame(Role::Server, true, OpCode::Binary, 0, b"unmasked");
    let new_message_mid_fragments = [
        frame(Role::Client, false, OpCode::Text, 0, b"a"),
        frame(Role::Client, true, OpCode::Binary, 0, b"b"),
    ]
    .concat();
    let cases: [(&[u8], &str); 4] = [
        (&oversized, "1201 bytes"),
        (&unmasked, "unmasked"),
        (&new_message_mid_fragments, "before the fragmented one"),
        (&[0x83, 0x80, 0, 0, 0, 0], "reserved opcode"),
    ];
    for (bad, words) in cases {
        let bytes = [&good[..], &at_limit, bad, &good].concat();
        let seen = same_as_next_at_every_split(Role::Server, &bytes, false).await;
        assert_eq!(seen.0.len(), 2, "{words}: {:?}", seen.1);
        assert_eq!(seen.0[1].1.len(), 1200, "{words}");
        let error = seen.1.expect(words);
        assert!(error.contains(words), "{words}: {error}");
    }
    // A client refuses a masked frame.
    let masked = frame(Role::Client, true, OpCode::Binary, 0, b"masked");
    let seen = same_as_next_at_every_split(Role::Client, &masked, false).await;
    assert!(seen.0.is_empty() && seen.1.unwrap().contains("masked"));
}
