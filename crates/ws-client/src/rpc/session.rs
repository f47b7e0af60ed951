//! `Session`: what one `RpcClient`'s clones and its subscriptions share: the outgoing queue,
//! the routing tables, the call slots and the background tasks (reader, writer, sweeper),
//! with the connection's end (close, drop, abort); and the primitives the client is built
//! on: one call (`call_until`) and one queued message (`send`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::connection::WebSocketConnection;
use crate::error::Error;
use crate::message::Message;
use crate::resilient::{ResilientConnection, ResilientSender};
use crate::rpc::config::RpcConfig;
use crate::rpc::feed::SubscriptionSink;
use crate::rpc::guards::{PendingGuard, Tasks, Unread};
use crate::rpc::over_resilient;
use crate::rpc::request::WireRequest;
use crate::rpc::resume::{NO_CALL, Resubscribe};
use crate::rpc::router::Router;
use crate::rpc::table::{Answer, Outcome, Pending, Waiting};
use crate::rpc::types::{Id, RpcResponse};
use crate::rpc::writer::{self, NoRoom, Writer};
use crate::rpc::{reader, sweeper};

/// The shared state of one RPC connection. Dropping the last handle closes it.
#[derive(Debug)]
pub(crate) struct Session {
    writer: Arc<Writer>,
    pub(crate) router: Arc<Router>,
    /// One permit per call in flight ([`RpcConfig::max_in_flight`]).
    pub(crate) slots: Semaphore,
    config: RpcConfig,
    /// The resilient connection underneath, if it is one (then calls are stamped with the
    /// connection they went out on, see `resume`).
    link: Option<ResilientSender>,
    /// Taken by the first `close` (or the drop), and locked by it until the connection has
    /// ended, so that a `close` from another clone meanwhile waits for that end too.
    tasks: tokio::sync::Mutex<Option<Tasks>>,
}

impl Drop for Session {
    /// The last handle is gone: close the connection politely, and make sure it ends. The
    /// reader is given the transport's close timeout to see the server's answer, then
    /// aborted with the writer, so a server that never answers cannot keep the socket (and
    /// the tasks) alive after the client is gone.
    fn drop(&mut self) {
        self.writer.close();
        let tasks = self.tasks.get_mut().take();
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

/// Refuses settings no session can run with.
fn check(config: &RpcConfig) -> Result<(), Error> {
    if config.max_in_flight == 0 || config.request_timeout.is_zero() || config.max_queued_bytes == 0
    {
        return Err(Error::InvalidConfig(
            "max_in_flight, request_timeout and max_queued_bytes must be greater than zero".into(),
        ));
    }
    Ok(())
}

/// Spawns the writing task; if it fails, it fails the calls, then closes the queue (in this
/// order, so that a sender refused room sees why).
fn spawn_writer(
    writer: &Arc<Writer>,
    router: &Arc<Router>,
    write: impl Future<Output = Result<(), Error>> + Send + 'static,
) -> JoinHandle<()> {
    let (writer, router) = (Arc::clone(writer), Arc::clone(router));
    tokio::spawn(async move {
        if let Err(error) = write.await {
            router.fail_all(error);
            writer.close();
        }
    })
}

/// How a call may be sent over a resilient connection (see `resume`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallKind {
    /// Sent again on the next connection if the one it went out on drops.
    pub(crate) idempotent: bool,
    /// The only connection generation it may go out on (0: any).
    pub(crate) only_on: u64,
}

impl Session {
    /// Starts serving JSON-RPC on `connection`: splits it and spawns the reader, the writer
    /// and the sweeper. Must be called within a Tokio runtime.
    pub(crate) fn start(
        connection: WebSocketConnection,
        config: RpcConfig,
    ) -> Result<Arc<Self>, Error> {
        check(&config)?;
        let (sender, receiver) = connection.split()?;
        let router = Arc::new(Router::default());
        let writer = Writer::new(config.max_queued_bytes);
        let writer_task = spawn_writer(
            &writer,
            &router,
            writer::write_loop(Arc::clone(&writer), sender),
        );
        let reader = tokio::spawn(reader::read_loop(
            receiver,
            Arc::clone(&router),
            Arc::clone(&writer),
            config.codec,
        ));
        Ok(Self::new(router, writer, writer_task, reader, config, None))
    }

