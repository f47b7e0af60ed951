//! `Router`: matches incoming responses to waiting calls by id and notifications to
//! subscriptions, fails calls whose deadline has passed, and fails everything at once when
//! the connection ends. `read_loop` is the task that feeds it; `sweep_loop` the one that
//! enforces the deadlines.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::error::Error;
use crate::message::MessageType;
use crate::rpc::codec::{Codec, RpcCodec};
use crate::rpc::incoming::{Incoming, plain_json_answer};
use crate::rpc::request::WireRequest;
use crate::rpc::subscription::SubscriptionSink;
use crate::rpc::types::{Id, RpcResponse};
use crate::rpc::writer::Writer;
use crate::split::WsReceiver;

/// How a call ended, as the router tells its caller.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The server answered.
    Answer(RpcResponse),
    /// The connection ended first.
    Failed(Error),
    /// Its deadline passed first; the caller knows which method and timeout that was.
    TimedOut,
}

/// Where the answer to a call goes.
pub(crate) type Reply = oneshot::Sender<Outcome>;

/// A call waiting for its answer.
pub(crate) enum Pending {
    /// A plain call.
    Call(Reply),
    /// A subscribe call: on success its notifications go to `sink`, registered before
    /// the caller sees the answer so that no early notification is lost.
    Subscribe {
        reply: Reply,
        sink: SubscriptionSink,
        /// The method that ends the subscription on the server.
        unsubscribe: String,
    },
    /// A subscribe whose caller gave up (its timeout, or it was dropped) before the answer.
    /// If the answer still comes with a subscription id, the server holds a subscription
    /// nobody reads: [`Router::route`] asks for it to be ended with `unsubscribe`.
    Abandoned { unsubscribe: String },
}

impl Pending {
    /// Where the outcome goes; `None` for an abandoned subscribe (nobody waits).
    fn reply(self) -> Option<Reply> {
        self.split().0
    }

    /// Where the outcome goes, and for a subscribe, the method that would undo it.
    fn split(self) -> (Option<Reply>, Option<String>) {
        match self {
            Pending::Call(reply) => (Some(reply), None),
            Pending::Subscribe {
                reply, unsubscribe, ..
            } => (Some(reply), Some(unsubscribe)),
            Pending::Abandoned { unsubscribe } => (None, Some(unsubscribe)),
        }
    }
}

/// Most abandoned subscribes remembered per connection; past this, a late answer to one
/// is discarded like any other (a server that never answers cannot grow the table).
const MAX_ABANDONED: usize = 1024;

/// A subscription to end on the server: the notification the reader should send.
#[derive(Debug, PartialEq)]
pub(crate) struct Unsubscribe {
    pub(crate) method: String,
    pub(crate) id: Id,
}

/// A registered call and when it must have been answered (`None`: its caller bounds the
/// wait itself).
struct Waiting {
    pending: Pending,
    deadline: Option<Instant>,
}

