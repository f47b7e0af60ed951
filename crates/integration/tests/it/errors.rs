//! The errors a user will hit, each told apart: refused, bad URL, timeout, rejected
//! handshake, misuse.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ws_client::{
    ConnectionState, Error, Message, MessageType, TransportConfig, WebSocketConnection,
};

use crate::support::{assert_echoes, connect, echo_server, within};

#[tokio::test]
async fn nothing_listening_is_connection_refused() {
    // Bind an ephemeral port, then free it: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    match within(WebSocketConnection::open(TransportConfig::new(&url))).await {
        Err(Error::ConnectionRefused { addr }) => assert_eq!(addr, format!("127.0.0.1:{port}")),
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_urls_are_refused_before_any_io() {
    for url in ["not a url", "http://127.0.0.1/", "ws://"] {
        match within(WebSocketConnection::open(TransportConfig::new(url))).await {
            Err(Error::InvalidUrl { url: given, .. }) => assert_eq!(given, url),
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_listener_that_never_answers_is_a_connect_timeout() {
    // The kernel completes the TCP handshake into the backlog; nobody ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", silent.local_addr().unwrap());
    let config = TransportConfig {
        connect_timeout: Duration::from_millis(300),
        ..TransportConfig::new(&url)
    };
    let started = Instant::now();
    match within(WebSocketConnection::open(config)).await {
        Err(Error::ConnectTimeout { after, .. }) => assert_eq!(after, Duration::from_millis(300)),
        other => panic!("expected ConnectTimeout, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "took {took:?}"
    );
}

/// Serves one plain-HTTP answer (not an upgrade) to every connection.
async fn plain_http_responder(response: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    url
}

#[tokio::test]
async fn a_plain_http_server_is_a_rejected_handshake_with_its_status() {
    let url = plain_http_responder(
        "HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\nconnection: close\r\n\r\nno socket\n",
    )
    .await;
    match within(WebSocketConnection::open(TransportConfig::new(&url))).await {
        Err(Error::HandshakeRejected {
            status: Some(404),
            reason,
            ..
        }) => assert!(reason.contains("Not Found"), "{reason}"),
        other => panic!("expected HandshakeRejected 404, got {other:?}"),
    }
    let url = plain_http_responder(
        "HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nhello\n",
    )
    .await;
    match within(WebSocketConnection::open(TransportConfig::new(&url))).await {
        Err(Error::HandshakeRejected {
            status: Some(200), ..
        }) => {}
        other => panic!("expected HandshakeRejected 200, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_at_capacity_answers_503() {
    let server = echo_server(&["--max-connections", "1"]);
    let mut first = connect(server.url()).await;
    match within(WebSocketConnection::open(TransportConfig::new(
        server.url(),
    )))
    .await
    {
        Err(Error::HandshakeRejected {
            status: Some(503),
            reason,
            ..
        }) => assert!(reason.contains("capacity"), "{reason}"),
        other => panic!("expected HandshakeRejected 503, got {other:?}"),
    }
    // The admitted client is unaffected, and its slot frees up when it leaves.
    assert_echoes(&mut first, "still here").await;
    within(first.disconnect()).await.unwrap();
    let mut second = within(async {
        loop {
            // The server frees the slot just after the close handshake; retry briefly.
            match WebSocketConnection::open(TransportConfig::new(server.url())).await {
                Ok(connection) => break connection,
                Err(Error::HandshakeRejected {
                    status: Some(503), ..
                }) => tokio::task::yield_now().await,
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
    })
    .await;
    assert_echoes(&mut second, "my turn").await;
}

#[tokio::test]
async fn using_a_connection_before_connect_is_not_connected() {
    let mut connection = within(WebSocketConnection::new(TransportConfig::default()))
        .await
        .unwrap();
    assert_eq!(connection.state(), ConnectionState::Disconnected);
    assert!(matches!(
        within(connection.send("x")).await,
        Err(Error::NotConnected)
    ));
    assert!(matches!(
        within(connection.receive_message()).await,
        Err(Error::NotConnected)
    ));
    within(connection.disconnect())
        .await
        .expect("disconnecting an unconnected connection is a no-op");
}

#[tokio::test]
async fn text_that_is_not_utf8_is_refused_and_never_sent() {
    let server = echo_server(&[]);
    let mut connection = connect(server.url()).await;
    let bad = Message {
        data: vec![b'o', b'k', 0xff, 0xfe],
        message_type: MessageType::Text,
    };
    assert!(matches!(
        within(connection.send_message(&bad)).await,
        Err(Error::InvalidUtf8)
    ));
    assert_echoes(&mut connection, "fine").await;
    let (_, stopped) = server.stop();
    assert_eq!(
        stopped["messages_in"], 1,
        "the invalid message never reached the server"
    );
}

#[tokio::test]
async fn connecting_twice_is_refused() {
    let server = echo_server(&[]);
    let mut connection = connect(server.url()).await;
    assert!(matches!(
        within(connection.connect(server.url())).await,
        Err(Error::AlreadyConnected)
    ));
    within(connection.disconnect()).await.unwrap();
    within(connection.connect(server.url()))
        .await
        .expect("reconnect after disconnect");
    assert_echoes(&mut connection, "again").await;
}
