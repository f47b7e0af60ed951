//! Real partitions between two network namespaces (`netns_support`): the link cut and a
//! black hole are silent to a plain TCP socket (writes succeed, nothing comes back, no RST or
//! FIN); the resilient connection's heartbeat declares the peer dead within interval +
//! timeout, keeps what is sent meanwhile, and reconnects after the heal. Also: the server
//! really runs in its namespace, and the fixture cleans up after a panicking test.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_client::resilient::{Event, HeartbeatConfig, ResilientConfig, ResilientConnection};
use ws_client::{Error, TransportConfig};

use crate::netns_support::{
    NetnsPair, SERVER_IP, in_namespace, ip_command, namespace_names, sweep_stale_namespaces,
};
use crate::resilient_support::{quick_policy, wait_for};
use crate::support::{within, within_for};

/// The heartbeat under test: interval I and timeout T.
const INTERVAL: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_millis(500);
/// Bounds a whole client run inside its namespace.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// How long a partition is held to show that nothing comes back.
const HOLD: Duration = Duration::from_millis(1500);
/// Messages sent while the connection is down.
const QUEUED: usize = 5;

/// The two real faults: each cuts and heals the path between the namespaces.
#[derive(Debug, Clone, Copy)]
enum Fault {
    LinkDown,
    BlackHole,
}

impl Fault {
    fn cut(self, net: &NetnsPair) {
        match self {
            Self::LinkDown => net.link_down(),
            Self::BlackHole => net.black_hole(),
        }
    }

    fn heal(self, net: &NetnsPair) {
        match self {
            Self::LinkDown => net.link_up(),
            Self::BlackHole => net.heal_black_hole(),
        }
    }
}

fn heartbeat_config(url: &str) -> ResilientConfig {
    ResilientConfig {
        transport: TransportConfig {
            connect_timeout: Duration::from_secs(1),
            ..TransportConfig::new(url)
        },
        heartbeat: Some(HeartbeatConfig {
            interval: INTERVAL,
            timeout: TIMEOUT,
        }),
        reconnect: quick_policy(),
        ..ResilientConfig::new(url)
    }
}

