//! `enqueue_batch` on a resilient connection over real sockets: a batch cut in the middle by
//! a dead peer (plain and TLS) resends exactly what the socket did not take; with
//! `FailFast` what was not written comes back and the rest arrived, none both; a batch
//! handed over during an outage waits within the queue's bounds and the overflow comes back.

use std::collections::BTreeSet;

use ws_client::resilient::{Event, QueuePolicy, ResilientConfig, ResilientConnection};
use ws_client::{Message, MessageType};

use crate::raw_peer::RawServer;
use crate::resilient_batch::{COUNT, SIZE, cut_and_resume, cut_config, number, numbered};
use crate::resilient_support::{quick_policy, wait_for};
use crate::support::within;
use crate::tls_peer::TlsServer;

/// Batches of this many: several batches, each longer than the writer's gathered write, so
/// the cut falls inside one.
const BATCH: u32 = 300;

#[tokio::test]
async fn a_batch_cut_by_a_dead_peer_resends_exactly_its_messages_the_socket_did_not_take() {
    let listener = RawServer::bind_small_receive_buffer();
    let config = cut_config(ResilientConfig::new(listener.url()));
    let (connection, stalled) = within(async {
        tokio::join!(ResilientConnection::connect(config), listener.accept_peer())
    })
    .await;
    let connection = connection.expect("connect");
    cut_and_resume(connection, stalled, listener.accept_peer(), Some(BATCH)).await;
}

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
    cut_and_resume(
        connection,
        stalled,
        Box::pin(server.accept_peer()),
        Some(BATCH),
    )
    .await;
}

/// `FailFast`, a stalled peer declared dead in the middle of a batch: the receipts list
/// every message that was not written (the cut write's rest with the drop's error, the rest
/// of the batch and later batches with `ConnectionDown`), and the peer got exactly the
/// others, in order: nothing lost silently, nothing both delivered and handed back.
#[tokio::test]
async fn with_fail_fast_a_cut_batch_hands_back_exactly_what_the_peer_did_not_get() {
    let listener = RawServer::bind_small_receive_buffer();
    let config = ResilientConfig {
        queue: QueuePolicy::FailFast,
        ..cut_config(ResilientConfig::new(listener.url()))
    };
    let (connection, stalled) = within(async {
        tokio::join!(ResilientConnection::connect(config), listener.accept_peer())
    })
    .await;
    let connection = connection.expect("connect");
    let mut stalled = stalled;
    let mut receipts = Vec::new();
    for start in (0..COUNT).step_by(BATCH as usize) {
        let batch = (start..COUNT.min(start + BATCH)).map(|i| numbered(i, SIZE));
        receipts.push((
            start,
            within(connection.enqueue_batch(batch)).await.unwrap(),
        ));
    }
    let mut unsent = BTreeSet::new();
    let mut down = 0;
    for (start, receipt) in receipts {
        if let Err(failed) = within(receipt).await {
            for (index, back) in failed.unsent {
                let n = start + index as u32;
                assert_eq!(number(&back.message), n, "handed back with its index");
                down += usize::from(matches!(back.error, ws_client::Error::ConnectionDown));
                assert!(unsent.insert(n));
            }
        }
    }
    assert!(down > 0, "no message came back as sent while down");
    let mut received = Vec::new();
    while let Some(message) = stalled.next_message().await {
        if message.message_type == MessageType::Binary {
            received.push(number(&message));
        }
    }
    assert!(!received.is_empty(), "the socket took nothing");
    assert_eq!(
        received,
        (0..received.len() as u32).collect::<Vec<_>>(),
        "in order"
    );
    let delivered: BTreeSet<u32> = received.into_iter().collect();
    assert!(delivered.is_disjoint(&unsent), "delivered and handed back");
    assert_eq!(
        delivered.len() + unsent.len(),
        COUNT as usize,
        "lost silently"
    );
    let metrics = connection.metrics();
    assert_eq!(metrics.messages_sent as usize, delivered.len());
    assert_eq!(metrics.messages_failed as usize, unsent.len());
}

/// A batch handed over while the connection is down: its messages wait in the outage queue
/// up to its bound and go out in order after the reconnect, before a message sent after
/// the batch; those beyond the bound come back in the batch's receipt.
#[tokio::test]
async fn a_batch_during_an_outage_waits_within_the_queue_bound_and_keeps_its_order() {
    let listener = RawServer::bind();
    let config = ResilientConfig {
        heartbeat: None,
        reconnect: quick_policy(),
        queue: QueuePolicy::Queue {
            max_messages: 10,
            max_bytes: 1 << 20,
        },
        ..ResilientConfig::new(listener.url())
    };
    let (connection, first) = within(async {
        tokio::join!(ResilientConnection::connect(config), listener.accept_peer())
    })
    .await;
    let connection = connection.expect("connect");
    let mut events = connection.events();
    drop(first);
    wait_for(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    let batch = (0..25u32).map(|i| Message::binary(numbered(i, 16)));
    let receipt = within(connection.enqueue_batch(batch)).await.unwrap();
    // Not accepted yet, so still down (the reconnect waits for the handshake's answer). A
    // message after the batch finds the queue full: the batch was taken in before it.
    let probe = within(connection.enqueue(numbered(98, 16))).await.unwrap();
    let back = within(probe).await.expect_err("the queue is full");
    assert!(matches!(
        back.error,
        ws_client::Error::OutageQueueFull { .. }
    ));
    let mut peer = within(listener.accept_peer()).await;
    wait_for(&mut events, |e| {
        matches!(e, Event::Connected { generation: 2, .. })
    })
    .await;
    let after = within(connection.enqueue(numbered(99, 16))).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 11 {
        let message = within(peer.next_message()).await.expect("a message");
        if message.message_type == MessageType::Binary {
            got.push(number(&message));
        }
    }
    let mut expected: Vec<u32> = (0..10).collect();
    expected.push(99);
    assert_eq!(
        got, expected,
        "the queued part of the batch first, in order"
    );
    within(after).await.unwrap();
    let failed = within(receipt).await.expect_err("15 did not fit the queue");
    assert_eq!(failed.count, 25);
    let indices: Vec<usize> = failed.unsent.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, (10..25).collect::<Vec<_>>());
    assert!(
        failed
            .unsent
            .iter()
            .all(|(_, back)| matches!(back.error, ws_client::Error::OutageQueueFull { .. }))
    );
}

/// A batch with a message that can never be sent is refused whole, every message back in
/// order; an empty batch resolves at once.
#[tokio::test]
async fn a_batch_with_an_unsendable_message_is_refused_whole() {
    let listener = RawServer::bind();
    let config = ResilientConfig {
        heartbeat: None,
        ..ResilientConfig::new(listener.url())
    };
    let (connection, _peer) = within(async {
        tokio::join!(ResilientConnection::connect(config), listener.accept_peer())
    })
    .await;
    let connection = connection.expect("connect");
    let batch = vec![
        Message::text("a"),
        Message::close(1000, ""),
        Message::text("c"),
    ];
    let refused = within(connection.enqueue_batch(batch)).await.unwrap_err();
    assert_eq!(refused.index, Some(1));
    assert!(matches!(
        refused.error,
        ws_client::Error::InvalidCloseFrame(_)
    ));
    assert_eq!(refused.messages.len(), 3);
    assert_eq!(refused.messages[2].as_text().unwrap(), "c");
    let empty: Vec<Message> = Vec::new();
    within(within(connection.enqueue_batch(empty)).await.unwrap())
        .await
        .unwrap();
}
