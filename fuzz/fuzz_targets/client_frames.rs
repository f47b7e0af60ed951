//! Fuzz target: the client's handling of whatever a server sends after a valid handshake.
//! A loopback server answers the upgrade, then writes the fuzz input and closes; the client
//! reads until it fails. The first input byte picks the client's limits, the extremes
//! (zero, refused as a configuration, and `usize::MAX`) included. It must end with a typed
//! error, never a panic or a hang.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use ws_client::{Error, TransportConfig, WebSocketConnection};

/// The sizes a limit is picked from: small ones the fuzzer reaches, and the extremes.
const SIZES: [usize; 8] = [
    0,
    1,
    125,
    1024,
    1 << 16,
    1 << 20,
    isize::MAX as usize,
    usize::MAX,
];
/// The read buffer sizes picked from: below the floor, ordinary, and absurd.
const READ_SIZES: [usize; 4] = [0, 256, 4096, usize::MAX];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Answers one upgrade request with a valid 101, then sends `data` and closes.
async fn hostile_server(listener: TcpListener, data: Vec<u8>) {
    let Ok((mut tcp, _)) = listener.accept().await else {
        return;
    };
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        request.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&request);
    let key = text
        .lines()
        .find_map(|line| {
            line.strip_prefix("Sec-WebSocket-Key: ")
                .or_else(|| line.strip_prefix("sec-websocket-key: "))
        })
        .unwrap_or_default()
        .trim()
        .to_owned();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    let _ = tcp.write_all(response.as_bytes()).await;
    let _ = tcp.write_all(&data).await;
    let _ = tcp.shutdown().await;
    let mut rest = [0u8; 1024];
    while tcp.read(&mut rest).await.unwrap_or(0) > 0 {}
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let selector = usize::from(selector);
    let (max_message_size, max_frame_size) = (SIZES[selector & 7], SIZES[(selector >> 3) & 7]);
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(hostile_server(listener, data.to_vec()));
        let config = TransportConfig {
            connect_timeout: Duration::from_secs(2),
            close_timeout: Duration::from_millis(200),
            send_timeout: Duration::from_millis(200),
            max_message_size,
            max_frame_size,
            read_buffer_size: READ_SIZES[selector >> 6],
            ..TransportConfig::new(url)
        };
        let outcome = tokio::time::timeout(Duration::from_secs(5), async {
            let mut connection = match WebSocketConnection::open(config).await {
                Ok(connection) => connection,
                Err(Error::InvalidConfig(_)) if max_message_size == 0 || max_frame_size == 0 => {
                    return;
                }
                Err(e) => panic!("valid handshake refused: {e}"),
            };
            for _ in 0..10_000 {
                if connection.receive_message().await.is_err() {
                    break;
                }
            }
            let _ = connection.disconnect().await;
        })
        .await;
        assert!(
            outcome.is_ok(),
            "the client hung on {} bytes of server input",
            data.len()
        );
        server.abort();
    });
});
