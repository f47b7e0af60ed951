//! The resilient writer's batches (several messages gathered into one flush, the bytes the
//! socket took deciding which messages of a cut batch count as written): cut by a dead peer
//! over plain TCP and over TLS (where the TLS layer buffers what it has taken), and at a
//! shutdown that cuts a batch.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ws_client::resilient::{
    Event, HeartbeatConfig, QueuePolicy, ResilientConfig, ResilientConnection,
};
use ws_client::{Message, MessageType};

use crate::raw_peer::{RawPeer, RawServer};
use crate::resilient_support::{quick_policy, wait_for};
use crate::support::within;
use crate::tls_peer::{TlsPeer, TlsServer};

/// Messages sent: far more than the socket buffers hold, so a flush stalls part-way
/// through a batch.
pub(crate) const COUNT: u32 = 2_000;
/// Each message's size: small enough to be gathered many to a flush.
pub(crate) const SIZE: usize = 4096;

/// The sequence number a [`numbered`] message carries.
pub(crate) fn number(message: &ws_client::Message) -> u32 {
    u32::from_be_bytes(message.data[..4].try_into().expect("4 bytes"))
}

/// Message `i`: its number, then filler to `len` bytes.
pub(crate) fn numbered(i: u32, len: usize) -> Vec<u8> {
    let mut data = vec![0xA5; len];
    data[..4].copy_from_slice(&i.to_be_bytes());
    data
}

/// A heartbeat that ends a stalled connection within seconds, and an outage queue with room
/// for every message, so none comes back and each must arrive. The timeout leaves room for
/// the reconnected socket: its pings wait behind megabytes of messages in the kernel's
/// buffers, which a debug-build peer on a busy machine reads at a few MB/s (300 ms, then
/// 2 s, were not always enough on a loaded machine).
pub(crate) fn cut_config(config: ResilientConfig) -> ResilientConfig {
    ResilientConfig {
        heartbeat: Some(HeartbeatConfig {
            interval: Duration::from_millis(300),
            timeout: Duration::from_secs(4),
        }),
        reconnect: quick_policy(),
        queue: QueuePolicy::Queue {
            max_messages: 4096,
            max_bytes: 64 << 20,
        },
        ..config
    }
}

/// One end a cut test reads from: a plain or a TLS peer.
pub(crate) trait Peer {
    async fn next_message(&mut self) -> Option<Message>;
    async fn send(&mut self, message_type: MessageType, data: &[u8]);
}

impl Peer for RawPeer {
    async fn next_message(&mut self) -> Option<Message> {
        RawPeer::next_message(self).await
    }
    async fn send(&mut self, message_type: MessageType, data: &[u8]) {
        RawPeer::send(self, message_type, data).await;
    }
}

impl Peer for TlsPeer {
    async fn next_message(&mut self) -> Option<Message> {
        TlsPeer::next_message(self).await
    }
    async fn send(&mut self, message_type: MessageType, data: &[u8]) {
        TlsPeer::send(self, message_type, data).await;
    }
}

/// Sends [`COUNT`] numbered messages on `connection` to a `stalled` peer that reads nothing
/// until the heartbeat declares it dead, then reads what the first socket took and what the
/// reconnected one (`healthy`, answering pings) brings: together, each message once and in
/// order, every delivery `Ok`.
/// How [`cut_and_resume`] hands its messages over: one at a time, or in batches of this
/// many (`enqueue_batch`).
pub(crate) type BatchOf = Option<u32>;

