//! `perf` mode: `/sink` counts exactly, `/source` delivers N numbered messages in order then
//! 1000, `/echo` echoes, unknown paths are closed with 1008, and `stats` lines carry their
//! fields.

use integration::TestServer;
use serde_json::Value;
use ws_client::{Message, MessageType, WebSocketConnection};

use crate::support::{STEP_TIMEOUT, connect, pattern, within};

/// Fields every `stats` line promises (`rss_bytes` is `null` off Linux).
const STATS_FIELDS: [&str; 19] = [
    "event",
    "mode",
    "elapsed_ms",
    "connections_accepted",
    "connections_rejected",
    "connections_active",
    "messages_in",
    "messages_out",
    "bytes_in",
    "bytes_out",
    "wire_bytes_in",
    "wire_bytes_out",
    "protocol_errors",
    "accepts_per_sec",
    "msgs_in_per_sec",
    "bytes_in_per_sec",
    "msgs_out_per_sec",
    "bytes_out_per_sec",
    "rss_bytes",
];

/// The first `stats` line for which `wanted` holds, skipping earlier ones. Panics if none
/// comes within [`STEP_TIMEOUT`] of the previous line.
pub(crate) fn stats_line_where(server: &TestServer, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        let event = server
            .next_event(STEP_TIMEOUT)
            .expect("a stats line (is --stats-interval set?)");
        assert_eq!(event["event"], "stats", "unexpected event {event}");
        if wanted(&event) {
            return event;
        }
    }
}

/// Asserts that `line` is a `stats` line with every promised field.
pub(crate) fn assert_stats_fields(line: &Value, mode: &str) {
    for field in STATS_FIELDS {
        assert!(
            line.get(field).is_some(),
            "stats line lacks {field}: {line}"
        );
    }
    assert_eq!(line["mode"], mode);
    if cfg!(target_os = "linux") {
        assert!(line["rss_bytes"].as_u64().unwrap() > 0, "{line}");
    }
}

/// Receives the next message and asserts that it is a close with `code`; returns its reason.
async fn expect_close(connection: &mut WebSocketConnection, code: u16) -> String {
    let close = within(connection.receive_message()).await.unwrap();
    assert_eq!(close.message_type, MessageType::Close, "{close:?}");
    assert_eq!(close.close_code(), Some(code));
    close.close_reason().unwrap_or_default()
}

#[tokio::test]
async fn sink_counts_exactly_what_was_sent() {
    let server = TestServer::start_with("perf", &[]);
    let mut connection = connect(&server.url_with_path("/sink")).await;
    let mut bytes = 0u64;
    for i in 0..1000usize {
        let message = if i % 3 == 0 {
            Message::text("x".repeat(i))
        } else {
            Message::binary(pattern(i * 7, i as u8))
        };
        bytes += message.data.len() as u64;
        within(connection.queue(message)).await.unwrap();
    }
    within(connection.flush()).await.unwrap();
    // The server answers the close only after reading everything sent before it.
    within(connection.disconnect()).await.unwrap();
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["messages_in"], 1000);
    assert_eq!(stopped["bytes_in"], bytes);
    assert_eq!(stopped["messages_out"], 0, "the sink never answers");
}

#[tokio::test]
async fn source_delivers_n_numbered_messages_in_order_then_closes_with_1000() {
    let server = TestServer::start_with("perf", &[]);
    // Several batches (about 64 KiB each), so batch boundaries are crossed.
    let (count, size) = (5000u64, 100usize);
    let url = server.url_with_path(&format!("/source?count={count}&size={size}"));
    let mut connection = connect(&url).await;
    for i in 0..count {
        let message = within(connection.receive_message()).await.unwrap();
        assert_eq!(message.message_type, MessageType::Binary);
        assert_eq!(message.data.len(), size);
        assert_eq!(
            message.data[..8],
            i.to_be_bytes(),
            "message {i} out of order"
        );
    }
    expect_close(&mut connection, 1000).await;
    let (_, stopped) = server.stop();
    assert_eq!(stopped["messages_out"], count);
    assert_eq!(stopped["bytes_out"], count * size as u64);
}

