//! Batch sends over a real TCP socket: order and counts at the peer, the write buffer bound
//! held across a long batch, a refused message in the middle, a batch cut by a stalled peer;
//! review findings: the send timeout bounds a batch, a ping during a long batch on a
//! sender's clone is answered between its writes, lost messages come with a connection error.

use std::time::Duration;

use bytes::BytesMut;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::either::Either;

use super::{Typed, Whole, send};
use crate::TransportConfig;
use crate::error::Error;
use crate::link::{ConnectionState, Link};
use crate::message::{Message, MessageType};
use crate::test_support::{PingTimes, assert_pong_in_time, small_buffer_sockets, within};
use crate::wire::{Inbound, Outbound, ReadLimits, Role};

/// The client's write side (a batch's sender) and the server's read side, on one socket.
async fn pair(
    config: &TransportConfig,
) -> (Outbound, Link, Inbound<tokio::net::tcp::OwnedReadHalf>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (_, write) = client.unwrap().into_split();
    let (read, _) = accepted.unwrap().0.into_split();
    let limits = ReadLimits {
        message: 1 << 20,
        frame: 1 << 20,
        read_size: 4096,
    };
    let inbound = Inbound::new(read, BytesMut::new(), limits, Role::Server);
    let outbound = Outbound::new(Either::Left(write), Role::Client);
    (outbound, Link::new(config), inbound)
}

fn config(write_buffer_size: usize, send_timeout: Duration) -> TransportConfig {
    TransportConfig {
        write_buffer_size,
        send_timeout,
        ..TransportConfig::new("ws://127.0.0.1:1/") // tidy:allow-port: never connected; only the limits are read
    }
}

/// Message `i`: its number (4 bytes, big-endian), then `len - 4` bytes of filler.
fn numbered(i: u32, len: usize) -> Vec<u8> {
    let mut data = vec![0x5A; len.max(4)];
    data[..4].copy_from_slice(&i.to_be_bytes());
    data
}

/// A batch many times the write buffer goes out whole and in order, and each piece written
/// is about one write buffer: nothing is left waiting once it returns.
#[tokio::test]
async fn a_long_batch_arrives_whole_and_in_order() {
    let (mut out, link, mut peer) = pair(&config(1024, Duration::from_secs(10))).await;
    let count = 5_000u32;
    let payloads: Vec<Vec<u8>> = (0..count)
        .map(|i| numbered(i, 4 + (i % 40) as usize))
        .collect();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..count {
            let message = within(peer.next()).await.unwrap().expect("a message");
            assert_eq!(message.message_type, MessageType::Binary);
            seen.push(message.data);
        }
        seen
    });
    let sent = within(send(
        &mut out,
        &link,
        payloads.iter().map(|p| Typed(MessageType::Binary, p)),
        true,
    ))
    .await
    .unwrap();
    assert_eq!(sent, count as usize);
    assert_eq!(out.pending(), 0, "flushed at the end");
    assert_eq!(out.written_total(), out.encoded_total());
    assert_eq!(within(reader).await.unwrap(), payloads);
}

/// A message that cannot be sent stops the batch there: those before it are written (and
/// flushed), it and those after are not, and the connection stays open for the next send.
#[tokio::test]
async fn a_refused_message_stops_the_batch_after_writing_what_came_before() {
    let (mut out, link, mut peer) = pair(&config(64 << 10, Duration::from_secs(10))).await;
    let mut messages: Vec<Message> = (0..10).map(|i| Message::text(format!("m{i}"))).collect();
    messages[4] = Message {
        message_type: MessageType::Text,
        data: vec![0xff, 0xfe],
    };
    let error = within(send(&mut out, &link, messages.iter().map(Whole), true))
        .await
        .unwrap_err();
    assert!(matches!(error.error, Error::InvalidUtf8), "{error:?}");
    assert_eq!((error.written, error.encoded), (4, 4));
    assert!(error.message_refused());
    assert_eq!(link.state(), ConnectionState::Open);
    let after = [Message::text("after")];
    assert_eq!(
        within(send(&mut out, &link, after.iter().map(Whole), true))
            .await
            .unwrap(),
        1
    );
    for expected in ["m0", "m1", "m2", "m3", "after"] {
        let message = within(peer.next()).await.unwrap().unwrap();
        assert_eq!(message.as_text().unwrap(), expected);
    }
}

/// A close inside a batch ends it: the close goes out, the next message is refused with the
/// connection's closed error, and the counts say so.
#[tokio::test]
async fn a_message_after_a_close_in_the_batch_is_refused() {
    let (mut out, link, mut peer) = pair(&config(64 << 10, Duration::from_secs(10))).await;
    let messages = [
        Message::binary(vec![1]),
        Message::close(1000, "bye"),
        Message::binary(vec![2]),
    ];
    let error = within(send(&mut out, &link, messages.iter().map(Whole), true))
        .await
        .unwrap_err();
    assert!(matches!(error.error, Error::ConnectionClosed), "{error:?}");
    assert_eq!((error.written, error.encoded), (2, 2));
    assert!(!error.message_refused());
    assert_eq!(within(peer.next()).await.unwrap().unwrap().data, vec![1]);
    let close = within(peer.next()).await.unwrap().unwrap();
    assert_eq!(close.close_code(), Some(1000));
}

