//! The jsonrpsee contenders for the RPC figures: a jsonrpsee WebSocket server with the two
//! methods the `rpc` scenario calls on `test-servers rpc` (`add`, `echo`, same answers), run
//! by `ws-bench serve jsonrpsee-rpc`, and a jsonrpsee WebSocket client, each set up in its
//! strongest honest configuration for 256 calls in flight on one connection.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow, bail};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::server::{RpcModule, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::ws_client::{RpcService, RpcServiceBuilder, WsClient, WsClientBuilder};
use serde_json::{Value, json};

use crate::rpc_answer::Answer;

/// Messages the server buffers per connection before it stops reading (jsonrpsee's
/// default, written out: four times the 256 calls in flight the figures use, so the server
/// never holds back a window).
pub(crate) const SERVER_BUFFER: u32 = 1024;

/// The server's invalid-params error code (JSON-RPC 2.0).
const INVALID_PARAMS: i32 = -32602;

/// Starts a jsonrpsee server on `addr` (WebSocket only) with `add` and `echo`.
///
/// Configuration: WebSocket only (no HTTP path to route), message buffer
/// [`SERVER_BUFFER`] per connection, TCP_NODELAY on, pings off (as test-servers), no RPC
/// middleware (no logger), request and response limits at their 10 MB defaults.
pub(crate) async fn start_server(addr: SocketAddr) -> Result<(SocketAddr, ServerHandle)> {
    let config = ServerConfig::builder()
        .ws_only()
        .set_message_buffer_capacity(SERVER_BUFFER)
        .set_tcp_no_delay(true)
        .build();
    let server = Server::builder()
        .set_config(config)
        .build(addr)
        .await
        .with_context(|| format!("jsonrpsee cannot listen on {addr}"))?;
    let local = server.local_addr().context("no local address")?;
    let mut module = RpcModule::new(());
    module
        .register_method("add", |params, _, _| add(&params))
        .context("registering add")?;
    module
        .register_method("echo", |params, _, _| params.parse::<Value>())
        .context("registering echo")?;
    Ok((local, server.start(module)))
}

/// `add` as test-servers answers it: `[a, b]` or `{"a": a, "b": b}` gives `{"result": a+b}`.
fn add(params: &Params<'_>) -> Result<Value, ErrorObjectOwned> {
    let invalid = |what: &str| ErrorObjectOwned::owned(INVALID_PARAMS, what.to_owned(), None::<()>);
    let value: Value = params.parse()?;
    let (a, b) = match &value {
        Value::Array(items) if items.len() == 2 => (&items[0], &items[1]),
        Value::Object(map) => match (map.get("a"), map.get("b")) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(invalid("add takes {\"a\":..,\"b\":..}")),
        },
        _ => return Err(invalid("add takes [a, b] or {\"a\":..,\"b\":..}")),
    };
    let sum = match (a.as_i64(), b.as_i64()) {
        (Some(a), Some(b)) => a
            .checked_add(b)
            .map(Value::from)
            .ok_or_else(|| invalid("integer overflow"))?,
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => json!(a + b),
            _ => return Err(invalid("add takes two numbers")),
        },
    };
    Ok(json!({ "result": sum }))
}

/// A jsonrpsee WebSocket client, no RPC middleware.
pub(crate) type JsonrpseeClient = WsClient<RpcService>;

/// Connects jsonrpsee's WebSocket client to `url` for `window` calls in flight.
///
/// Configuration: `max_concurrent_requests` = `window` (at least its default 256: the bound
/// of its front-to-back channel and of calls in flight), no RPC middleware (its default
/// logger layer is dropped), TCP_NODELAY on, pings off, 60 s request timeout and 10 MB
/// limits at their defaults.
pub(crate) async fn connect(url: &str, window: usize) -> Result<JsonrpseeClient> {
    WsClientBuilder::new()
        .max_concurrent_requests(window.max(256))
        .set_tcp_no_delay(true)
        .set_rpc_middleware(RpcServiceBuilder::new())
        .build(url)
        .await
        .with_context(|| format!("jsonrpsee cannot connect to {url}"))
}

/// Calls `method` with `params` (an array, or nothing) the way a jsonrpsee user would,
/// positional parameters built with `ArrayParams`.
pub(crate) async fn call(client: &JsonrpseeClient, method: &str, params: &Value) -> Result<Answer> {
    let mut array = ArrayParams::new();
    match params {
        Value::Array(items) => {
            for item in items {
                array.insert(item).context("encoding a parameter")?;
            }
        }
        Value::Null => {}
        other => bail!("the jsonrpsee contender sends positional params, not {other}"),
    }
    client
        .request::<Answer, _>(method, array)
        .await
        .map_err(|e| anyhow!("{method} failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_text(params: &str) -> Result<Value, ErrorObjectOwned> {
        add(&Params::new(Some(params)))
    }

    #[test]
    fn add_answers_as_test_servers_does() {
        assert_eq!(add_text("[1,2]").unwrap(), json!({"result": 3}));
        assert_eq!(add_text(r#"{"a":5,"b":3}"#).unwrap(), json!({"result": 8}));
        assert_eq!(add_text("[0.5,1]").unwrap(), json!({"result": 1.5}));
        for bad in [
            "[1]",
            r#"{"a":1}"#,
            r#"["x",1]"#,
            "7",
            "[9223372036854775807,1]",
        ] {
            let error = add_text(bad).unwrap_err();
            assert_eq!(error.code(), INVALID_PARAMS, "{bad}");
        }
    }
}
