//! The resilient connection and the RPC client through `chaos` mode in front of real
//! servers: a black hole in mid-conversation is declared dead within interval + timeout and
//! what is sent meanwhile arrives once and in order after it heals; latency with jitter, a
//! bandwidth limit and the slicer leave messages of mixed sizes and RPC answers intact, and
//! are not taken for a dead peer.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use integration::TestServer;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use ws_client::resilient::{
    Delivery, Event, HeartbeatConfig, ResilientConfig, ResilientConnection,
};
use ws_client::rpc::{RpcClient, RpcConfig};

use crate::chaos::Proxy;
use crate::resilient_support::{assert_declared_dead, quick_policy, wait_for};
use crate::support::{echo_server, pattern, within, within_for};

/// A server behind a chaos proxy; the proxy's faults are set by its flags and changed live.
struct Behind {
    _server: TestServer,
    proxy: Proxy,
}

impl Behind {
    /// Starts `test-servers <mode>` and a proxy with `faults` (chaos flags) in front of it.
    fn start(mode: &str, faults: &[&str]) -> Self {
        let server = match mode {
            "echo" => echo_server(&[]),
            _ => TestServer::start(mode),
        };
        let proxy = Proxy::start(server.url(), faults);
        Self {
            _server: server,
            proxy,
        }
    }

    fn url(&self) -> &str {
        self.proxy.url()
    }
}

/// A resilient configuration for `url` with a quick reconnect policy, a short connect
/// timeout and the heartbeat given.
fn resilient_config(url: &str, interval: Duration, timeout: Duration) -> ResilientConfig {
    let mut config = ResilientConfig {
        heartbeat: Some(HeartbeatConfig { interval, timeout }),
        reconnect: quick_policy(),
        ..ResilientConfig::new(url)
    };
    config.transport.connect_timeout = Duration::from_millis(300);
    config
}

/// Message `seq` of a conversation: `len` bytes that start with the sequence number (as
/// much of it as fits) and go on with a pattern seeded by it, so a lost, repeated,
/// reordered or damaged message is told apart from the one expected.
fn numbered(seq: u32, len: usize) -> Vec<u8> {
    let mut payload = pattern(len, seq as u8);
    let head = len.min(4);
    payload[..head].copy_from_slice(&seq.to_be_bytes()[..head]);
    payload
}

/// `count` numbered messages whose sizes cycle through `sizes`.
fn conversation(count: u32, sizes: &[usize]) -> Vec<Vec<u8>> {
    (0..count)
        .map(|seq| numbered(seq, sizes[seq as usize % sizes.len()]))
        .collect()
}

/// Sizes from 1 B to 64 KiB, across every frame-length encoding and its edges.
const MIXED: [usize; 10] = [1, 2, 125, 126, 127, 1000, 4096, 16384, 65535, 65536];

/// Hands every payload over from another task (so they are pipelined while the caller
/// receives) and waits there until each is written; the caller awaits the task at the end.
fn send_all(connection: &ResilientConnection, payloads: &[Vec<u8>]) -> JoinHandle<()> {
    let sender = connection.sender();
    let payloads = payloads.to_vec();
    tokio::spawn(async move {
        let mut deliveries = Vec::new();
        for payload in payloads {
            deliveries.push(within(sender.enqueue(payload)).await.unwrap());
        }
        written(deliveries).await;
    })
}

/// Waits until every message handed over was written.
async fn written(deliveries: Vec<Delivery>) {
    for (seq, delivery) in deliveries.into_iter().enumerate() {
        if let Err(failed) = within(delivery).await {
            panic!("message {seq} was handed back: {}", failed.error);
        }
    }
}

