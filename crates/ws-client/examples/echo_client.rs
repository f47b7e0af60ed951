//! Sends a few messages to an echo server and prints what comes back.
//!
//! Run a server, then this example with the URL the server printed:
//!
//! ```text
//! cargo run -p test-servers -- echo --port 0
//! cargo run -p tokio-ws-client --example echo_client -- ws://127.0.0.1:PORT/
//! ```
#![allow(clippy::print_stdout)] // An example reports to the terminal.

use ws_client::{Message, TransportConfig, WebSocketConnection};

#[tokio::main]
async fn main() -> Result<(), ws_client::Error> {
    let url = std::env::args().nth(1).unwrap_or_else(|| usage());
    let config = TransportConfig {
        url: url.clone(),
        ..Default::default()
    };
    let mut connection = WebSocketConnection::new(config).await?;
    connection.connect(&url).await?;

    connection
        .send_message(&Message::text("hello, echo"))
        .await?;
    let reply = connection.receive_message().await?;
    println!("text echo:   {}", reply.as_text()?);

    connection
        .send(Message::binary(vec![0x00, 0x01, 0xfe, 0xff]))
        .await?;
    let reply = connection.receive_message().await?;
    println!("binary echo: {:?}", reply.data);

    connection
        .send(Message::ping(b"still there?".to_vec()))
        .await?;
    let reply = connection.receive_message().await?;
    println!(
        "{:?}: {}",
        reply.message_type,
        String::from_utf8_lossy(&reply.data)
    );

    connection.disconnect().await?;
    println!("closed cleanly");
    Ok(())
}

/// Says how to run the example, then exits.
fn usage() -> ! {
    eprintln!(
        "usage: cargo run -p tokio-ws-client --example echo_client -- URL (the URL test-servers printed)"
    );
    std::process::exit(2)
}
