//! Helpers shared by the resilient-connection tests: a quick reconnect policy, waiting for
//! an event (with a timeout), checking a dead-peer verdict, and restarting a killed server
//! on its port.

use std::time::Duration;

use futures_util::StreamExt;
use integration::TestServer;
use ws_client::Error;
use ws_client::resilient::{Event, EventStream, HeartbeatConfig, ReconnectPolicy, ResilientConfig};

use crate::support::within;

/// Reconnects within tens of milliseconds and gives up after 15 s.
pub(crate) fn quick_policy() -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_elapsed: Some(Duration::from_secs(15)),
        ..ReconnectPolicy::default()
    }
}

/// The default configuration for `url` with [`quick_policy`].
pub(crate) fn quick_config(url: &str) -> ResilientConfig {
    ResilientConfig {
        reconnect: quick_policy(),
        ..ResilientConfig::new(url)
    }
}

/// Reads events until one satisfies `wanted`; returns the events read, that one last.
pub(crate) async fn events_until(
    events: &mut EventStream,
    wanted: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    within(async {
        loop {
            match events.next().await {
                Some(event) => {
                    let done = wanted(&event);
                    seen.push(event);
                    if done {
                        break;
                    }
                }
                None => panic!("the event stream ended; events seen: {seen:#?}"),
            }
        }
    })
    .await;
    seen
}

/// Waits for an event that satisfies `wanted` and returns it.
pub(crate) async fn wait_for(events: &mut EventStream, wanted: impl Fn(&Event) -> bool) -> Event {
    events_until(events, wanted)
        .await
        .pop()
        .expect("events_until returns at least the wanted event")
}

/// Asserts `event` says connection 1 was dropped as dead (a retryable `PeerDead`, silent for
/// at least the timeout), `detected_after` the peer fell silent, within (interval +
/// timeout) * 1.1: the heartbeat's promise with room for scheduling.
pub(crate) fn assert_declared_dead(
    event: Event,
    detected_after: Duration,
    heartbeat: HeartbeatConfig,
) {
    eprintln!("dead peer declared after {detected_after:?} ({heartbeat:?})");
    match event {
        Event::Disconnected {
            generation: 1,
            error,
            class,
        } => {
            assert!(class.is_retryable());
            match *error {
                Error::PeerDead { silent_for } => {
                    assert!(silent_for >= heartbeat.timeout, "{silent_for:?}");
                }
                ref other => panic!("expected PeerDead, got {other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    let bound = (heartbeat.interval + heartbeat.timeout).mul_f64(1.1);
    assert!(
        detected_after <= bound,
        "declared after {detected_after:?}, over {bound:?}"
    );
}

/// Starts `test-servers echo` on `port` (where a killed one listened) off the async thread,
/// so the runtime keeps running the clients' tasks meanwhile.
pub(crate) async fn restart_echo(port: u16) -> TestServer {
    restart("echo", port).await
}

/// Starts `test-servers MODE` on `port` (where a killed one listened), as [`restart_echo`].
pub(crate) async fn restart(mode: &'static str, port: u16) -> TestServer {
    within(tokio::task::spawn_blocking(move || {
        TestServer::start_on_port(mode, port, &[])
    }))
    .await
    .expect("restart the server")
}