#[tokio::test]
async fn a_client_can_stop_an_endless_source_early() {
    let server = TestServer::start_with("perf", &[]);
    let url = server.url_with_path("/source?count=1000000000&size=1000");
    let mut connection = connect(&url).await;
    for i in 0..10u64 {
        let message = within(connection.receive_message()).await.unwrap();
        assert_eq!(message.data[..8], i.to_be_bytes());
    }
    // The server reads between batches, answers the close and stops pushing.
    within(connection.disconnect()).await.unwrap();
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["clean"], true);
    assert!(stopped["messages_out"].as_u64().unwrap() < 1_000_000_000);
}

#[tokio::test]
async fn source_takes_its_defaults_from_the_flags_and_sends_tiny_messages() {
    let server = TestServer::start_with("perf", &["--source-count", "3", "--source-size", "4"]);
    let mut connection = connect(&server.url_with_path("/source")).await;
    for _ in 0..3 {
        let message = within(connection.receive_message()).await.unwrap();
        assert_eq!(message.data, [0u8; 4], "too small to carry a number");
    }
    expect_close(&mut connection, 1000).await;

    let mut empty = connect(&server.url_with_path("/source?count=0")).await;
    expect_close(&mut empty, 1000).await;
}

#[tokio::test]
async fn echo_path_echoes_in_order() {
    let server = TestServer::start_with("perf", &[]);
    let mut connection = connect(&server.url_with_path("/echo")).await;
    for i in 0..100u32 {
        within(connection.queue(Message::binary(i.to_be_bytes().to_vec())))
            .await
            .unwrap();
    }
    within(connection.flush()).await.unwrap();
    for i in 0..100u32 {
        let echo = within(connection.receive_message()).await.unwrap();
        assert_eq!(echo.data, i.to_be_bytes());
    }
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn echo_path_returns_every_size_intact() {
    // Sizes around each length encoding and the large-frame paths (read straight into the
    // message, written from its own memory), with a pattern that shows any masking slip.
    let server = TestServer::start_with("perf", &[]);
    let mut connection = connect(&server.url_with_path("/echo")).await;
    for size in [0, 1, 125, 126, 4095, 65_535, 65_536, 100_003, 1 << 20] {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        within(connection.send_slice(MessageType::Binary, &payload))
            .await
            .unwrap();
        within(connection.send(Message::binary(payload.clone())))
            .await
            .unwrap();
        for copy in ["borrowed", "owned"] {
            let echo = within(connection.receive_message()).await.unwrap();
            assert_eq!(echo.message_type, MessageType::Binary);
            assert!(
                echo.data == payload,
                "{copy} message of {size} bytes came back changed"
            );
        }
    }
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn unknown_paths_and_bad_parameters_are_closed_with_1008_naming_the_paths() {
    let server = TestServer::start_with("perf", &["--max-message-size", "1024"]);
    for path in [
        "/",
        "/nope",
        "/source?count=many",
        "/source?size=1025",
        "/sink?x=1",
    ] {
        let mut connection = connect(&server.url_with_path(path)).await;
        let reason = expect_close(&mut connection, 1008).await;
        assert!(
            reason.contains("/source?count=N&size=S") || reason.contains("size="),
            "{path}: {reason}"
        );
    }
    // The server keeps serving.
    let mut sink = connect(&server.url_with_path("/sink")).await;
    within(sink.send("still here")).await.unwrap();
    within(sink.disconnect()).await.unwrap();
}

#[test]
fn a_source_size_over_the_message_limit_is_an_error_at_start() {
    let output = integration::run_test_servers(&[
        "perf",
        "--port",
        "0",
        "--source-size",
        "2048",
        "--max-message-size",
        "1024",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--source-size"), "{stderr}");
}

#[tokio::test]
async fn stats_lines_report_counters_rates_and_memory() {
    let server = TestServer::start_with("perf", &["--stats-interval", "50ms"]);
    let mut connection = connect(&server.url_with_path("/sink")).await;
    for _ in 0..10 {
        within(connection.queue(Message::binary(vec![1u8; 100])))
            .await
            .unwrap();
    }
    within(connection.flush()).await.unwrap();
    within(connection.disconnect()).await.unwrap();
    // Counters are read one after the other: wait for a line that has both.
    let line = stats_line_where(&server, |line| {
        line["messages_in"] == 10 && line["bytes_in"] == 1000
    });
    assert_stats_fields(&line, "perf");
    assert!(line["elapsed_ms"].as_u64().unwrap() >= 50);
    let (_, stopped) = server.stop();
    assert_eq!(stopped["messages_in"], 10);
}
