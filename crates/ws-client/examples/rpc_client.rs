//! JSON-RPC 2.0 against `test-servers rpc`: a call, a typed request, a notification, a
//! batch and a subscription.
//!
//! ```text
//! cargo run -p test-servers -- rpc --port 0
//! cargo run -p tokio-ws-client --example rpc_client -- ws://127.0.0.1:PORT/
//! ```
#![allow(clippy::print_stdout)] // An example reports to the terminal.

use futures_util::StreamExt;
use serde_json::{Value, json};
use ws_client::rpc::{BatchEntry, RpcClient, RpcConfig, RpcMethod, Subscription};

#[tokio::main]
async fn main() -> Result<(), ws_client::Error> {
    let url = std::env::args().nth(1).unwrap_or_else(|| usage());
    let client = RpcClient::connect(RpcConfig::new(url)).await?;

    // The whole response, as in the original design...
    let response = client
        .call("add", json!({"a": 5, "b": 3}), RpcMethod::Call)
        .await?;
    println!("add -> {:?}", response.result);
    // ...or a typed result; an error object becomes Error::Rpc { code, message, data }.
    let sum: Value = client.request("add", [5, 3]).await?;
    println!("add -> {}", sum["result"]);

    // Many calls in flight on one connection, matched by id; each has a timeout.
    client.notify("update", json!([1, 2, 3])).await?; // no answer
    let answers = client
        .batch(vec![
            BatchEntry::call("sum", json!([1, 2, 4])),
            BatchEntry::call("get_data", Value::Null),
        ])
        .await?;
    println!("batch -> {answers:?}");

    // Server notifications as a Stream; dropping it unsubscribes.
    let ticks: Subscription<Value> = client
        .subscribe(
            "subscribe_ticks",
            json!({"count": 3, "interval_ms": 10}),
            "unsubscribe",
        )
        .await?;
    let mut ticks = ticks.take(3);
    while let Some(tick) = ticks.next().await {
        println!("tick {}", tick?["n"]);
    }
    client.close().await
}

/// Says how to run the example, then exits.
fn usage() -> ! {
    eprintln!(
        "usage: cargo run -p tokio-ws-client --example rpc_client -- URL (the URL test-servers printed)"
    );
    std::process::exit(2)
}
