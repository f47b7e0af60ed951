//! `wss://`: ws-client over rustls against `test-servers --tls` (echo, load, rpc): trust
//! through the CA file the ready line names, and the refusal of an untrusted certificate,
//! a certificate for another host and a server that does not speak TLS.

use integration::TestServer;
use serde_json::Value;
use ws_client::rpc::{RpcClient, RpcConfig};
use ws_client::{Error, Message, MessageType, TlsFailure, TransportConfig, WebSocketConnection};

use crate::support::{assert_echoes, connect_with, pattern, within};

/// A configuration for `url` that trusts the server's throw-away CA.
fn trusting(server: &TestServer, url: &str) -> TransportConfig {
    let ca = server.ca_cert().expect("a --tls ready line names ca_cert");
    TransportConfig::new(url).with_ca_file(ca).unwrap()
}

/// Connects with `config`, expecting a failure.
async fn connect_error(config: TransportConfig) -> Error {
    match within(WebSocketConnection::open(config)).await {
        Ok(_) => panic!("the connection should have been refused"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn echo_over_wss_with_the_servers_ca() {
    let server = TestServer::start_with("echo", &["--tls"]);
    let ready = server.ready_line();
    assert_eq!(ready["url"], format!("wss://{}/", server.addr()), "{ready}");
    let ca = server.ca_cert().unwrap().to_path_buf();
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    let mut connection = connect_with(trusting(&server, server.url())).await;
    assert_echoes(&mut connection, "hello over TLS").await;
    let big = pattern(1 << 20, 7);
    within(connection.send(Message::binary(big.clone())))
        .await
        .unwrap();
    let echo = within(connection.receive_message()).await.unwrap();
    assert_eq!(echo.message_type, MessageType::Binary);
    assert!(echo.data == big, "the 1 MiB echo differs");
    within(connection.disconnect()).await.unwrap();

    // By name as well as by address: the certificate covers both.
    let by_name = format!("wss://localhost:{}/", server.addr().port());
    let mut connection = connect_with(trusting(&server, &by_name)).await;
    assert_echoes(&mut connection, "by name").await;
    within(connection.disconnect()).await.unwrap();

    let (status, stopped) = server.stop();
    assert!(status.success(), "{stopped}");
    assert!(!ca.exists(), "the CA file outlived the server");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let server = TestServer::start_with("echo", &["--tls"]);
    let error = connect_error(TransportConfig::new(server.url())).await;
    assert!(
        matches!(
            &error,
            Error::Tls { kind: TlsFailure::UntrustedCertificate, host, .. } if host == "127.0.0.1"
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("not trusted"), "{message}");
    assert!(message.contains("extra_root_certificates"), "{message}");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    // The certificate covers only `localhost`; the CA is trusted, so only the name is wrong.
    let server = TestServer::start_with("echo", &["--tls", "--tls-names", "localhost"]);
    let error = connect_error(trusting(&server, server.url())).await;
    assert!(
        matches!(
            &error,
            Error::Tls {
                kind: TlsFailure::WrongHost,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("not valid for host 127.0.0.1"),
        "{message}"
    );

    let by_name = format!("wss://localhost:{}/", server.addr().port());
    let mut connection = connect_with(trusting(&server, &by_name)).await;
    assert_echoes(&mut connection, "the right name").await;
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn tls_and_plain_do_not_mix() {
    let plain = TestServer::start("echo");
    let wss = plain.url().replacen("ws://", "wss://", 1);
    let error = connect_error(TransportConfig::new(wss)).await;
    assert!(
        matches!(
            &error,
            Error::Tls {
                kind: TlsFailure::Other,
                ..
            }
        ),
        "{error:?}"
    );

    let secure = TestServer::start_with("echo", &["--tls"]);
    let ws = secure.url().replacen("wss://", "ws://", 1);
    let error = connect_error(TransportConfig::new(ws)).await;
    assert!(
        matches!(
            &error,
            Error::HandshakeRejected { .. } | Error::ConnectionLost(_)
        ),
        "{error:?}"
    );
    // Neither server was disturbed.
    let mut connection = connect_with(trusting(&secure, secure.url())).await;
    assert_echoes(&mut connection, "still serving").await;
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn load_mode_echoes_bursts_larger_than_its_read_buffer_over_tls() {
    // Load mode waits for socket readiness itself; decrypted bytes buffered in TLS must
    // still wake it (its read buffer is 512 bytes, each message is 3000).
    let server = TestServer::start_with("load", &["--tls"]);
    let mut connection = connect_with(trusting(&server, server.url())).await;
    let messages: Vec<Vec<u8>> = (0..8).map(|seed| pattern(3000, seed)).collect();
    for message in &messages {
        within(connection.queue(Message::binary(message.clone())))
            .await
            .unwrap();
    }
    within(connection.flush()).await.unwrap();
    for message in &messages {
        let echo = within(connection.receive_message()).await.unwrap();
        assert!(&echo.data == message, "an echo differs");
    }
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn an_oversized_message_is_closed_with_1009_over_tls() {
    // The failing path half-closes the stream (close_notify) and drains: the close frame
    // must still reach the client.
    let server = TestServer::start_with("echo", &["--tls", "--max-message-size", "1024"]);
    let mut connection = connect_with(trusting(&server, server.url())).await;
    // Sending may or may not complete before the server reacts; the close must arrive.
    let _ = within(connection.send(Message::binary(vec![7u8; 2 << 20]))).await;
    let close = within(connection.receive_message())
        .await
        .expect("the server's close frame");
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
    let mut next = connect_with(trusting(&server, server.url())).await;
    assert_echoes(&mut next, "still serving").await;
    let (_, stopped) = server.stop();
    assert_eq!(stopped["protocol_errors"], 1);
}

#[tokio::test]
async fn rpc_over_tls() {
    let server = TestServer::start_with("rpc", &["--tls"]);
    let config = RpcConfig {
        transport: trusting(&server, server.url()),
        ..RpcConfig::new(server.url())
    };
    let client = within(RpcClient::connect(config)).await.unwrap();
    let sum: Value = within(client.request("add", [5, 3])).await.unwrap();
    assert_eq!(sum["result"], 8);
    let echoed: Vec<String> = within(client.request("echo", ["over TLS"])).await.unwrap();
    assert_eq!(echoed, ["over TLS"]);
    within(client.close()).await.unwrap();
}