    /// Starts serving JSON-RPC on a resilient connection (see `over_resilient`). Must be
    /// called within a Tokio runtime.
    pub(crate) fn start_resilient(
        connection: ResilientConnection,
        mut config: RpcConfig,
    ) -> Result<Arc<Self>, Error> {
        check(&config)?;
        let link = connection.sender();
        config.transport.max_message_size = link.max_message_size();
        let router = Arc::new(Router::default());
        let writer = Writer::new(config.max_queued_bytes);
        let write =
            over_resilient::write_loop(Arc::clone(&writer), Arc::clone(&router), link.clone());
        let writer_task = spawn_writer(&writer, &router, write);
        let resubscribe = Resubscribe {
            codec: config.codec,
            timeout: config.request_timeout,
        };
        let reader = tokio::spawn(over_resilient::read_loop(
            connection,
            Arc::clone(&router),
            Arc::clone(&writer),
            resubscribe,
        ));
        Ok(Self::new(
            router,
            writer,
            writer_task,
            reader,
            config,
            Some(link),
        ))
    }

    /// The session around its running tasks; starts the sweeper.
    fn new(
        router: Arc<Router>,
        writer: Arc<Writer>,
        writer_task: JoinHandle<()>,
        reader: JoinHandle<()>,
        config: RpcConfig,
        link: Option<ResilientSender>,
    ) -> Arc<Self> {
        // Ends by itself once the router is closed (the reader closes it at the end).
        tokio::spawn(sweeper::sweep_loop(Arc::clone(&router)));
        let tasks = Tasks {
            reader,
            writer: writer_task,
            router: Arc::clone(&router),
        };
        Arc::new(Self {
            writer,
            router,
            slots: Semaphore::new(config.max_in_flight),
            config,
            link,
            tasks: tokio::sync::Mutex::new(Some(tasks)),
        })
    }

    /// The resilient connection underneath, if it is one.
    pub(crate) fn link(&self) -> Option<&ResilientSender> {
        self.link.as_ref()
    }

    /// The configuration it runs with.
    pub(crate) fn config(&self) -> &RpcConfig {
        &self.config
    }

    /// A fresh call id.
    pub(crate) fn next_id(&self) -> i64 {
        self.router.next_id()
    }

