//! `load` mode: a thousand connections all receive one broadcast, connections over
//! `--max-connections` get 503 while the server keeps serving, memory returns to its level
//! after 10,000 connect/disconnect cycles, a lagging broadcast receiver is closed with 1008,
//! and `stats` lines carry the load counters.

use std::time::Duration;

use integration::TestServer;
use serde_json::Value;
use tokio::task::JoinSet;
use ws_client::{Error, Message, MessageType, TransportConfig, WebSocketConnection};

use crate::perf::{assert_stats_fields, stats_line_where};
use crate::support::{assert_echoes, connect, within, within_for};

/// Connections opened (or cycled) at once.
const PARALLEL: usize = 50;
/// Bound on a whole batch of connections, which is many steps.
const BATCH_TIMEOUT: Duration = Duration::from_secs(180);

/// Opens `count` connections to `url`, [`PARALLEL`] at a time.
async fn open_many(url: &str, count: usize) -> Vec<WebSocketConnection> {
    let mut opened = Vec::with_capacity(count);
    let mut opening = JoinSet::new();
    for _ in 0..count {
        if opening.len() >= PARALLEL {
            opened.push(within(opening.join_next()).await.unwrap().unwrap());
        }
        let url = url.to_owned();
        opening.spawn(async move { connect(&url).await });
    }
    while let Some(done) = within(opening.join_next()).await {
        opened.push(done.unwrap());
    }
    opened
}

#[tokio::test]
async fn a_thousand_connections_all_receive_one_broadcast() {
    // Two thousand sockets in this process and the server: more than some systems' default
    // limit (macOS: 256). Raise the soft limit as far as the hard one allows.
    let _ = rlimit::increase_nofile_limit(4096);
    let server = TestServer::start_with("load", &["--stats-interval", "20ms"]);
    let mut connections = open_many(&server.url_with_path("/broadcast"), 1000).await;
    // A client's handshake completes just before the server subscribes it, and a stats
    // line reads its counters one after the other: wait for a line that counts every
    // connection and every receiver (or fail when none comes within the step timeout).
    stats_line_where(&server, |line| {
        line["broadcast_receivers"] == 1000 && line["connections_active"] == 1000
    });
    within(connections[0].send("to everyone")).await.unwrap();
    for (i, connection) in connections.iter_mut().enumerate() {
        let message = within(connection.receive_message()).await.unwrap();
        assert_eq!(message.as_text().unwrap(), "to everyone", "connection {i}");
    }
    drop(connections);
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["connections_accepted"], 1000);
    assert_eq!(stopped["messages_in"], 1);
    assert_eq!(stopped["messages_out"], 1000);
}

#[tokio::test]
async fn connections_beyond_max_connections_get_503_and_the_server_keeps_serving() {
    let server = TestServer::start_with(
        "load",
        &["--max-connections", "20", "--stats-interval", "20ms"],
    );
    let url = server.url_with_path("/idle");
    let mut admitted = open_many(&url, 20).await;
    for _ in 0..5 {
        match within(WebSocketConnection::open(TransportConfig::new(&url))).await {
            Err(Error::HandshakeRejected {
                status: Some(503),
                reason,
                ..
            }) => assert!(reason.contains("capacity"), "{reason}"),
            other => panic!("expected HandshakeRejected 503, got {other:?}"),
        }
    }
    for (i, connection) in admitted.iter_mut().enumerate() {
        assert_echoes(connection, &format!("still served {i}")).await;
    }
    // A slot freed by a leaving client goes to the next one.
    let mut leaving = admitted.pop().unwrap();
    within(leaving.disconnect()).await.unwrap();
    stats_line_where(&server, |line| line["connections_active"] == 19);
    let mut late = connect(&url).await;
    assert_echoes(&mut late, "my turn").await;
    drop((admitted, late));
    let (_, stopped) = server.stop();
    assert_eq!(stopped["connections_rejected"], 5);
    assert_eq!(stopped["connections_accepted"], 21);
}

/// Connects, does one round trip and disconnects, `total` times over [`PARALLEL`] tasks.
async fn cycle(url: &str, total: usize) {
    let mut tasks = JoinSet::new();
    for _ in 0..PARALLEL {
        let url = url.to_owned();
        tasks.spawn(async move {
            for _ in 0..total / PARALLEL {
                let mut connection = connect(&url).await;
                assert_echoes(&mut connection, "x").await;
                within(connection.disconnect()).await.unwrap();
            }
        });
    }
    while let Some(done) = within_for(BATCH_TIMEOUT, tasks.join_next()).await {
        done.unwrap();
    }
}

