//! JSON-RPC over a resilient connection: one `add` call a second (idempotent, so it is sent
//! again if the connection drops under it) and a tick subscription, for 30 seconds. Kill and
//! restart the server on the same port meanwhile: calls in flight are resent, the
//! subscription is made again and reports the gap.
//!
//! ```text
//! cargo run -p test-servers -- rpc --port 9002
//! cargo run -p tokio-ws-client --example resilient_rpc -- ws://127.0.0.1:9002/
//! ```
#![allow(clippy::print_stdout)] // An example reports to the terminal.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use ws_client::Error;
use ws_client::resilient::{HeartbeatConfig, ResilientConfig};
use ws_client::rpc::{CallOptions, RpcClient, RpcConfig, Subscription};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: resilient_rpc ws://HOST:PORT/");
        std::process::exit(2);
    });
    let config = ResilientConfig {
        heartbeat: Some(HeartbeatConfig {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
        }),
        ..ResilientConfig::new(url)
    };
    let client = RpcClient::connect_resilient(config, RpcConfig::default()).await?;
    let params = json!({"count": 300, "interval_ms": 100});
    let mut ticks: Subscription<Value> = client
        .subscribe("subscribe_ticks", params, "unsubscribe")
        .await?;
    tokio::spawn(async move {
        while let Some(tick) = ticks.next().await {
            match tick {
                Ok(tick) => println!("tick {}", tick["n"]),
                Err(Error::SubscriptionGap) => println!("reconnected: ticks missed meanwhile"),
                Err(error) => println!("subscription ended: {error}"),
            }
        }
    });
    let options = CallOptions {
        timeout: Some(Duration::from_secs(10)),
        idempotent: true,
    };
    for i in 0..30 {
        match client.call_with("add", json!([i, 1]), options).await {
            Ok(response) => println!("add({i}, 1) = {}", response.into_result()?["result"]),
            Err(error) => println!("add({i}, 1) failed: {error}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    client.close().await
}
