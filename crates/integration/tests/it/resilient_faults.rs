//! The resilient connection's retry classes against raw peers doing exactly one thing: HTTP
//! 503 with and without `Retry-After` (retried, the delay honoured), 401 and 403 (not
//! retried), a close 1008 (not retried), 1001 and 1012 (retried), with the event sequence
//! of a reconnect.

use std::time::{Duration, Instant};

use ws_client::resilient::{
    Event, LinkStatus, ReconnectPolicy, ResilientConfig, ResilientConnection, RetryClass,
};
use ws_client::{Error, MessageType};

use crate::raw_peer::{RawPeer, RawServer};
use crate::resilient_support::{events_until, quick_config, wait_for};
use crate::support::within;

const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";

/// A configuration that retries the first connect, with short waits.
fn retrying(url: &str) -> ResilientConfig {
    ResilientConfig {
        retry_first_connect: true,
        reconnect: ReconnectPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(5),
            max_attempts: Some(4),
            ..ReconnectPolicy::default()
        },
        ..ResilientConfig::new(url)
    }
}

/// Connects `config` while `serve` plays the server; returns both outcomes.
async fn connect_against<T>(
    config: ResilientConfig,
    serve: impl std::future::Future<Output = T>,
) -> (Result<ResilientConnection, Error>, T) {
    within(async { tokio::join!(ResilientConnection::connect(config), serve) }).await
}

#[tokio::test]
async fn a_503_is_retried_and_its_retry_after_honoured() {
    let listener = RawServer::bind();
    let busy = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n";
    let (connection, (refused_at, accepted_at, _peer)) =
        connect_against(retrying(&listener.url()), async {
            listener.refuse(busy).await;
            let refused_at = Instant::now();
            let peer = listener.accept_peer().await;
            (refused_at, Instant::now(), peer)
        })
        .await;
    let connection = connection.expect("connected on the second attempt");
    let waited = accepted_at - refused_at;
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 not honoured: {waited:?}"
    );
    let mut events = connection.events();
    let seen = events_until(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    match &seen[..] {
        [
            Event::Connecting { attempt: 1 },
            Event::Reconnecting {
                attempt: 2,
                delay,
                error,
            },
            Event::Connecting { attempt: 2 },
            Event::Connected {
                generation: 1,
                attempt: 2,
                ..
            },
        ] => {
            let retry_after = Some(Duration::from_secs(1));
            assert!(
                matches!(**error, Error::HandshakeRejected { status: Some(503), retry_after: r, .. } if r == retry_after),
                "{error:?}"
            );
            assert!(*delay >= Duration::from_secs(1) && *delay <= Duration::from_millis(1100));
        }
        other => panic!("unexpected events: {other:#?}"),
    }
}

