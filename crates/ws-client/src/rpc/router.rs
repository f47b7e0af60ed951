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
use crate::rpc::table::{Outcome, Pending, Reply, Tables, Unsubscribe, Waiting};
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

    /// Forgets a subscription (its later notifications are discarded). `false` if it was
    /// orphaned by a reconnect (no server holds it now, so there is nothing to unsubscribe).
    pub(crate) fn forget_subscription(&self, id: &Id) -> bool {
        let mut tables = self.lock();
        tables.subscriptions.remove(id);
        tables.orphans.remove(id).is_none()
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

    /// Routes one message from the server. Returns a subscription to end on the server
    /// when the answer to a subscribe came after its caller gave up (the reader sends it).
    pub(crate) fn route(&self, incoming: Incoming) -> Option<Unsubscribe> {
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
                ..
            } => {
                let Some(Waiting { pending, .. }) = self.lock().take(id) else {
                    tracing::debug!(
                        id,
                        "discarding an answer to a call that timed out or was dropped"
                    );
                    return None;
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
                        let _ = reply.send(Outcome::Answer(response));
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
                            sink.set_id(subscription.clone());
                            match &tables.closed {
                                Some(reason) => sink.end(reason.for_waiters()),
                                None => {
                                    tables.subscriptions.insert(subscription.clone(), sink);
                                }
                            }
                        }
                        // Its caller went away just now (between its guard and this).
                        if reply.send(Outcome::Answer(response)).is_err() {
                            let id = subscription?;
                            self.forget_subscription(&id);
                            return Some(Unsubscribe {
                                method: unsubscribe,
                                id,
                            });
                        }
                    }
                    Pending::Abandoned { unsubscribe } => {
                        return started().map(|id| Unsubscribe {
                            method: unsubscribe,
                            id,
                        });
                    }
                    Pending::Resubscribe { old, call, .. } => {
                        return self.resubscribed(&old, &call, response);
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

/// A subscription id as the server gave it (a number or a string).
pub(crate) fn subscription_id(value: &Value) -> Option<Id> {
    match value {
        Value::Number(n) => n.as_i64().map(Id::Number),
        Value::String(s) => Some(Id::String(s.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::rpc::feed;

    /// A request from the server carrying the id of a pending call leaves the call waiting
    /// for its real answer.
    #[tokio::test]
    async fn a_request_with_a_pending_id_is_not_an_answer() {
        let router = Router::default();
        let (reply, mut waiting) = oneshot::channel();
        router.register(5, Pending::Call(reply), None).unwrap();
        router.route(Incoming {
            method: true,
            ..Incoming::answer(5, Value::from(5))
        });
        assert!(
            waiting.try_recv().is_err(),
            "the request completed the call"
        );
        router.route(Incoming::answer(5, Value::from(5)));
        assert!(
            matches!(waiting.await, Ok(Outcome::Answer(r)) if r.result == Some(Value::from(5)))
        );
    }

    /// A subscribe that timed out, or whose caller went away, and is answered later with a
    /// subscription id asks for an unsubscribe; an error answer asks for nothing.
    #[tokio::test]
    async fn late_answers_to_abandoned_subscribes_ask_for_an_unsubscribe() {
        let router = Router::default();
        let subscribe = |router: &Router, id: i64, deadline: Option<Instant>| {
            let (reply, outcome) = oneshot::channel();
            let (sink, _source) = feed::channel(1, None);
            let unsubscribe = "unsub".to_owned();
            let pending = Pending::Subscribe {
                reply,
                sink,
                unsubscribe,
            };
            router.register(id, pending, deadline).unwrap();
            outcome
        };
        let timed_out = subscribe(&router, 1, Some(Instant::now()));
        let (expired, _) = router.expire(Instant::now()).unwrap();
        assert_eq!(expired.len(), 1);
        expired.into_iter().for_each(|reply| {
            let _ = reply.send(Outcome::TimedOut);
        });
        assert!(matches!(timed_out.await, Ok(Outcome::TimedOut)));
        drop(subscribe(&router, 2, None));
        router.forget(2);
        drop(subscribe(&router, 3, None));
        router.forget(3);
        assert_eq!(router.waiting(), 3, "abandoned subscribes are remembered");

        let late = router.route(Incoming {
            result: Some(Value::from(42)),
            ..Incoming::answer(1, Value::from(1))
        });
        let expected = |id| Unsubscribe {
            method: "unsub".into(),
            id,
        };
        assert_eq!(late, Some(expected(Id::Number(42))));
        let late = router.route(Incoming {
            result: Some(Value::from("s")),
            ..Incoming::answer(2, Value::from(2))
        });
        assert_eq!(late, Some(expected(Id::String("s".into()))));
        let failed = router.route(Incoming {
            result: None,
            error: Some(crate::rpc::RpcError {
                code: 1,
                message: "no".into(),
                data: None,
            }),
            ..Incoming::answer(3, Value::from(3))
        });
        assert_eq!(failed, None);
        assert_eq!(router.waiting(), 0);
    }
}
