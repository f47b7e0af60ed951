//! Helpers shared by the crate's unit tests over real sockets: a time limit on every step,
//! a loopback pair with small kernel buffers (so that a peer that reads slowly pushes back
//! quickly), and the check that a pong came back in time while large writes went on.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// Awaits `future`, failing the test if it takes more than 20 s.
pub(crate) async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("step did not finish within 20 s")
}

/// A connected client socket (64 KiB send buffer) and its accepted peer (256 KiB receive
/// buffer), on 127.0.0.1 and a free port.
pub(crate) async fn small_buffer_sockets() -> (TcpStream, TcpStream) {
    let listen = tokio::net::TcpSocket::new_v4().unwrap();
    listen.set_recv_buffer_size(256 << 10).unwrap();
    listen.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = listen.listen(8).unwrap();
    let addr = listener.local_addr().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(64 << 10).unwrap();
    let (client, accepted) = tokio::join!(socket.connect(addr), listener.accept());
    (client.unwrap(), accepted.unwrap().0)
}

/// When the peer sent its ping, when the receiver handed the ping back, and the pong the
/// peer saw (how many of the `count` messages came before it, and when), if any.
pub(crate) struct PingTimes {
    pub(crate) ping_at: Instant,
    pub(crate) returned: Instant,
    pub(crate) pong: Option<(u32, Instant)>,
    pub(crate) count: u32,
}

/// Asserts that the pong reached the peer, and the ping came back to the receiver, within a
/// second of the ping: between the messages, not after the last one.
pub(crate) fn assert_pong_in_time(times: PingTimes) {
    let PingTimes {
        ping_at,
        returned,
        pong,
        count,
    } = times;
    let Some((after, pong_at)) = pong else {
        panic!("no pong reached the peer before the last message");
    };
    let bound = Duration::from_secs(1);
    assert!(
        pong_at - ping_at < bound && returned - ping_at < bound,
        "the pong reached the peer {:?} after the ping (after {after} of {count} messages) \
         and the ping came back {:?} after it was sent",
        pong_at - ping_at,
        returned - ping_at
    );
}
