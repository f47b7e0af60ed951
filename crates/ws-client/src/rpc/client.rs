//! `RpcClient`: JSON-RPC 2.0 calls, notifications, batches and subscriptions over one
//! WebSocket connection, with many calls in flight matched by id.
//!
//! Callers queue their requests for the writing task (see `writer`: one flush per burst),
//! and one reader task routes the answers (see `router`). Callers never touch the socket.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::connection::WebSocketConnection;
use crate::error::Error;
use crate::message::Message;
use crate::rpc::codec::Codec;
use crate::rpc::config::RpcConfig;
use crate::rpc::request::WireRequest;
use crate::rpc::router::{self, Outcome, Pending, Router};
use crate::rpc::subscription::{self, Subscription};
use crate::rpc::types::{Id, RpcMethod, RpcResponse};
use crate::rpc::writer::{NoRoom, Writer};

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
/// assert_eq!(response.result, Some(json!(8)));
/// let sum: i64 = client.request("add", json!([5, 3])).await?;
/// assert_eq!(sum, 8);
/// client.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RpcClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Arc<Writer>,
    router: Arc<Router>,
    slots: Arc<Semaphore>,
    next_id: AtomicI64,
    config: RpcConfig,
    tasks: Mutex<Option<Tasks>>,
}

impl Drop for Inner {
    /// The last handle is gone: close the connection politely, and make sure it ends. The
    /// reader is given the transport's close timeout to see the server's answer, then
    /// aborted with the writer, so a server that never answers cannot keep the socket (and
    /// the tasks) alive after the client is gone.
    fn drop(&mut self) {
        self.writer.close();
        let tasks = self
            .tasks
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(tasks) = tasks else {
            return;
        };
        let after = self.config.transport.close_timeout;
        // Without a runtime the tasks are gone or going anyway; dropping them says so.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tasks.finish_within(after).await;
            });
        }
    }
}

/// The connection's reader and writer tasks. Dropping this aborts both and fails whatever
/// still waits: a task is never left detached with the socket.
#[derive(Debug)]
struct Tasks {
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    router: Arc<Router>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        let reader_ended = self.reader.is_finished();
        self.reader.abort();
        self.writer.abort();
        if !reader_ended {
            // The reader would have done this at its end.
            self.router.fail_all(Error::ConnectionClosed);
        }
    }
}

impl Tasks {
    /// Waits up to `after` for the reader to end (the server answered the close, or the
    /// connection ended); otherwise aborts both tasks, which drops the socket.
    async fn finish_within(mut self, after: Duration) -> Result<(), Error> {
        match tokio::time::timeout(after, &mut self.reader).await {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::CloseTimeout { after }),
        }
    }
}

/// One entry of a [`batch`](RpcClient::batch).
#[derive(Debug, Clone, PartialEq)]
pub enum BatchEntry {
    /// A call, answered in the batch's result.
    Call {
        /// The method name.
        method: String,
        /// Its parameters (`Value::Null` for none).
        params: Value,
    },
    /// A notification: sent, never answered.
    Notification {
        /// The method name.
        method: String,
        /// Its parameters (`Value::Null` for none).
        params: Value,
    },
}

impl BatchEntry {
    /// A call entry.
    pub fn call(method: impl Into<String>, params: Value) -> Self {
        Self::Call {
            method: method.into(),
            params,
        }
    }

    /// A notification entry.
    pub fn notification(method: impl Into<String>, params: Value) -> Self {
        Self::Notification {
            method: method.into(),
            params,
        }
    }
}

/// Removes a call from the router if it ends without an answer (timeout or drop).
struct PendingGuard<'a> {
    router: &'a Router,
    id: i64,
    answered: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.router.forget(self.id);
        }
    }
}

/// Forgets a batch's group in the router when the batch ends, however it ends.
struct BatchGuard<'a> {
    router: &'a Router,
    first: i64,
}

