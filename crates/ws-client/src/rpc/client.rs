//! `RpcClient`: JSON-RPC 2.0 calls, notifications, batches and subscriptions over one
//! WebSocket connection, with many calls in flight matched by id. The public face only:
//! the connection's machinery is the `Session` it holds (see `session`), batches are sent
//! by `batch`, and `Subscription` is in `subscription`.
//!
//! Callers queue their requests for the writing task (see `writer`: one flush per burst),
//! and one reader task routes the answers (see `reader` and `router`). Callers never
//! touch the socket.

use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::time::Instant;

use crate::connection::WebSocketConnection;
use crate::error::Error;
use crate::resilient::{
    EventStream, LinkStatus, ResilientConfig, ResilientConnection, ResilientSender,
};
use crate::rpc::batch::{self, BatchEntry};
use crate::rpc::config::{CallOptions, RpcConfig};
use crate::rpc::feed;
use crate::rpc::request::WireRequest;
use crate::rpc::resume;
use crate::rpc::session::{CallKind, Session};
use crate::rpc::subscription::Subscription;
use crate::rpc::types::{Id, RpcMethod, RpcResponse};
use tokio::sync::watch;

/// A JSON-RPC 2.0 client. Cheap to clone; clones share the connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), ws_client::Error> {
/// use serde_json::json;
/// use ws_client::rpc::{RpcClient, RpcConfig, RpcMethod};
///
/// // Start a server with `test-servers rpc --port 0` and use the URL it prints.
/// let client = RpcClient::connect(RpcConfig::new("ws://127.0.0.1:9001/")).await?;
/// let response = client.call("add", json!({"a": 5, "b": 3}), RpcMethod::Call).await?;
/// assert_eq!(response.result.unwrap()["result"], 8);
/// let sum: serde_json::Value = client.request("add", json!([5, 3])).await?;
/// assert_eq!(sum, json!({"result": 8}));
/// client.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RpcClient {
    session: Arc<Session>,
}

impl RpcClient {
    /// Connects to `config.transport.url` and starts serving the connection.
    pub async fn connect(config: RpcConfig) -> Result<Self, Error> {
        let connection = WebSocketConnection::open(config.transport.clone()).await?;
        Self::from_connection(connection, config)
    }

    /// Serves JSON-RPC over an already open connection (`config.transport` is not used
    /// for connecting then). Must be called within a Tokio runtime.
    pub fn from_connection(
        connection: WebSocketConnection,
        config: RpcConfig,
    ) -> Result<Self, Error> {
        let session = Session::start(connection, config)?;
        Ok(Self { session })
    }

    /// Connects with a [`ResilientConnection`] (reconnect, heartbeat; see
    /// [`resilient`](crate::resilient)) to `resilient.transport.url` and serves JSON-RPC on
    /// it; `rpc.transport` is not used (the resilient configuration's transport is, and
    /// [`config`](Self::config) reports it). The first connect fails fast unless
    /// [`retry_first_connect`](ResilientConfig::retry_first_connect) is set.
    ///
    /// Across a reconnect:
    /// - a call whose request went out on the connection that dropped fails at once with
    ///   [`Error::CallInterrupted`] (retryable: the server may or may not have run it),
    ///   unless it was made [idempotent](CallOptions::idempotent): then it is sent again on
    ///   the next connection, within its own timeout;
    /// - a call made while the connection is down waits in the outgoing queue for the next
    ///   connection, within its timeout; one that timed out or was dropped before it went
    ///   out is never sent;
    /// - subscriptions are made again with the same method and parameters once reconnected,
    ///   and each stream yields [`Error::SubscriptionGap`] there (see [`Subscription`]); an
    ///   unsubscribe goes out only on the connection that holds the subscription;
    /// - no call waits past its timeout because of a reconnect; once the resilient connection
    ///   gives up (or meets an error that is not retried), every call fails with that error.
    ///
    /// The resilient connection's [`QueuePolicy`](crate::resilient::QueuePolicy) does not
    /// apply: requests wait in the RPC client's own queue ([`RpcConfig::max_queued_bytes`]).
    pub async fn connect_resilient(
        resilient: ResilientConfig,
        mut rpc: RpcConfig,
    ) -> Result<Self, Error> {
        rpc.transport = resilient.transport.clone();
        let connection = ResilientConnection::connect(resilient).await?;
        Self::from_resilient(connection, rpc)
    }

