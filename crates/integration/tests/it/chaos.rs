//! `chaos` mode, the fault-injecting proxy: bytes forwarded unchanged (WebSocket and raw
//! TCP, half-close included), the ready line, the control API, per-connection upstream
//! failures, bounded buffering, the command line. The faults themselves are tested in
//! `chaos_faults`. Helpers here (`Proxy`, `raw_echo`, `control`) serve both.

use std::net::SocketAddr;
use std::time::Duration;

use integration::{TestServer, run_test_servers};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_client::{Error, Message, MessageType, TransportConfig, WebSocketConnection};

use crate::support::{connect, echo_server, pattern, within, within_for};

/// A `test-servers chaos` in front of an upstream.
pub(crate) struct Proxy {
    pub(crate) server: TestServer,
    control: SocketAddr,
}

impl Proxy {
    /// Starts `test-servers chaos --upstream <upstream>` with extra `args`.
    pub(crate) fn start(upstream: &str, args: &[&str]) -> Self {
        let mut all = vec!["--upstream", upstream];
        all.extend_from_slice(args);
        let server = TestServer::start_with("chaos", &all);
        let control = server.ready_line()["control"]
            .as_str()
            .and_then(|url| url.strip_prefix("http://"))
            .and_then(|rest| rest.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("no control address in {}", server.ready_line()));
        Self { server, control }
    }

    /// The proxy's URL from the ready line.
    pub(crate) fn url(&self) -> &str {
        self.server.url()
    }

    /// The proxy's listening address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// A proxy with extra `args` in front of a fresh [`raw_echo`].
    pub(crate) async fn before_raw_echo(args: &[&str]) -> Self {
        Self::start(&raw_echo().await.to_string(), args)
    }

    /// A raw TCP connection to the proxy.
    pub(crate) async fn connect_raw(&self) -> TcpStream {
        within(TcpStream::connect(self.addr())).await.unwrap()
    }

    /// Stops the proxy, asserting a clean exit; returns its `stopped` line.
    pub(crate) fn stop(self) -> Value {
        let (status, stopped) = self.server.stop();
        assert!(status.success(), "{stopped}");
        stopped
    }

    /// Sends one control request; returns the status and the JSON body.
    pub(crate) async fn control(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        control(self.control, method, path, body).await
    }

    /// Changes the faults the body names (`PATCH /faults`), asserting it was accepted.
    pub(crate) async fn set(&self, body: &str) {
        let (status, answer) = self.control("PATCH", "/faults", body).await;
        assert_eq!(status, 200, "PATCH /faults {body}: {answer}");
    }
}

/// One HTTP/1.1 request to the control API at `addr`, read to the end.
pub(crate) async fn control(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Value) {
    let mut tcp = within(TcpStream::connect(addr)).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    within(tcp.write_all(request.as_bytes())).await.unwrap();
    let mut response = String::new();
    within(tcp.read_to_string(&mut response)).await.unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    (status, body)
}

/// A raw TCP echo upstream: echoes each connection's bytes until it half-closes, then
/// half-closes too. Lives as long as the test's runtime.
pub(crate) async fn raw_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut from, mut to) = tcp.split();
                if tokio::io::copy(&mut from, &mut to).await.is_ok() {
                    let _ = to.shutdown().await;
                }
            });
        }
    });
    addr
}

/// Writes `payload` and half-closes while reading everything that comes back.
pub(crate) async fn round_trip(tcp: &mut TcpStream, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let (mut from, mut to) = tcp.split();
    let write = async {
        to.write_all(payload).await?;
        to.shutdown().await
    };
    let mut back = Vec::new();
    let (written, read) = tokio::join!(write, from.read_to_end(&mut back));
    written?;
    read?;
    Ok(back)
}