/// The `rss_bytes` of the first stats line once `accepted` connections have all ended.
fn settled_rss(server: &TestServer, accepted: u64) -> Option<u64> {
    let line = stats_line_where(server, |line| {
        line["connections_accepted"] == accepted && line["connections_active"] == 0
    });
    line["rss_bytes"].as_u64()
}

/// How much the resident memory may grow between the level after 1,000 cycles and the
/// level after 10,000. A connection costs about 1.85 KB and its set-up about 15 KB more
/// for a moment (handshake buffers, the boxed message step), so 50 cycling connections keep
/// under 1 MB in flight, which the allocator may keep resident; 2 MB leaves room for that
/// and for the allocator's arenas settling. A leak of one serving future (about 800 B) or
/// more per connection would add over 7 MB over the 9,000 measured cycles.
const RSS_TOLERANCE: u64 = 2 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_returns_to_its_level_after_ten_thousand_connect_disconnect_cycles() {
    let server = TestServer::start_with("load", &["--stats-interval", "20ms"]);
    let url = server.url_with_path("/idle");
    cycle(&url, 1000).await;
    let warmed = settled_rss(&server, 1000);
    cycle(&url, 9000).await;
    let after = settled_rss(&server, 10_000);
    let (Some(warmed), Some(after)) = (warmed, after) else {
        // Only a platform without `/proc` has no `rss_bytes` to compare.
        if cfg!(target_os = "linux") {
            panic!("no rss_bytes in the stats lines on Linux");
        }
        return;
    };
    assert!(
        after <= warmed + RSS_TOLERANCE,
        "resident memory grew from {warmed} to {after} bytes over 9,000 connect/disconnect cycles"
    );
}

#[tokio::test]
async fn a_broadcast_receiver_that_falls_behind_is_closed_with_1008() {
    let server = TestServer::start_with(
        "load",
        &["--broadcast-capacity", "4", "--stats-interval", "20ms"],
    );
    let url = server.url_with_path("/broadcast");
    let mut slow = connect(&url).await;
    let mut sender = connect(&url).await;
    stats_line_where(&server, |line| line["broadcast_receivers"] == 2);
    // `slow` reads nothing while 18 MB are broadcast: far more than the socket buffers
    // between the server and it hold (it never reads, so its receive window stays small),
    // so its server task blocks and the 4-message ring overtakes it. The sender reads its
    // own copy back each time, so it never falls behind.
    const MESSAGES: usize = 300;
    let payload = vec![7u8; 60_000];
    for _ in 0..MESSAGES {
        within(sender.send(Message::binary(payload.clone())))
            .await
            .unwrap();
        let back = within(sender.receive_message()).await.unwrap();
        assert_eq!(back.data.len(), payload.len());
    }
    let mut delivered = 0;
    let close = loop {
        let message = within(slow.receive_message()).await.unwrap();
        if message.message_type != MessageType::Binary {
            break message;
        }
        delivered += 1;
    };
    assert_eq!(close.close_code(), Some(1008), "{close:?}");
    let reason = close.close_reason().unwrap_or_default();
    assert!(reason.contains("too slow"), "{reason}");
    assert!(
        delivered < MESSAGES,
        "{delivered} messages reached the slow receiver"
    );
    let line = stats_line_where(&server, |line| line["broadcast_lagged"] == 1);
    assert_eq!(line["broadcast_published"], MESSAGES);
    // The sender was never disturbed.
    assert_echoes(&mut sender, "after the lag").await;
}

#[tokio::test]
async fn unknown_paths_are_closed_with_1008_and_stats_lines_carry_the_load_counters() {
    let server = TestServer::start_with("load", &["--stats-interval", "20ms"]);
    let mut lost = connect(&server.url_with_path("/nowhere")).await;
    let close = within(lost.receive_message()).await.unwrap();
    assert_eq!(close.close_code(), Some(1008));
    assert!(close.close_reason().unwrap().contains("/broadcast"));

    let mut idle = connect(server.url()).await;
    assert_echoes(&mut idle, "hello").await;
    let line: Value = stats_line_where(&server, |line| line["connections_active"] == 1);
    assert_stats_fields(&line, "load");
    for field in [
        "broadcast_receivers",
        "broadcast_published",
        "broadcast_lagged",
    ] {
        assert_eq!(line[field], 0, "{field} in {line}");
    }
    within(idle.disconnect()).await.unwrap();
}
