//! A hostile client (raw TCP) attacks each server mode — slowloris, oversized length
//! headers, unmasked frames, invalid UTF-8, fragment and ping floods, header floods and a
//! connection flood — while a well-behaved ws-client keeps getting its echoes, and the
//! server's memory stays bounded.

use std::time::Duration;

use integration::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{assert_echoes, connect, within, within_for};

/// The key of every raw upgrade request (any 16 bytes, base64).
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// Most a single attack may take.
const ATTACK_BOUND: Duration = Duration::from_secs(20);

/// One client frame: `opcode`, FIN bit, masked unless `unmasked`, with the payload length
/// field set to `claimed` (the real length when `None`).
pub(crate) fn frame(
    opcode: u8,
    fin: bool,
    payload: &[u8],
    unmasked: bool,
    claimed: Option<u64>,
) -> Vec<u8> {
    let mut bytes = vec![if fin { 0x80 } else { 0 } | opcode];
    let length = claimed.unwrap_or(payload.len() as u64);
    let mask_bit = if unmasked { 0 } else { 0x80 };
    match length {
        0..=125 => bytes.push(mask_bit | length as u8),
        126..=0xffff => {
            bytes.push(mask_bit | 126);
            bytes.extend_from_slice(&(length as u16).to_be_bytes());
        }
        _ => {
            bytes.push(mask_bit | 127);
            bytes.extend_from_slice(&length.to_be_bytes());
        }
    }
    if unmasked {
        bytes.extend_from_slice(payload);
    } else {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        bytes.extend_from_slice(&mask);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
    bytes
}

/// The upgrade request for `path`, with `extra` header lines.
fn request(server: &TestServer, path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
        server.addr()
    )
}

/// A raw connection that completed the upgrade handshake.
pub(crate) async fn upgraded(server: &TestServer, path: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(request(server, path, "").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "server closed during the handshake"
        );
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    tcp
}

/// Reads until the server closes; returns the close code of the first close frame seen
/// (frames before it are skipped), or `None` if the connection ended without one.
async fn close_code(tcp: &mut TcpStream) -> Option<u16> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tcp.read(&mut chunk).await.unwrap_or(0);
        seen.extend_from_slice(&chunk[..n]);
        // Walk the unmasked server frames received so far.
        let mut at = 0;
        while seen.len() >= at + 2 {
            let (opcode, short) = (seen[at] & 0x0f, u64::from(seen[at + 1] & 0x7f));
            let (length, header) = match short {
                126 if seen.len() >= at + 4 => (
                    u64::from(u16::from_be_bytes([seen[at + 2], seen[at + 3]])),
                    4,
                ),
                127 if seen.len() >= at + 10 => (
                    u64::from_be_bytes(seen[at + 2..at + 10].try_into().unwrap()),
                    10,
                ),
                126 | 127 => break,
                _ => (short, 2),
            };
            let end = at + header + length as usize;
            if seen.len() < end {
                break;
            }
            if opcode == 0x8 {
                let payload = &seen[at + header..end];
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
            at = end;
        }
        if n == 0 {
            return None;
        }
    }
}

/// Sends `bytes` (ignoring errors: the server may close early) and returns the close code.
async fn attack_with(server: &TestServer, path: &str, bytes: &[u8]) -> Option<u16> {
    let mut tcp = upgraded(server, path).await;
    let _ = tcp.write_all(bytes).await;
    within_for(ATTACK_BOUND, close_code(&mut tcp)).await
}