#[tokio::test]
async fn chaos_forwards_websocket_messages_unchanged() {
    let echo = echo_server(&[]);
    let proxy = Proxy::start(echo.url(), &[]);
    let ready = proxy.server.ready_line().as_object().unwrap();
    let keys: Vec<&str> = ready.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["event", "mode", "addr", "url", "upstream", "control"]
    );
    assert_eq!(ready["mode"], "chaos");
    assert_eq!(ready["upstream"], echo.addr().to_string());
    assert_eq!(proxy.url(), format!("ws://{}/", proxy.addr()));

    let mut connection = connect(proxy.url()).await;
    let mut total = 0;
    for (seed, size) in [0, 1, 125, 126, 65_535, 65_536, 1 << 20]
        .into_iter()
        .enumerate()
    {
        let payload = pattern(size, seed as u8);
        within(connection.send(Message::binary(payload.clone())))
            .await
            .unwrap();
        let echoed = within(connection.receive_message()).await.unwrap();
        assert_eq!(echoed.message_type, MessageType::Binary);
        assert!(echoed.data == payload, "{size} bytes came back changed");
        total += size as u64;
    }
    let text = "héllo ✓ 🦀 ".repeat(3000);
    within(connection.send(text.as_str())).await.unwrap();
    let echoed = within(connection.receive_message()).await.unwrap();
    assert_eq!(echoed.as_text().unwrap(), text);
    within(connection.disconnect()).await.unwrap();

    let stopped = proxy.stop();
    assert_eq!(stopped["event"], "stopped");
    assert_eq!(stopped["connections_accepted"], 1);
    // Frames and the handshake add to the payload, both ways.
    for field in ["bytes_in", "bytes_out"] {
        assert!(
            stopped[field].as_u64().unwrap() > total,
            "{field}: {stopped}"
        );
    }
}

#[tokio::test]
async fn chaos_forwards_a_raw_byte_stream_unchanged_and_passes_half_closes_on() {
    let proxy = Proxy::before_raw_echo(&[]).await;
    assert_eq!(proxy.url(), format!("ws://{}/", proxy.addr()));
    let payload = pattern(3 << 20, 7);
    let mut tcp = proxy.connect_raw().await;
    // The echo only ends its side after the proxy passed on the client's half-close.
    let back = within(round_trip(&mut tcp, &payload)).await.unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back == payload, "the byte stream came back changed");

    let stopped = proxy.stop();
    assert_eq!(stopped["bytes_in"], payload.len() as u64);
    assert_eq!(stopped["bytes_out"], payload.len() as u64);
    assert_eq!(stopped["connections_active"], 0);
}

#[tokio::test]
async fn chaos_url_keeps_the_upstream_path() {
    let echo = echo_server(&[]);
    let proxy = Proxy::start(&echo.url_with_path("some/path?x=1"), &[]);
    assert_eq!(proxy.url(), format!("ws://{}/some/path?x=1", proxy.addr()));
    let mut connection = connect(proxy.url()).await;
    crate::support::assert_echoes(&mut connection, "through a path").await;
}

#[tokio::test]
async fn chaos_passes_tls_through_untouched() {
    let secure = TestServer::start_with("echo", &["--tls"]);
    let proxy = Proxy::start(secure.url(), &["--latency-ms", "5"]);
    assert_eq!(proxy.url(), format!("wss://{}/", proxy.addr()));
    let config = TransportConfig::new(proxy.url())
        .with_ca_file(secure.ca_cert().unwrap())
        .unwrap();
    let mut connection = crate::support::connect_with(config).await;
    crate::support::assert_echoes(&mut connection, "end to end through the proxy").await;
}

