//! A hostile client (raw TCP) attacks each server mode — slowloris, oversized length
//! headers, unmasked frames, invalid UTF-8, fragment and ping floods, header floods and a
//! connection flood — while a well-behaved ws-client keeps getting its echoes, and the
//! server's memory stays bounded.

use std::time::Duration;

use integration::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::raw_peer::{
    BINARY, CLOSE, CONTINUATION, Frame, PING, TEXT, client_frame, frame, read_frames, server_frame,
    upgrade_request, upgraded_client,
};
use crate::support::{assert_echoes, connect, within, within_for};

/// Most a single attack may take.
const ATTACK_BOUND: Duration = Duration::from_secs(20);

/// Sends `bytes` (ignoring errors: the server may close early) and returns the close code
/// of the first close frame the server sends (`None` if the connection ends without one).
async fn attack_with(server: &TestServer, path: &str, bytes: &[u8]) -> Option<u16> {
    let mut tcp = upgraded_client(server.addr(), path).await;
    let _ = tcp.write_all(bytes).await;
    let frames = within_for(ATTACK_BOUND, read_frames(&mut tcp, true)).await;
    frames.last().and_then(Frame::close_code)
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
    let huge = frame(BINARY, true, &[], true, 1 << 62);
    assert_eq!(
        attack_with(&server, path, &huge).await,
        Some(1009),
        "{mode}: oversized length header"
    );
    check_good("after oversized length").await;
    // Unmasked, as only a server may send.
    let unmasked = server_frame(TEXT, true, b"not masked");
    assert_eq!(
        attack_with(&server, path, &unmasked).await,
        Some(1002),
        "{mode}: unmasked frame"
    );
    check_good("after unmasked").await;
    let bad_text = client_frame(TEXT, true, &[b'o', 0xff, 0xfe]);
    assert_eq!(
        attack_with(&server, path, &bad_text).await,
        Some(1007),
        "{mode}: invalid UTF-8"
    );
    check_good("after invalid UTF-8").await;

    // A fragment flood: a message that never ends grows past the limit and is refused.
    let mut fragments = client_frame(BINARY, false, &[0u8; 60_000]);
    for _ in 0..400 {
        fragments.extend(client_frame(CONTINUATION, false, &[0u8; 60_000]));
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
        pings.extend(client_frame(PING, true, b"flood"));
    }
    pings.extend(client_frame(CLOSE, true, &1000u16.to_be_bytes()));
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
        .write_all(upgrade_request(server.addr(), path, &headers).as_bytes())
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
    let huge = frame(BINARY, true, &[], true, 1 << 62);
    assert_eq!(attack_with(&server, "/", &huge).await, Some(1009));
    let unmasked = server_frame(TEXT, true, b"{}");
    assert_eq!(attack_with(&server, "/", &unmasked).await, Some(1002));
    let bad_text = client_frame(TEXT, true, &[b'{', 0xff]);
    assert_eq!(attack_with(&server, "/", &bad_text).await, Some(1007));
    let sum: serde_json::Value = within(client.request("add", [2, 3])).await.unwrap();
    assert_eq!(sum["result"], 5, "the well-behaved client was disturbed");
    within(client.close()).await.unwrap();
}