/// Echoes, cuts the path, measures when the peer is declared dead, queues messages while
/// down, heals, and checks the reconnect and that the queued messages come back once each,
/// in order. Returns the detection time (from the end of the cut command) and the time from
/// the heal to the reconnect.
async fn partition_and_heal(net: &NetnsPair, url: &str, fault: Fault) -> (Duration, Duration) {
    let mut connection = within(ResilientConnection::connect(heartbeat_config(url)))
        .await
        .expect("connect through the veth");
    let mut events = connection.events();
    for i in 0..3 {
        within(connection.send(format!("before {i}")))
            .await
            .unwrap();
        let echo = within(connection.receive()).await.unwrap();
        assert_eq!(echo.as_text().unwrap(), format!("before {i}"));
    }

    // The cut takes effect somewhere while `ip` runs: bound it from both sides.
    let cut_started = Instant::now();
    fault.cut(net);
    let cut_done = Instant::now();
    let disconnected = wait_for(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    let (earliest, detected) = (cut_started.elapsed(), cut_done.elapsed());
    match disconnected {
        Event::Disconnected {
            generation, error, ..
        } => {
            assert_eq!(generation, 1);
            assert!(matches!(*error, Error::PeerDead { .. }), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    let bound = (INTERVAL + TIMEOUT).mul_f64(1.1);
    assert!(
        detected <= bound,
        "{fault:?}: dead peer declared {detected:?} after the cut, over {bound:?}"
    );
    assert!(
        earliest >= TIMEOUT,
        "{fault:?}: dead peer declared {earliest:?} after the cut began, before the timeout"
    );

    // Still cut: what is sent now waits in the outage queue.
    let mut deliveries = Vec::new();
    for i in 0..QUEUED {
        deliveries.push(
            within(connection.enqueue(format!("queued {i}")))
                .await
                .unwrap(),
        );
    }
    within(async {
        while connection.metrics().queued_messages < QUEUED as u64 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        deliveries
            .iter_mut()
            .all(|delivery| delivery.now_or_never().is_none()),
        "nothing can be written while the path is cut"
    );
    assert!(!connection.metrics().connected);

    let healed = Instant::now();
    fault.heal(net);
    match wait_for(&mut events, |e| matches!(e, Event::Connected { .. })).await {
        Event::Connected { generation, .. } => assert_eq!(generation, 2),
        other => panic!("{other:?}"),
    }
    let reconnected = healed.elapsed();
    for delivery in deliveries {
        within(delivery).await.expect("written after the reconnect");
    }
    within(connection.send("after")).await.unwrap();
    for expected in (0..QUEUED)
        .map(|i| format!("queued {i}"))
        .chain(["after".into()])
    {
        let (generation, echo) = within(connection.receive_with_generation()).await.unwrap();
        assert_eq!(
            (generation, echo.as_text().unwrap()),
            (2, expected.as_str())
        );
    }
    let metrics = connection.metrics();
    assert_eq!((metrics.disconnects, metrics.reconnects), (1, 1));
    assert_eq!(metrics.messages_failed, 0);
    within(connection.close()).await.unwrap();
    (detected, reconnected)
}

fn run_partition(fault: Fault) {
    let Some(net) = NetnsPair::create_or_skip() else {
        return;
    };
    let server = net.start_server("echo", &[]);
    let url = server.url().to_owned();
    let run = partition_and_heal(&net, &url, fault);
    let (detected, reconnected) = in_namespace(net.client_ns(), RUN_LIMIT, run);
    eprintln!(
        "{fault:?}: dead peer declared {detected:?} after the cut (interval {INTERVAL:?} + \
         timeout {TIMEOUT:?}); reconnected {reconnected:?} after the heal"
    );
}

#[test]
fn netns_link_down_is_declared_dead_within_interval_plus_timeout_and_heals() {
    run_partition(Fault::LinkDown);
}

#[test]
fn netns_black_hole_is_declared_dead_within_interval_plus_timeout_and_heals() {
    run_partition(Fault::BlackHole);
}

/// A plain TCP connection across the cut: the write succeeds, and for as long as the cut is
/// held nothing arrives (no data, no FIN, no RST); after the heal TCP's retransmission gets
/// the bytes through and the server's answer arrives on the same connection.
async fn cut_is_silent(net: &NetnsPair, port: u16, fault: Fault) {
    let mut stream = within(TcpStream::connect((SERVER_IP, port)))
        .await
        .expect("connect through the veth");
    // An upgrade request, all but its final empty line: the server waits for the rest.
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {SERVER_IP}:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n"
    );
    within(stream.write_all(request.as_bytes())).await.unwrap();
    fault.cut(net);
    within_for(Duration::from_millis(100), stream.write_all(b"\r\n"))
        .await
        .expect("a write into the cut succeeds at once");
    let mut buffer = [0u8; 1024];
    let read = tokio::time::timeout(HOLD, stream.read(&mut buffer)).await;
    assert!(
        read.is_err(),
        "{fault:?}: something came back through the cut: {read:?}"
    );
    fault.heal(net);
    let read = within(stream.read(&mut buffer))
        .await
        .expect("no error after the heal");
    let answer = String::from_utf8_lossy(&buffer[..read]);
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer:?}");
}

fn run_silent(fault: Fault) {
    let Some(net) = NetnsPair::create_or_skip() else {
        return;
    };
    let server = net.start_server("echo", &[]);
    let port = server.addr().port();
    in_namespace(net.client_ns(), RUN_LIMIT, cut_is_silent(&net, port, fault));
}

#[test]
fn netns_link_down_is_silent_to_tcp() {
    run_silent(Fault::LinkDown);
}

#[test]
fn netns_black_hole_is_silent_to_tcp() {
    run_silent(Fault::BlackHole);
}

#[test]
fn netns_server_runs_in_its_namespace_under_the_launcher() {
    let Some(net) = NetnsPair::create_or_skip() else {
        return;
    };
    let server = net.start_server("echo", &[]);
    assert_eq!(server.addr().ip().to_string(), SERVER_IP);
    // `ip netns exec` execs in place: the child's pid is the server's, so its usage is read
    // and it stops gracefully on stdin EOF.
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", server.pid())).unwrap();
    assert_eq!(comm.trim(), "test-servers");
    assert!(server.usage().expect("usage from /proc").peak_rss_bytes > 0);
    // Its network namespace is the pair's server side (`net:[inode]` of the named one).
    let inside = std::fs::read_link(format!("/proc/{}/ns/net", server.pid())).unwrap();
    let named = std::fs::metadata(format!("/run/netns/{}", net.server_ns())).unwrap();
    assert_eq!(inside.to_string_lossy(), format!("net:[{}]", named.ino()));
    let (status, stopped) = server.stop();
    assert!(status.success(), "{status:?}");
    assert_eq!(stopped["event"], "stopped");
}

#[test]
fn netns_fixture_removes_its_namespaces_when_a_test_panics() {
    let Some(probe) = NetnsPair::create_or_skip() else {
        return;
    };
    drop(probe);
    let (sender, names) = std::sync::mpsc::channel();
    let panicked = std::thread::Builder::new()
        .name("panics inside the fixture".into())
        .spawn(move || {
            let net = NetnsPair::create_or_skip().expect("the tier ran a moment ago");
            let _server = net.start_server("echo", &[]);
            let ours = [net.server_ns().to_owned(), net.client_ns().to_owned()];
            sender.send(ours).unwrap();
            panic!("a failing test inside the fixture's scope");
        })
        .unwrap()
        .join();
    assert!(panicked.is_err(), "the thread was meant to panic");
    let ours = names.recv().unwrap();
    let left = namespace_names();
    for name in &ours {
        assert!(!left.contains(name), "{name} is still there: {left:?}");
    }
}

#[test]
fn netns_fixture_sweeps_namespaces_left_by_dead_processes() {
    let Some(probe) = NetnsPair::create_or_skip() else {
        return;
    };
    drop(probe);
    // A process that has exited and been reaped: its pid names no live process.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("wsc-{dead}-0-s");
    ip_command(&["netns", "add", &stale]).unwrap_or_else(|e| panic!("{e}"));
    assert!(namespace_names().contains(&stale));
    sweep_stale_namespaces();
    assert!(
        !namespace_names().contains(&stale),
        "{stale} survived the sweep"
    );
}
