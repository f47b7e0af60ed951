//! `wss://` failures told apart, against raw TCP peers that are not TLS servers: a host
//! that cannot be a TLS name, a peer that answers in plain HTTP, one that sends a fatal
//! alert, one that resets the connection mid-handshake.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_client::{Error, TlsFailure, TransportConfig, WebSocketConnection};

use crate::raw_peer::RawServer;
use crate::support::within;

/// Connects to `server` over `wss://` while the peer reads the ClientHello and then does
/// `answer` with the connection; returns the client's error.
async fn tls_refused<F, Fut>(answer: F) -> (TlsFailure, String)
where
    F: FnOnce(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let server = RawServer::bind();
    let url = server.url().replacen("ws://", "wss://", 1);
    let peer = async {
        let mut tcp = server.accept_tcp().await;
        let mut hello = [0u8; 5];
        within(tcp.read_exact(&mut hello)).await.unwrap();
        assert_eq!(hello[0], 0x16, "a TLS handshake record");
        answer(tcp).await;
    };
    let ((), result) = tokio::join!(
        peer,
        within(WebSocketConnection::open(TransportConfig::new(url)))
    );
    match result {
        Err(Error::Tls { host, kind, reason }) => {
            assert_eq!(host, "127.0.0.1");
            (kind, reason)
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_host_that_cannot_be_a_tls_name_is_an_invalid_url_before_any_io() {
    // A wildcard is a valid URL host but never a name to connect to; nothing resolves it
    // or connects to it.
    let url = "wss://*.example.com:1/";
    match within(WebSocketConnection::open(TransportConfig::new(url))).await {
        Err(Error::InvalidUrl { url: given, reason }) => {
            assert_eq!(given, url);
            assert!(reason.contains("TLS server name"), "{reason}");
        }
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[tokio::test]
async fn a_peer_answering_in_plain_http_is_not_a_tls_server() {
    let (kind, reason) = tls_refused(|mut tcp| async move {
        let answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        within(tcp.write_all(answer)).await.unwrap();
        // Held open: the client must tell from the bytes alone.
        let _ = within(tcp.read(&mut [0u8; 64])).await;
    })
    .await;
    assert_eq!(kind, TlsFailure::Other);
    assert!(reason.contains("did not answer with TLS"), "{reason}");
    assert!(reason.contains("ws:// server"), "{reason}");
}

#[tokio::test]
async fn a_fatal_alert_from_the_peer_fails_the_handshake_with_the_alert() {
    let (kind, reason) = tls_refused(|mut tcp| async move {
        // An alert record: TLS 1.2 framing, level fatal (2), handshake_failure (40).
        let alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40];
        within(tcp.write_all(&alert)).await.unwrap();
        let _ = within(tcp.read(&mut [0u8; 64])).await;
    })
    .await;
    assert_eq!(kind, TlsFailure::Other);
    assert!(
        reason.starts_with("TLS handshake with 127.0.0.1 failed"),
        "{reason}"
    );
    assert!(reason.contains("HandshakeFailure"), "{reason}");
}

#[tokio::test]
async fn a_reset_during_the_tls_handshake_fails_it_with_the_io_error() {
    let (kind, reason) = tls_refused(|tcp| async move {
        // SO_LINGER 0: closing sends RST instead of FIN. (`set_zero_linger` needs a newer
        // tokio than the workspace's floor; a zero linger never blocks.)
        #[allow(deprecated)]
        tcp.set_linger(Some(std::time::Duration::ZERO)).unwrap();
        drop(tcp);
    })
    .await;
    assert_eq!(kind, TlsFailure::Other);
    assert!(
        reason.starts_with("TLS handshake with 127.0.0.1 failed"),
        "{reason}"
    );
    assert!(reason.to_lowercase().contains("reset"), "{reason}");
}