/// Receives the echo of each of `payloads`, asserting it came whole, in order and on
/// connection `generation`; then a marker, which must come next (nothing was repeated).
async fn expect_echoes(
    connection: &mut ResilientConnection,
    payloads: &[Vec<u8>],
    generation: u64,
) {
    for (seq, expected) in payloads.iter().enumerate() {
        let (came_on, echo) = within(connection.receive_with_generation()).await.unwrap();
        let got = echo
            .data
            .get(..4)
            .map(|head| u32::from_be_bytes(head.try_into().unwrap()));
        assert!(
            echo.data == *expected,
            "echo {seq} ({} bytes expected) is {} bytes starting with sequence number {got:?}",
            expected.len(),
            echo.data.len()
        );
        assert_eq!(came_on, generation, "echo {seq}");
    }
    within(connection.send("end")).await.unwrap();
    let (_, last) = within(connection.receive_with_generation()).await.unwrap();
    assert_eq!(last.as_text().ok(), Some("end"), "a message came twice");
}

/// Echoes `payloads` pipelined through a resilient connection to `url` with pings every
/// 300 ms (they go through the fault too), and asserts the fault was not taken for a dead
/// peer. The timeout, 5 s, is above the time the largest message takes through any fault
/// here (64 KiB in 97-byte slices: about 1.5 s on a loaded machine), as `HeartbeatConfig::timeout` asks.
/// Returns how long the echoes took.
async fn resilient_echoes(url: &str, payloads: &[Vec<u8>]) -> Duration {
    let config = resilient_config(url, Duration::from_millis(300), Duration::from_secs(5));
    let mut connection = within(ResilientConnection::connect(config)).await.unwrap();
    let started = Instant::now();
    let sending = send_all(&connection, payloads);
    expect_echoes(&mut connection, payloads, 1).await;
    within(sending).await.unwrap();
    let took = started.elapsed();
    let metrics = connection.metrics();
    assert_eq!(metrics.disconnects, 0, "{metrics:?}");
    assert_eq!(metrics.messages_failed, 0, "{metrics:?}");
    within(connection.close()).await.unwrap();
    took
}

/// 100 calls through `url`: 20 one after another, then 80 at once (echoes of growing size
/// and arithmetic), each answer checked against its own call.
async fn rpc_calls(url: &str) {
    let client = within(RpcClient::connect(RpcConfig::new(url)))
        .await
        .unwrap();
    for i in 0..20u64 {
        let sum: Value = within(client.request("add", [i, 2 * i])).await.unwrap();
        assert_eq!(sum, json!({"result": 3 * i}), "call {i}");
    }
    let calls = (0..80u64).map(|i| {
        let client = client.clone();
        async move {
            let (method, params, expected) = match i % 4 {
                0 => {
                    let params = json!({"seq": i, "text": "x".repeat(i as usize * 25)});
                    ("echo", params.clone(), params)
                }
                1 => ("subtract", json!([i * 10, i]), json!(i * 9)),
                2 => ("sum", json!([i, i + 1, i + 2]), json!(3 * i + 3)),
                _ => ("add", json!({"a": i, "b": 1}), json!({"result": i + 1})),
            };
            let answer: Value = client.request(method, params).await.unwrap();
            assert_eq!(answer, expected, "concurrent call {i} ({method})");
        }
    });
    within(join_all(calls)).await;
    within(client.close()).await.unwrap();
}

/// An echo server and an RPC server, each behind a proxy with `faults`: echoes `payloads`
/// through a resilient connection while the RPC client makes its calls. Returns how long
/// the echoes took.
async fn through_faults(faults: &[&str], payloads: &[Vec<u8>]) -> Duration {
    let echo = Behind::start("echo", faults);
    let rpc = Behind::start("rpc", faults);
    // Boxed: the two clients side by side make a future larger than clippy allows.
    let (took, ()) = tokio::join!(
        Box::pin(resilient_echoes(echo.url(), payloads)),
        Box::pin(rpc_calls(rpc.url()))
    );
    took
}

