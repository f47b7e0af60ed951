//! `Router`: matches incoming responses to waiting calls by id and notifications to
//! subscriptions, and fails everything at once when the connection ends. `read_loop` is the
//! task that feeds it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::error::Error;
use crate::rpc::codec::{Codec, RpcCodec};
use crate::rpc::subscription::SubscriptionSink;
use crate::rpc::types::{Id, RpcError, RpcResponse, present};
use crate::split::WsReceiver;

/// Where the answer to a call goes.
pub(crate) type Reply = oneshot::Sender<Result<RpcResponse, Error>>;

/// A call waiting for its answer.
pub(crate) enum Pending {
    /// A plain call.
    Call(Reply),
    /// A subscribe call: on success its notifications go to `sink`, registered before
    /// the caller sees the answer so that no early notification is lost.
    Subscribe(Reply, SubscriptionSink),
}

#[derive(Default)]
struct Tables {
    pending: HashMap<i64, Pending>,
    subscriptions: HashMap<Id, SubscriptionSink>,
    /// Set once the connection has ended: why.
    closed: Option<Error>,
}

/// The routing tables of one client connection.
#[derive(Default)]
pub(crate) struct Router {
    tables: Mutex<Tables>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tables = self.lock();
        f.debug_struct("Router")
            .field("pending", &tables.pending.len())
            .field("subscriptions", &tables.subscriptions.len())
            .field("closed", &tables.closed)
            .finish()
    }
}

/// One JSON-RPC message from the server: a response or a notification.
#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    id: Option<Id>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default)]
    error: Option<RpcError>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Value>,
}

impl Router {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a call; fails if the connection has already ended.
    pub(crate) fn register(&self, id: i64, pending: Pending) -> Result<(), Error> {
        let mut tables = self.lock();
        if let Some(reason) = &tables.closed {
            return Err(reason.for_waiters());
        }
        tables.pending.insert(id, pending);
        Ok(())
    }

    /// Forgets a call that timed out or was dropped; its late answer will be discarded.
    pub(crate) fn forget(&self, id: i64) {
        self.lock().pending.remove(&id);
    }

    /// Forgets a subscription (its later notifications are discarded).
    pub(crate) fn forget_subscription(&self, id: &Id) {
        self.lock().subscriptions.remove(id);
    }

    /// The error that ended the connection, if it has ended.
    pub(crate) fn closed(&self) -> Option<Error> {
        self.lock().closed.as_ref().map(Error::for_waiters)
    }

    /// Ends every waiting call and subscription with `reason`, now and for later callers.
    pub(crate) fn fail_all(&self, reason: Error) {
        let (pending, subscriptions) = {
            let mut tables = self.lock();
            if tables.closed.is_none() {
                tables.closed = Some(reason.for_waiters());
            }
            (
                std::mem::take(&mut tables.pending),
                std::mem::take(&mut tables.subscriptions),
            )
        };
        tracing::debug!(calls = pending.len(), subscriptions = subscriptions.len(), %reason, "connection ended");
        for (_, waiting) in pending {
            let (Pending::Call(reply) | Pending::Subscribe(reply, _)) = waiting;
            let _ = reply.send(Err(reason.for_waiters()));
        }
        for (_, sink) in subscriptions {
            sink.end(reason.for_waiters());
        }
    }

    fn route(&self, incoming: Incoming) {
        match incoming {
            Incoming {
                method: Some(_),
                id: None,
                params,
                ..
            } => self.notify(params),
            Incoming {
                id: Some(Id::Number(id)),
                result,
                error,
                ..
            } => {
                let Some(waiting) = self.lock().pending.remove(&id) else {
                    tracing::debug!(
                        id,
                        "discarding an answer to a call that timed out or was dropped"
                    );
                    return;
                };
                let response = RpcResponse {
                    id: Id::Number(id),
                    result,
                    error,
                };
                let reply = match waiting {
                    Pending::Call(reply) => reply,
                    Pending::Subscribe(reply, sink) => {
                        if let Some(subscription) =
                            response.result.as_ref().and_then(subscription_id)
                        {
                            self.lock().subscriptions.insert(subscription, sink);
                        }
                        reply
                    }
                };
                let _ = reply.send(Ok(response));
            }
            Incoming { id, error, .. } => {
                tracing::warn!(
                    ?id,
                    ?error,
                    "server message matches no call (an answer with id null means the server could not read a request)"
                );
            }
        }
    }

    /// Delivers a server notification of the form `{"subscription": id, "result": value}`.
    fn notify(&self, params: Option<Value>) {
        let Some(Value::Object(mut params)) = params else {
            tracing::debug!("ignoring a server notification without subscription params");
            return;
        };
        let Some(id) = params.get("subscription").and_then(subscription_id) else {
            tracing::debug!("ignoring a server notification without a subscription id");
            return;
        };
        let value = params.remove("result").unwrap_or(Value::Null);
        match self.lock().subscriptions.get(&id) {
            Some(sink) => sink.push(value),
            None => tracing::debug!(?id, "notification for an unknown subscription discarded"),
        }
    }
}

/// A subscription id as the server gave it (a number or a string).
fn subscription_id(value: &Value) -> Option<Id> {
    match value {
        Value::Number(n) => n.as_i64().map(Id::Number),
        Value::String(s) => Some(Id::String(s.clone())),
        _ => None,
    }
}

/// Reads the connection until it ends, routing every message, then fails all waiters.
pub(crate) async fn read_loop(mut receiver: WsReceiver, router: Arc<Router>, codec: RpcCodec) {
    let reason = loop {
        let message = match receiver.receive_message().await {
            Ok(message) if message.is_data() => message,
            Ok(_) => continue, // pings are answered by the transport; a close ends the next read
            Err(error) => break error,
        };
        if codec.is_batch(&message) {
            match codec.decode::<Vec<Incoming>>(&message) {
                Ok(batch) => batch
                    .into_iter()
                    .for_each(|incoming| router.route(incoming)),
                Err(error) => tracing::warn!(%error, "undecodable batch from the server ignored"),
            }
        } else {
            match codec.decode::<Incoming>(&message) {
                Ok(incoming) => router.route(incoming),
                Err(error) => tracing::warn!(%error, "undecodable message from the server ignored"),
            }
        }
    };
    router.fail_all(reason);
}