pub(crate) async fn cut_and_resume<S: Peer, H: Peer>(
    connection: ResilientConnection,
    mut stalled: S,
    healthy: impl Future<Output = H>,
    batch_of: BatchOf,
) {
    let mut events = connection.events();
    let mut deliveries = Vec::new();
    let mut batches = Vec::new();
    match batch_of {
        None => {
            for i in 0..COUNT {
                deliveries.push(within(connection.enqueue(numbered(i, SIZE))).await.unwrap());
            }
        }
        Some(n) => {
            for start in (0..COUNT).step_by(n as usize) {
                let batch = (start..COUNT.min(start + n)).map(|i| numbered(i, SIZE));
                batches.push(within(connection.enqueue_batch(batch)).await.unwrap());
            }
        }
    }
    match wait_for(&mut events, |e| matches!(e, Event::Disconnected { .. })).await {
        Event::Disconnected { error, .. } => {
            assert!(
                matches!(*error, ws_client::Error::PeerDead { .. }),
                "{error:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // What the first socket took reaches the stalled peer once it reads: the client's kernel
    // still delivers it, then its FIN. A frame (or TLS record) cut short at the end is not
    // readable. Meanwhile the reconnected socket is served (its pings answered, or the
    // heartbeat would take a slow reader for a dead peer too).
    let drain_first = async {
        let mut first = Vec::new();
        while let Some(message) = stalled.next_message().await {
            if message.message_type == MessageType::Binary {
                first.push(number(&message));
            }
        }
        first
    };
    let serve_second = async {
        let mut healthy = within(healthy).await;
        let mut second = Vec::new();
        let started = Instant::now();
        // Until the last message, or the socket ends (then the assertion below says what
        // was missing).
        while second.last() != Some(&(COUNT - 1)) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the second socket brought {} messages in 20 s",
                second.len()
            );
            let Some(message) = healthy.next_message().await else {
                break;
            };
            match message.message_type {
                MessageType::Binary => second.push(number(&message)),
                MessageType::Ping => healthy.send(MessageType::Pong, &message.data).await,
                _ => {}
            }
        }
        second
    };
    let (first, second) = tokio::join!(drain_first, serve_second);
    assert!(!first.is_empty(), "the first socket took nothing");
    let resumed = second.first().copied();
    let all: Vec<u32> = first.iter().chain(&second).copied().collect();
    assert!(
        all == (0..COUNT).collect::<Vec<_>>(),
        "each once, in order: the first socket had 0..={:?}, the second resumed at {resumed:?} \
         and ended at {:?} after {} messages",
        first.last(),
        second.last(),
        second.len()
    );
    for delivery in deliveries {
        within(delivery)
            .await
            .expect("written on one connection or the other");
    }
    for batch in batches {
        within(batch)
            .await
            .expect("every message written on one connection or the other");
    }
    let metrics = connection.metrics();
    assert_eq!(
        (metrics.messages_sent, metrics.messages_failed),
        (u64::from(COUNT), 0)
    );
}

/// A flush stalled part-way through a batch and cut by a dead peer: the messages whose
/// frames the socket took whole count as written (the peer gets them from the kernel), the
/// others are written again after the reconnect, none twice.
#[tokio::test]
async fn a_batch_cut_by_a_dead_peer_resends_exactly_the_messages_the_socket_did_not_take() {
    let listener = RawServer::bind_small_receive_buffer();
    let config = cut_config(ResilientConfig::new(listener.url()));
    let (connection, stalled) = within(async {
        tokio::join!(ResilientConnection::connect(config), listener.accept_peer())
    })
    .await;
    let connection = connection.expect("connect");
    cut_and_resume(connection, stalled, listener.accept_peer(), None).await;
}

/// The TLS layer takes bytes into its own buffer (up to 64 KiB of records) before the socket
/// has them: a message whose bytes were still there when the connection was declared dead
/// never left the process, so it must be written again, not counted as written.
#[tokio::test]
async fn a_batch_cut_over_tls_resends_what_the_tls_layer_still_held() {
    let server = TlsServer::bind_small_receive_buffer();
    let config = cut_config(ResilientConfig {
        transport: server.transport(),
        ..ResilientConfig::new(server.transport().url)
    });
    let (connection, stalled) = within(async {
        tokio::join!(
            ResilientConnection::connect(config),
            Box::pin(server.accept_peer())
        )
    })
    .await;
    let connection = connection.expect("connect over TLS");
    cut_and_resume(connection, stalled, Box::pin(server.accept_peer()), None).await;
}

/// Dropping the connection while a batch's flush is stalled cuts the batch; the close that
/// follows writes out what was left in the write buffer (whole frames of that batch) before
/// its close frame. Those messages reached the peer: they must resolve `Ok`, not come back
/// as unsent (`messages_failed` counts "handed back unsent"), or a caller that sends again
/// what came back sends them twice.
#[tokio::test]
async fn a_batch_cut_by_a_shutdown_hands_back_only_what_the_close_did_not_write() {
    let listener = RawServer::bind_small_receive_buffer();
    let config = ResilientConfig {
        heartbeat: None,
        // Every message fits the channel: the enqueues do not wait for the stalled writer.
        send_buffer: COUNT as usize,
        reconnect: quick_policy(),
        ..ResilientConfig::new(listener.url())
    };
    let (connection, peer) = within(async {
        tokio::join!(ResilientConnection::connect(config), listener.accept_peer())
    })
    .await;
    let connection = connection.expect("connect");
    let mut deliveries = Vec::new();
    for i in 0..COUNT {
        deliveries.push(within(connection.enqueue(numbered(i, SIZE))).await.unwrap());
    }
    // The peer reads nothing: the writer stalls in a batch's flush. A stall cannot signal
    // itself; wait until the count of messages written stops moving.
    within(async {
        let mut last = u64::MAX;
        loop {
            let now = connection.metrics().messages_sent;
            if now == last && now > 0 {
                break;
            }
            last = now;
            tokio::time::sleep(Duration::from_millis(300)).await; // tidy:allow-sleep: a stall sends no event; this polls for the count to stop moving
        }
    })
    .await;
    let written_before = connection.metrics().messages_sent;
    assert!(written_before < u64::from(COUNT), "nothing stalled");
    drop(connection);
    // Now the peer reads: the close handshake's write gets through, after what was left.
    let mut peer = peer;
    let mut received = BTreeSet::new();
    loop {
        let message = peer.next_message().await.expect("the client's close frame");
        match message.message_type {
            MessageType::Binary => {
                assert!(
                    received.insert(number(&message)),
                    "twice: {}",
                    number(&message)
                );
            }
            MessageType::Close => {
                peer.send(MessageType::Close, &message.data).await;
                break;
            }
            _ => {}
        }
    }
    let mut written = BTreeSet::new();
    for (i, delivery) in (0..COUNT).zip(deliveries) {
        let outcome = within(delivery).await;
        if outcome.is_ok() {
            written.insert(i);
        }
    }
    assert!(
        received.len() as u64 > written_before,
        "the close wrote nothing of the cut batch ({written_before} written before the drop)"
    );
    let handed_back_but_received: Vec<_> = received.difference(&written).collect();
    let written_but_not_received: Vec<_> = written.difference(&received).collect();
    assert!(
        handed_back_but_received.is_empty() && written_but_not_received.is_empty(),
        "received {} messages, {} resolved Ok; handed back although received: {:?}; \
         Ok although not received: {:?}",
        received.len(),
        written.len(),
        handed_back_but_received,
        written_but_not_received
    );
}