#[tokio::test]
async fn a_black_hole_is_declared_dead_in_time_and_what_was_sent_meanwhile_arrives_once_in_order() {
    const INTERVAL: Duration = Duration::from_millis(400);
    const TIMEOUT: Duration = Duration::from_millis(400);
    const DURING: u32 = 20;
    let echo = Behind::start("echo", &[]);
    let config = resilient_config(echo.url(), INTERVAL, TIMEOUT);
    let mut connection = within(ResilientConnection::connect(config.clone()))
        .await
        .unwrap();
    let mut events = connection.events();
    let before = conversation(10, &MIXED);
    let sending = send_all(&connection, &before);
    expect_echoes(&mut connection, &before, 1).await;
    within(sending).await.unwrap();

    // Both ways held, sockets open: only the heartbeat can tell. The conversation took a
    // few milliseconds and the first ping goes out an interval after connecting, so this is
    // close to the worst case: the peer is declared dead nearly interval + timeout after.
    echo.proxy.set(r#"{"black_hole":true}"#).await;
    let set_at = Instant::now();
    let disconnected = wait_for(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    let detected_after = set_at.elapsed();
    let heartbeat = config.heartbeat.expect("a heartbeat");
    assert_declared_dead(disconnected, detected_after, heartbeat);

    // Down (reconnect attempts time out in the hole): these wait in the outage queue.
    let during: Vec<Vec<u8>> = (0..DURING)
        .map(|seq| format!("during-{seq}").into_bytes())
        .collect();
    let mut deliveries = Vec::new();
    for payload in &during {
        deliveries.push(within(connection.enqueue(payload.clone())).await.unwrap());
    }

    echo.proxy.set(r#"{"black_hole":false}"#).await;
    match wait_for(&mut events, |e| matches!(e, Event::Connected { .. })).await {
        Event::Connected { generation, .. } => assert_eq!(generation, 2),
        other => panic!("{other:?}"),
    }
    written(deliveries).await;
    expect_echoes(&mut connection, &during, 2).await;
    let metrics = connection.metrics();
    assert_eq!(
        (metrics.disconnects, metrics.reconnects),
        (1, 1),
        "{metrics:?}"
    );
    assert_eq!(metrics.messages_failed, 0, "{metrics:?}");
    within_for(Duration::from_secs(5), connection.close())
        .await
        .unwrap();
}

#[tokio::test]
async fn latency_with_jitter_keeps_mixed_sizes_in_order_and_rpc_answers_right() {
    let faults = ["--latency-ms", "50", "--jitter-ms", "20"];
    let took = through_faults(&faults, &conversation(200, &MIXED)).await;
    eprintln!("200 mixed echoes at 50±20 ms each way: {took:?}");
    // A round trip is at least 2 x 30 ms: the fault was in force.
    assert!(took >= Duration::from_millis(60), "{took:?}");
}

#[tokio::test]
async fn a_one_megabit_link_keeps_256_kib_in_order_and_rpc_answers_right() {
    // 3 x (1 + 126 + 1000 + 4096 + 16384 + 65536) = 261,429 bytes each way.
    let payloads = conversation(18, &[1, 126, 1000, 4096, 16384, 65536]);
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    let took = through_faults(&["--bandwidth-kbps", "1000"], &payloads).await;
    // 125,000 bytes/s each way; the limit is firm (noise only slows a transfer).
    let least = Duration::from_secs_f64(0.8 * bytes as f64 / 125_000.0);
    eprintln!("{bytes} bytes echoed at 1 Mbit/s: {took:?}");
    assert!(took >= least, "{took:?}: faster than the limit allows");
}

#[tokio::test]
async fn the_slicer_keeps_mixed_sizes_whole_and_rpc_answers_right() {
    // Pieces of 97 bytes with 1 ms between them: frames of every length encoding, cut at
    // offsets that vary as the sizes do (headers included).
    let faults = ["--slice-bytes", "97", "--slice-delay-ms", "1"];
    let payloads = conversation(10, &[1, 2, 97, 125, 126, 127, 1000, 4096, 65536]);
    let took = through_faults(&faults, &payloads).await;
    eprintln!("10 mixed echoes through 97-byte slices: {took:?}");
}
