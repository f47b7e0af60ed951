//! Measurements of the resilient layer, printed, never asserted as timings (this host's
//! timing varies too much for that): time to reconnect after an echo server restart on the
//! same port, and dead-peer detection time against interval + timeout. Ignored by default;
//! run with
//! `cargo test -p integration --test it resilient_figures -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use integration::TestServer;
use ws_client::resilient::{
    Event, HeartbeatConfig, ReconnectPolicy, ResilientConfig, ResilientConnection,
};

use crate::raw_peer::RawServer;
use crate::resilient_support::{restart_echo, wait_for};
use crate::support::within;

/// `p` (0-100) percentile of sorted `values`.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p).div_ceil(100).max(1) - 1]
}

fn report(what: &str, mut values: Vec<Duration>) {
    values.sort();
    eprintln!(
        "{what}: n={} p50={:?} p99={:?} min={:?} max={:?}",
        values.len(),
        percentile(&values, 50),
        percentile(&values, 99),
        values[0],
        values[values.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with --ignored --nocapture"]
async fn reconnect_time_after_server_restarts() {
    const RESTARTS: usize = 100;
    let mut server = TestServer::start("echo");
    let port = server.addr().port();
    // The default policy, except that every connection counts as stable, so each restart
    // is measured as the first outage after a long healthy period, not as a flapping server.
    let config = ResilientConfig {
        reconnect: ReconnectPolicy {
            stable_after: Duration::ZERO,
            ..ReconnectPolicy::default()
        },
        heartbeat: None,
        ..ResilientConfig::new(server.url())
    };
    let mut connection = within(ResilientConnection::connect(config)).await.unwrap();
    let mut events = connection.events();
    let (mut from_kill, mut from_ready, mut took) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..RESTARTS {
        let killed_at = Instant::now();
        server.kill();
        server = restart_echo(port).await;
        let ready_at = Instant::now();
        let generation = round as u64 + 2;
        let wanted =
            |e: &Event| matches!(e, Event::Connected { generation: g, .. } if *g == generation);
        match wait_for(&mut events, wanted).await {
            Event::Connected { took: outage, .. } => took.push(outage),
            other => panic!("{other:?}"),
        }
        let connected_at = Instant::now();
        from_kill.push(connected_at - killed_at);
        from_ready.push(connected_at.saturating_duration_since(ready_at));
        within(connection.send("ping")).await.unwrap();
        assert_eq!(
            within(connection.receive())
                .await
                .unwrap()
                .as_text()
                .unwrap(),
            "ping"
        );
    }
    report(
        "kill to reconnected (includes the server's restart)",
        from_kill,
    );
    report(
        "server ready to reconnected (the client's share)",
        from_ready,
    );
    report("Connected.took (drop noticed to reconnected)", took);
    assert_eq!(connection.metrics().reconnects, RESTARTS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with --ignored --nocapture"]
async fn dead_peer_detection_time() {
    const CLIENTS: usize = 20;
    for (interval, timeout) in [
        (Duration::from_millis(500), Duration::from_millis(250)),
        (Duration::from_secs(1), Duration::from_secs(1)),
    ] {
        let listener = RawServer::bind();
        let config = ResilientConfig {
            heartbeat: Some(HeartbeatConfig { interval, timeout }),
            ..ResilientConfig::new(listener.url())
        };
        let mut waits = Vec::new();
        let mut silent_peers = Vec::new();
        for _ in 0..CLIENTS {
            let (connection, peer) = within(async {
                tokio::join!(
                    ResilientConnection::connect(config.clone()),
                    listener.accept_peer()
                )
            })
            .await;
            let connection = connection.unwrap();
            let events = connection.events();
            silent_peers.push(peer);
            waits.push(tokio::spawn(async move {
                let started = Instant::now();
                let mut events = events;
                wait_for(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
                (started.elapsed(), connection)
            }));
        }
        let mut detected = Vec::new();
        for wait in waits {
            let (after, connection) = within(wait).await.unwrap();
            detected.push(after);
            drop(connection);
        }
        report(
            &format!("dead peer declared, interval {interval:?} + timeout {timeout:?}"),
            detected,
        );
    }
}
