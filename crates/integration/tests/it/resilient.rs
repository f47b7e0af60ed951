//! The resilient connection against a real echo server that is killed and restarted on the
//! same port: reconnect within the policy, messages sent during the outage delivered once
//! and in order, a full queue and a policy that gives up handing messages back, fail fast,
//! and many clients cut at once not coming back in lockstep.

use std::time::Duration;

use futures_util::StreamExt;
use integration::TestServer;
use ws_client::resilient::{
    Event, QueuePolicy, ReconnectPolicy, ResilientConfig, ResilientConnection,
};
use ws_client::{Error, Message};

use crate::resilient_support::{events_until, quick_config, restart_echo, wait_for};
use crate::support::within;

fn is_disconnected(event: &Event) -> bool {
    matches!(event, Event::Disconnected { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_during_an_outage_arrive_once_and_in_order_after_a_restart() {
    let mut server = TestServer::start("echo");
    let port = server.addr().port();
    let mut connection = within(ResilientConnection::connect(quick_config(server.url())))
        .await
        .expect("connect");
    let mut events = connection.events();
    for i in 0..5 {
        within(connection.send(format!("before-{i}")))
            .await
            .unwrap();
        let echo = within(connection.receive()).await.unwrap();
        assert_eq!(echo.as_text().unwrap(), format!("before-{i}"));
    }

    server.kill();
    match wait_for(&mut events, is_disconnected).await {
        Event::Disconnected {
            generation: 1,
            error,
            class,
        } => {
            assert!(class.is_retryable(), "{error}");
            assert!(matches!(*error, Error::ConnectionLost(_)), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    // Down now: these wait in the outage queue.
    let mut deliveries = Vec::new();
    for i in 0..10 {
        deliveries.push(
            within(connection.enqueue(format!("during-{i}")))
                .await
                .unwrap(),
        );
    }
    let _server = restart_echo(port).await;
    let ready_at = std::time::Instant::now();
    let connected = wait_for(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    // Once the server is back, the next attempt comes within one backoff ceiling (200 ms).
    let after_ready = ready_at.elapsed();
    assert!(
        after_ready < Duration::from_secs(2),
        "reconnected {after_ready:?} after the restart"
    );
    let Event::Connected {
        generation, took, ..
    } = connected
    else {
        unreachable!()
    };
    assert_eq!(generation, 2);
    assert!(took < Duration::from_secs(15), "{took:?}");
    for delivery in deliveries {
        within(delivery).await.expect("written after the reconnect");
    }
    for i in 0..10 {
        let echo = within(connection.receive()).await.unwrap();
        assert_eq!(echo.as_text().unwrap(), format!("during-{i}"), "in order");
    }
    // Exactly once: the next echo is the marker sent after them, not a duplicate.
    within(connection.send("marker")).await.unwrap();
    let (generation, echo) = within(connection.receive_with_generation()).await.unwrap();
    assert_eq!((generation, echo.as_text().unwrap()), (2, "marker"));

    let metrics = connection.metrics();
    assert_eq!((metrics.messages_sent, metrics.messages_received), (16, 16));
    assert_eq!((metrics.reconnects, metrics.disconnects), (1, 1));
    assert_eq!((metrics.messages_failed, metrics.queued_messages), (0, 0));
    assert!(metrics.connect_attempts >= 2 && metrics.connected);
    within(connection.close()).await.unwrap();
}

#[tokio::test]
async fn a_full_queue_and_a_policy_that_gives_up_hand_every_message_back() {
    let mut server = TestServer::start("echo");
    let config = ResilientConfig {
        queue: QueuePolicy::Queue {
            max_messages: 3,
            max_bytes: 1 << 20,
        },
        reconnect: ReconnectPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_elapsed: Some(Duration::from_millis(500)),
            ..ReconnectPolicy::default()
        },
        ..ResilientConfig::new(server.url())
    };
    let mut connection = within(ResilientConnection::connect(config)).await.unwrap();
    let mut events = connection.events();
    server.kill();
    wait_for(&mut events, is_disconnected).await;

    let mut deliveries = Vec::new();
    for i in 0..5 {
        deliveries.push(within(connection.enqueue(format!("m{i}"))).await.unwrap());
    }
    let mut outcomes = Vec::new();
    for delivery in deliveries {
        let failed = within(delivery).await.expect_err("nothing can be written");
        outcomes.push((failed.message.as_text().unwrap().to_owned(), failed.error));
    }
    // Two beyond the bound come back at once; the three queued when the policy gives up.
    for (text, error) in &outcomes[3..] {
        assert!(
            matches!(
                error,
                Error::OutageQueueFull {
                    max_messages: 3,
                    ..
                }
            ),
            "{text}: {error}"
        );
    }
    for (text, error) in &outcomes[..3] {
        assert!(
            matches!(error, Error::ReconnectGaveUp { .. }),
            "{text}: {error}"
        );
    }
    let texts: Vec<&str> = outcomes.iter().map(|(text, _)| text.as_str()).collect();
    assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4"]);

    match wait_for(&mut events, |e| matches!(e, Event::GaveUp { .. })).await {
        Event::GaveUp { error } => assert!(matches!(*error, Error::ReconnectGaveUp { .. })),
        other => panic!("{other:?}"),
    }
    assert!(
        within(events.next()).await.is_none(),
        "the stream ends after GaveUp"
    );
    assert!(within(connection.events().next()).await.is_none());
    assert!(matches!(
        within(connection.receive()).await,
        Err(Error::ReconnectGaveUp { .. })
    ));
    let late = within(connection.send("late")).await.unwrap_err();
    assert_eq!(late.message.as_text().unwrap(), "late");
    assert!(
        matches!(late.error, Error::ReconnectGaveUp { .. }),
        "{}",
        late.error
    );
    let metrics = connection.metrics();
    assert_eq!((metrics.messages_failed, metrics.queued_messages), (5, 0));
}

#[tokio::test]
async fn fail_fast_hands_messages_back_while_down() {
    let mut server = TestServer::start("echo");
    let config = ResilientConfig {
        queue: QueuePolicy::FailFast,
        ..quick_config(server.url())
    };
    let connection = within(ResilientConnection::connect(config)).await.unwrap();
    let mut events = connection.events();
    server.kill();
    wait_for(&mut events, is_disconnected).await;
    let failed = within(connection.send(Message::binary(vec![7; 3])))
        .await
        .unwrap_err();
    assert_eq!(failed.message, Message::binary(vec![7; 3]));
    assert!(
        matches!(failed.error, Error::ConnectionDown),
        "{}",
        failed.error
    );
}

#[tokio::test]
async fn a_refused_first_connect_fails_fast_unless_retries_are_asked_for() {
    let server = TestServer::start("echo");
    let url = server.url().to_owned();
    drop(server); // nothing listens there now
    match within(ResilientConnection::connect(ResilientConfig::new(&url))).await {
        Err(Error::ConnectionRefused { .. }) => {}
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
    let config = ResilientConfig {
        retry_first_connect: true,
        reconnect: ReconnectPolicy {
            max_attempts: Some(3),
            ..crate::resilient_support::quick_policy()
        },
        ..ResilientConfig::new(&url)
    };
    match within(ResilientConnection::connect(config)).await {
        Err(Error::ReconnectGaveUp { attempts: 3, .. }) => {}
        other => panic!("expected ReconnectGaveUp after 3 attempts, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_clients_cut_at_once_do_not_reconnect_in_lockstep() {
    let mut server = TestServer::start("echo");
    let mut clients = Vec::new();
    for _ in 0..100 {
        // The default policy: first wait drawn from [0, 100 ms].
        let connection = within(ResilientConnection::connect(ResilientConfig::new(
            server.url(),
        )))
        .await
        .unwrap();
        let events = connection.events();
        clients.push((connection, events));
    }
    server.kill();
    let mut first_delays = Vec::new();
    for (_, events) in &mut clients {
        let seen = events_until(events, |e| matches!(e, Event::Reconnecting { .. })).await;
        match seen.last() {
            Some(Event::Reconnecting {
                attempt: 1, delay, ..
            }) => first_delays.push(*delay),
            other => panic!("{other:?}"),
        }
    }
    first_delays.sort();
    let spread = first_delays[99] - first_delays[0];
    let distinct: std::collections::BTreeSet<u128> =
        first_delays.iter().map(Duration::as_millis).collect();
    eprintln!(
        "first reconnect delays of 100 clients: min {:?}, median {:?}, max {:?}, {} distinct ms",
        first_delays[0],
        first_delays[50],
        first_delays[99],
        distinct.len()
    );
    assert!(
        first_delays[99] <= Duration::from_millis(100),
        "{first_delays:?}"
    );
    assert!(spread >= Duration::from_millis(60), "spread {spread:?}");
    assert!(distinct.len() >= 40, "{} distinct ms", distinct.len());
}