/// Hashes the client's own call ids, which are distinct sequential integers, with one
/// multiplication: SipHash's protection against chosen keys is not needed for ids we pick,
/// and it was a visible share of each call.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for non-integer keys; fold the bytes in so it is still a hash.
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, id: i64) {
        // Fibonacci hashing: spreads consecutive ids over both the high bits (hashbrown's
        // tags) and the low bits (its bucket index).
        self.0 = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type CallTable = HashMap<i64, Waiting, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct Tables {
    pending: CallTable,
    /// The call ids of each batch waiting for answers, oldest first.
    batches: Vec<Vec<i64>>,
    /// How many entries of `pending` are abandoned subscribes.
    abandoned: usize,
    subscriptions: HashMap<Id, SubscriptionSink>,
    /// Set once the connection has ended: why.
    closed: Option<Error>,
    /// When the sweeper will next look at the deadlines (`None`: it waits to be woken).
    next_sweep: Option<Instant>,
}

/// The routing tables of one client connection.
#[derive(Default)]
pub(crate) struct Router {
    tables: Mutex<Tables>,
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

impl Tables {
    /// Takes call `id` out of the table (counting an abandoned subscribe out).
    fn take(&mut self, id: i64) -> Option<Waiting> {
        let waiting = self.pending.remove(&id)?;
        if matches!(waiting.pending, Pending::Abandoned { .. }) {
            self.abandoned -= 1;
        }
        Some(waiting)
    }

    /// Takes call `id` out of the table because its caller gave up on it (its deadline, or
    /// it was dropped); returns where its outcome would have gone. A subscribe stays, as
    /// abandoned, so that a late answer can still be undone on the server.
    fn give_up(&mut self, id: i64) -> Option<Reply> {
        let (reply, unsubscribe) = self.take(id)?.pending.split();
        if let Some(unsubscribe) = unsubscribe {
            if self.abandoned < MAX_ABANDONED {
                self.abandoned += 1;
                let pending = Pending::Abandoned { unsubscribe };
                let deadline = None;
                self.pending.insert(id, Waiting { pending, deadline });
            } else {
                tracing::debug!(
                    id,
                    "too many abandoned subscribes: a late answer is not undone"
                );
            }
        }
        reply
    }
}

impl Router {
    fn lock(&self) -> MutexGuard<'_, Tables> {
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
        let mut tables = self.lock();
        if let Some(reason) = &tables.closed {
            return Err(reason.for_waiters());
        }
        tables.pending.insert(id, Waiting { pending, deadline });
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
            if tables.batches.is_empty() {
                return false;
            }
            let ids = tables.batches.remove(0);
            ids.iter()
                .filter_map(|&id| tables.take(id))
                .filter_map(|waiting| waiting.pending.reply())
                .collect()
        };
        for reply in replies {
            let _ = reply.send(Outcome::Failed(error()));
        }
        true
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
            tables.batches.clear();
            tables.abandoned = 0;
            (
                std::mem::take(&mut tables.pending),
                std::mem::take(&mut tables.subscriptions),
            )
        };
        self.sweeper.notify_one();
        tracing::debug!(calls = pending.len(), subscriptions = subscriptions.len(), %reason, "connection ended");
        for reply in pending.into_values().filter_map(|w| w.pending.reply()) {
            let _ = reply.send(Outcome::Failed(reason.for_waiters()));
        }
        for (_, sink) in subscriptions {
            sink.end(reason.for_waiters());
        }
    }

    /// Routes one message from the server. Returns a subscription to end on the server
    /// when the answer to a subscribe came after its caller gave up (the reader sends it).
    fn route(&self, incoming: Incoming) -> Option<Unsubscribe> {
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
                            self.lock().subscriptions.insert(subscription.clone(), sink);
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
fn subscription_id(value: &Value) -> Option<Id> {
    match value {
        Value::Number(n) => n.as_i64().map(Id::Number),
        Value::String(s) => Some(Id::String(s.clone())),
        _ => None,
    }
}

/// Fails the calls whose deadline has passed, at their deadlines, until the connection ends.
///
/// One task for all calls instead of a timer per call: arming and clearing a timer per call
/// cost more than the rest of a call's bookkeeping. The sweeper sleeps until the earliest
/// deadline it knows of; a call registering with an earlier one wakes it.
pub(crate) async fn sweep_loop(router: Arc<Router>) {
    loop {
        let now = Instant::now();
        let (expired, next) = {
            let mut tables = router.lock();
            if tables.closed.is_some() {
                return;
            }
            let mut due = Vec::new();
            let mut next: Option<Instant> = None;
            for (&id, waiting) in &tables.pending {
                match waiting.deadline {
                    Some(deadline) if deadline <= now => due.push(id),
                    Some(deadline) => next = Some(next.map_or(deadline, |next| next.min(deadline))),
                    None => {}
                }
            }
            let expired: Vec<Reply> = due.iter().filter_map(|&id| tables.give_up(id)).collect();
            tables.next_sweep = next;
            (expired, next)
        };
        for reply in expired {
            let _ = reply.send(Outcome::TimedOut);
        }
        match next {
            Some(next) => {
                tokio::select! {
                    () = tokio::time::sleep_until(next) => {}
                    () = router.sweeper.notified() => {}
                }
            }
            None => router.sweeper.notified().await,
        }
    }
}

/// Reads the connection until it ends, routing every message, then fails all waiters and
/// stops the writer, so that the socket is let go.
///
/// The connection ends at the peer's close frame, not at the end of TCP that should follow
/// it: a server that closes and keeps TCP open must not leave calls waiting for their
/// timeout and subscriptions waiting for ever. (The transport has already echoed the close.)
pub(crate) async fn read_loop(
    mut receiver: WsReceiver,
    router: Arc<Router>,
    writer: Arc<Writer>,
    codec: RpcCodec,
) {
    let reason = loop {
        let message = match receiver.receive_message().await {
            Ok(message) if message.is_data() => message,
            // The peer's own close, or its answer to ours (then `ConnectionClosed`).
            Ok(message) if message.message_type == MessageType::Close => {
                break receiver.closed_error();
            }
            Ok(_) => continue, // pings are answered by the transport
            Err(error) => break error,
        };
        if codec.is_batch(&message) {
            match codec.decode::<Vec<Incoming>>(&message) {
                Ok(batch) => batch
                    .into_iter()
                    .filter_map(|incoming| router.route(incoming))
                    .for_each(|late| unsubscribe(&writer, codec, late)),
                Err(error) => {
                    tracing::warn!(%error, "undecodable batch answer from the server");
                    router.fail_batch(|| Error::Codec(format!("batch answer: {error}")));
                }
            }
        } else if let Some(incoming) = (codec == RpcCodec::Json)
            .then(|| plain_json_answer(&message.data))
            .flatten()
        {
            if let Some(late) = router.route(incoming) {
                unsubscribe(&writer, codec, late);
            }
        } else {
            match codec.decode::<Incoming>(&message) {
                Ok(incoming) => {
                    if let Some(late) = router.route(incoming) {
                        unsubscribe(&writer, codec, late);
                    }
                }
                Err(error) => tracing::warn!(%error, "undecodable message from the server ignored"),
            }
        }
    };
    router.fail_all(reason);
    writer.close();
}

/// Ends on the server a subscription nobody reads (its subscribe was answered after its
/// caller gave up): a notification to its unsubscribe method. Never waits (the reader must
/// not wait on the writer); dropped, and logged, if the outgoing queue is full.
fn unsubscribe(writer: &Writer, codec: RpcCodec, late: Unsubscribe) {
    tracing::debug!(id = ?late.id, "subscribe answered after its caller gave up: unsubscribing");
    let params = Value::Array(vec![late.id.to_value()]);
    let sent = WireRequest::new(&late.method, &params, None)
        .encode(codec)
        .ok()
        .and_then(|message| Some((writer.try_reserve(&message)?, message)));
    match sent {
        Some((room, message)) => writer.push(room, message),
        None => {
            tracing::warn!(id = ?late.id, "could not queue the unsubscribe of a late subscription")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn answer(id: i64) -> Incoming {
        Incoming {
            id: Some(Id::Number(id)),
            result: Some(Value::from(id)),
            error: None,
            method: false,
            params: None,
        }
    }

    /// A request from the server carrying the id of a pending call leaves the call waiting
    /// for its real answer.
    #[tokio::test]
    async fn a_request_with_a_pending_id_is_not_an_answer() {
        let router = Router::default();
        let (reply, mut waiting) = oneshot::channel();
        router.register(5, Pending::Call(reply), None).unwrap();
        router.route(Incoming {
            method: true,
            ..answer(5)
        });
        assert!(
            waiting.try_recv().is_err(),
            "the request completed the call"
        );
        router.route(answer(5));
        assert!(
            matches!(waiting.await, Ok(Outcome::Answer(r)) if r.result == Some(Value::from(5)))
        );
    }

    /// Each call fails at its own deadline, whatever the order they were registered in, and
    /// an answer arriving after that is discarded instead of reaching anyone.
    #[tokio::test]
    async fn the_sweeper_fails_each_call_at_its_deadline_and_late_answers_are_dropped() {
        let router = Arc::new(Router::default());
        let sweeper = tokio::spawn(sweep_loop(Arc::clone(&router)));
        let started = Instant::now();
        let (long_reply, long) = oneshot::channel();
        let (short_reply, short) = oneshot::channel();
        let (answered_reply, answered) = oneshot::channel();
        let (unbounded_reply, unbounded) = oneshot::channel();
        // The later deadline first: the second registration must wake the sleeping sweeper.
        let long_after = Duration::from_millis(300);
        let short_after = Duration::from_millis(60);
        router
            .register(1, Pending::Call(long_reply), Some(started + long_after))
            .unwrap();
        router
            .register(2, Pending::Call(short_reply), Some(started + short_after))
            .unwrap();
        router
            .register(
                3,
                Pending::Call(answered_reply),
                Some(started + short_after),
            )
            .unwrap();
        router
            .register(4, Pending::Call(unbounded_reply), None)
            .unwrap();
        router.route(answer(3));
        assert!(matches!(answered.await, Ok(Outcome::Answer(r)) if r.id == Id::Number(3)));

        let bound = Duration::from_secs(5);
        assert!(matches!(
            tokio::time::timeout(bound, short).await,
            Ok(Ok(Outcome::TimedOut))
        ));
        let elapsed = started.elapsed();
        assert!(
            elapsed >= short_after && elapsed < long_after,
            "{elapsed:?}"
        );
        router.route(answer(2)); // late: nobody gets it, nothing breaks

        assert!(matches!(
            tokio::time::timeout(bound, long).await,
            Ok(Ok(Outcome::TimedOut))
        ));
        assert!(started.elapsed() >= long_after);

        // A call without a deadline is left to its caller; the end of the connection ends it.
        assert_eq!(router.lock().pending.len(), 1);
        router.fail_all(Error::ConnectionClosed);
        assert!(matches!(
            unbounded.await,
            Ok(Outcome::Failed(Error::ConnectionClosed))
        ));
        tokio::time::timeout(bound, sweeper)
            .await
            .expect("the sweeper ends with the connection")
            .unwrap();
    }
}