    /// Serves JSON-RPC on an open resilient connection, as
    /// [`connect_resilient`](Self::connect_resilient) does. The client takes the connection
    /// over: it reads every message it receives. From `config.transport` only the close
    /// timeout is used (the size limit is the connection's). Must be called within a Tokio
    /// runtime.
    pub fn from_resilient(
        connection: ResilientConnection,
        config: RpcConfig,
    ) -> Result<Self, Error> {
        let session = Session::start_resilient(connection, config)?;
        Ok(Self { session })
    }

    /// The lifecycle events of the resilient connection underneath (see
    /// [`ResilientConnection::events`]); `None` for a plain connection.
    pub fn events(&self) -> Option<EventStream> {
        self.session.link().map(ResilientSender::events)
    }

    /// The status of the resilient connection underneath, and every change of it; `None`
    /// for a plain connection.
    pub fn status(&self) -> Option<watch::Receiver<LinkStatus>> {
        self.session.link().map(ResilientSender::status)
    }

    /// The client's configuration.
    pub fn config(&self) -> &RpcConfig {
        self.session.config()
    }

    /// Calls `method` with `params` (`Value::Null` for none) and returns the whole
    /// response, error object included, within the default timeout. With
    /// [`RpcMethod::Notification`] nothing is awaited: the returned response is empty
    /// (`id` null, no result, no error) once the notification is sent.
    ///
    /// A request larger than the transport's `max_message_size` fails with
    /// [`Error::MessageTooLarge`] before it is queued (so do notifications and batches);
    /// the connection and the other calls carry on.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        kind: RpcMethod,
    ) -> Result<RpcResponse, Error> {
        match kind {
            RpcMethod::Call => {
                self.call_with_timeout(method, params, self.session.config().request_timeout)
                    .await
            }
            RpcMethod::Notification => {
                self.notify(method, params).await?;
                Ok(RpcResponse {
                    id: Id::Null,
                    result: None,
                    error: None,
                })
            }
        }
    }

    /// Calls `method` with its own timeout instead of the default.
    pub async fn call_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<RpcResponse, Error> {
        self.session.call(method, &params, timeout).await
    }

    /// Calls `method` with per-call [`CallOptions`]: its timeout, and whether it may be
    /// sent again after a reconnect (over a resilient connection).
    pub async fn call_with(
        &self,
        method: &str,
        params: Value,
        options: CallOptions,
    ) -> Result<RpcResponse, Error> {
        let timeout = options
            .timeout
            .unwrap_or(self.session.config().request_timeout);
        let kind = CallKind {
            idempotent: options.idempotent,
            only_on: 0,
        };
        let answer = (self.session).answer_within(method, &params, timeout, None, kind);
        answer.await?.into_response()
    }

    /// Calls `method` and decodes its result as `T`, within the default timeout; an error
    /// object becomes [`Error::Rpc`], a result that is not a `T` [`Error::Codec`], and so
    /// does one no `serde_json::Value` could hold, even if `T` would skip the bad part.
    ///
    /// With the JSON codec, an answer written `{"jsonrpc":"2.0","result":R,"id":N}` (or
    /// with the id first), without whitespace between members, as most servers write it,
    /// has its result decoded straight from the received text into `T`, with no `Value`
    /// between: the fastest way to call. Any other answer is decoded through a `Value`.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<T, Error> {
        let params = serde_json::to_value(params).map_err(|e| Error::Codec(e.to_string()))?;
        let timeout = self.session.config().request_timeout;
        let answer =
            (self.session).answer_within(method, &params, timeout, None, CallKind::default());
        answer.await?.decode(method)
    }

    /// Sends a notification: no id, no answer. Returns once it is queued; if the outgoing
    /// queue ([`RpcConfig::max_queued_bytes`]) stays full for the request timeout (the
    /// server is not reading), fails with [`Error::QueueFull`] and nothing is sent.
    pub async fn notify(&self, method: &str, params: Value) -> Result<(), Error> {
        let message =
            WireRequest::new(method, &params, None).encode(self.session.config().codec)?;
        let timeout = self.session.config().request_timeout;
        let deadline = Instant::now().checked_add(timeout);
        self.session
            .send(message, deadline)
            .await?
            .ok_or_else(|| Error::QueueFull {
                method: method.to_owned(),
                after: timeout,
            })
    }

    /// Sends several calls and notifications as one batch and returns one entry per
    /// request, in request order: `Some(response)` for calls, `None` for notifications.
    ///
    /// An answer the client cannot match to any call while the batch waits (an error object
    /// with id null, which is how a server refuses a whole batch, or a batch answer it
    /// cannot read) fails the batch at once with that error (`Error::Rpc` for an error
    /// object) instead of leaving it to its timeout. With several batches waiting, the
    /// oldest is failed.
    pub async fn batch(&self, entries: Vec<BatchEntry>) -> Result<Vec<Option<RpcResponse>>, Error> {
        let timeout = self.session.config().request_timeout;
        tokio::time::timeout(timeout, batch::send_batch(&self.session, &entries))
            .await
            .map_err(|_| Error::CallTimeout {
                method: "batch".into(),
                after: timeout,
            })?
    }

    /// Subscribes: calls `method`, whose result is a subscription id, and returns the
    /// stream of notifications for it. Dropping the stream calls `unsubscribe_method`.
    ///
    /// If this times out or is dropped and the server's answer comes later (or had come,
    /// but was not read yet) with a subscription id, the client sends `unsubscribe_method`
    /// for it (a notification,
    /// without waiting, like the one a dropped stream sends), so that no subscription
    /// nobody reads stays on the server.
    pub async fn subscribe<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
        unsubscribe_method: &str,
    ) -> Result<Subscription<T>, Error> {
        let call = (self.session.link().is_some())
            .then(|| resume::subscribe_call(method, &params, unsubscribe_method));
        let (sink, source) = feed::channel(self.session.config().subscription_buffer, call);
        let timeout = self.session.config().request_timeout;
        let unsubscribe = (sink, unsubscribe_method.to_owned());
        let kind = CallKind {
            idempotent: true,
            only_on: 0,
        };
        let answer =
            (self.session).answer_within(method, &params, timeout, Some(unsubscribe), kind);
        let response = answer.await?.into_response()?;
        match response.into_result()? {
            Value::Number(n) if n.is_i64() => {}
            Value::String(_) => {}
            other => {
                return Err(Error::Codec(format!(
                    "{method:?} returned {other}, not a subscription id"
                )));
            }
        }
        Ok(Subscription::new(
            source,
            Arc::clone(&self.session),
            unsubscribe_method.to_owned(),
        ))
    }

    /// Closes the connection with a close handshake and waits (within the transport's
    /// close timeout) until it has ended. Calls still waiting fail with
    /// [`Error::ConnectionClosed`]. If the server does not answer in time the connection is
    /// dropped anyway and this returns [`Error::CloseTimeout`]; so does cancelling this
    /// future: the socket is never left open behind a closed client. A `close` from another
    /// clone while one is under way waits for that one to end, then returns `Ok`.
    pub async fn close(&self) -> Result<(), Error> {
        self.session.close().await
    }

    /// Whether the connection has ended (every later call fails at once).
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }
}