#[tokio::test]
async fn chaos_control_api_reads_replaces_patches_resets_and_refuses_bad_input() {
    let echo = echo_server(&[]);
    let proxy = Proxy::start(echo.url(), &["--latency-ms", "5", "--jitter-ms", "2"]);
    let (status, faults) = proxy.control("GET", "/faults", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        (faults["latency_ms"].as_u64(), faults["jitter_ms"].as_u64()),
        (Some(5), Some(2))
    );
    assert_eq!(faults["black_hole"], false);

    let (status, faults) = proxy
        .control(
            "PUT",
            "/faults",
            r#"{"bandwidth_kbps":1000,"direction":"upstream"}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(faults["bandwidth_kbps"], 1000);
    assert_eq!(faults["latency_ms"], 0, "PUT replaces the whole set");
    assert_eq!(faults["direction"], "upstream");

    proxy.set(r#"{"slice_bytes":16}"#).await;
    let (_, faults) = proxy.control("GET", "/faults", "").await;
    assert_eq!(
        (
            faults["bandwidth_kbps"].as_u64(),
            faults["slice_bytes"].as_u64()
        ),
        (Some(1000), Some(16))
    );

    for (body, field) in [
        (r#"{"latency_ms":"fast"}"#, "latency_ms"),
        (r#"{"bandwidth_kbps":0}"#, "bandwidth_kbps"),
        (r#"{"direction":"sideways"}"#, "direction"),
        (r#"{"black_hole":"yes"}"#, "black_hole"),
        (r#"{"latency":5}"#, "latency"),
    ] {
        let (status, answer) = proxy.control("PUT", "/faults", body).await;
        assert_eq!(status, 400, "{body}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    let (status, _) = proxy.control("PUT", "/faults", "not json").await;
    assert_eq!(status, 400);
    let (status, _) = proxy.control("DELETE", "/faults", "").await;
    assert_eq!(status, 405);
    let (status, _) = proxy.control("GET", "/nowhere", "").await;
    assert_eq!(status, 404);
    let (_, faults) = proxy.control("GET", "/faults", "").await;
    assert_eq!(faults["slice_bytes"], 16, "bad input changed nothing");

    let (status, faults) = proxy.control("POST", "/reset", "").await;
    assert_eq!(status, 200);
    assert!(faults["bandwidth_kbps"].is_null() && faults["slice_bytes"].is_null());
    let mut connection = connect(proxy.url()).await;
    crate::support::assert_echoes(&mut connection, "after reset").await;
}

#[tokio::test]
async fn chaos_unreachable_upstream_resets_that_client_and_keeps_serving() {
    // A port that was just free: nothing listens there.
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_addr = gone.local_addr().unwrap();
    drop(gone);
    let proxy = Proxy::start(&gone_addr.to_string(), &["--connect-timeout", "2s"]);
    let mut config = TransportConfig::new(proxy.url());
    config.connect_timeout = Duration::from_secs(5);
    let failed = within(WebSocketConnection::open(config)).await;
    assert!(failed.as_ref().is_err_and(was_reset), "{failed:?}");
    // The control API still answers and the process still runs.
    let (status, _) = proxy.control("GET", "/faults", "").await;
    assert_eq!(status, 200);
    let stopped = proxy.stop();
    assert_eq!(stopped["upstream_failures"], 1, "{stopped}");
    assert_eq!(stopped["connections_rejected"], 1, "{stopped}");
}

#[tokio::test]
async fn chaos_delay_line_pushes_back_instead_of_buffering() {
    // An upstream that accepts and never reads: the proxy must stop reading from the
    // client once its delay line is full, not buffer all that the client writes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(tcp);
    });
    let proxy = Proxy::start(&upstream.to_string(), &[]);
    let before = proxy.server.usage().map(|usage| usage.peak_rss_bytes);
    let mut tcp = proxy.connect_raw().await;
    let flood = vec![0x5au8; 64 << 20];
    let wrote_all = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(&flood)).await;
    assert!(
        wrote_all.is_err(),
        "64 MiB went into a proxy whose upstream never reads"
    );
    if let (Some(before), Some(after)) = (before, proxy.server.usage()) {
        let grown = after.peak_rss_bytes.saturating_sub(before);
        // The delay line holds 4 MiB; allow as much again for allocator slack.
        assert!(grown < 12 << 20, "the proxy grew by {grown} bytes");
    }
    held.abort();
}

#[test]
fn chaos_command_line_errors() {
    let output = run_test_servers(&["chaos", "--port", "0"]);
    assert_eq!(output.status.code(), Some(2), "--upstream is required");
    for bad in [
        &["--upstream", "http://upstream.invalid:1/"][..],
        &["--upstream", "upstream.invalid:1", "--bandwidth-kbps", "0"],
        &["--upstream", "upstream.invalid:1", "--slice-delay-ms", "5"],
        &[
            "--upstream",
            "upstream.invalid:1",
            "--direction",
            "sideways",
        ],
    ] {
        let mut args = vec!["chaos", "--port", "0"];
        args.extend_from_slice(bad);
        let output = run_test_servers(&args);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        assert!(output.stdout.is_empty());
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run_test_servers(&["chaos", "--upstream", "upstream.invalid:1", "--port", &port]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(&port), "{}", errors[0]);
    assert!(output.stdout.is_empty());
}

/// Whether a connect failed the way a reset makes it fail. During the handshake ws-client
/// reports a reset as `Io` (kind `ConnectionReset`), once open as `ConnectionLost`.
pub(crate) fn was_reset(error: &Error) -> bool {
    match error {
        Error::ConnectionLost(_) => true,
        Error::Io(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// Waits (bounded) for a raw read that must fail with a reset; returns the bytes read first.
pub(crate) async fn read_until_reset(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut scratch = [0u8; 4096];
    loop {
        match within_for(Duration::from_secs(5), tcp.read(&mut scratch)).await {
            Ok(0) => panic!("a clean end of file after {} bytes, not a reset", got.len()),
            Ok(n) => got.extend_from_slice(&scratch[..n]),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
                return got;
            }
        }
    }
}
