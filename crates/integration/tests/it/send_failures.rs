//! Sending to a peer that went away or stopped reading, against raw peers: a reset is
//! `ConnectionLost` whether it comes before a write or while one waits; a send waits for
//! room (and can be cancelled); a ping whose pong cannot be written within the send
//! timeout is still handed over once that timeout has passed.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use ws_client::{
    ConnectionState, Error, Message, MessageType, TransportConfig, WebSocketConnection,
};

use crate::raw_peer::{PING, RawServer, server_frame};
use crate::support::{connect_with, within};

/// How long a call is given before the test cancels it.
const CANCEL_AFTER: Duration = Duration::from_millis(300);
/// The send timeout of the connection whose pong cannot be written.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

async fn open(server: &RawServer, send_timeout: Duration) -> (TcpStream, WebSocketConnection) {
    let config = TransportConfig {
        send_timeout,
        ..TransportConfig::new(server.url())
    };
    tokio::join!(server.accept(), connect_with(config))
}

/// Ends `tcp` with a reset (SO_LINGER 0) instead of a FIN. (`set_zero_linger` needs a
/// newer tokio than the workspace's floor; a zero linger never blocks.)
fn reset(tcp: TcpStream) {
    #[allow(deprecated)]
    tcp.set_linger(Some(Duration::ZERO)).unwrap();
    drop(tcp);
}

#[tokio::test]
async fn a_send_after_the_peer_reset_the_connection_is_connection_lost() {
    let server = RawServer::bind();
    let (tcp, mut connection) = open(&server, Duration::from_secs(10)).await;
    reset(tcp);
    // The reset is on its way over loopback; the first write that meets it fails.
    let lost = within(async {
        loop {
            if let Err(error) = connection.send("anyone there?").await {
                break error;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(matches!(lost, Error::ConnectionLost(_)), "{lost:?}");
    assert_eq!(connection.state(), ConnectionState::Closed);
    let again = within(connection.send("still?")).await;
    assert!(matches!(again, Err(Error::ConnectionClosed)), "{again:?}");
}

#[tokio::test]
async fn a_send_waiting_for_a_full_socket_fails_when_the_peer_resets() {
    let server = RawServer::bind_small_receive_buffer();
    let (tcp, mut connection) = open(&server, Duration::from_secs(10)).await;
    let lost = {
        let mut send = std::pin::pin!(connection.send(Message::binary(vec![5u8; 8 << 20])));
        assert!(
            futures_util::poll!(send.as_mut()).is_pending(),
            "8 MiB cannot all go to a peer that reads nothing"
        );
        reset(tcp);
        within(send).await
    };
    assert!(matches!(lost, Err(Error::ConnectionLost(_))), "{lost:?}");
    assert_eq!(connection.state(), ConnectionState::Closed);
}

#[tokio::test]
async fn a_ping_whose_pong_cannot_be_written_is_handed_over_after_the_send_timeout() {
    let server = RawServer::bind_small_receive_buffer();
    let (mut tcp, mut connection) = open(&server, SEND_TIMEOUT).await;
    // The peer stops reading: a large message is stuck part-way, and a send behind it
    // waits for room (cancelled here, before its own send timeout).
    let stuck = tokio::time::timeout(
        CANCEL_AFTER,
        connection.send(Message::binary(vec![9u8; 8 << 20])),
    )
    .await;
    assert!(stuck.is_err(), "8 MiB went to a peer that reads nothing");
    let behind = tokio::time::timeout(
        CANCEL_AFTER,
        connection.send_slice(MessageType::Text, b"behind it"),
    )
    .await;
    assert!(behind.is_err(), "a send with no room waits for it");
    assert_eq!(connection.state(), ConnectionState::Open);

    within(tcp.write_all(&server_frame(PING, true, b"are you there")))
        .await
        .unwrap();
    let started = Instant::now();
    let ping = within(connection.receive_message()).await.unwrap();
    assert_eq!(ping.message_type, MessageType::Ping);
    assert_eq!(ping.data, b"are you there");
    assert!(started.elapsed() >= SEND_TIMEOUT, "{:?}", started.elapsed());
    // The write that gave up ended the connection.
    assert_eq!(connection.state(), ConnectionState::Closed);
    let send = within(connection.send("after")).await;
    assert!(matches!(send, Err(Error::ConnectionClosed)), "{send:?}");
}