/// A peer that reads nothing: the batch fills the socket, its write stalls and the send
/// timeout cuts it. Pieces went out before (`written > 0`), at most one write buffer's worth
/// of messages was waiting (memory bounded whatever the batch's length), and exactly the
/// first `written` messages reach the peer whole once it reads.
#[tokio::test]
async fn a_batch_cut_by_a_stalled_peer_counts_the_messages_written_whole() {
    let buffer = 8 << 10;
    let size = 1000;
    let (mut out, link, mut peer) = pair(&config(buffer, Duration::from_millis(300))).await;
    // Far more than the socket buffers of both ends hold.
    let count = 200_000u32;
    let payloads = (0..count).map(|i| Typed(MessageType::Binary, numbered(i, size)));
    let error = within(send(&mut out, &link, payloads, true))
        .await
        .unwrap_err();
    assert!(
        matches!(error.error, Error::SendTimeout { .. }),
        "{error:?}"
    );
    assert!(
        error.written > 0 && error.written < count as usize,
        "{error:?}"
    );
    assert!(
        error.encoded - error.written <= buffer / size + 1,
        "more than a write buffer waited: {error:?}"
    );
    assert_eq!(link.state(), ConnectionState::Closed);
    drop(out);
    let mut received = 0u32;
    while let Ok(Some(message)) = within(peer.next()).await {
        assert_eq!(message.data[..4], received.to_be_bytes());
        received += 1;
    }
    // A frame cut at the end is not readable; every whole one written is.
    assert_eq!(received as usize, error.written);
}

/// Without the final flush, the batch's tail waits in the buffer (less than the write buffer
/// size) and goes out with the next write; the counts are the same.
#[tokio::test]
async fn a_queued_batch_leaves_its_tail_for_the_next_write() {
    let (mut out, link, mut peer) = pair(&config(4096, Duration::from_secs(10))).await;
    let payloads: Vec<Vec<u8>> = (0..1000).map(|i| numbered(i, 10)).collect();
    let items = payloads.iter().map(|p| Typed(MessageType::Binary, p));
    assert_eq!(
        within(send(&mut out, &link, items, false)).await.unwrap(),
        1000
    );
    assert!(
        out.pending() > 0 && out.pending() < 4096,
        "{}",
        out.pending()
    );
    within(crate::link::flush_bounded(&mut out, &link))
        .await
        .unwrap();
    for i in 0..1000u32 {
        let message = within(peer.next()).await.unwrap().unwrap();
        assert_eq!(message.data[..4], i.to_be_bytes());
    }
}

