//! What the router keeps for one connection: the calls waiting by id (`Pending`, and how
//! each ends, `Outcome`), batch groups, subscriptions, abandoned subscribes, and the step
//! the sweeper runs over the deadlines. Data and bookkeeping only; `router` uses it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::Error;
use crate::message::Message;
use crate::rpc::feed::SubscriptionSink;
use crate::rpc::raw::{RawResult, not_a_result};
use crate::rpc::types::{Id, RpcResponse};

/// How a call ended, as the router tells its caller.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The server answered.
    Answer(Answer),
    /// The connection ended first, or the answer could not be matched (a failed batch).
    Failed(Error),
    /// Its deadline passed first; the caller knows which method and timeout that was.
    TimedOut,
}

impl Outcome {
    /// The answer, or why there is none: the connection's error, or
    /// [`Error::CallTimeout`] for `method` called with `timeout`.
    pub(crate) fn into_answer(self, method: &str, timeout: Duration) -> Result<Answer, Error> {
        match self {
            Outcome::Answer(answer) => Ok(answer),
            Outcome::Failed(error) => Err(error),
            Outcome::TimedOut => Err(Error::CallTimeout {
                method: method.to_owned(),
                after: timeout,
            }),
        }
    }
}

/// The server's answer to a call: a response decoded by the general path, or a successful
/// result read by the fast path and left as JSON text (see `raw`), decoded by its caller
/// into the type it asked for.
#[derive(Debug)]
pub(crate) enum Answer {
    Decoded(RpcResponse),
    Raw { id: i64, result: RawResult },
}

impl Answer {
    /// The answer as a whole response, its result as a `Value`.
    pub(crate) fn into_response(self) -> Result<RpcResponse, Error> {
        match self {
            Answer::Decoded(response) => Ok(response),
            Answer::Raw { id, result } => Ok(RpcResponse {
                id: Id::Number(id),
                result: Some(result.to_value()?),
                error: None,
            }),
        }
    }

    /// The result decoded as `T`, straight from its JSON text when the fast path read it;
    /// an error object becomes [`Error::Rpc`], a result that is not a `T` [`Error::Codec`].
    pub(crate) fn decode<T: DeserializeOwned>(self, method: &str) -> Result<T, Error> {
        match self {
            Answer::Raw { result, .. } => result.decode(method),
            Answer::Decoded(response) => serde_json::from_value(response.into_result()?)
                .map_err(|e| not_a_result(method, &e)),
        }
    }
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
    /// nobody reads: the router asks for it to be ended with `unsubscribe`.
    Abandoned { unsubscribe: String },
    /// A subscription made again after a reconnect (see `resume`): the answer moves the
    /// orphaned subscription `old` to its new id.
    Resubscribe {
        old: OrphanKey,
        call: Arc<SubscribeCall>,
        /// Its timeout, for the error that ends the subscription if it passes.
        after: Duration,
    },
}

/// An orphaned subscription: its id on the connection that dropped, and that connection's
/// generation.
pub(crate) type OrphanKey = (Id, u64);

/// How a subscription was made, to make it again after a reconnect.
#[derive(Debug)]
pub(crate) struct SubscribeCall {
    pub(crate) method: String,
    pub(crate) params: serde_json::Value,
    pub(crate) unsubscribe: String,
}

impl Pending {
    /// Where the outcome goes; `None` for an abandoned subscribe (nobody waits).
    pub(crate) fn reply(self) -> Option<Reply> {
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
            // Nobody waits for it; its caller is the subscription (see `Tables::give_up`).
            Pending::Resubscribe { .. } => (None, None),
        }
    }
}

/// Most abandoned subscribes remembered per connection; past this, a late answer to one
/// is discarded like any other (a server that never answers cannot grow the table).
pub(crate) const MAX_ABANDONED: usize = 1024;

/// A subscription to end on the server: the notification the reader should send, only on
/// the connection that holds it (`generation`; 0 on a plain connection).
#[derive(Debug, PartialEq)]
pub(crate) struct Unsubscribe {
    pub(crate) method: String,
    pub(crate) id: Id,
    pub(crate) generation: u64,
}

/// A registered call and when it must have been answered (`None`: its caller bounds the
/// wait itself).
pub(crate) struct Waiting {
    pub(crate) pending: Pending,
    pub(crate) deadline: Option<Instant>,
    /// The connection generation its request was handed over on; 0 while not (yet). Only
    /// a session over a resilient connection sets it (see `resume`).
    pub(crate) sent_on: u64,
    /// Its request, kept to be sent again after a reconnect: an idempotent call or a
    /// subscribe, over a resilient connection.
    pub(crate) resend: Option<Box<Message>>,
}

impl Waiting {
    /// A call just registered: not sent yet.
    pub(crate) fn new(pending: Pending, deadline: Option<Instant>) -> Self {
        Self {
            pending,
            deadline,
            sent_on: 0,
            resend: None,
        }
    }
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

/// The routing state of one connection, behind the router's lock.
#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) pending: CallTable,
    /// The call ids of each batch waiting for answers, oldest first.
    pub(crate) batches: Vec<Vec<i64>>,
    /// How many entries of `pending` are abandoned subscribes.
    abandoned: usize,
    pub(crate) subscriptions: HashMap<Id, SubscriptionSink>,
    /// Subscriptions whose connection dropped, by their old id and that connection's
    /// generation (two connections may give the same id), until they are made again
    /// (`resume`); `true` once their resubscribe is on its way.
    pub(crate) orphans: HashMap<OrphanKey, (SubscriptionSink, bool)>,
    /// The newest connection generation known to have dropped (`resume`).
    pub(crate) lost: u64,
    /// Set once the connection has ended: why.
    pub(crate) closed: Option<Error>,
    /// When the sweeper will next look at the deadlines (`None`: it waits to be woken).
    pub(crate) next_sweep: Option<Instant>,
}

