//! How `close`/`disconnect` end against raw peers: after a close frame sent by hand, when the
//! peer hangs up or breaks the protocol instead of answering, and when a close whose frame
//! could not be written (the peer stopped reading) is finished later: a timeout is
//! `CloseTimeout`, a reset is `ConnectionLost`.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use ws_client::{ConnectionState, Error, Message, TransportConfig, WebSocketConnection};

use crate::raw_peer::{CLOSE, RawServer, read_frames};
use crate::support::{connect_with, within};

/// How long a call is given before the test cancels it.
const CANCEL_AFTER: Duration = Duration::from_millis(300);
/// The close timeout of the connections whose close cannot be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

async fn open(server: &RawServer) -> (TcpStream, WebSocketConnection) {
    let config = TransportConfig {
        send_timeout: Duration::from_secs(10),
        close_timeout: CLOSE_TIMEOUT,
        ..TransportConfig::new(server.url())
    };
    tokio::join!(server.accept(), connect_with(config))
}

#[tokio::test]
async fn disconnect_after_a_close_sent_by_hand_only_finishes_writing_it() {
    let server = RawServer::bind();
    let (mut tcp, mut connection) = open(&server).await;
    within(connection.send(Message::close(4001, "by hand")))
        .await
        .unwrap();
    assert_eq!(connection.state(), ConnectionState::Closing);
    let late = within(connection.send("late")).await;
    assert!(matches!(late, Err(Error::ConnectionClosed)), "{late:?}");
    within(connection.disconnect()).await.unwrap();
    assert_eq!(connection.state(), ConnectionState::Closed);
    drop(connection);
    let frames = within(read_frames(&mut tcp, false)).await;
    assert_eq!(
        frames.len(),
        1,
        "one close frame, no second one: {frames:?}"
    );
    assert_eq!(frames[0].close_code(), Some(4001));
}

#[tokio::test]
async fn a_peer_that_hangs_up_instead_of_answering_our_close_ends_it_cleanly() {
    let server = RawServer::bind();
    let (mut tcp, mut connection) = open(&server).await;
    let peer = async move {
        let frames = within(read_frames(&mut tcp, true)).await;
        assert_eq!(frames.last().and_then(|f| f.close_code()), Some(1000));
        // TCP ends without a close frame in answer.
    };
    let ((), closed) = tokio::join!(peer, within(connection.disconnect()));
    closed.unwrap();
    assert_eq!(connection.state(), ConnectionState::Closed);
}

#[tokio::test]
async fn a_protocol_violation_in_answer_to_our_close_is_what_close_returns() {
    let server = RawServer::bind();
    let (mut tcp, mut connection) = open(&server).await;
    let peer = async {
        let frames = within(read_frames(&mut tcp, true)).await;
        assert_eq!(frames.last().map(|f| f.opcode), Some(CLOSE));
        // A text frame with RSV1 set: no extension was agreed, so it is a violation.
        within(tcp.write_all(&[0xC1, 0x00])).await.unwrap();
    };
    let ((), closed) = tokio::join!(peer, within(connection.close(1000, "done")));
    assert!(matches!(closed, Err(Error::Protocol(_))), "{closed:?}");
    assert_eq!(connection.state(), ConnectionState::Closed);
}

/// Cancels a send of `size` bytes the peer does not read, then a close: leaves a
/// connection in `Closing` with its close frame (and the rest of the message) unwritten.
async fn cancel_a_close_behind_a_stuck_message(connection: &mut WebSocketConnection) {
    let stuck = tokio::time::timeout(
        CANCEL_AFTER,
        connection.send(Message::binary(vec![9u8; 8 << 20])),
    )
    .await;
    assert!(stuck.is_err(), "8 MiB went to a peer that reads nothing");
    let close = tokio::time::timeout(CANCEL_AFTER, connection.close(1000, "bye")).await;
    assert!(close.is_err(), "the close frame cannot be written yet");
    assert_eq!(connection.state(), ConnectionState::Closing);
}

#[tokio::test]
async fn a_close_that_still_cannot_be_written_is_a_close_timeout() {
    let server = RawServer::bind_small_receive_buffer();
    let (_tcp, mut connection) = open(&server).await;
    cancel_a_close_behind_a_stuck_message(&mut connection).await;
    let started = std::time::Instant::now();
    let finished = within(connection.disconnect()).await;
    assert!(
        matches!(finished, Err(Error::CloseTimeout { after }) if after == CLOSE_TIMEOUT),
        "{finished:?}"
    );
    assert!(
        started.elapsed() >= CLOSE_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(connection.state(), ConnectionState::Closed);
    // Nothing is owed any more: a second disconnect returns at once.
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn a_close_cut_short_by_a_reset_is_connection_lost_not_a_timeout() {
    let server = RawServer::bind_small_receive_buffer();
    let (tcp, mut connection) = open(&server).await;
    cancel_a_close_behind_a_stuck_message(&mut connection).await;
    // SO_LINGER 0: the peer resets instead of ending TCP. (`set_zero_linger` needs a newer
    // tokio than the workspace's floor; a zero linger never blocks.)
    #[allow(deprecated)]
    tcp.set_linger(Some(Duration::ZERO)).unwrap();
    drop(tcp);
    let finished = within(connection.disconnect()).await;
    assert!(
        matches!(finished, Err(Error::ConnectionLost(_))),
        "{finished:?}"
    );
    assert_eq!(connection.state(), ConnectionState::Closed);
    let send = within(connection.send("late")).await;
    assert!(matches!(send, Err(Error::ConnectionClosed)), "{send:?}");
    let receive = within(connection.receive_message()).await;
    assert!(
        matches!(receive, Err(Error::ConnectionClosed)),
        "{receive:?}"
    );
}
