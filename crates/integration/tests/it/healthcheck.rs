//! `test-servers healthcheck`, the container images' health check: healthy against a real
//! server, a clear error against nothing, and `--wait` retrying until a server answers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use integration::{TestServer, run_test_servers};

use crate::support::within;

fn stdout_json(output: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no stdout line: {output:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn a_running_server_is_healthy_with_status_101() {
    for mode in ["echo", "load", "rpc", "perf"] {
        let server = TestServer::start(mode);
        let output = run_test_servers(&["healthcheck", "--url", server.url(), "--require-upgrade"]);
        assert!(output.status.success(), "{mode}: {output:?}");
        let healthy = stdout_json(&output);
        assert_eq!(healthy["event"], "healthy", "{mode}");
        assert_eq!(healthy["status"], 101, "{mode}");
        assert_eq!(healthy["attempts"], 1, "{mode}");
        let (status, _) = server.stop();
        assert!(status.success(), "{mode}");
    }
}

#[test]
fn nothing_listening_is_unhealthy_with_exit_1_and_the_reason() {
    // A port that was just free: bound, then released before the check.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    let output = run_test_servers(&["healthcheck", "--url", &url, "--timeout", "1s"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "nothing on stdout when unhealthy");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not healthy") && stderr.contains("refused"),
        "{stderr}"
    );
}

/// A peer that drops its first `dropped` connections unanswered, then answers the next
/// upgrade request with `answer`. Returns its URL.
fn http_peer(dropped: usize, answer: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    thread::spawn(move || {
        for _ in 0..dropped {
            drop(listener.accept().unwrap());
        }
        let (mut second, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = second.read(&mut request);
        second.write_all(answer.as_bytes()).unwrap();
    });
    url
}

#[test]
fn wait_retries_until_the_server_answers_and_any_http_answer_counts() {
    let url = http_peer(
        1,
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
    );
    let output = run_test_servers(&["healthcheck", "--url", &url, "--wait", "10s"]);
    assert!(output.status.success(), "{output:?}");
    let healthy = stdout_json(&output);
    assert_eq!(healthy["status"], 503);
    assert_eq!(healthy["attempts"], 2, "the dropped connection was retried");
}

#[test]
fn require_upgrade_refuses_an_answer_other_than_101() {
    let url = http_peer(0, "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
    let output = run_test_servers(&["healthcheck", "--url", &url, "--require-upgrade"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("HTTP 404"), "{stderr}");
}

/// The whole attempt, the courtesy close included, keeps to --timeout: a server that
/// answers the upgrade late and then never answers the close must not hold the check past
/// it (Docker's HEALTHCHECK --timeout=3s runs it with --timeout 2s, the liveness probe's
/// timeoutSeconds 5 with --timeout 3s: a check that takes twice its --timeout is killed
/// and counted as a failure although the server answered).
#[tokio::test]
async fn an_attempt_with_an_unanswered_close_keeps_to_its_timeout() {
    let server = crate::raw_peer::RawServer::bind();
    let url = server.url();
    let peer = tokio::spawn(async move {
        let (mut tcp, request) = server.accept_request().await;
        // Answers within the deadline, but late: 1.5 s of the 2.5 s.
        tokio::time::sleep(Duration::from_millis(1500)).await; // tidy:allow-sleep (a slow peer)
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            request.accept_key
        );
        tcp.write_all(response.as_bytes()).await.unwrap();
        // Holds the connection and reads nothing: the close is never answered.
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
    });
    let (output, took) = within(tokio::task::spawn_blocking(move || {
        // Built (or found) before the clock starts.
        integration::test_servers_bin();
        let started = Instant::now();
        let output = run_test_servers(&["healthcheck", "--url", &url, "--timeout", "2500ms"]);
        (output, started.elapsed())
    }))
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout_json(&output)["status"], 101);
    // Before the fix: 1.5 s to the answer, then up to another 2.5 s for the close.
    assert!(
        took < Duration::from_millis(3400),
        "the check took {took:?} with --timeout 2500ms"
    );
    peer.abort();
}
