//! `ws-bench soak` through two `test-servers chaos` proxies, with every connection cut twice
//! while it runs (the cuts follow the client's progress lines, not a timer): the summary's
//! arithmetic holds, nothing is lost, and the clients reconnected.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use integration::TestServer;
use serde_json::Value;
use wait_timeout::ChildExt;

/// Longest wait for one line from the client or one event from a proxy.
const LINE_TIMEOUT: Duration = Duration::from_secs(15);

/// A chaos proxy in front of `upstream`, printing its counters every 100 ms.
fn proxy(upstream: &TestServer) -> TestServer {
    TestServer::start_with(
        "chaos",
        &["--upstream", upstream.url(), "--stats-interval", "100ms"],
    )
}

/// One control request to `proxy` (`PATCH /faults` with `body`); asserts a 200.
fn patch(proxy: &TestServer, body: &str) {
    let addr = proxy.ready_line()["control"]
        .as_str()
        .and_then(|url| url.strip_prefix("http://"))
        .map(|rest| rest.trim_end_matches('/').to_owned())
        .expect("a control URL in the ready line");
    let mut tcp = TcpStream::connect(&addr).expect("the control API accepts");
    tcp.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
    let request = format!(
        "PATCH /faults HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{body}: {response}");
}

/// Resets every open connection of `proxy` (and new ones meanwhile) until its counters show
/// `at_least` more resets than `before`; returns the new count.
fn cut(proxy: &TestServer, before: u64, at_least: u64) -> u64 {
    patch(proxy, r#"{"reset_after_ms":0}"#);
    let reset = loop {
        let event = proxy
            .next_event(LINE_TIMEOUT)
            .expect("the proxy's stats lines keep coming");
        let reset = event["faults_reset"].as_u64().unwrap_or(0);
        if reset >= before + at_least {
            break reset;
        }
    };
    patch(proxy, r#"{"reset_after_ms":null}"#);
    reset
}

fn count(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key} in {value}"))
}

#[test]
fn soak_accounts_for_every_message_and_call_across_cuts() {
    let echo = TestServer::start("echo");
    let rpc = TestServer::start("rpc");
    let (echo_proxy, rpc_proxy) = (proxy(&echo), proxy(&rpc));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ws-bench"))
        .args(["soak", "--echo-url", echo_proxy.url(), "--rpc-url"])
        .args([rpc_proxy.url(), "--echo-clients", "2", "--rpc-clients", "1"])
        .args(["--duration", "6s", "--drain", "10s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ws-bench starts");
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });

    // Two cuts, at about 2 s and 4 s, once messages and calls are going through.
    let (mut cuts, mut echo_resets, mut rpc_resets) = (0, 0, 0);
    let summary = loop {
        let line = lines
            .recv_timeout(LINE_TIMEOUT)
            .expect("a progress or summary line from ws-bench soak");
        let value: Value = serde_json::from_str(&line).expect("JSON lines on stdout");
        if value["event"] == "summary" {
            break value;
        }
        let t = value["t_s"].as_f64().unwrap();
        let flowing = count(&value["echo"], "delivered") > 0 && count(&value["rpc"], "ok") > 0;
        if flowing && cuts < 2 && t >= 1.5 + 2.0 * f64::from(cuts) {
            echo_resets = cut(&echo_proxy, echo_resets, 2);
            rpc_resets = cut(&rpc_proxy, rpc_resets, 1);
            cuts += 1;
        }
    };
    let status = child
        .wait_timeout(LINE_TIMEOUT)
        .unwrap()
        .expect("ws-bench exits after its summary");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {summary}\n{stderr}");
    assert_eq!(cuts, 2, "{summary}");

    let echo_counts = &summary["echo"];
    let (sent, delivered) = (count(echo_counts, "sent"), count(echo_counts, "delivered"));
    let (failed, lost) = (count(echo_counts, "failed"), count(echo_counts, "lost"));
    assert!(delivered > 300, "{summary}");
    assert_eq!(sent, delivered + failed + lost, "{summary}");
    assert_eq!(lost, 0, "{summary}");
    assert_eq!(count(echo_counts, "corrupt"), 0, "{summary}");
    assert!(count(echo_counts, "reconnects") >= 2, "{summary}");

    let rpc_counts = &summary["rpc"];
    let resolved: u64 = ["ok", "wrong", "interrupted", "errors", "timeouts", "lost"]
        .iter()
        .map(|key| count(rpc_counts, key))
        .sum();
    assert_eq!(count(rpc_counts, "calls"), resolved, "{summary}");
    assert!(count(rpc_counts, "ok") > 50, "{summary}");
    assert_eq!(
        count(rpc_counts, "lost") + count(rpc_counts, "wrong"),
        0,
        "{summary}"
    );
    assert!(count(rpc_counts, "reconnects") >= 1, "{summary}");
    assert_eq!(summary["ok"], true, "{summary}");
    assert!(summary["echo"]["latency"]["p99_us"].as_f64().unwrap() > 0.0);
}

/// Runs `ws-bench soak` with `args` to its end; returns its exit code and summary line.
fn soak_to_end(args: &[&str]) -> (Option<i32>, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ws-bench"))
        .arg("soak")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ws-bench starts");
    let status = child
        .wait_timeout(LINE_TIMEOUT)
        .unwrap()
        .expect("ws-bench soak ends in time");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let summary = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|value| value["event"] == "summary")
        .expect("a summary line");
    (status.code(), summary)
}

/// An "RPC server" that answers nothing (an echo server sends each request back, which
/// answers no call): every call ends in its timeout. A request the client lost would end the
/// same way, so a run in which no call was answered must not pass.
#[test]
fn a_soak_in_which_no_call_is_answered_fails() {
    let silent = TestServer::start("echo");
    let (code, summary) = soak_to_end(&[
        "--rpc-url",
        silent.url(),
        "--rpc-clients",
        "1",
        "--rpc-timeout",
        "300ms",
        "--duration",
        "1s",
        "--drain",
        "1s",
    ]);
    let rpc = &summary["rpc"];
    assert!(count(rpc, "calls") > 5, "{summary}");
    assert_eq!(count(rpc, "timeouts"), count(rpc, "calls"), "{summary}");
    assert_eq!(summary["ok"], false, "{summary}");
    assert_eq!(code, Some(3), "{summary}");
}