impl Tables {
    /// Takes call `id` out of the table (counting an abandoned subscribe out).
    pub(crate) fn take(&mut self, id: i64) -> Option<Waiting> {
        let waiting = self.pending.remove(&id)?;
        if matches!(waiting.pending, Pending::Abandoned { .. }) {
            self.abandoned -= 1;
        }
        Some(waiting)
    }

    /// Takes call `id` out of the table because its caller gave up on it (its deadline, or
    /// it was dropped); returns where its outcome would have gone. A subscribe stays, as
    /// abandoned, so that a late answer can still be undone on the server.
    pub(crate) fn give_up(&mut self, id: i64) -> Option<Reply> {
        let waiting = self.take(id)?;
        let sent_on = waiting.sent_on;
        let (reply, unsubscribe) = match waiting.pending {
            // Nobody waits for it but its stream, which ends; a late answer is undone.
            Pending::Resubscribe { old, call, after } => {
                if let Some((sink, _)) = self.orphans.remove(&old) {
                    sink.end(Error::CallTimeout {
                        method: call.method.clone(),
                        after,
                    });
                }
                (None, Some(call.unsubscribe.clone()))
            }
            pending => pending.split(),
        };
        if let Some(unsubscribe) = unsubscribe {
            if self.abandoned < MAX_ABANDONED {
                self.abandoned += 1;
                let pending = Pending::Abandoned { unsubscribe };
                let mut waiting = Waiting::new(pending, None);
                // Still the connection it went out on: forgotten when that one drops.
                waiting.sent_on = sent_on;
                self.pending.insert(id, waiting);
            } else {
                tracing::debug!(
                    id,
                    "too many abandoned subscribes: a late answer is not undone"
                );
            }
        }
        reply
    }

    /// Takes call `id` out of the table because the server's answer to it cannot be read:
    /// where its failure goes (a plain call's or a subscribe's caller), with `error`. A
    /// resubscribe's orphaned stream ends with `error` here; an abandoned subscribe is
    /// forgotten (no subscription id can be read from the answer, so none is undone).
    pub(crate) fn unreadable(&mut self, id: i64, error: Error) -> Option<(Reply, Error)> {
        let Some(waiting) = self.take(id) else {
            tracing::debug!(id, "discarding an unreadable answer to a call that is gone");
            return None;
        };
        match waiting.pending {
            Pending::Call(reply) | Pending::Subscribe { reply, .. } => Some((reply, error)),
            Pending::Abandoned { .. } => None,
            Pending::Resubscribe { old, .. } => {
                if let Some((sink, _)) = self.orphans.remove(&old) {
                    sink.end(error);
                }
                None
            }
        }
    }

    /// Everything that waits, emptied out, once the connection has ended: the calls, and
    /// the subscriptions (orphans included).
    pub(crate) fn drain(&mut self) -> (CallTable, Vec<SubscriptionSink>) {
        self.batches.clear();
        self.abandoned = 0;
        let subscriptions = (self.subscriptions.drain().map(|(_, sink)| sink))
            .chain(self.orphans.drain().map(|(_, (sink, _))| sink))
            .collect();
        (std::mem::take(&mut self.pending), subscriptions)
    }

    /// The sweeper's step at `now`: gives up on the calls whose deadline has passed and
    /// returns where their outcomes go, and the next deadline to wake up for.
    pub(crate) fn expire(&mut self, now: Instant) -> (Vec<Reply>, Option<Instant>) {
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        for (&id, waiting) in &self.pending {
            match waiting.deadline {
                Some(deadline) if deadline <= now => due.push(id),
                Some(deadline) => next = Some(next.map_or(deadline, |next| next.min(deadline))),
                None => {}
            }
        }
        let expired = due.iter().filter_map(|&id| self.give_up(id)).collect();
        self.next_sweep = next;
        (expired, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_bytes(bytes: &[u8]) -> u64 {
        let mut hasher = IdHasher::default();
        hasher.write(bytes);
        hasher.finish()
    }

    /// Keys written as bytes (anything but an integer) are still hashed by their content,
    /// order included, so a table keyed by them works, if more slowly.
    #[test]
    fn keys_that_are_not_integers_are_hashed_by_their_bytes() {
        assert_eq!(hash_bytes(b"abc"), hash_bytes(b"abc"));
        assert_ne!(hash_bytes(b"abc"), hash_bytes(b"abd"));
        assert_ne!(hash_bytes(b"abc"), hash_bytes(b"cba"));
        let mut table: HashMap<String, usize, BuildHasherDefault<IdHasher>> = HashMap::default();
        for i in 0..1000 {
            table.insert(format!("key-{i}"), i);
        }
        assert!((0..1000).all(|i| table[&format!("key-{i}")] == i));
    }

    /// Consecutive ids land in distinct buckets (the low bits) and mostly carry distinct
    /// tags (the top seven bits).
    #[test]
    fn consecutive_ids_spread_over_buckets_and_tags() {
        let hashes: Vec<u64> = (1..=128i64)
            .map(|id| {
                let mut hasher = IdHasher::default();
                hasher.write_i64(id);
                hasher.finish()
            })
            .collect();
        let buckets: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 127).collect();
        let tags: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(buckets.len(), 128);
        assert!(tags.len() >= 100, "{} distinct tags", tags.len());
    }
}
