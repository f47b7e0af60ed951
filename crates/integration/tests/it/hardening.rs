//! Server hardening: `--allowed-origin` (403 for a missing or foreign origin) and
//! `--max-header-bytes` (431), in every mode that shares the accept loop.

use ws_client::{Error, TransportConfig, WebSocketConnection};

use crate::support::{assert_echoes, connect, connect_with, echo_server, within};

const GOOD: &str = "https://good.example";

/// A configuration for `url` that sends `Origin: origin`.
fn with_origin(url: &str, origin: &str) -> TransportConfig {
    TransportConfig {
        headers: vec![("Origin".into(), origin.into())],
        ..TransportConfig::new(url)
    }
}

/// Opens `config`, expecting the server to refuse the upgrade with `status`; returns the
/// reason (which carries the start of the body).
async fn expect_rejected(config: TransportConfig, status: u16) -> String {
    match within(WebSocketConnection::open(config)).await {
        Err(Error::HandshakeRejected {
            status: Some(got),
            reason,
            ..
        }) if got == status => reason,
        other => panic!("expected HandshakeRejected {status}, got {other:?}"),
    }
}

#[tokio::test]
async fn only_allowed_origins_are_upgraded() {
    let server = echo_server(&["--allowed-origin", GOOD]);
    let mut good = connect_with(with_origin(server.url(), GOOD)).await;
    assert_echoes(&mut good, "from a good origin").await;

    let reason = expect_rejected(with_origin(server.url(), "https://evil.example"), 403).await;
    assert!(reason.contains("origin not allowed"), "{reason}");
    let reason = expect_rejected(TransportConfig::new(server.url()), 403).await;
    assert!(reason.contains("origin not allowed"), "{reason}");
    // Scheme and port are part of the origin.
    expect_rejected(with_origin(server.url(), "http://good.example"), 403).await;
    expect_rejected(with_origin(server.url(), "https://good.example:8443"), 403).await;

    // Scheme and host compare without regard to case; the server keeps serving.
    let mut again = connect_with(with_origin(server.url(), "HTTPS://Good.Example")).await;
    assert_echoes(&mut again, "still serving").await;
    assert_echoes(&mut good, "first client unaffected").await;
    within(again.disconnect()).await.unwrap();
    within(good.disconnect()).await.unwrap();

    let (status, stopped) = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(stopped["connections_rejected"], 4, "{stopped}");
    assert_eq!(stopped["connections_accepted"], 2, "{stopped}");
}

#[tokio::test]
async fn without_allowed_origins_any_origin_is_served() {
    let server = echo_server(&[]);
    let mut foreign = connect_with(with_origin(server.url(), "https://anything.example")).await;
    assert_echoes(&mut foreign, "any origin").await;
    let mut none = connect(server.url()).await;
    assert_echoes(&mut none, "no origin").await;
}

#[tokio::test]
async fn oversized_request_headers_are_431() {
    let server = echo_server(&["--max-header-bytes", "1024"]);
    let big = TransportConfig {
        headers: vec![("X-Padding".into(), "p".repeat(2048))],
        ..TransportConfig::new(server.url())
    };
    let reason = expect_rejected(big, 431).await;
    assert!(reason.contains("too large"), "{reason}");

    let mut normal = connect(server.url()).await;
    assert_echoes(&mut normal, "normal headers fit").await;
    within(normal.disconnect()).await.unwrap();

    let (status, stopped) = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(stopped["connections_rejected"], 1, "{stopped}");
}

#[tokio::test]
async fn the_default_header_cap_is_8192_bytes() {
    let server = echo_server(&[]);
    let fits = TransportConfig {
        headers: vec![("X-Padding".into(), "p".repeat(4096))],
        ..TransportConfig::new(server.url())
    };
    let mut served = connect_with(fits).await;
    assert_echoes(&mut served, "4 KiB of headers fit").await;
    let over = TransportConfig {
        headers: vec![("X-Padding".into(), "p".repeat(9000))],
        ..TransportConfig::new(server.url())
    };
    expect_rejected(over, 431).await;
    assert_echoes(&mut served, "still serving").await;
}

#[tokio::test]
async fn the_rpc_mode_checks_origins_too() {
    let server = integration::TestServer::start_with("rpc", &["--allowed-origin", GOOD]);
    expect_rejected(with_origin(server.url(), "https://evil.example"), 403).await;
    let mut connection = connect_with(with_origin(server.url(), GOOD)).await;
    within(connection.disconnect()).await.unwrap();
}
