//! How `close`/`disconnect` end against raw peers: after a close frame sent by hand, when the
//! peer hangs up or breaks the protocol instead of answering, and when a close whose frame
//! could not be written (the peer stopped reading) is finished later: a timeout is
//! `CloseTimeout`, a reset is `ConnectionLost`; and a pong still owed when we close goes out
//! ahead of our close frame (as soon as the write side can take it), never after it.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use ws_client::{
    ConnectionState, Error, Message, MessageType, TransportConfig, WebSocketConnection,
};

use crate::cancel_safety::fill;
use crate::raw_peer::{
    BINARY, CLOSE, PING, PONG, RawServer, close_payload, read_frames, server_frame,
};
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

/// Fills the socket (the peer reads nothing), then cancels a close whose frame is queued
/// behind the last message: leaves a connection in `Closing` with its close frame unwritten.
async fn cancel_a_close_behind_a_full_socket(connection: &mut WebSocketConnection) {
    fill(async |message| connection.send(message).await).await;
    let close = tokio::time::timeout(CANCEL_AFTER, connection.close(1000, "bye")).await;
    assert!(close.is_err(), "the close frame cannot be written yet");
    assert_eq!(connection.state(), ConnectionState::Closing);
}

#[tokio::test]
async fn a_close_that_still_cannot_be_written_is_a_close_timeout() {
    let server = RawServer::bind_small_receive_buffer();
    let (_tcp, mut connection) = open(&server).await;
    cancel_a_close_behind_a_full_socket(&mut connection).await;
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
    cancel_a_close_behind_a_full_socket(&mut connection).await;
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

#[tokio::test]
async fn a_pong_still_owed_when_our_close_goes_out_is_never_sent_after_it() {
    let server = RawServer::bind_small_receive_buffer();
    let (mut tcp, connection) = open(&server).await;
    let (sender, mut receiver) = connection.split().unwrap();
    let stuck = tokio::time::timeout(
        CANCEL_AFTER,
        sender.send(Message::binary(vec![9u8; 8 << 20])),
    )
    .await;
    assert!(stuck.is_err(), "8 MiB went to a peer that reads nothing");
    // A ping arrives; its pong waits for room behind the stuck message, and the receive
    // is cancelled meanwhile.
    within(tcp.write_all(&server_frame(PING, true, b"p")))
        .await
        .unwrap();
    let early = tokio::time::timeout(CANCEL_AFTER, receiver.receive_message()).await;
    assert!(early.is_err(), "the pong cannot be written yet: {early:?}");

    // The peer reads again, and our close goes out before the receive is retried: the
    // flush that makes room for the close writes the stuck message, then the parked pong
    // (RFC 6455 section 5.5.2: a ping is answered unless a close was received), then the
    // close.
    let reader = tokio::spawn(async move { read_frames(&mut tcp, false).await });
    within(sender.close(1000, "ours")).await.unwrap();
    assert_eq!(sender.state(), ConnectionState::Closing);
    let ping = within(receiver.receive_message()).await.unwrap();
    assert_eq!(
        (ping.message_type, &ping.data[..]),
        (MessageType::Ping, &b"p"[..])
    );
    drop((sender, receiver));
    let frames = within(reader).await.unwrap();
    let opcodes: Vec<u8> = frames.iter().map(|f| f.opcode).collect();
    assert_eq!(
        opcodes,
        [BINARY, PONG, CLOSE],
        "the pong before the close, not after"
    );
    assert_eq!(frames[1].payload, b"p");
    assert_eq!(frames[2].close_code(), Some(1000));
}

#[tokio::test]
async fn a_close_cancelled_while_waiting_for_room_sent_nothing_and_can_be_made_again() {
    let server = RawServer::bind_small_receive_buffer();
    let (mut tcp, mut connection) = open(&server).await;
    let stuck = tokio::time::timeout(
        CANCEL_AFTER,
        connection.send(Message::binary(vec![9u8; 8 << 20])),
    )
    .await;
    assert!(stuck.is_err(), "8 MiB went to a peer that reads nothing");
    // The close waits for room behind the stuck message, and is cancelled there: its frame
    // was never queued, so nothing was sent and the connection is still open.
    let cancelled = tokio::time::timeout(CANCEL_AFTER, connection.close(1000, "first")).await;
    assert!(cancelled.is_err(), "the close cannot be queued yet");
    assert_eq!(connection.state(), ConnectionState::Open);

    let peer = async {
        let frames = within(read_frames(&mut tcp, true)).await;
        let answer = server_frame(CLOSE, true, &close_payload(1000, ""));
        within(tcp.write_all(&answer)).await.unwrap();
        frames
    };
    let (frames, closed) = tokio::join!(peer, within(connection.close(1000, "second")));
    closed.unwrap();
    let opcodes: Vec<u8> = frames.iter().map(|f| f.opcode).collect();
    assert_eq!(opcodes, [BINARY, CLOSE]);
    assert_eq!(frames[1].payload, close_payload(1000, "second"));
    assert_eq!(connection.state(), ConnectionState::Closed);
}
