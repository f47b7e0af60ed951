//! The heartbeat against raw peers: a silent partition (the peer stops answering, the socket
//! stays open) is declared dead within interval + timeout as a typed error and a
//! `Disconnected` event, without anyone calling `receive`, and the client reconnects when
//! the peer heals; a live peer's pongs give the round-trip time.

use std::time::{Duration, Instant};

use ws_client::resilient::{Event, HeartbeatConfig, ResilientConfig, ResilientConnection};
use ws_client::{Error, MessageType};

use crate::raw_peer::{RawPeer, RawServer};
use crate::resilient_support::{assert_declared_dead, quick_policy, wait_for};
use crate::support::within;

const INTERVAL: Duration = Duration::from_millis(1000);
const TIMEOUT: Duration = Duration::from_millis(1000);

fn heartbeat_config(url: &str) -> ResilientConfig {
    ResilientConfig {
        heartbeat: Some(HeartbeatConfig {
            interval: INTERVAL,
            timeout: TIMEOUT,
        }),
        reconnect: quick_policy(),
        ..ResilientConfig::new(url)
    }
}

/// Plays a healthy server: answers each ping with a pong followed by a text frame saying
/// so, and the client's close with a close.
async fn answer_pings(mut peer: RawPeer) {
    while let Some(message) = peer.next_message().await {
        match message.message_type {
            MessageType::Ping => {
                peer.send(MessageType::Pong, &message.data).await;
                peer.send(MessageType::Text, b"ponged").await;
            }
            MessageType::Close => return peer.send(MessageType::Close, &message.data).await,
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_silent_peer_is_declared_dead_within_interval_plus_timeout_and_the_client_comes_back() {
    let listener = RawServer::bind();
    let (connection, silent) = within(async {
        tokio::join!(
            ResilientConnection::connect(heartbeat_config(&listener.url())),
            listener.accept_peer()
        )
    })
    .await;
    let mut connection = connection.expect("connect");
    let connected_at = Instant::now();
    let mut events = connection.events();
    // The peer keeps its socket open and never answers: a partition, not a crash.
    let disconnected = wait_for(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    let detected_after = connected_at.elapsed();
    let heartbeat = HeartbeatConfig {
        interval: INTERVAL,
        timeout: TIMEOUT,
    };
    assert_declared_dead(disconnected, detected_after, heartbeat);
    assert!(
        detected_after >= TIMEOUT,
        "declared too early: {detected_after:?}"
    );
    drop(silent);

    // The peer heals: the listener accepts again and answers pings.
    let healthy = listener.accept_peer().await;
    tokio::spawn(answer_pings(healthy));
    match wait_for(&mut events, |e| matches!(e, Event::Connected { .. })).await {
        Event::Connected { generation, .. } => assert_eq!(generation, 2),
        other => panic!("{other:?}"),
    }
    // The text follows the pong on the wire, so the pong has been read when it arrives.
    let message = within(connection.receive()).await.unwrap();
    assert_eq!(message.as_text().unwrap(), "ponged");
    let metrics = connection.metrics();
    let rtt = metrics
        .heartbeat_rtt
        .expect("a round-trip time after a pong");
    assert!(rtt < INTERVAL, "{rtt:?}");
    assert!(metrics.heartbeat_srtt.is_some());
    assert_eq!((metrics.disconnects, metrics.reconnects), (1, 1));
    within(connection.close()).await.unwrap();
}

#[tokio::test]
async fn traffic_without_pongs_keeps_a_peer_alive() {
    let listener = RawServer::bind();
    let (connection, peer) = within(async {
        tokio::join!(
            ResilientConnection::connect(heartbeat_config(&listener.url())),
            listener.accept_peer()
        )
    })
    .await;
    let mut connection = connection.expect("connect");
    let mut peer = peer;
    // The peer never answers a ping but sends a message after each: other traffic counts.
    let chatty = tokio::spawn(async move {
        for _ in 0..3 {
            match peer.next_message().await {
                Some(message) if message.message_type == MessageType::Ping => {
                    peer.send(MessageType::Text, b"busy").await;
                }
                Some(_) => {}
                None => break,
            }
        }
        peer
    });
    for _ in 0..3 {
        let message = within(connection.receive()).await.unwrap();
        assert_eq!(message.as_text().unwrap(), "busy");
    }
    let _peer = within(chatty).await.unwrap();
    // Three pings went unanswered over three intervals, and still no disconnect.
    let metrics = connection.metrics();
    assert_eq!(metrics.disconnects, 0, "{metrics:?}");
    assert!(metrics.connected && metrics.heartbeat_rtt.is_none());
}

#[tokio::test]
async fn a_write_cut_by_a_dead_peer_is_sent_again_whole_after_the_reconnect() {
    let listener = RawServer::bind();
    let (connection, stalled) = within(async {
        tokio::join!(
            ResilientConnection::connect(heartbeat_config(&listener.url())),
            listener.accept_peer()
        )
    })
    .await;
    let connection = connection.expect("connect");
    let mut events = connection.events();
    // Far more than the socket buffers hold: the write stalls, as the peer neither reads nor
    // answers. The heartbeat's ping waits behind it, and the peer is declared dead anyway.
    let big = crate::support::pattern(8 << 20, 5);
    let delivery = within(connection.enqueue(big.clone())).await.unwrap();
    match wait_for(&mut events, |e| matches!(e, Event::Disconnected { .. })).await {
        Event::Disconnected { error, .. } => {
            assert!(matches!(*error, Error::PeerDead { .. }), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    drop(stalled);
    let mut healthy = listener.accept_peer().await;
    let received = healthy
        .next_message()
        .await
        .expect("the message, sent again");
    assert_eq!(received.message_type, MessageType::Binary);
    assert!(
        received.data == big,
        "the message arrived whole and unchanged"
    );
    within(delivery)
        .await
        .expect("written on the second connection");
    let metrics = connection.metrics();
    assert_eq!((metrics.messages_sent, metrics.messages_failed), (1, 0));
}

#[tokio::test]
async fn a_caller_that_does_not_read_is_not_taken_for_a_dead_peer() {
    let listener = RawServer::bind();
    let config = ResilientConfig {
        receive_buffer: 2,
        heartbeat: Some(HeartbeatConfig {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(200),
        }),
        ..heartbeat_config(&listener.url())
    };
    let (connection, peer) = within(async {
        tokio::join!(ResilientConnection::connect(config), listener.accept_peer())
    })
    .await;
    let mut connection = connection.expect("connect");
    let mut peer = peer;
    for i in 0..50u8 {
        peer.send(MessageType::Binary, &[i]).await;
    }
    let serving = tokio::spawn(answer_pings(peer));
    // The receive buffer fills and the pongs wait behind the unread messages, for several
    // times interval + timeout: the silence is ours, not the peer's.
    tokio::time::sleep(Duration::from_millis(1500)).await; // tidy:allow-sleep: not reading is the test
    for i in 0..50u8 {
        let (generation, message) = within(connection.receive_with_generation()).await.unwrap();
        assert_eq!((generation, message.data), (1, vec![i]));
    }
    assert_eq!(connection.metrics().disconnects, 0);
    within(connection.close()).await.unwrap();
    within(serving).await.unwrap();
}