#[tokio::test]
async fn a_503_without_retry_after_is_retried_after_the_backoff() {
    let listener = RawServer::bind();
    let (connection, _peer) = connect_against(retrying(&listener.url()), async {
        listener.refuse(UNAVAILABLE).await;
        listener.refuse(UNAVAILABLE).await;
        listener.accept_peer().await
    })
    .await;
    let connection = connection.expect("connected on the third attempt");
    let mut events = connection.events();
    let seen = events_until(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    let delays: Vec<Duration> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Reconnecting { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect();
    // Full jitter under a ceiling of 10 ms, then 20 ms.
    assert_eq!(delays.len(), 2, "{seen:#?}");
    assert!(delays[0] <= Duration::from_millis(10) && delays[1] <= Duration::from_millis(20));
    assert_eq!(connection.metrics().connect_attempts, 3);
}

#[tokio::test]
async fn a_401_or_403_is_not_retried() {
    for (status, line) in [(401u16, "401 Unauthorized"), (403, "403 Forbidden")] {
        let listener = RawServer::bind();
        let answer = format!("HTTP/1.1 {line}\r\nContent-Length: 0\r\n\r\n");
        let mut served = 0;
        // The client may make 4 attempts; every one that comes is refused the same way.
        let outcome = within(async {
            let connect = ResilientConnection::connect(retrying(&listener.url()));
            tokio::pin!(connect);
            loop {
                tokio::select! {
                    outcome = &mut connect => break outcome,
                    () = listener.refuse(&answer) => served += 1,
                }
            }
        })
        .await;
        match outcome {
            Err(Error::HandshakeRejected {
                status: Some(got),
                reason,
                ..
            }) => assert_eq!(got, status, "{reason}"),
            other => panic!("expected HandshakeRejected {status}, got {other:?}"),
        }
        assert_eq!(served, 1, "HTTP {status} was retried");
    }
}

/// A client connected to a raw peer, its events, and the peer.
async fn connected(
    listener: &RawServer,
) -> (
    ResilientConnection,
    ws_client::resilient::EventStream,
    RawPeer,
) {
    let (connection, peer) =
        connect_against(quick_config(&listener.url()), listener.accept_peer()).await;
    let connection = connection.expect("connect");
    let events = connection.events();
    (connection, events, peer)
}

#[tokio::test]
async fn a_close_1008_from_the_server_is_not_retried() {
    let listener = RawServer::bind();
    let (mut connection, mut events, mut peer) = connected(&listener).await;
    peer.send_close(1008, "policy").await;
    match within(connection.receive()).await {
        Err(Error::ClosedByPeer { code: 1008, reason }) => assert_eq!(reason, "policy"),
        other => panic!("expected ClosedByPeer 1008, got {other:?}"),
    }
    // receive failed, so the task has ended: no attempt can follow.
    assert_eq!(*connection.status().borrow(), LinkStatus::Ended);
    let seen = events_until(&mut events, |e| matches!(e, Event::GaveUp { .. })).await;
    assert!(
        matches!(
            &seen[seen.len() - 2],
            Event::Disconnected {
                class: RetryClass::Fatal,
                ..
            }
        ),
        "{seen:#?}"
    );
    assert_eq!(connection.metrics().connect_attempts, 1);
    // The client answered the close before leaving.
    assert_eq!(peer.until_end().await, [MessageType::Close]);
}

#[tokio::test]
async fn a_close_1001_or_1012_is_retried_with_the_events_of_a_reconnect() {
    for code in [1001u16, 1012] {
        let listener = RawServer::bind();
        let (mut connection, mut events, mut peer) = connected(&listener).await;
        peer.send_close(code, "restart").await;
        let mut second = listener.accept_peer().await;
        let seen = events_until(&mut events, |e| {
            matches!(e, Event::Connected { generation: 2, .. })
        })
        .await;
        match &seen[..] {
            [
                Event::Connecting { attempt: 1 },
                Event::Connected {
                    generation: 1,
                    attempt: 1,
                    ..
                },
                Event::Disconnected {
                    generation: 1,
                    error,
                    class: RetryClass::Retry,
                },
                Event::Reconnecting {
                    attempt: 1, delay, ..
                },
                Event::Connecting { attempt: 1 },
                Event::Connected {
                    generation: 2,
                    attempt: 1,
                    took,
                },
            ] => {
                assert!(
                    matches!(**error, Error::ClosedByPeer { code: c, .. } if c == code),
                    "{error}"
                );
                assert!(*delay <= Duration::from_millis(20), "{delay:?}");
                assert!(took >= delay, "{took:?} < {delay:?}");
            }
            other => panic!("close {code}: unexpected events {other:#?}"),
        }
        // The new connection carries messages, tagged with its generation.
        second.send(MessageType::Text, b"after").await;
        let (generation, message) = within(connection.receive_with_generation()).await.unwrap();
        assert_eq!((generation, message.as_text().unwrap()), (2, "after"));
        let metrics = connection.metrics();
        assert_eq!((metrics.reconnects, metrics.disconnects), (1, 1));
        assert_eq!(peer.until_end().await, [MessageType::Close]);
    }
}

#[tokio::test]
async fn a_close_1013_waits_at_least_the_try_again_later_floor() {
    let listener = RawServer::bind();
    let floor = Duration::from_millis(300);
    let config = ResilientConfig {
        reconnect: ReconnectPolicy {
            try_again_later_floor: floor,
            ..crate::resilient_support::quick_policy()
        },
        ..ResilientConfig::new(listener.url())
    };
    let (connection, mut peer) = connect_against(config, listener.accept_peer()).await;
    let connection = connection.unwrap();
    let mut events = connection.events();
    peer.send_close(1013, "busy").await;
    let closed_at = Instant::now();
    let _second = listener.accept_peer().await;
    assert!(
        closed_at.elapsed() >= floor,
        "came back after {:?}",
        closed_at.elapsed()
    );
    match wait_for(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await {
        Event::Reconnecting { delay, .. } => assert!(delay >= floor, "{delay:?}"),
        other => panic!("{other:?}"),
    }
}
