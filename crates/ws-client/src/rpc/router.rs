//! `Router`: matches incoming responses to waiting calls by id and notifications to
//! subscriptions, fails a batch at once on an answer it cannot match, and fails everything
//! when the connection ends. Its tables are in `table`; the tasks that drive it are
//! `reader` (feeds it what the server sends) and `sweeper` (enforces the deadlines).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::Error;
use crate::rpc::incoming::Incoming;
use crate::rpc::raw::RawResult;
use crate::rpc::table::{Answer, Outcome, Pending, Reply, Tables, Unsubscribe, Waiting};
use crate::rpc::types::{Id, RpcResponse};

/// The routing tables of one client connection.
#[derive(Default)]
pub(crate) struct Router {
    tables: Mutex<Tables>,
    /// The last call id given out (ids start at 1; 0 marks "no call").
    last_id: AtomicI64,
    /// Wakes the sweeper when a call's deadline comes before its next sweep, or at the end.
    sweeper: Notify,
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

impl Router {
    /// A fresh call id.
    pub(crate) fn next_id(&self) -> i64 {
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Wakes the sweeper to look at a deadline earlier than the one it sleeps until.
    pub(super) fn wake_sweeper(&self) {
        self.sweeper.notify_one();
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a call, to be failed with [`Outcome::TimedOut`] at `deadline` if still
    /// unanswered; fails if the connection has already ended.
    pub(crate) fn register(
        &self,
        id: i64,
        pending: Pending,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        self.register_waiting(id, Waiting::new(pending, deadline))
    }

    /// [`register`](Self::register) with everything a call may carry (see [`Waiting`]).
    pub(crate) fn register_waiting(&self, id: i64, waiting: Waiting) -> Result<(), Error> {
        let deadline = waiting.deadline;
        let mut tables = self.lock();
        if let Some(reason) = &tables.closed {
            return Err(reason.for_waiters());
        }
        tables.pending.insert(id, waiting);
        // Calls with the default timeout register in deadline order, so this is rarely
        // true: the sweeper sleeps until the earliest deadline it knows of.
        let wake = match (deadline, tables.next_sweep) {
            (Some(deadline), Some(next)) => deadline < next,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if wake {
            tables.next_sweep = deadline;
            drop(tables);
            self.sweeper.notify_one();
        }
        Ok(())
    }

    /// Fails call `id`, whose answer the client could not read, with `error` (see
    /// [`Tables::unreadable`]).
    pub(crate) fn fail_unreadable(&self, id: i64, error: Error) {
        let failed = self.lock().unreadable(id, error);
        if let Some((reply, error)) = failed {
            let _ = reply.send(Outcome::Failed(error));
        }
    }

    /// Forgets a call that timed out or was dropped; its late answer will be discarded
    /// (after ending the subscription on the server, for a subscribe).
    pub(crate) fn forget(&self, id: i64) {
        self.lock().give_up(id);
    }

    /// Registers the calls of one batch (already registered one by one) as a group, so that
    /// an answer matching no call can fail the batch at once (see [`Router::fail_batch`]).
    pub(crate) fn register_batch(&self, ids: Vec<i64>) {
        if !ids.is_empty() {
            self.lock().batches.push(ids);
        }
    }

    /// Forgets the batch whose first call is `first` (it ended, one way or another).
    pub(crate) fn forget_batch(&self, first: i64) {
        self.lock()
            .batches
            .retain(|ids| ids.first() != Some(&first));
    }

    /// Fails the oldest batch still waiting with `error()`, if there is one; says whether
    /// there was.
    ///
    /// For an answer that cannot be matched while a batch waits: an error object with id
    /// null (a server that refuses the whole batch answers with one such object instead of
    /// an array) or a batch answer that cannot be read. Otherwise the batch would wait for
    /// its whole timeout. Which batch it was cannot be known when several wait; the server
    /// reads them in order, so the oldest is the likeliest.
    pub(crate) fn fail_batch(&self, error: impl Fn() -> Error) -> bool {
        let replies: Vec<Reply> = {
            let mut tables = self.lock();
            // A group whose calls were all answered (its caller has not run since) waits
            // for nothing: it is passed over (and forgotten) for the next one.
            loop {
                if tables.batches.is_empty() {
                    return false;
                }
                let ids = tables.batches.remove(0);
                let replies: Vec<Reply> = ids
                    .iter()
                    .filter_map(|&id| tables.take(id))
                    .filter_map(|waiting| waiting.pending.reply())
                    .collect();
                if !replies.is_empty() {
                    break replies;
                }
            }
        };
        for reply in replies {
            let _ = reply.send(Outcome::Failed(error()));
        }
        true
    }

    /// Forgets subscription `id` made on connection `generation` (0 on a plain
    /// connection): its later notifications are discarded. `true` if it was live, so that
    /// an unsubscribe is due (on that connection only); `false` if no server holds it
    /// (orphaned by a reconnect, ended, or forgotten already): there is nothing to undo.
    pub(crate) fn forget_subscription(&self, id: &Id, generation: u64) -> bool {
        let mut tables = self.lock();
        if tables.orphans.remove(&(id.clone(), generation)).is_some() {
            return false;
        }
        // The same id on a newer connection is another subscription.
        let live =
            (tables.subscriptions.get(id)).is_some_and(|sink| sink.generation() == generation);
        if live {
            tables.subscriptions.remove(id);
        }
        live
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
            tables.drain()
        };
        self.sweeper.notify_one();
        tracing::debug!(calls = pending.len(), subscriptions = subscriptions.len(), %reason, "connection ended");
        for reply in pending.into_values().filter_map(|w| w.pending.reply()) {
            let _ = reply.send(Outcome::Failed(reason.for_waiters()));
        }
        for sink in subscriptions {
            sink.end(reason.for_waiters());
        }
    }

    /// The sweeper's step (see `sweeper`): gives up on the calls past their deadline and
    /// returns where their outcomes go and the next deadline; `None` once the connection
    /// has ended (the sweeper stops).
    pub(crate) fn expire(&self, now: Instant) -> Option<(Vec<Reply>, Option<Instant>)> {
        let mut tables = self.lock();
        if tables.closed.is_some() {
            return None;
        }
        Some(tables.expire(now))
    }

    /// Resolves when a call registers a deadline earlier than the next sweep, or at the end.
    pub(crate) async fn sweep_requested(&self) {
        self.sweeper.notified().await;
    }

    /// How many calls wait (abandoned subscribes included).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock().pending.len()
    }

    /// Routes one message from a plain connection (see [`route_from`](Self::route_from)).
    #[cfg(test)]
    pub(crate) fn route(&self, incoming: Incoming) -> Option<Unsubscribe> {
        self.route_from(incoming, 0)
    }

    /// Routes one message from the server, received on connection `generation` (0 on a
    /// plain connection). Returns a subscription to end on the server when the answer to a
    /// subscribe came after its caller gave up (the reader sends it).
    pub(crate) fn route_from(&self, incoming: Incoming, generation: u64) -> Option<Unsubscribe> {
        match incoming {
            Incoming {
                method: true,
                id: None,
                params,
                ..
            } => self.notify(params),
            // A request from the server: never the answer to a call, even with its id.
            Incoming {
                method: true, id, ..
            } => {
                tracing::debug!(
                    ?id,
                    "ignoring a request from the server (this client serves no methods)"
                );
            }
            Incoming {
                id: Some(Id::Number(id)),
                result,
                error,
                raw,
                ..
            } => {
                let Some(Waiting { pending, .. }) = self.lock().take(id) else {
                    tracing::debug!(
                        id,
                        "discarding an answer to a call that timed out or was dropped"
                    );
                    return None;
                };
                // A plain call's caller decodes a fast-path result itself, into its type.
                let (pending, result) = match (pending, raw) {
                    (Pending::Call(reply), Some(result)) => {
                        let _ = reply.send(Outcome::Answer(Answer::Raw { id, result }));
                        return None;
                    }
                    (pending, raw) => (pending, raw.map_or(result, |raw| decoded(id, &raw))),
                };
                let response = RpcResponse {
                    id: Id::Number(id),
                    result,
                    error,
                };
                // The subscription the server says it started, if this answers a subscribe.
                let started = || {
                    (response.error.is_none())
                        .then(|| response.result.as_ref().and_then(subscription_id))
                        .flatten()
                };
                match pending {
                    Pending::Call(reply) => {
                        let _ = reply.send(Outcome::Answer(Answer::Decoded(response)));
                    }
                    Pending::Subscribe {
                        reply,
                        sink,
                        unsubscribe,
                    } => {
                        let subscription = started();
                        if let Some(subscription) = &subscription {
                            let mut tables = self.lock();
                            // The connection may have ended since the take above (`fail_all`
                            // from the writer, or from an abort on another thread): a sink
                            // put in the table now would never be ended, and its stream
                            // would wait for ever. It is ended here instead.
                            sink.set_id(subscription.clone(), generation);
                            match &tables.closed {
                                Some(reason) => sink.end(reason.for_waiters()),
                                None => {
                                    tables.subscriptions.insert(subscription.clone(), sink);
                                }
                            }
                        }
                        // Its caller went away just now (between its guard and this).
                        if reply
                            .send(Outcome::Answer(Answer::Decoded(response)))
                            .is_err()
                        {
                            let id = subscription?;
                            self.forget_subscription(&id, generation);
                            return Some(Unsubscribe {
                                method: unsubscribe,
                                id,
                                generation,
                            });
                        }
                    }
                    Pending::Abandoned { unsubscribe } => {
                        return started().map(|id| Unsubscribe {
                            method: unsubscribe,
                            id,
                            generation,
                        });
                    }
                    Pending::Resubscribe { old, call, .. } => {
                        return self.resubscribed(&old, &call, response, generation);
                    }
                }
            }
            // Not one of ours: no id, id null, or a string id (this client sends numbers).
            Incoming { id, error, .. } => {
                let failed = self.fail_batch(|| match &error {
                    Some(error) => error.clone().into(),
                    None => Error::Codec(format!(
                        "the server answered a batch with a message matching no call (id {id:?})"
                    )),
                });
                if !failed {
                    tracing::warn!(
                        ?id,
                        ?error,
                        "server message matches no call (an answer with id null means the server could not read a request)"
                    );
                }
            }
        }
        None
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

/// A fast-path result as a `Value`, for the answers the router reads itself (subscribes).
/// The fast path takes only results a `Value` reads (one that none can hold fails its call
/// in the reader, see `reader::unreadable`), so this does not fail; if it did, the result
/// would be taken as none, and the subscribe would fail as one that returned none.
fn decoded(id: i64, raw: &RawResult) -> Option<Value> {
    raw.to_value()
        .inspect_err(|error| tracing::warn!(id, %error, "unreadable result of a subscribe"))
        .ok()
}

/// A subscription id as the server gave it (a number or a string).
pub(crate) fn subscription_id(value: &Value) -> Option<Id> {
    match value {
        Value::Number(n) => n.as_i64().map(Id::Number),
        Value::String(s) => Some(Id::String(s.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
