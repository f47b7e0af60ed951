//! ws-client through proxies the tests start (`test_proxy`): echo through HTTP `CONNECT`
//! and SOCKS5, with and without credentials; `wss://` with TLS end to end; and each way the
//! proxy can fail (credentials, refusal, unreachable, silent, wrong protocol) reported as
//! `Error::Proxy` naming the proxy, never as the server's error.

use std::time::{Duration, Instant};

use integration::TestServer;
use tokio::net::TcpListener;
use ws_client::{Error, Proxy, ProxyFailure, TransportConfig, WebSocketConnection};

use crate::support::{assert_echoes, connect_with, echo_server, within};
use crate::test_proxy::{Answer, TestProxy};

/// A configuration for `url` through the proxy at `proxy`.
pub(crate) fn through(url: &str, proxy: &str) -> TransportConfig {
    TransportConfig {
        proxy: Proxy::url(proxy),
        ..TransportConfig::new(url)
    }
}

/// Connects with `config`, expecting a proxy failure: (proxy, kind, whole message).
pub(crate) async fn proxy_failure(config: TransportConfig) -> (String, ProxyFailure, String) {
    let Err(error) = within(WebSocketConnection::open(config)).await else {
        panic!("expected a proxy error, the connection was made");
    };
    let message = error.to_string();
    match error {
        Error::Proxy { proxy, kind, .. } => (proxy, kind, message),
        other => panic!("expected a proxy error, got {other:?}"),
    }
}

#[tokio::test]
async fn echo_through_an_http_connect_proxy_with_and_without_basic_auth() {
    let server = echo_server(&[]);
    let open = TestProxy::http(None, Answer::Forward).await;
    let mut connection = connect_with(through(server.url(), &open.url(None))).await;
    assert_echoes(&mut connection, "through CONNECT").await;
    within(connection.disconnect()).await.unwrap();
    let tunnels = open.tunnels();
    assert_eq!(tunnels.len(), 1, "{tunnels:?}");
    assert_eq!(tunnels[0].target, server.addr().to_string());
    assert!(tunnels[0].first_bytes.starts_with(b"GET /"), "{tunnels:?}");

    // A password with characters that must be percent-encoded in the URL.
    let guarded = TestProxy::http(Some(("alice", "p@ss:w/rd")), Answer::Forward).await;
    let url = guarded.url(Some("alice:p%40ss%3Aw%2Frd"));
    let mut connection = connect_with(through(server.url(), &url)).await;
    assert_echoes(&mut connection, "through CONNECT with Basic auth").await;
    within(connection.disconnect()).await.unwrap();
    assert_eq!(guarded.tunnels().len(), 1);
}

#[tokio::test]
async fn echo_through_a_socks5_proxy_with_and_without_a_password() {
    let server = echo_server(&[]);
    let by_name = format!("ws://localhost:{}/", server.addr().port());
    let open = TestProxy::socks5(None, Answer::Forward).await;
    // socks5://: the name is resolved here, the proxy gets an address (127.0.0.1 at last:
    // the server listens on IPv4 only, ::1 may come first and be refused by the proxy).
    let mut connection = connect_with(through(&by_name, &open.url(None))).await;
    assert_echoes(&mut connection, "through SOCKS5").await;
    within(connection.disconnect()).await.unwrap();
    let last = open.tunnels().pop().unwrap();
    assert_eq!(last.target, format!("127.0.0.1:{}", server.addr().port()));
    assert!(!last.by_name);
    assert!(last.first_bytes.starts_with(b"GET /"), "{last:?}");

    // socks5h://: the proxy gets the name.
    let guarded = TestProxy::socks5(Some(("bob", "s3cret")), Answer::Forward).await;
    let url = guarded.url_as("socks5h", Some("bob:s3cret"));
    let mut connection = connect_with(through(&by_name, &url)).await;
    assert_echoes(&mut connection, "through SOCKS5 by name, with a password").await;
    within(connection.disconnect()).await.unwrap();
    let tunnels = guarded.tunnels();
    assert_eq!(tunnels.len(), 1, "{tunnels:?}");
    assert_eq!(
        tunnels[0].target,
        format!("localhost:{}", server.addr().port())
    );
    assert!(tunnels[0].by_name);
}

#[tokio::test]
async fn wss_through_each_proxy_keeps_tls_end_to_end() {
    let server = TestServer::start_with("echo", &["--tls"]);
    let ca = server.ca_cert().expect("a --tls ready line names ca_cert");
    let http = TestProxy::http(None, Answer::Forward).await;
    let socks = TestProxy::socks5(Some(("u", "p")), Answer::Forward).await;
    let by_name = format!("wss://localhost:{}/", server.addr().port());
    for (proxy, url, target) in [
        (&http, http.url(None), server.url().to_owned()),
        (&socks, socks.url_as("socks5h", Some("u:p")), by_name),
    ] {
        let config = through(&target, &url).with_ca_file(ca).unwrap();
        let mut connection = connect_with(config).await;
        assert_echoes(&mut connection, "TLS through a proxy").await;
        within(connection.disconnect()).await.unwrap();
        // The proxy carried a TLS handshake record (a ClientHello), not an HTTP request.
        let tunnel = proxy.tunnels().pop().unwrap();
        assert_eq!(tunnel.first_bytes[..2], [0x16, 0x03], "{url}: {tunnel:?}");
    }
}

