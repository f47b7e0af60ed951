//! Quick JSON-RPC measurement: calls/s and latency percentiles with W calls in flight on
//! one connection. (The full suite with baselines is `cargo xtask bench`.)
//!
//! ```text
//! cargo run --release -p test-servers -- rpc --port 0
//! cargo run --release -p tokio-ws-client --example rpc_throughput -- ws://127.0.0.1:PORT/ 256 100000
//! ```
#![allow(clippy::print_stdout)] // An example reports to the terminal.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::Value;
use ws_client::rpc::{RpcClient, RpcConfig};

#[tokio::main]
async fn main() -> Result<(), ws_client::Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| usage());
    let window: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(256);
    let calls: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);

    let client = RpcClient::connect(RpcConfig::new(&url)).await?;
    let one_call = |client: RpcClient| async move {
        let started = Instant::now();
        let sum: Value = client.request("add", [1, 2]).await?;
        assert_eq!(sum["result"], 3);
        Ok::<Duration, ws_client::Error>(started.elapsed())
    };
    let mut in_flight = FuturesUnordered::new();
    let mut samples = Vec::with_capacity(calls);
    let started = Instant::now();
    let mut sent = 0;
    while samples.len() < calls {
        while sent < calls && in_flight.len() < window {
            in_flight.push(one_call(client.clone()));
            sent += 1;
        }
        if let Some(latency) = in_flight.next().await {
            samples.push(latency?);
        }
    }
    let elapsed = started.elapsed();
    client.close().await?;

    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{calls} calls, {window} in flight: {:.0} calls/s  p50 {:?}  p99 {:?}  max {:?}",
        calls as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}

/// Says how to run the example, then exits.
fn usage() -> ! {
    eprintln!(
        "usage: cargo run -p tokio-ws-client --example rpc_throughput -- URL [WINDOW] [CALLS]"
    );
    std::process::exit(2)
}
