//! What follows a close frame is discarded, in both roles of `ws_client::wire` (RFC 6455
//! section 5.5.1): the close is answered with its own code, whether the trailing frame
//! arrives in the same read or later. And a fragmented text message fails with 1007 at
//! the fragment whose bytes can no longer become UTF-8, not at the end of the message.

use std::time::Duration;

use integration::TestServer;
use tokio::io::AsyncWriteExt;
use ws_client::{Error, MessageType, TransportConfig};

use crate::raw_peer::{
    CLOSE, CONTINUATION, RawServer, TEXT, client_frame, close_payload, read_frames, server_frame,
    upgraded_client,
};
use crate::support::{connect_with, within, within_for};

/// How long a failure that is already certain may take to be reported.
const PROMPTLY: Duration = Duration::from_secs(5);
/// Runs of each case: whether both frames land in one read depends on timing.
const RUNS: usize = 10;

/// Writes `first` and `second` in one write, or in two.
async fn write(tcp: &mut tokio::net::TcpStream, first: &[u8], second: &[u8], together: bool) {
    if together {
        within(tcp.write_all(&[first, second].concat()))
            .await
            .unwrap();
    } else {
        within(tcp.write_all(first)).await.unwrap();
        // The peer may already have closed; the close frame is what matters.
        let _ = within(tcp.write_all(second)).await;
    }
}

#[tokio::test]
async fn perf_echo_answers_a_close_followed_by_a_text_frame_with_1000() {
    let server = TestServer::start_with("perf", &[]);
    for together in [true, false] {
        for run in 0..RUNS {
            let mut tcp = upgraded_client(server.addr(), "/echo").await;
            let close = client_frame(CLOSE, true, &close_payload(1000, ""));
            let late = client_frame(TEXT, true, b"late");
            write(&mut tcp, &close, &late, together).await;
            let frames = within(read_frames(&mut tcp, true)).await;
            let codes: Vec<_> = frames.iter().map(|f| f.close_code()).collect();
            assert_eq!(codes, [Some(1000)], "together {together}, run {run}");
        }
    }
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["protocol_errors"], 0);
}

#[tokio::test]
async fn ws_client_reports_a_close_followed_by_a_text_frame_as_closed_by_peer() {
    let server = RawServer::bind();
    for together in [true, false] {
        for run in 0..RUNS {
            let (mut tcp, mut connection) = tokio::join!(
                server.accept(),
                connect_with(TransportConfig::new(server.url()))
            );
            let close = server_frame(CLOSE, true, &close_payload(1000, "bye"));
            let late = server_frame(TEXT, true, b"late");
            write(&mut tcp, &close, &late, together).await;
            let message = within(connection.receive_message()).await;
            let message = message.unwrap_or_else(|e| panic!("together {together}, run {run}: {e}"));
            assert_eq!(message.message_type, MessageType::Close);
            assert_eq!(message.close_code(), Some(1000));
            match within(connection.receive_message()).await {
                Err(Error::ClosedByPeer { code: 1000, reason }) => assert_eq!(reason, "bye"),
                other => panic!("together {together}, run {run}: {other:?}"),
            }
            drop(connection);
            let frames = within(read_frames(&mut tcp, false)).await;
            let codes: Vec<_> = frames.iter().map(|f| f.close_code()).collect();
            assert_eq!(codes, [Some(1000)], "the echo, once");
        }
    }
}

/// A text fragment ending in bytes that no continuation can make UTF-8 (0xF4 0x90 would
/// be above U+10FFFF), and nothing after it.
const DOOMED: &[u8] = b"fine so far \xF4\x90";

#[tokio::test]
async fn perf_echo_fails_a_fragmented_text_at_its_first_invalid_fragment_with_1007() {
    let server = TestServer::start_with("perf", &[]);
    let mut tcp = upgraded_client(server.addr(), "/echo").await;
    let mut fragments = client_frame(TEXT, false, "ok \u{20ac}".as_bytes());
    fragments.extend(client_frame(CONTINUATION, false, DOOMED));
    within(tcp.write_all(&fragments)).await.unwrap();
    let frames = within_for(PROMPTLY, read_frames(&mut tcp, true)).await;
    let codes: Vec<_> = frames.iter().map(|f| f.close_code()).collect();
    assert_eq!(codes, [Some(1007)]);
}

#[tokio::test]
async fn ws_client_fails_a_fragmented_text_at_its_first_invalid_fragment_with_1007() {
    let server = RawServer::bind();
    let (mut tcp, mut connection) = tokio::join!(
        server.accept(),
        connect_with(TransportConfig::new(server.url()))
    );
    within(tcp.write_all(&server_frame(TEXT, false, DOOMED)))
        .await
        .unwrap();
    let outcome = within_for(PROMPTLY, connection.receive_message()).await;
    assert!(matches!(outcome, Err(Error::InvalidUtf8)), "{outcome:?}");
    let frames = within(read_frames(&mut tcp, true)).await;
    let codes: Vec<_> = frames.iter().map(|f| f.close_code()).collect();
    assert_eq!(codes, [Some(1007)]);
}
