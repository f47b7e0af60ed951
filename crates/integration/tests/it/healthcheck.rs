//! `test-servers healthcheck`, the container images' health check: healthy against a real
//! server, a clear error against nothing, and `--wait` retrying until a server answers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;

use integration::{TestServer, run_test_servers};

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
