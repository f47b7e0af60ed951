//! Helpers shared by the integration tests: a timeout around every await, and connecting.

use std::future::Future;
use std::time::Duration;

use integration::TestServer;
use ws_client::{TransportConfig, WebSocketConnection};

/// The most any single step of a test may take before the test fails instead of hanging.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Awaits `future`, failing the test if it takes longer than [`STEP_TIMEOUT`].
pub(crate) async fn within<F: Future>(future: F) -> F::Output {
    within_for(STEP_TIMEOUT, future).await
}

/// Awaits `future`, failing the test if it takes longer than `limit`.
pub(crate) async fn within_for<F: Future>(limit: Duration, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("step did not finish within {limit:?}"),
    }
}

/// Starts `test-servers echo` with extra `args`.
pub(crate) fn echo_server(args: &[&str]) -> TestServer {
    TestServer::start_with("echo", args)
}

/// Opens a connection to `url` with the default configuration.
pub(crate) async fn connect(url: &str) -> WebSocketConnection {
    connect_with(TransportConfig::new(url)).await
}

/// Opens a connection with `config` (to `config.url`).
pub(crate) async fn connect_with(config: TransportConfig) -> WebSocketConnection {
    let url = config.url.clone();
    within(WebSocketConnection::open(config))
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// Sends `text` and asserts that the next message is its echo.
pub(crate) async fn assert_echoes(connection: &mut WebSocketConnection, text: &str) {
    within(connection.send(text)).await.unwrap();
    let echo = within(connection.receive_message()).await.unwrap();
    assert_eq!(echo.as_text().unwrap(), text);
}

/// A payload of `len` bytes whose content depends on `seed` and the position, so that
/// reordered, truncated or mixed-up messages are caught.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
