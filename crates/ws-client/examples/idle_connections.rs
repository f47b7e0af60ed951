//! Opens N idle connections and reports the resident memory they cost, on this side and
//! (given its process id) on the server's side. Linux only: it reads `/proc/*/status`.
//!
//! ```text
//! cargo run --release -p test-servers -- echo --port 0 &
//! cargo run --release -p tokio-ws-client --example idle_connections -- ws://127.0.0.1:PORT/ 2000 SERVER_PID
//! ```
#![allow(clippy::print_stdout)] // An example reports to the terminal.

use ws_client::{Message, TransportConfig, WebSocketConnection};

/// Resident set size of a process in bytes, from `/proc/<pid>/status`.
fn resident_bytes(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ws_client::Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| usage());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let server_pid = args.next();
    let server_rss = || server_pid.as_deref().and_then(resident_bytes);

    // One connection first, so that one-off costs (runtime, TLS-free code paths, the
    // allocator's arenas) are not charged to the idle connections.
    let mut warm = WebSocketConnection::open(TransportConfig::new(&url)).await?;
    warm.send(Message::text("warm")).await?;
    warm.receive_message().await?;

    let client_before = resident_bytes("self");
    let server_before = server_rss();
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        let mut connection = WebSocketConnection::open(TransportConfig::new(&url)).await?;
        // A round trip on each, so the server has fully set the session up.
        connection.send(Message::text("x")).await?;
        connection.receive_message().await?;
        connections.push(connection);
    }
    let per_connection = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(before), Some(after)) => format!(
            "{:.1} KB",
            after.saturating_sub(before) as f64 / count as f64 / 1000.0
        ),
        _ => "n/a".to_string(),
    };
    println!("{count} idle connections:");
    println!(
        "  client: {} per connection",
        per_connection(client_before, resident_bytes("self"))
    );
    println!(
        "  server: {} per connection",
        per_connection(server_before, server_rss())
    );
    for mut connection in connections {
        connection.disconnect().await?;
    }
    Ok(())
}

/// Says how to run the example, then exits.
fn usage() -> ! {
    eprintln!(
        "usage: cargo run -p tokio-ws-client --example idle_connections -- URL (the URL test-servers printed)"
    );
    std::process::exit(2)
}