/// Resident memory of the server process, where the platform tells it (Linux).
fn resident_bytes(server: &TestServer) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Runs every attack against one server while a good client echoes throughout.
async fn survive_attacks(mode: &str, path: &str) {
    let server = TestServer::start_with(
        mode,
        &["--handshake-timeout", "1s", "--max-connections", "200"],
    );
    let before = resident_bytes(&server);
    let good_url = server.url_with_path(path);
    let mut good = connect(&good_url).await;
    let mut round = 0;
    let mut check_good = async |label: &str| {
        round += 1;
        assert_echoes(&mut good, &format!("{label} {round}")).await;
    };

    // Frame-level attacks: each is answered with the close code RFC 6455 prescribes.
    let huge = frame(0x2, true, &[], false, Some(1 << 62));
    assert_eq!(
        attack_with(&server, path, &huge).await,
        Some(1009),
        "{mode}: oversized length header"
    );
    check_good("after oversized length").await;
    let unmasked = frame(0x1, true, b"not masked", true, None);
    assert_eq!(
        attack_with(&server, path, &unmasked).await,
        Some(1002),
        "{mode}: unmasked frame"
    );
    check_good("after unmasked").await;
    let bad_text = frame(0x1, true, &[b'o', 0xff, 0xfe], false, None);
    assert_eq!(
        attack_with(&server, path, &bad_text).await,
        Some(1007),
        "{mode}: invalid UTF-8"
    );
    check_good("after invalid UTF-8").await;

    // A fragment flood: a message that never ends grows past the limit and is refused.
    let mut fragments = frame(0x2, false, &[0u8; 60_000], false, None);
    for _ in 0..400 {
        fragments.extend(frame(0x0, false, &[0u8; 60_000], false, None));
    }
    assert_eq!(
        attack_with(&server, path, &fragments).await,
        Some(1009),
        "{mode}: fragment flood"
    );
    check_good("after fragment flood").await;

    // A ping flood is answered (pongs) without disturbing anyone.
    let mut pings = Vec::new();
    for _ in 0..5_000 {
        pings.extend(frame(0x9, true, b"flood", false, None));
    }
    pings.extend(frame(0x8, true, &1000u16.to_be_bytes(), false, None));
    assert_eq!(
        attack_with(&server, path, &pings).await,
        Some(1000),
        "{mode}: ping flood"
    );
    check_good("after ping flood").await;

    // A header flood and a slowloris handshake are turned away; the good client goes on.
    let mut flood = TcpStream::connect(server.addr()).await.unwrap();
    let headers: String = (0..2_000)
        .map(|i| format!("X-Flood-{i}: {}\r\n", "y".repeat(20)))
        .collect();
    let _ = flood
        .write_all(request(&server, path, &headers).as_bytes())
        .await;
    let mut answer = Vec::new();
    let _ = within_for(ATTACK_BOUND, flood.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/1.1 101"),
        "{mode}: a header flood was upgraded"
    );
    let mut slow = TcpStream::connect(server.addr()).await.unwrap();
    slow.write_all(b"GET / HT").await.unwrap();
    let mut rest = Vec::new();
    // The handshake deadline (1 s) closes the half-sent request.
    within_for(ATTACK_BOUND, slow.read_to_end(&mut rest))
        .await
        .unwrap_or(0);
    check_good("after slowloris").await;

    // A connection flood past --max-connections: the excess is refused, the good client
    // and the server carry on.
    let mut flood = Vec::new();
    for _ in 0..250 {
        if let Ok(tcp) = TcpStream::connect(server.addr()).await {
            flood.push(tcp);
        }
    }
    drop(flood);
    check_good("after connection flood").await;

    within(good.disconnect()).await.unwrap();
    if let (Some(before), Some(after)) = (before, resident_bytes(&server)) {
        // Nothing an attacker sent may stay resident: allow allocator slack only.
        assert!(
            after < before + (64 << 20),
            "{mode}: resident memory grew from {before} to {after} bytes"
        );
    }
    let (status, stopped) = server.stop();
    assert!(status.success(), "{mode} did not stop cleanly");
    assert!(
        stopped["protocol_errors"].as_u64().unwrap_or(0) >= 4,
        "{mode}: {stopped}"
    );
}

#[tokio::test]
async fn echo_survives_a_hostile_client() {
    survive_attacks("echo", "/").await;
}

#[tokio::test]
async fn rpc_survives_a_hostile_client() {
    survive_attacks_rpc().await;
}

#[tokio::test]
async fn perf_survives_a_hostile_client() {
    survive_attacks("perf", "/echo").await;
}

#[tokio::test]
async fn load_survives_a_hostile_client() {
    survive_attacks("load", "/").await;
}

/// The rpc variant: the frame attacks, with a JSON-RPC client as the well-behaved one
/// (rpc answers plain text with a parse error, so the echo helper does not fit).
async fn survive_attacks_rpc() {
    let server = TestServer::start_with("rpc", &["--handshake-timeout", "1s"]);
    let client = within(ws_client::rpc::RpcClient::connect(
        ws_client::rpc::RpcConfig::new(server.url()),
    ))
    .await
    .unwrap();
    let huge = frame(0x2, true, &[], false, Some(1 << 62));
    assert_eq!(attack_with(&server, "/", &huge).await, Some(1009));
    let unmasked = frame(0x1, true, b"{}", true, None);
    assert_eq!(attack_with(&server, "/", &unmasked).await, Some(1002));
    let bad_text = frame(0x1, true, &[b'{', 0xff], false, None);
    assert_eq!(attack_with(&server, "/", &bad_text).await, Some(1007));
    let sum: serde_json::Value = within(client.request("add", [2, 3])).await.unwrap();
    assert_eq!(sum["result"], 5, "the well-behaved client was disturbed");
    within(client.close()).await.unwrap();
}
