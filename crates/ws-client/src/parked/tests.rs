//! The parked pong over a real TCP socket when the sender that holds the write side sends
//! large messages (written from their own memory, which a pong may not be appended behind):
//! the pong still goes out between two of them. (Found by review: every flush found a large
//! payload pending and left the pong parked, so it waited for the sender to stop.) And a
//! pong still parked when our close is encoded is dropped, never written after the close.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio_util::either::Either;

use crate::TransportConfig;
use crate::link::Link;
use crate::message::{Message, MessageType};
use crate::test_support::{PingTimes, assert_pong_in_time, small_buffer_sockets, within};
use crate::wire::{Inbound, OWNED_PAYLOAD_FROM, Outbound, ReadLimits, Role};

/// A sender clone sends 64 KiB messages one `send` after another (each written from its own
/// memory) to a peer that reads steadily for about three seconds; the peer pings early on.
/// The pong reaches it within a second, while the messages are still coming, and the
/// receiver hands the ping back as soon.
#[tokio::test]
async fn a_ping_while_a_sender_streams_large_messages_is_answered_between_them() {
    let size = 64 << 10;
    assert!(size >= OWNED_PAYLOAD_FROM);
    let count = 320u32;
    let config = TransportConfig {
        send_timeout: Duration::from_secs(10),
        ..TransportConfig::new("ws://127.0.0.1:1/") // tidy:allow-port: never connected; only the limits are read
    };
    let limits = ReadLimits {
        message: 1 << 20,
        frame: 1 << 20,
        read_size: 64 << 10,
    };
    let (client, peer) = small_buffer_sockets().await;
    let (read, write) = client.into_split();
    let (peer_read, mut peer_write) = peer.into_split();
    let (ping_sent, ping_at) = tokio::sync::oneshot::channel();
    // About 7 MiB a second: 20 MiB take about three seconds. The ping goes after 16
    // messages; the peer notes how many messages came before the pong, and when it came.
    let peer = tokio::spawn(async move {
        let mut inbound = Inbound::new(peer_read, BytesMut::new(), limits, Role::Server);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut received, mut ping_sent, mut pong) = (0u32, Some(ping_sent), None);
        while received < count {
            let message = within(inbound.next()).await.unwrap().expect("a message");
            match message.message_type {
                MessageType::Binary => {
                    received += 1;
                    if received % 2 == 0 {
                        tick.tick().await;
                    }
                }
                MessageType::Pong => pong = Some((received, tokio::time::Instant::now())),
                other => panic!("unexpected {other:?}"),
            }
            if received >= 16
                && let Some(sent) = ping_sent.take()
            {
                peer_write.write_all(&[0x89, 1, b'p']).await.unwrap();
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
    let sending = tokio::spawn(async move {
        for _ in 0..count {
            sender.send(Message::binary(vec![7u8; size])).await?;
        }
        Ok::<_, crate::Error>(())
    });
    let ping = within(receiver.receive_message()).await.unwrap();
    let returned = tokio::time::Instant::now();
    assert_eq!(ping.message_type, MessageType::Ping);
    let ping_at = within(ping_at).await.unwrap();
    within(sending).await.unwrap().unwrap();
    assert_pong_in_time(PingTimes {
        ping_at,
        returned,
        pong: within(peer).await.unwrap(),
        count,
    });
}

/// A pong still parked when our close frame is encoded is dropped, not written after the
/// close (RFC 6455 section 5.5.1), and its ticket is finished, so a receiver waiting for it
/// does not wait on.
#[tokio::test]
async fn a_pong_parked_when_our_close_is_encoded_is_dropped_and_finished() {
    let config = TransportConfig::new("ws://127.0.0.1:1/"); // tidy:allow-port: never connected; only the limits are read
    let (client, peer) = small_buffer_sockets().await;
    let (_, write) = client.into_split();
    let mut out = Outbound::new(Either::Left(write), Role::Client);
    let link = Link::new(&config);
    let ticket = link.pong.park(b"late".to_vec());
    crate::link::send(&mut out, &link, Message::close(1000, "bye"), true)
        .await
        .unwrap();
    within(link.pong.written(ticket)).await;
    drop(out);
    // Everything the peer got, raw: one masked close frame (code and "bye"), nothing after.
    use tokio::io::AsyncReadExt;
    let mut peer = peer;
    let mut bytes = Vec::new();
    within(peer.read_to_end(&mut bytes)).await.unwrap();
    assert_eq!(bytes.len(), 2 + 4 + 5, "{bytes:02x?}");
    assert_eq!(bytes[..2], [0x88, 0x80 | 5], "{bytes:02x?}");
}