/// A client socket and its accepted peer with small kernel buffers, and a peer that reads
/// `chunk` bytes every `every` (discarding them): a slow reader that never stops.
async fn trickle_pair(config: &TransportConfig, chunk: usize, every: Duration) -> (Outbound, Link) {
    use tokio::io::AsyncReadExt;
    let (client, mut peer) = small_buffer_sockets().await;
    let (_, write) = client.into_split();
    tokio::spawn(async move {
        let mut buf = vec![0u8; chunk];
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match peer.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    let outbound = Outbound::new(Either::Left(write), Role::Client);
    (outbound, Link::new(config))
}

/// `send_timeout` is documented as the upper bound on one send when the peer does not keep
/// up. One `send` of 8 MB to a peer reading 3.2 MB/s fails with `SendTimeout` after it; a
/// batch of the same 8 MB in 1 KB messages gets a fresh send timeout per intermediate
/// write buffer, so it never times out and takes many times the send timeout.
#[tokio::test]
async fn a_batch_to_a_slow_reader_is_bounded_by_the_send_timeout_like_one_send() {
    let timeout = Duration::from_millis(300);
    let every = Duration::from_millis(20);
    // Control: one send of the same bytes times out.
    let (mut out, link) = trickle_pair(&config(8 << 10, timeout), 64 << 10, every).await;
    let started = tokio::time::Instant::now();
    let one = within(crate::link::send(
        &mut out,
        &link,
        Message::binary(vec![7; 8 << 20]),
        true,
    ))
    .await;
    assert!(matches!(one, Err(Error::SendTimeout { .. })), "{one:?}");
    assert!(started.elapsed() < timeout * 4, "{:?}", started.elapsed());
    // The batch.
    let (mut out, link) = trickle_pair(&config(8 << 10, timeout), 64 << 10, every).await;
    let started = tokio::time::Instant::now();
    let payloads = (0..8192u32).map(|i| Typed(MessageType::Binary, numbered(i, 1 << 10)));
    let result = within(send(&mut out, &link, payloads, true)).await;
    let took = started.elapsed();
    assert!(
        matches!(&result, Err(e) if matches!(e.error, Error::SendTimeout { .. }))
            && took < timeout * 4,
        "the batch took {took:?} (send timeout {timeout:?}) and returned {result:?}"
    );
}

/// A ping that arrives while a clone of the sender runs a long batch (here seconds, within
/// the send timeout: a big batch to a peer that reads steadily) is answered between two of
/// the batch's writes: the peer gets the pong while the batch is still coming, and the
/// receiver hands the ping back as soon as its pong is written. (Found by review: the pong
/// waited for the whole batch, which held the write side throughout.)
#[tokio::test]
async fn a_ping_during_a_long_batch_comes_back_within_the_send_timeout() {
    use tokio::io::AsyncWriteExt;
    let config = config(8 << 10, Duration::from_secs(10));
    let (client, peer) = small_buffer_sockets().await;
    let (read, write) = client.into_split();
    let (peer_read, mut peer_write) = peer.into_split();
    let count = 8_192u32;
    let limits = ReadLimits {
        message: 1 << 20,
        frame: 1 << 20,
        read_size: 4096,
    };
    let (ping_sent, ping_at) = tokio::sync::oneshot::channel();
    // The peer reads 64 KiB every 20 ms (the batch takes about 2.5 s) and pings after 1 MiB;
    // it notes how many of the batch's messages came before the pong, and when the pong came.
    let peer = tokio::spawn(async move {
        let mut inbound = Inbound::new(peer_read, BytesMut::new(), limits, Role::Server);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut received, mut ping_sent, mut pong) = (0u32, Some(ping_sent), None);
        while received < count {
            let message = within(inbound.next()).await.unwrap().expect("a message");
            match message.message_type {
                MessageType::Binary => received += 1,
                MessageType::Pong => pong = Some((received, tokio::time::Instant::now())),
                other => panic!("unexpected {other:?}"),
            }
            if received % 64 == 0 {
                tick.tick().await;
            }
            if received >= 1024
                && let Some(sent) = ping_sent.take()
            {
                peer_write
                    .write_all(&[0x89, 4, b'p', b'i', b'n', b'g'])
                    .await
                    .unwrap();
                let _ = sent.send(tokio::time::Instant::now());
            }
        }
        pong
    });
    let inbound = Inbound::new(Either::Left(read), BytesMut::new(), limits, Role::Client);
    let outbound = Outbound::new(Either::Left(write), Role::Client);
    let link = std::sync::Arc::new(Link::new(&config));
    let (sender, mut receiver) =
        crate::split::split(inbound, outbound, link, crate::pending::Pending::default());
    let batch = tokio::spawn(async move {
        let payloads = (0..count).map(|i| numbered(i, 1 << 10));
        sender.send_batch(MessageType::Binary, payloads).await
    });
    let ping = within(receiver.receive_message()).await.unwrap();
    let returned = tokio::time::Instant::now();
    assert_eq!(ping.message_type, MessageType::Ping);
    let ping_at = within(ping_at).await.unwrap();
    assert_eq!(within(batch).await.unwrap().unwrap(), count as usize);
    assert_pong_in_time(PingTimes {
        ping_at,
        returned,
        pong: within(peer).await.unwrap(),
        count,
    });
}

/// Messages lost in a batch (`written < encoded`) come with the connection's failure, never
/// with a refusal: a refused message whose flush of the messages before it is cut by a
/// stalled peer reports the send timeout, and says the connection cannot send. (Found by
/// review: it reported the refusal, on a closed connection.)
#[tokio::test]
async fn messages_lost_in_a_batch_come_with_a_connection_error() {
    let (client, _stalled) = small_buffer_sockets().await;
    let (_, write) = client.into_split();
    let mut out = Outbound::new(Either::Left(write), Role::Client);
    // A write buffer larger than the batch: nothing is written before the refused message.
    let link = Link::new(&config(64 << 20, Duration::from_millis(300)));
    let mut messages: Vec<Message> = (0..2_000)
        .map(|i| Message::binary(numbered(i, 1 << 10)))
        .collect();
    messages.push(Message {
        message_type: MessageType::Text,
        data: vec![0xff],
    });
    let error = within(send(&mut out, &link, messages.iter().map(Whole), true))
        .await
        .unwrap_err();
    let connection_error = !matches!(error.error, Error::InvalidUtf8);
    assert!(
        error.written == error.encoded || connection_error,
        "{error:?}, connection state {:?}",
        link.state()
    );
    assert!(
        matches!(error.error, Error::SendTimeout { .. }),
        "{error:?}"
    );
    assert!(error.written < error.encoded && !error.message_refused());
    assert_eq!(link.state(), ConnectionState::Closed);
}