    /// Calls `method` within `timeout` (counted from now, waiting for a slot included; one
    /// too long to be represented as an instant is, in practice, no timeout).
    pub(crate) async fn call(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<RpcResponse, Error> {
        self.call_on(method, params, timeout, 0).await
    }

    /// [`call`](Self::call) to go out on connection generation `only_on` only (0: any);
    /// over a resilient connection, it fails with [`Error::CallInterrupted`] unsent if
    /// another one is up by then.
    pub(crate) async fn call_on(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
        only_on: u64,
    ) -> Result<RpcResponse, Error> {
        let kind = CallKind {
            idempotent: false,
            only_on,
        };
        (self
            .answer_within(method, params, timeout, None, kind)
            .await?)
            .into_response()
    }

    /// [`call_until`](Self::call_until) within `timeout` from now (see [`call`](Self::call)):
    /// its answer, or [`Error::CallTimeout`], or why the connection could not carry it.
    pub(crate) async fn answer_within(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
        subscription: Option<(SubscriptionSink, String)>,
        kind: CallKind,
    ) -> Result<Answer, Error> {
        let deadline = Instant::now().checked_add(timeout);
        (self
            .call_until(method, params, deadline, subscription, kind)
            .await?)
            .into_answer(method, timeout)
    }

    /// Makes one call that ends by `deadline` (`None`: never); a subscribe when given the
    /// sink for its notifications and its unsubscribe method. Over a resilient connection,
    /// an idempotent call (see [`CallKind`]; and any subscribe) is sent again if the
    /// connection drops before its answer; any other fails then with
    /// [`Error::CallInterrupted`]. The sweeper fails it with
    /// [`Outcome::TimedOut`] once the deadline has passed, so no timer is armed per call;
    /// only a caller that has to wait for a slot or for room in the queue arms one.
    pub(crate) async fn call_until(
        &self,
        method: &str,
        params: &Value,
        deadline: Option<Instant>,
        subscription: Option<(SubscriptionSink, String)>,
        kind: CallKind,
    ) -> Result<Outcome, Error> {
        let _slot = match self.slots.try_acquire() {
            Ok(slot) => slot,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(Error::ConnectionClosed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let acquire = self.slots.acquire();
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
        let id = self.next_id();
        let message = WireRequest::new(method, params, Some(id)).encode(self.config.codec)?;
        self.check_size(&message)?;
        // Room in the outgoing queue before registering: a call that times out waiting for
        // it was never sent, so nothing is left to clean up.
        let room = match self.writer.reserve(&message, deadline).await {
            Ok(room) => room,
            Err(NoRoom::TimedOut) => return Ok(Outcome::TimedOut),
            Err(NoRoom::Closed) => return Err(self.closed_error()),
        };
        let (reply, answer) = oneshot::channel();
        let unsubscribe =
            (subscription.as_ref()).map(|(sink, method)| (method.clone(), sink.key_handle()));
        let resend = (self.link.is_some() && (kind.idempotent || subscription.is_some()))
            .then(|| Box::new(message.clone()));
        let pending = match subscription {
            Some((sink, unsubscribe)) => Pending::Subscribe {
                reply,
                sink,
                unsubscribe,
            },
            None => Pending::Call(reply),
        };
        let mut waiting = Waiting::new(pending, deadline);
        waiting.resend = resend;
        self.router.register_waiting(id, waiting)?;
        let mut guard = PendingGuard::new(&self.router, id);
        let mut answer = Unread {
            session: self,
            receiver: answer,
            subscription: unsubscribe,
        };
        // No closed check here (`send` takes the router's lock for it): `register` has just
        // made it, and a connection that ends after that fails this call through `answer`.
        self.writer.push_call(room, message, id, kind.only_on);
        let outcome = (&mut answer.receiver)
            .await
            .map_err(|_| self.closed_error())?;
        answer.subscription = None;
        guard.answered();
        Ok(outcome)
    }

    /// Queues `message` once there is room, waiting until `deadline` at most; `Ok(None)`
    /// if the queue stayed full until then.
    pub(crate) async fn send(
        &self,
        message: Message,
        deadline: Option<Instant>,
    ) -> Result<Option<()>, Error> {
        self.send_for(message, deadline, NO_CALL).await
    }

    /// [`send`](Self::send) for a message that carries calls: `batch` is the opposite of
    /// the first call id of a batch (see `Router::stamp`), or `NO_CALL`.
    pub(crate) async fn send_for(
        &self,
        message: Message,
        deadline: Option<Instant>,
        batch: i64,
    ) -> Result<Option<()>, Error> {
        if let Some(reason) = self.router.closed() {
            return Err(reason);
        }
        self.check_size(&message)?;
        match self.writer.reserve(&message, deadline).await {
            Ok(room) => {
                self.writer.push_call(room, message, batch, 0);
                Ok(Some(()))
            }
            Err(NoRoom::TimedOut) => Ok(None),
            Err(NoRoom::Closed) => Err(self.closed_error()),
        }
    }

    /// Sends a notification without waiting (from `Drop`), on connection generation
    /// `only_on` only (0: any): if the outgoing queue is full (or the connection has ended)
    /// it is dropped, and a warning logged.
    pub(crate) fn notify_nowait(&self, method: &str, params: Value, only_on: u64) {
        let Ok(message) = WireRequest::new(method, &params, None).encode(self.config.codec) else {
            return;
        };
        if let Err(error) = self.check_size(&message) {
            tracing::warn!(method, %error, "notification dropped");
            return;
        }
        match self.writer.try_reserve(&message) {
            Some(room) => self.writer.push_call(room, message, NO_CALL, only_on),
            None => tracing::warn!(
                method,
                "outgoing queue full or closed: notification dropped"
            ),
        }
    }

    /// Refuses a message the transport would refuse to send: queued, it would fail the
    /// writing task, and with it every call on the connection, not only its own.
    fn check_size(&self, message: &Message) -> Result<(), Error> {
        let limit = self.config.transport.max_message_size;
        if message.data.len() > limit {
            return Err(Error::MessageTooLarge {
                size: message.data.len(),
                limit,
            });
        }
        Ok(())
    }

    /// Stops delivering the notifications of subscription `id` of connection `generation`;
    /// `false` if no server holds it (see [`Router::forget_subscription`]).
    pub(crate) fn forget_subscription(&self, id: &Id, generation: u64) -> bool {
        self.router.forget_subscription(id, generation)
    }

    /// Why calls fail now: what ended the connection, or that it was closed.
    pub(crate) fn closed_error(&self) -> Error {
        self.router.closed().unwrap_or(Error::ConnectionClosed)
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.router.closed().is_some()
    }

    /// Closes with a close handshake, waiting for its end within the close timeout (see
    /// [`RpcClient::close`](crate::rpc::RpcClient::close)). A second `close` meanwhile waits
    /// for the first one's end (the lock is held until then), then returns `Ok`.
    pub(crate) async fn close(&self) -> Result<(), Error> {
        self.writer.close();
        let mut tasks = self.tasks.lock().await;
        match tasks.take() {
            Some(tasks) => {
                let after = self.config.transport.close_timeout;
                tasks.finish_within(after).await
            }
            None => Ok(()),
        }
    }
}
