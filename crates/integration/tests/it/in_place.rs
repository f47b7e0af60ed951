//! The in-place read path of the echo and sink loop (`WireSession::drain_in_place`) over
//! real sockets, against perf's `/echo` and `/sink` and `echo` mode: a conversation split
//! across reads at every byte boundary (single frames of every length encoding, a ping
//! between fragments), then the failures: bad UTF-8 split across reads (1007), an oversized
//! frame (1009) and an unmasked one (1002) arriving whole behind good messages, and the
//! header edge cases: reserved bits and opcodes, bad control frames and a length with its
//! top bit set fail the connection; non-minimal lengths are accepted; nothing after a
//! close is echoed or counted.

use integration::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::raw_peer::{
    BINARY, CLOSE, CONTINUATION, Frame, PING, PONG, TEXT, client_frame, close_payload, frame,
    read_frames, take_frame, upgraded_client,
};
use crate::support::{pattern, within};

/// A raw client that keeps what it has read past the last frame it took.
struct Peer {
    tcp: TcpStream,
    bytes: Vec<u8>,
}

impl Peer {
    async fn connect(server: &TestServer, path: &str) -> Self {
        let tcp = within(upgraded_client(server.addr(), path)).await;
        Self {
            tcp,
            bytes: Vec::new(),
        }
    }

    /// Frames up to and including the pong that carries `payload`.
    async fn until_pong(&mut self, payload: &[u8]) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            while let Some(frame) = take_frame(&mut self.bytes) {
                let last = frame.opcode == PONG && frame.payload == payload;
                frames.push(frame);
                if last {
                    return frames;
                }
            }
            let read = within(self.tcp.read(&mut chunk)).await.unwrap();
            assert!(
                read > 0,
                "the server ended the connection; frames: {frames:?}"
            );
            self.bytes.extend_from_slice(&chunk[..read]);
        }
    }
}

fn data(opcode: u8, payload: &[u8]) -> Frame {
    Frame {
        opcode,
        fin: true,
        payload: payload.to_vec(),
    }
}

/// A client's conversation, and the frames an echo answers it with (a sink: only the pong).
fn conversation() -> (Vec<u8>, Vec<Frame>) {
    let text = "h\u{e9}llo \u{20ac}".as_bytes();
    let long = pattern(200, 3);
    let mut bytes = client_frame(BINARY, true, &pattern(16, 1));
    bytes.extend(client_frame(TEXT, true, text));
    bytes.extend(client_frame(TEXT, false, b"frag"));
    bytes.extend(client_frame(PING, true, b"mid"));
    bytes.extend(client_frame(CONTINUATION, true, b"mented"));
    bytes.extend(client_frame(BINARY, true, &long));
    bytes.extend(client_frame(TEXT, true, b""));
    let echoes = vec![
        data(BINARY, &pattern(16, 1)),
        data(TEXT, text),
        data(PONG, b"mid"),
        data(TEXT, b"fragmented"),
        data(BINARY, &long),
        data(TEXT, b""),
    ];
    (bytes, echoes)
}

/// Plays the conversation once per byte boundary on one connection: a ping and the bytes
/// before the cut in one write, the rest once the ping is answered (so the server has read
/// the first part), then a ping whose pong closes the round. Returns the rounds played.
async fn every_split(server: &TestServer, path: &str, echo: bool) -> usize {
    let (bytes, echoes) = conversation();
    let mut peer = Peer::connect(server, path).await;
    for cut in 0..=bytes.len() {
        let (start, end) = (format!("s{cut}"), format!("e{cut}"));
        let mut first = client_frame(PING, true, start.as_bytes());
        first.extend_from_slice(&bytes[..cut]);
        within(peer.tcp.write_all(&first)).await.unwrap();
        let mut frames = peer.until_pong(start.as_bytes()).await;
        let mut rest = bytes[cut..].to_vec();
        rest.extend(client_frame(PING, true, end.as_bytes()));
        within(peer.tcp.write_all(&rest)).await.unwrap();
        frames.extend(peer.until_pong(end.as_bytes()).await);
        let mut expected = vec![data(PONG, start.as_bytes())];
        expected.extend(echoes.iter().filter(|f| echo || f.opcode == PONG).cloned());
        expected.push(data(PONG, end.as_bytes()));
        assert_eq!(frames, expected, "{path}: cut at {cut}");
    }
    bytes.len() + 1
}

