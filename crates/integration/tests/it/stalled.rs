//! Clients that send but never read: `echo` and `perf /source` drop them once their writes
//! stall for the idle timeout, and a shutdown with such a client attached is prompt and
//! clean (the stuck write is abandoned instead of holding the shutdown for its grace).

use std::time::{Duration, Instant};

use integration::TestServer;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::raw_peer::{BINARY, client_frame, upgraded_client};
use crate::support::within;

/// What the raw client sends to echo: far more than the socket buffers of both ends hold
/// (a few MiB on loopback), in 1 MiB messages.
const FLOOD_MESSAGES: usize = 24;
/// How long the server may take to notice a stall and drop the client, with a 1 s idle
/// timeout (the old server never did).
const DROP_BOUND: Duration = Duration::from_secs(10);
/// How long a stop may take with a stalled client attached. The old server waited out its
/// 5 s shutdown grace and reported `clean: false`.
const STOP_BOUND: Duration = Duration::from_secs(3);

/// A raw client on `path` that writes `flood` (if any) and then holds the connection open
/// without ever reading. Abort the task to let the connection go.
async fn stalled_client(server: &TestServer, path: &str, flood: Vec<u8>) -> JoinHandle<()> {
    let mut tcp: TcpStream = upgraded_client(server.addr(), path).await;
    tokio::spawn(async move {
        // The server stops reading once its writes block, so this may never finish.
        let _ = tcp.write_all(&flood).await;
        std::future::pending::<()>().await;
        drop(tcp);
    })
}

/// `FLOOD_MESSAGES` masked binary frames of 1 MiB each.
fn flood() -> Vec<u8> {
    let message = client_frame(BINARY, true, &vec![7u8; 1 << 20]);
    message.repeat(FLOOD_MESSAGES)
}

/// The first `stats` line within `bound` for which `wanted` holds.
fn stats_within(
    server: &TestServer,
    bound: Duration,
    mut wanted: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + bound;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = server
            .next_event(left)
            .unwrap_or_else(|| panic!("no stats line as wanted within {bound:?}"));
        if line["event"] == "stats" && wanted(&line) {
            return line;
        }
    }
}

/// Waits (on stats lines 100 ms apart) until `counter` has moved and then kept still for
/// half a second: the server is stuck writing to the client.
fn wait_until_stuck(server: &TestServer, counter: &str) {
    let mut last = 0;
    let mut still = 0;
    stats_within(server, Duration::from_secs(20), |line| {
        let now = line[counter].as_u64().unwrap();
        still = if now > 0 && now == last { still + 1 } else { 0 };
        last = now;
        still >= 5
    });
}

#[tokio::test]
async fn echo_drops_a_client_that_stops_reading() {
    let server = TestServer::start_with(
        "echo",
        &["--idle-timeout", "1s", "--stats-interval", "100ms"],
    );
    let client = stalled_client(&server, "/", flood()).await;
    let started = Instant::now();
    let server = tokio::task::spawn_blocking(move || {
        stats_within(&server, DROP_BOUND, |line| {
            line["messages_in"].as_u64() > Some(0) && line["connections_active"] == 0
        });
        server
    });
    let server = within(server).await.unwrap();
    assert!(started.elapsed() < DROP_BOUND);
    client.abort();
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["clean"], true, "{stopped}");
}

#[tokio::test]
async fn perf_source_drops_a_client_that_stops_reading() {
    let server = TestServer::start_with(
        "perf",
        &["--idle-timeout", "1s", "--stats-interval", "100ms"],
    );
    let client = stalled_client(&server, "/source?count=100000000&size=65536", Vec::new()).await;
    let server = tokio::task::spawn_blocking(move || {
        stats_within(&server, DROP_BOUND, |line| {
            line["messages_out"].as_u64() > Some(0) && line["connections_active"] == 0
        });
        server
    });
    let server = within(server).await.unwrap();
    client.abort();
    let (_, stopped) = server.stop();
    assert_eq!(stopped["clean"], true, "{stopped}");
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_with_a_stalled_echo_client_is_prompt_and_clean() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let server = TestServer::start_with("echo", &["--stats-interval", "100ms"]);
    let client = stalled_client(&server, "/", flood()).await;
    let stopped = tokio::task::spawn_blocking(move || {
        let mut server = server;
        wait_until_stuck(&server, "messages_in");
        let asked = Instant::now();
        kill(Pid::from_raw(server.pid() as i32), Signal::SIGTERM).unwrap();
        let (status, stopped) = server.wait_stopped();
        assert!(status.success(), "{status:?}");
        (asked.elapsed(), stopped)
    });
    let (took, stopped) = within(stopped).await.unwrap();
    client.abort();
    assert_eq!(stopped["reason"], "terminate");
    assert_eq!(stopped["clean"], true, "{stopped}");
    assert!(took < STOP_BOUND, "stopping took {took:?}");
}

#[tokio::test]
async fn stdin_eof_with_a_stalled_source_client_is_prompt_and_clean() {
    let server = TestServer::start_with("perf", &["--stats-interval", "100ms"]);
    let client = stalled_client(&server, "/source?count=100000000&size=65536", Vec::new()).await;
    let stopped = tokio::task::spawn_blocking(move || {
        wait_until_stuck(&server, "messages_out");
        let asked = Instant::now();
        let (status, stopped) = server.stop();
        assert!(status.success(), "{status:?}");
        (asked.elapsed(), stopped)
    });
    let (took, stopped) = within(stopped).await.unwrap();
    client.abort();
    assert_eq!(stopped["clean"], true, "{stopped}");
    assert!(took < STOP_BOUND, "stopping took {took:?}");
}
