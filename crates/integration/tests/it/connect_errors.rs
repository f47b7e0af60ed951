//! Connecting, against raw servers that answer the upgrade exactly as each test says: every
//! way a response can be wrong is a rejected handshake naming what is wrong; a negotiated
//! subprotocol and the configured headers; configurations refused before any I/O; and
//! connecting from a chosen local address (its family, a refused port, IPv6).

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use ws_client::{ConnectionState, Error, TransportConfig, WebSocketConnection};

use crate::raw_peer::{RawServer, UpgradeRequest};
use crate::support::within;

/// Connects with `config` to a raw server that answers the upgrade request with
/// `respond(request)` and then holds the connection open; returns what the client got.
async fn answered_with(
    server: &RawServer,
    config: TransportConfig,
    respond: impl FnOnce(&UpgradeRequest) -> String,
) -> Result<WebSocketConnection, Error> {
    let serve = async {
        let (mut tcp, request) = server.accept_request().await;
        // The client may already have given up (a response it refuses part-way).
        let _ = tcp.write_all(respond(&request).as_bytes()).await;
        tcp
    };
    let (_tcp, connected) = tokio::join!(serve, within(WebSocketConnection::open(config)));
    connected
}

/// A 101 response with `accept`, and `headers` (each ending in CRLF) in place of the usual
/// `Upgrade` and `Connection` lines.
fn switching(accept: &str, headers: &str) -> String {
    format!("HTTP/1.1 101 Switching Protocols\r\n{headers}Sec-WebSocket-Accept: {accept}\r\n\r\n")
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n";

#[tokio::test]
async fn each_wrong_answer_to_the_upgrade_is_a_rejected_handshake_naming_the_fault() {
    type Respond = fn(&UpgradeRequest) -> String;
    let cases: [(&str, Respond, Option<u16>, &str); 10] = [
        (
            "no Upgrade header",
            |r| switching(&r.accept_key, "Connection: Upgrade\r\n"),
            Some(101),
            "Upgrade header is None",
        ),
        (
            "another protocol",
            |r| switching(&r.accept_key, "Upgrade: h2c\r\nConnection: Upgrade\r\n"),
            Some(101),
            "Upgrade header is Some(\"h2c\")",
        ),
        (
            "no Connection header",
            |r| switching(&r.accept_key, "Upgrade: websocket\r\n"),
            Some(101),
            "Connection header is None",
        ),
        (
            "Connection without the upgrade token",
            |r| {
                switching(
                    &r.accept_key,
                    "Upgrade: websocket\r\nConnection: keep-alive\r\n",
                )
            },
            Some(101),
            "Connection header is Some(\"keep-alive\")",
        ),
        (
            "an accept key for another request",
            |_| switching("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", UPGRADE),
            Some(101),
            "Sec-WebSocket-Accept is Some(\"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\")",
        ),
        (
            "an extension nobody offered",
            |r| {
                let headers = format!("{UPGRADE}Sec-WebSocket-Extensions: permessage-deflate\r\n");
                switching(&r.accept_key, &headers)
            },
            Some(101),
            "extension \"permessage-deflate\"",
        ),
        (
            "a subprotocol nobody offered",
            |r| {
                switching(
                    &r.accept_key,
                    &format!("{UPGRADE}Sec-WebSocket-Protocol: chat\r\n"),
                )
            },
            Some(101),
            "subprotocol \"chat\"",
        ),
        (
            "a refusal without a body",
            |_| "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".into(),
            Some(403),
            "Forbidden",
        ),
        (
            "a refusal with a body",
            |_| "HTTP/1.1 401 Unauthorized\r\nContent-Length: 9\r\n\r\ngo away\r\n".into(),
            Some(401),
            "Unauthorized; body: go away",
        ),
        (
            "not HTTP at all",
            |_| "SSH-2.0-OpenSSH_9.6\r\n".into(),
            None,
            "not a valid HTTP response",
        ),
    ];
    let server = RawServer::bind();
    for (case, respond, status, fragment) in cases {
        let config = TransportConfig::new(server.url());
        match answered_with(&server, config, respond).await {
            Err(Error::HandshakeRejected {
                status: got,
                reason,
                ..
            }) => {
                assert_eq!(got, status, "{case}: {reason}");
                assert!(reason.contains(fragment), "{case}: {reason}");
                if status == Some(403) {
                    assert_eq!(
                        reason, "Forbidden",
                        "{case}: only the phrase, no empty body"
                    );
                }
            }
            other => panic!("{case}: expected HandshakeRejected, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_server_that_hangs_up_during_the_handshake_is_a_rejected_handshake() {
    let server = RawServer::bind();
    let hang_up = async { drop(server.accept_request().await) };
    let config = TransportConfig::new(server.url());
    let ((), result) = tokio::join!(hang_up, within(WebSocketConnection::open(config)));
    match result {
        Err(Error::HandshakeRejected {
            status: None,
            reason,
            ..
        }) => assert!(
            reason.contains("closed the connection during the handshake"),
            "{reason}"
        ),
        other => panic!("expected HandshakeRejected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_response_head_that_never_ends_is_refused_at_64_kib() {
    let server = RawServer::bind();
    // A 101 whose one header line goes on and on: no limit, and the client would read it
    // until the connect timeout (or memory) ran out.
    let endless = |r: &UpgradeRequest| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {}\r\nX-Filler: {}",
            r.accept_key,
            "a".repeat(100 << 10)
        )
    };
    let config = TransportConfig {
        connect_timeout: Duration::from_secs(15),
        ..TransportConfig::new(server.url())
    };
    match answered_with(&server, config, endless).await {
        Err(Error::HandshakeRejected {
            status: None,
            reason,
            ..
        }) => assert!(reason.contains("larger than 65536 bytes"), "{reason}"),
        other => panic!("expected HandshakeRejected, got {other:?}"),
    }
}

#[tokio::test]
async fn an_offered_subprotocol_is_negotiated_and_the_configured_headers_are_sent() {
    let server = RawServer::bind();
    let config = TransportConfig {
        subprotocols: vec!["mqtt".into(), "chat".into()],
        headers: vec![("Authorization".into(), "Bearer t0ken".into())],
        ..TransportConfig::new(server.url())
    };
    let mut connection = within(WebSocketConnection::new(config)).await.unwrap();
    assert_eq!(connection.subprotocol(), None, "not connected yet");
    let serve = async {
        let (mut tcp, request) = server.accept_request().await;
        // `Connection` is a token list: the upgrade token among others is enough.
        let headers = "Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
                       Sec-WebSocket-Protocol: chat\r\n";
        let response = switching(&request.accept_key, headers);
        within(tcp.write_all(response.as_bytes())).await.unwrap();
        (tcp, request.head)
    };
    // An empty URL means the configured one.
    let ((_tcp, head), connected) = tokio::join!(serve, within(connection.connect("")));
    connected.unwrap();
    assert_eq!(connection.state(), ConnectionState::Open);
    assert_eq!(connection.subprotocol(), Some("chat"));
    assert_eq!(connection.config().subprotocols, ["mqtt", "chat"]);
    assert!(
        head.contains("\r\nSec-WebSocket-Protocol: mqtt, chat\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nAuthorization: Bearer t0ken\r\n"),
        "{head}"
    );
}

/// A URL with a port nothing listens on: any attempt at I/O would be `ConnectionRefused`.
fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("ws://127.0.0.1:{port}/")
}

#[tokio::test]
async fn zero_timeouts_and_zero_limits_are_refused_when_the_connection_is_made() {
    let url = closed_port_url();
    type Breaks = fn(&mut TransportConfig);
    let broken: [(&str, Breaks); 5] = [
        ("connect_timeout", |c| c.connect_timeout = Duration::ZERO),
        ("close_timeout", |c| c.close_timeout = Duration::ZERO),
        ("send_timeout", |c| c.send_timeout = Duration::ZERO),
        ("max_message_size", |c| c.max_message_size = 0),
        ("max_frame_size", |c| c.max_frame_size = 0),
    ];
    for (field, breaks) in broken {
        let mut config = TransportConfig::new(&url);
        breaks(&mut config);
        let result = within(WebSocketConnection::open(config)).await;
        assert!(
            matches!(&result, Err(Error::InvalidConfig(m)) if m.contains("greater than zero")),
            "{field}: {result:?}"
        );
    }
}

#[tokio::test]
async fn subprotocols_that_are_not_a_header_value_are_refused_before_any_io() {
    let config = TransportConfig {
        subprotocols: vec!["chat\r\nX-Injected: yes".into()],
        ..TransportConfig::new(closed_port_url())
    };
    let result = within(WebSocketConnection::open(config)).await;
    assert!(
        matches!(&result, Err(Error::InvalidConfig(m)) if m.contains("subprotocols")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_local_address_of_another_family_than_the_server_is_refused() {
    // No port in the URL: the default (80) is used, and nothing is ever connected to.
    let config = TransportConfig {
        local_address: Some("::1".parse().unwrap()),
        ..TransportConfig::new("ws://127.0.0.1/")
    };
    match within(WebSocketConnection::open(config)).await {
        Err(Error::Io(error)) => {
            assert_eq!(error.kind(), std::io::ErrorKind::AddrNotAvailable);
            let message = error.to_string();
            assert!(
                message.contains("no address of the same family"),
                "{message}"
            );
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_connection_from_a_local_address_is_connection_refused() {
    let url = closed_port_url();
    let config = TransportConfig {
        local_address: Some("127.0.0.2".parse().unwrap()),
        ..TransportConfig::new(&url)
    };
    match within(WebSocketConnection::open(config)).await {
        Err(Error::ConnectionRefused { addr }) => assert!(url.contains(&addr), "{addr}"),
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_local_ipv6_address_connects_to_an_ipv6_server() {
    let Some(server) = RawServer::bind_v6() else {
        eprintln!("no IPv6 loopback on this machine: nothing to test");
        return;
    };
    let config = TransportConfig {
        local_address: Some("::1".parse().unwrap()),
        ..TransportConfig::new(server.url())
    };
    assert!(server.url().starts_with("ws://[::1]:"), "{}", server.url());
    let (tcp, connected) = tokio::join!(server.accept(), within(WebSocketConnection::open(config)));
    assert_eq!(connected.unwrap().state(), ConnectionState::Open);
    assert_eq!(tcp.peer_addr().unwrap().ip().to_string(), "::1");
}