#[tokio::test]
async fn frames_split_at_every_byte_boundary_are_echoed_and_counted() {
    let (bytes, echoes) = conversation();
    let payload_bytes: usize = echoes
        .iter()
        .filter(|f| f.opcode != PONG)
        .map(|f| f.payload.len())
        .sum();
    for (mode, path, echo) in [
        ("perf", "/echo", true),
        ("perf", "/sink", false),
        ("echo", "/", true),
    ] {
        let server = TestServer::start_with(mode, &[]);
        let rounds = every_split(&server, path, echo).await;
        assert_eq!(rounds, bytes.len() + 1);
        let (_, stopped) = server.stop();
        let messages = rounds as u64 * 5;
        assert_eq!(stopped["messages_in"], messages, "{mode} {path}");
        assert_eq!(
            stopped["bytes_in"],
            (rounds * payload_bytes) as u64,
            "{mode} {path}"
        );
        assert_eq!(stopped["messages_out"], if echo { messages } else { 0 });
        assert_eq!(stopped["protocol_errors"], 0);
    }
}

/// Sends a ping and `first` in one write, waits for the pong (or for the close, if the
/// server fails the connection at once), sends `rest`, and returns the close code and
/// every data frame the server sent before its close.
async fn failing(
    server: &TestServer,
    path: &str,
    first: &[u8],
    rest: &[u8],
) -> (Option<u16>, Vec<Frame>) {
    let mut peer = Peer::connect(server, path).await;
    // The ping first: after it, `first` may end in the middle of a frame.
    let mut write = client_frame(PING, true, b"sync");
    write.extend_from_slice(first);
    within(peer.tcp.write_all(&write)).await.unwrap();
    let mut frames = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let mut synced = false;
    while !synced {
        while let Some(frame) = take_frame(&mut peer.bytes) {
            synced |= frame.opcode == PONG || frame.close_code().is_some();
            frames.push(frame);
        }
        if !synced {
            let read = within(peer.tcp.read(&mut chunk)).await.unwrap();
            assert!(read > 0, "the server left without a close: {frames:?}");
            peer.bytes.extend_from_slice(&chunk[..read]);
        }
    }
    // The server may have failed the connection already: the write may fail.
    let _ = within(peer.tcp.write_all(rest)).await;
    while let Some(frame) = take_frame(&mut peer.bytes) {
        frames.push(frame);
    }
    frames.extend(within(read_frames(&mut peer.tcp, true)).await);
    let code = frames.last().and_then(Frame::close_code);
    frames.retain(|f| matches!(f.opcode, TEXT | BINARY));
    (code, frames)
}

#[tokio::test]
async fn bad_utf8_split_across_reads_fails_with_1007() {
    let good = client_frame(BINARY, true, b"good");
    let bad = client_frame(TEXT, true, b"ok \xC3\x28 then");
    let server = TestServer::start_with("perf", &[]);
    for (path, echo) in [("/echo", true), ("/sink", false)] {
        for cut in 0..=bad.len() {
            // Either side of the cut, the good message comes first, in the same write.
            let first = [&good[..], &bad[..cut]].concat();
            let (code, frames) = failing(&server, path, &first, &bad[cut..]).await;
            assert_eq!(code, Some(1007), "{path} cut at {cut}");
            let echoed: Vec<Frame> = if echo {
                vec![data(BINARY, b"good")]
            } else {
                vec![]
            };
            assert_eq!(frames, echoed, "{path} cut at {cut}");
        }
    }
    let (_, stopped) = server.stop();
    assert_eq!(stopped["protocol_errors"], 2 * (bad.len() as u64 + 1));
}

#[tokio::test]
async fn oversized_and_unmasked_frames_behind_good_ones_fail_the_connection() {
    let server = TestServer::start_with("perf", &["--max-message-size", "100"]);
    let good = [
        client_frame(BINARY, true, &pattern(16, 9)),
        client_frame(BINARY, true, &pattern(100, 4)),
    ]
    .concat();
    let oversized = client_frame(BINARY, true, &pattern(101, 5));
    let unmasked = frame(BINARY, true, b"unmasked", false, 8);
    for (bad, code) in [(&oversized, 1009), (&unmasked, 1002)] {
        for (path, echo) in [("/echo", true), ("/sink", false)] {
            // All in one write: the good frames are read in place, then the bad one.
            let first = [&good[..], bad].concat();
            let (closed, frames) = failing(&server, path, &first, &[]).await;
            assert_eq!(closed, Some(code), "{path}");
            let echoed = if echo {
                vec![
                    data(BINARY, &pattern(16, 9)),
                    data(BINARY, &pattern(100, 4)),
                ]
            } else {
                vec![]
            };
            assert_eq!(frames, echoed, "{path} {code}");
        }
    }
    let (_, stopped) = server.stop();
    assert_eq!(stopped["messages_in"], 8);
    assert_eq!(stopped["protocol_errors"], 4);
}

