//! A resilient connection to an echo server: sends one message a second for 30 seconds and
//! prints the echoes, the lifecycle events and the metrics. Kill and restart the server on
//! the same port meanwhile to watch it reconnect and deliver what was sent during the outage.
//!
//! ```text
//! cargo run -p test-servers -- echo --port 9001
//! cargo run -p tokio-ws-client --example resilient_echo -- ws://127.0.0.1:9001/
//! ```
#![allow(clippy::print_stdout)] // An example reports to the terminal.

use std::time::Duration;

use futures_util::StreamExt;
use ws_client::resilient::{Event, HeartbeatConfig, ResilientConfig, ResilientConnection};

#[tokio::main]
async fn main() -> Result<(), ws_client::Error> {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: resilient_echo ws://HOST:PORT/");
        std::process::exit(2);
    });
    let config = ResilientConfig {
        heartbeat: Some(HeartbeatConfig {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
        }),
        ..ResilientConfig::new(url)
    };
    let mut connection = ResilientConnection::connect(config).await?;
    let mut events = connection.events();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                Event::Connected {
                    generation,
                    attempt,
                    took,
                } => println!("event: connected #{generation} (attempt {attempt}, {took:?})"),
                Event::Disconnected { error, class, .. } => {
                    println!("event: disconnected: {error} ({class:?})");
                }
                Event::Reconnecting { attempt, delay, .. } => {
                    println!("event: attempt {attempt} in {delay:?}");
                }
                other => println!("event: {other:?}"),
            }
        }
    });

    let sender = connection.sender();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for n in 0..30 {
            tick.tick().await;
            // Handed over at once; written now, or after the reconnect if the server is down.
            match sender.enqueue(format!("message {n}")).await {
                Ok(delivery) => {
                    tokio::spawn(async move {
                        if let Err(failed) = delivery.await {
                            println!("not sent: {:?} ({})", failed.message, failed.error);
                        }
                    });
                }
                Err(failed) => println!("not sent: {:?} ({})", failed.message, failed.error),
            }
        }
    });

    let deadline = tokio::time::sleep(Duration::from_secs(31));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            received = connection.receive() => match received {
                Ok(message) => println!("echo: {}", message.as_text().unwrap_or("<binary>")),
                Err(error) => {
                    println!("ended: {error}");
                    break;
                }
            },
            () = &mut deadline => break,
        }
    }
    println!("metrics: {:#?}", connection.metrics());
    connection.close().await
}