#[tokio::test]
async fn a_wrong_proxy_password_is_a_proxy_auth_error_not_a_handshake_rejection() {
    let server = echo_server(&[]);
    let http = TestProxy::http(Some(("alice", "right")), Answer::Forward).await;
    let socks = TestProxy::socks5(Some(("alice", "right")), Answer::Forward).await;
    for proxy in [&http, &socks] {
        let config = through(server.url(), &proxy.url(Some("alice:wrong")));
        let (shown, kind, message) = proxy_failure(config).await;
        assert_eq!(kind, ProxyFailure::AuthFailed, "{message}");
        assert_eq!(shown, proxy.url(None));
        assert!(message.contains(&shown), "{message}");
        assert!(
            message.contains("refused the user name and password"),
            "{message}"
        );
        assert!(!message.contains("wrong"), "the password shows: {message}");

        let (_, kind, message) = proxy_failure(through(server.url(), &proxy.url(None))).await;
        assert_eq!(kind, ProxyFailure::AuthRequired, "{message}");
        assert!(message.contains("user:password@"), "{message}");
        assert!(proxy.tunnels().is_empty(), "{:?}", proxy.tunnels());
    }
    // The HTTP proxy's answer was a 407, and it is said so.
    let (_, _, message) = proxy_failure(through(server.url(), &http.url(Some("a:b")))).await;
    assert!(message.contains("HTTP 407"), "{message}");
}

#[tokio::test]
async fn a_proxy_that_refuses_the_server_is_named_as_the_cause() {
    let server = echo_server(&[]);
    use ProxyFailure::{Refused, TargetUnreachable};
    let cases = [
        (
            TestProxy::http(None, Answer::Refuse("403 Forbidden")).await,
            "HTTP 403 Forbidden",
            Refused,
        ),
        (
            TestProxy::http(None, Answer::Refuse("503 Busy")).await,
            "HTTP 503 Busy",
            TargetUnreachable,
        ),
        (
            TestProxy::socks5(None, Answer::Refuse("\x02")).await,
            "not allowed by ruleset",
            Refused,
        ),
        (
            TestProxy::socks5(None, Answer::Refuse("\x05")).await,
            "connection refused",
            TargetUnreachable,
        ),
    ];
    for (proxy, words, expected) in &cases {
        let (shown, kind, message) = proxy_failure(through(server.url(), &proxy.url(None))).await;
        assert_eq!(kind, *expected, "{message}");
        assert_eq!(shown, proxy.url(None));
        assert!(message.contains(words), "{message}");
        assert_eq!(proxy.tunnels().len(), 1);
    }
    // A real refusal: the proxies try a port nothing listens on.
    let closed = closed_port();
    let target = format!("ws://127.0.0.1:{closed}/");
    for proxy in [
        TestProxy::http(None, Answer::Forward).await,
        TestProxy::socks5(None, Answer::Forward).await,
    ] {
        let (_, kind, message) = proxy_failure(through(&target, &proxy.url(None))).await;
        assert_eq!(kind, ProxyFailure::TargetUnreachable, "{message}");
        assert!(
            message.contains(&format!("127.0.0.1:{closed}")),
            "{message}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_proxy_is_not_the_server_refusing() {
    let server = echo_server(&[]);
    for scheme in ["http", "socks5"] {
        let proxy = format!("{scheme}://127.0.0.1:{}", closed_port());
        let (shown, kind, message) = proxy_failure(through(server.url(), &proxy)).await;
        assert_eq!(kind, ProxyFailure::Unreachable, "{message}");
        assert_eq!(shown, proxy);
        assert!(message.contains("cannot connect to the proxy"), "{message}");
    }
}

#[tokio::test]
async fn a_silent_proxy_times_out_within_the_connect_timeout() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    // Accepts, then never answers (the connections are held until the test ends).
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    for scheme in ["http", "socks5"] {
        let config = TransportConfig {
            connect_timeout: Duration::from_millis(300),
            ..through(
                &format!("ws://127.0.0.1:{}/", closed_port()),
                &format!("{scheme}://{proxy_addr}"),
            )
        };
        let started = Instant::now();
        let (_, kind, message) = proxy_failure(config).await;
        assert_eq!(kind, ProxyFailure::Timeout, "{message}");
        assert!(message.contains("300ms"), "{message}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    holder.abort();
}

#[tokio::test]
async fn a_proxy_of_the_other_protocol_is_a_protocol_error() {
    let server = echo_server(&[]);
    let http = TestProxy::http(None, Answer::Forward).await;
    let socks = TestProxy::socks5(None, Answer::Forward).await;
    // An HTTP request at a SOCKS5 proxy: it hangs up at once.
    let (_, kind, message) =
        proxy_failure(through(server.url(), &socks.url_as("http", None))).await;
    assert_eq!(kind, ProxyFailure::Protocol, "{message}");
    // SOCKS5 at an HTTP proxy: never a full request head, so it waits; and an http:// proxy
    // URL naming the echo server itself, which hangs up on a CONNECT.
    let config = TransportConfig {
        connect_timeout: Duration::from_millis(300),
        ..through(server.url(), &http.url_as("socks5", None))
    };
    let (_, kind, message) = proxy_failure(config).await;
    assert_eq!(kind, ProxyFailure::Timeout, "{message}");
    let at_server = format!("http://{}", server.addr());
    let (_, kind, message) = proxy_failure(through(server.url(), &at_server)).await;
    assert_eq!(kind, ProxyFailure::Protocol, "{message}");
    assert!(message.contains("closed the connection"), "{message}");
    assert!(http.tunnels().is_empty() && socks.tunnels().is_empty());
}

/// A port on 127.0.0.1 nothing listens on (bound, then freed: free a moment ago).
pub(crate) fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