/// Headers that break a rule, each arriving whole behind a good message (which is read in
/// place first, and echoed): RSV1 without deflate, RSV2, reserved data and control opcodes,
/// a ping of 126 bytes, a fragmented ping and a one-byte close payload fail with 1002; a
/// 64-bit length with its top bit set fails with 1009, as any length over the limit does.
#[tokio::test]
async fn rule_breaking_headers_behind_a_good_message_fail_with_their_codes() {
    let server = TestServer::start_with("perf", &[]);
    let good = client_frame(BINARY, true, b"good");
    let with_bits = |bits: u8| {
        let mut bytes = client_frame(BINARY, true, b"bits");
        bytes[0] |= bits;
        bytes
    };
    let cases = [
        (with_bits(0x40), 1002),
        (with_bits(0x20), 1002),
        (with_bits(0x10), 1002),
        (client_frame(0x3, true, b"data?"), 1002),
        (client_frame(0xB, true, b"control?"), 1002),
        (client_frame(PING, true, &[0; 126]), 1002),
        (client_frame(PING, false, b"part"), 1002),
        (client_frame(CLOSE, true, &[0x03]), 1002),
        (frame(BINARY, true, b"", true, 1 << 63), 1009),
    ];
    let mut failed = 0;
    for (bad, code) in &cases {
        for (path, echo) in [("/echo", true), ("/sink", false)] {
            let first = [&good[..], bad].concat();
            let (closed, frames) = failing(&server, path, &first, &[]).await;
            assert_eq!(closed, Some(*code), "{path} {bad:02x?}");
            let echoed = if echo {
                vec![data(BINARY, b"good")]
            } else {
                vec![]
            };
            assert_eq!(frames, echoed, "{path} {bad:02x?}");
            failed += 1;
        }
    }
    let (_, stopped) = server.stop();
    assert_eq!(stopped["messages_in"], failed);
    assert_eq!(stopped["protocol_errors"], failed);
}

/// A masked binary frame whose length takes the 16-bit (`wide` false) or 64-bit field
/// though it would fit in fewer bytes.
fn non_minimal(payload: &[u8], wide: bool) -> Vec<u8> {
    let mut bytes = vec![0x80 | BINARY];
    if wide {
        bytes.push(0x80 | 127);
        bytes.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    } else {
        bytes.push(0x80 | 126);
        bytes.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    let mask = [0x21, 0x7e, 0x90, 0x0c];
    bytes.extend_from_slice(&mask);
    bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    bytes
}

/// In one write: frames with non-minimal lengths (accepted and echoed), an empty binary
/// message, a close, and messages after it, which are neither echoed nor counted.
#[tokio::test]
async fn non_minimal_lengths_are_taken_and_nothing_after_a_close_is() {
    for (mode, path, echo) in [
        ("perf", "/echo", true),
        ("perf", "/sink", false),
        ("echo", "/", true),
    ] {
        let server = TestServer::start_with(mode, &[]);
        let mut peer = Peer::connect(&server, path).await;
        let bytes = [
            non_minimal(b"sixteen", false),
            non_minimal(b"sixty-four", true),
            client_frame(BINARY, true, b""),
            client_frame(CLOSE, true, &close_payload(1000, "")),
            client_frame(BINARY, true, b"after"),
            client_frame(PING, true, b"after"),
        ]
        .concat();
        within(peer.tcp.write_all(&bytes)).await.unwrap();
        let frames = within(read_frames(&mut peer.tcp, true)).await;
        let mut expected = if echo {
            vec![
                data(BINARY, b"sixteen"),
                data(BINARY, b"sixty-four"),
                data(BINARY, b""),
            ]
        } else {
            vec![]
        };
        expected.push(data(CLOSE, &close_payload(1000, "")));
        assert_eq!(frames, expected, "{mode} {path}");
        let (_, stopped) = server.stop();
        assert_eq!(stopped["messages_in"], 3, "{mode} {path}");
        assert_eq!(stopped["bytes_in"], 17, "{mode} {path}");
        assert_eq!(stopped["protocol_errors"], 0, "{mode} {path}");
    }
}