impl Drop for BatchGuard<'_> {
    fn drop(&mut self) {
        self.router.forget_batch(self.first);
    }
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
        if config.max_in_flight == 0
            || config.request_timeout.is_zero()
            || config.max_queued_bytes == 0
        {
            return Err(Error::InvalidConfig(
                "max_in_flight, request_timeout and max_queued_bytes must be greater than zero"
                    .into(),
            ));
        }
        let (sender, receiver) = connection.split()?;
        let router = Arc::new(Router::default());
        let (writer, writer_task) =
            Writer::start(sender, Arc::clone(&router), config.max_queued_bytes);
        // Ends by itself once the router is closed (the reader closes it at the end).
        tokio::spawn(router::sweep_loop(Arc::clone(&router)));
        let reader = tokio::spawn(router::read_loop(
            receiver,
            Arc::clone(&router),
            Arc::clone(&writer),
            config.codec,
        ));
        let tasks = Tasks {
            reader,
            writer: writer_task,
            router: Arc::clone(&router),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                router,
                slots: Arc::new(Semaphore::new(config.max_in_flight)),
                next_id: AtomicI64::new(1),
                config,
                tasks: Mutex::new(Some(tasks)),
            }),
        })
    }

    /// The client's configuration.
    pub fn config(&self) -> &RpcConfig {
        &self.inner.config
    }

    /// Calls `method` with `params` (`Value::Null` for none) and returns the whole
    /// response, error object included, within the default timeout. With
    /// [`RpcMethod::Notification`] nothing is awaited: the returned response is empty
    /// (`id` null, no result, no error) once the notification is sent.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        kind: RpcMethod,
    ) -> Result<RpcResponse, Error> {
        match kind {
            RpcMethod::Call => {
                self.call_with_timeout(method, params, self.inner.config.request_timeout)
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
        let timed_out = || Error::CallTimeout {
            method: method.to_owned(),
            after: timeout,
        };
        // The deadline counts from now, waiting for a slot included. A timeout too long to
        // be represented as an instant is, in practice, no timeout.
        let deadline = Instant::now().checked_add(timeout);
        match self.call_until(method, &params, deadline, None).await {
            Ok(Outcome::Answer(response)) => Ok(response),
            Ok(Outcome::TimedOut) => Err(timed_out()),
            Ok(Outcome::Failed(error)) | Err(error) => Err(error),
        }
    }

    /// Calls `method` and decodes its result as `T`; an error object becomes [`Error::Rpc`].
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<T, Error> {
        let params = serde_json::to_value(params).map_err(|e| Error::Codec(e.to_string()))?;
        let result = self
            .call(method, params, RpcMethod::Call)
            .await?
            .into_result()?;
        serde_json::from_value(result)
            .map_err(|e| Error::Codec(format!("result of {method:?}: {e}")))
    }

    /// Sends a notification: no id, no answer. Returns once it is queued; if the outgoing
    /// queue ([`RpcConfig::max_queued_bytes`]) stays full for the request timeout (the
    /// server is not reading), fails with [`Error::QueueFull`] and nothing is sent.
    pub async fn notify(&self, method: &str, params: Value) -> Result<(), Error> {
        let message = WireRequest::new(method, &params, None).encode(self.inner.config.codec)?;
        let timeout = self.inner.config.request_timeout;
        let deadline = Instant::now().checked_add(timeout);
        self.send(message, deadline)
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
        let timeout = self.inner.config.request_timeout;
        tokio::time::timeout(timeout, self.batch_unbounded(&entries))
            .await
            .map_err(|_| Error::CallTimeout {
                method: "batch".into(),
                after: timeout,
            })?
    }

    /// Subscribes: calls `method`, whose result is a subscription id, and returns the
    /// stream of notifications for it. Dropping the stream calls `unsubscribe_method`.
    ///
    /// If this times out or is dropped and the server's answer comes later with a
    /// subscription id, the client sends `unsubscribe_method` for it (a notification,
    /// without waiting, like the one a dropped stream sends), so that no subscription
    /// nobody reads stays on the server.
    pub async fn subscribe<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
        unsubscribe_method: &str,
    ) -> Result<Subscription<T>, Error> {
        let (sink, source) = subscription::channel(self.inner.config.subscription_buffer);
        let timeout = self.inner.config.request_timeout;
        let deadline = Instant::now().checked_add(timeout);
        let unsubscribe = (sink, unsubscribe_method.to_owned());
        let response = match self
            .call_until(method, &params, deadline, Some(unsubscribe))
            .await?
        {
            Outcome::Answer(response) => response,
            Outcome::Failed(error) => return Err(error),
            Outcome::TimedOut => {
                return Err(Error::CallTimeout {
                    method: method.to_owned(),
                    after: timeout,
                });
            }
        };
        let id = match response.into_result()? {
            Value::Number(n) if n.is_i64() => Id::Number(n.as_i64().unwrap_or_default()),
            Value::String(s) => Id::String(s),
            other => {
                return Err(Error::Codec(format!(
                    "{method:?} returned {other}, not a subscription id"
                )));
            }
        };
        Ok(Subscription::new(
            id,
            source,
            self.clone(),
            unsubscribe_method.to_owned(),
        ))
    }

    /// Closes the connection with a close handshake and waits (within the transport's
    /// close timeout) until it has ended. Calls still waiting fail with
    /// [`Error::ConnectionClosed`]. If the server does not answer in time the connection is
    /// dropped anyway and this returns [`Error::CloseTimeout`]; so does cancelling this
    /// future: the socket is never left open behind a closed client.
    pub async fn close(&self) -> Result<(), Error> {
        self.inner.writer.close();
        let tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match tasks {
            Some(tasks) => {
                let after = self.inner.config.transport.close_timeout;
                tasks.finish_within(after).await
            }
            None => Ok(()),
        }
    }

    /// Whether the connection has ended (every later call fails at once).
    pub fn is_closed(&self) -> bool {
        self.inner.router.closed().is_some()
    }

    /// Makes one call that ends by `deadline` (`None`: never). The router's sweeper fails
    /// it with [`Outcome::TimedOut`] once the deadline has passed, so no timer is armed per
    /// call; only a caller that has to wait for a slot arms one, for that wait.
    async fn call_until(
        &self,
        method: &str,
        params: &Value,
        deadline: Option<Instant>,
        subscription: Option<(subscription::SubscriptionSink, String)>,
    ) -> Result<Outcome, Error> {
        let inner = &*self.inner;
        let _slot = match inner.slots.try_acquire() {
            Ok(slot) => slot,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(Error::ConnectionClosed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let acquire = inner.slots.acquire();
                let acquired = match deadline {
                    Some(deadline) => match tokio::time::timeout_at(deadline, acquire).await {
                        Ok(acquired) => acquired,
                        Err(_) => return Ok(Outcome::TimedOut),
                    },
                    None => acquire.await,
                };
                acquired.map_err(|_| Error::ConnectionClosed)?
            }
        };
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let message = WireRequest::new(method, params, Some(id)).encode(inner.config.codec)?;
        // Room in the outgoing queue before registering: a call that times out waiting for
        // it was never sent, so nothing is left to clean up.
        let room = match inner.writer.reserve(&message, deadline).await {
            Ok(room) => room,
            Err(NoRoom::TimedOut) => return Ok(Outcome::TimedOut),
            Err(NoRoom::Closed) => return Err(self.closed_error()),
        };
        let (reply, answer) = oneshot::channel();
        let pending = match subscription {
            Some((sink, unsubscribe)) => Pending::Subscribe {
                reply,
                sink,
                unsubscribe,
            },
            None => Pending::Call(reply),
        };
        inner.router.register(id, pending, deadline)?;
        let mut guard = PendingGuard {
            router: &inner.router,
            id,
            answered: false,
        };
        // No closed check here (`send` takes the router's lock for it): `register` has just
        // made it, and a connection that ends after that fails this call through `answer`.
        inner.writer.push(room, message);
        let outcome = answer.await.map_err(|_| self.closed_error())?;
        // Whatever ended it also took it out of the router.
        guard.answered = true;
        Ok(outcome)
    }

    async fn batch_unbounded(
        &self,
        entries: &[BatchEntry],
    ) -> Result<Vec<Option<RpcResponse>>, Error> {
        let inner = &*self.inner;
        let calls = entries
            .iter()
            .filter(|e| matches!(e, BatchEntry::Call { .. }))
            .count();
        let wanted = u32::try_from(calls.min(inner.config.max_in_flight)).unwrap_or(u32::MAX);
        let _slots = inner
            .slots
            .acquire_many(wanted)
            .await
            .map_err(|_| Error::ConnectionClosed)?;
        let mut wire = Vec::with_capacity(entries.len());
        let mut answers = Vec::with_capacity(entries.len());
        let mut guards = Vec::with_capacity(calls);
        for entry in entries {
            match entry {
                BatchEntry::Call { method, params } => {
                    let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
                    let (reply, answer) = oneshot::channel();
                    // The whole batch is bounded by the caller's timeout instead.
                    inner.router.register(id, Pending::Call(reply), None)?;
                    guards.push(PendingGuard {
                        router: &inner.router,
                        id,
                        answered: false,
                    });
                    wire.push(WireRequest::new(method, params, Some(id)));
                    answers.push(Some(answer));
                }
                BatchEntry::Notification { method, params } => {
                    wire.push(WireRequest::new(method, params, None));
                    answers.push(None);
                }
            }
        }
        let ids: Vec<i64> = guards.iter().map(|guard| guard.id).collect();
        let _group = ids.first().map(|&first| {
            inner.router.register_batch(ids.clone());
            BatchGuard {
                router: &inner.router,
                first,
            }
        });
        // Bounded by the caller's timeout, like the answers.
        self.send(inner.config.codec.encode(&wire)?, None).await?;
        let mut responses = Vec::with_capacity(answers.len());
        for answer in answers {
            responses.push(match answer {
                Some(answer) => match answer.await.map_err(|_| self.closed_error())? {
                    Outcome::Answer(response) => Some(response),
                    Outcome::Failed(error) => return Err(error),
                    // Registered without a deadline, so the sweeper never ends these.
                    Outcome::TimedOut => return Err(Error::ConnectionClosed),
                },
                None => None,
            });
        }
        guards.iter_mut().for_each(|guard| guard.answered = true);
        Ok(responses)
    }

    /// Queues `message` once there is room, waiting until `deadline` at most; `Ok(None)`
    /// if the queue stayed full until then.
    async fn send(&self, message: Message, deadline: Option<Instant>) -> Result<Option<()>, Error> {
        if let Some(reason) = self.inner.router.closed() {
            return Err(reason);
        }
        match self.inner.writer.reserve(&message, deadline).await {
            Ok(room) => {
                self.inner.writer.push(room, message);
                Ok(Some(()))
            }
            Err(NoRoom::TimedOut) => Ok(None),
            Err(NoRoom::Closed) => Err(self.closed_error()),
        }
    }

    /// Sends a notification without waiting (from `Drop`): if the outgoing queue is full
    /// (or the connection has ended) it is dropped, and a warning logged.
    pub(crate) fn notify_nowait(&self, method: &str, params: Value) {
        let Ok(message) = WireRequest::new(method, &params, None).encode(self.inner.config.codec)
        else {
            return;
        };
        match self.inner.writer.try_reserve(&message) {
            Some(room) => self.inner.writer.push(room, message),
            None => tracing::warn!(
                method,
                "outgoing queue full or closed: notification dropped"
            ),
        }
    }

    pub(crate) fn forget_subscription(&self, id: &Id) {
        self.inner.router.forget_subscription(id);
    }

    fn closed_error(&self) -> Error {
        self.inner
            .router
            .closed()
            .unwrap_or(Error::ConnectionClosed)
    }
}
