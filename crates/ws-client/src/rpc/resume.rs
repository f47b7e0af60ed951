//! What a reconnect does to an RPC session over a resilient connection: each request is
//! stamped with the connection generation it was handed over on; when that connection
//! drops, the calls sent on it fail at once with `Error::CallInterrupted` (idempotent calls
//! and subscribes are queued to be sent again instead), live subscriptions become orphans,
//! and once a new connection is up each orphan is made again with its method and parameters
//! and its stream is told about the gap.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;
use crate::message::Message;
use crate::rpc::codec::RpcCodec;
use crate::rpc::request::WireRequest;
use crate::rpc::router::{Router, subscription_id};
use crate::rpc::table::{OrphanKey, Outcome, Pending, SubscribeCall, Unsubscribe, Waiting};
use crate::rpc::types::{Id, RpcResponse};
use crate::rpc::writer::Queue;

/// An entry of the writer's queue that carries no call.
pub(crate) const NO_CALL: i64 = 0;

impl Router {
    /// Records that the messages of `burst` are handed over on connection `generation`
    /// (each request's call marked as sent on it), and takes out of the burst what must not
    /// go out there: requests of calls given up on before they went out (timed out or
    /// dropped: the server must not run a call its caller was told failed), and messages
    /// bound to another connection (`Entry::only_on`: they name a subscription of it; a
    /// call among them fails with [`Error::CallInterrupted`]). Refused (`false`, nothing
    /// changed) if that connection is already known to have dropped: the burst must wait for
    /// the next one, or a drop handled before this stamp would leave its calls waiting for an
    /// answer that cannot come.
    pub(crate) fn stamp(&self, burst: &mut Queue, generation: u64) -> bool {
        let mut dropped = Vec::new();
        let mut interrupted = Vec::new();
        {
            let mut guard = self.lock();
            let tables = &mut *guard;
            if generation <= tables.lost {
                return false;
            }
            for (index, entry) in burst.calls.iter().enumerate() {
                let elsewhere = entry.only_on != 0 && entry.only_on != generation;
                let send = match entry.id {
                    NO_CALL => !elsewhere,
                    id if id > 0 => {
                        let abandoned = (tables.pending.get(&id))
                            .map(|waiting| matches!(waiting.pending, Pending::Abandoned { .. }));
                        match abandoned {
                            // Given up on before it went out.
                            None => false,
                            Some(true) => {
                                tables.take(id);
                                false
                            }
                            Some(false) if elsewhere => {
                                let taken = tables.take(id);
                                interrupted.extend(taken.and_then(|w| w.pending.reply()));
                                false
                            }
                            Some(false) => {
                                if let Some(waiting) = tables.pending.get_mut(&id) {
                                    waiting.sent_on = generation;
                                }
                                true
                            }
                        }
                    }
                    first => {
                        let group =
                            (tables.batches.iter()).find(|ids| ids.first() == Some(&-first));
                        for id in group.into_iter().flatten() {
                            if let Some(waiting) = tables.pending.get_mut(id) {
                                waiting.sent_on = generation;
                            }
                        }
                        // No group: the batch ended (timed out, dropped) before it went out.
                        group.is_some()
                    }
                };
                if !send {
                    dropped.push(index);
                }
            }
        }
        if !dropped.is_empty() {
            tracing::debug!(
                generation,
                dropped = dropped.len(),
                "not sent: given up on, or bound to a connection that dropped"
            );
            burst.remove(&dropped);
        }
        for reply in interrupted {
            let _ = reply.send(Outcome::Failed(Error::CallInterrupted));
        }
        true
    }

    /// Connection `generation` (and any before it) dropped: fails the calls sent on it with
    /// [`Error::CallInterrupted`], and returns the requests to send again (idempotent calls
    /// and subscribes, oldest first); its live subscriptions become orphans, and so do those
    /// whose resubscribe had not been answered yet (made again on the next connection, with
    /// a timeout of its own).
    pub(crate) fn connection_lost(&self, generation: u64) -> Vec<(i64, Message)> {
        let mut interrupted = Vec::new();
        let mut resend = Vec::new();
        {
            let mut guard = self.lock();
            let tables = &mut *guard;
            if generation <= tables.lost {
                return resend;
            }
            tables.lost = generation;
            let sent: Vec<i64> = (tables.pending.iter())
                .filter(|(_, waiting)| {
                    (1..=generation).contains(&waiting.sent_on)
                        || (waiting.sent_on == 0
                            && matches!(waiting.pending, Pending::Resubscribe { .. }))
                })
                .map(|(&id, _)| id)
                .collect();
            for id in sent {
                let Some(waiting) = tables.pending.get_mut(&id) else {
                    continue;
                };
                match (&waiting.pending, &waiting.resend) {
                    // Its subscription, if the server made it, ended with the connection.
                    (Pending::Abandoned { .. }, _) => {
                        tables.take(id);
                    }
                    // Its request, if still queued, is not sent (see `stamp`).
                    (Pending::Resubscribe { old, .. }, _) => {
                        if let Some((_, on_its_way)) = tables.orphans.get_mut(old) {
                            *on_its_way = false;
                        }
                        tables.take(id);
                    }
                    (_, Some(request)) => {
                        waiting.sent_on = 0;
                        resend.push((id, Message::clone(request)));
                    }
                    (_, None) => {
                        if let Some(reply) = tables.take(id).and_then(|w| w.pending.reply()) {
                            interrupted.push(reply);
                        }
                    }
                }
            }
            // Not those routed from a newer connection already (see `over_resilient`).
            let lost: Vec<Id> = (tables.subscriptions.iter())
                .filter(|(_, sink)| sink.generation() <= generation)
                .map(|(id, _)| id.clone())
                .collect();
            for id in lost {
                if let Some(sink) = tables.subscriptions.remove(&id) {
                    let key = (id, sink.generation());
                    tables.orphans.insert(key, (sink, false));
                }
            }
        }
        tracing::debug!(
            generation,
            interrupted = interrupted.len(),
            resent = resend.len(),
            "connection dropped under calls in flight"
        );
        for reply in interrupted {
            let _ = reply.send(Outcome::Failed(Error::CallInterrupted));
        }
        resend.sort_unstable_by_key(|&(id, _)| id);
        resend
    }

    /// A new connection is up: registers a subscribe for each orphan that has none on its
    /// way yet, with `timeout`, and returns the requests to send (unstamped, so a drop
    /// before they go out sends them again later). An orphan that cannot be made again (its
    /// request does not encode) ends with the error.
    pub(crate) fn resubscribe_orphans(
        &self,
        codec: RpcCodec,
        timeout: Duration,
    ) -> Vec<(i64, Message)> {
        let mut requests = Vec::new();
        let mut tables = self.lock();
        if tables.closed.is_some() {
            return requests;
        }
        let due: Vec<OrphanKey> = (tables.orphans.iter())
            .filter(|(_, (sink, on_its_way))| !on_its_way && sink.call.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for old in due {
            let Some((sink, on_its_way)) = tables.orphans.get_mut(&old) else {
                continue;
            };
            let Some(call) = sink.call.clone() else {
                continue;
            };
            let id = self.next_id();
            match WireRequest::new(&call.method, &call.params, Some(id)).encode(codec) {
                Ok(request) => {
                    *on_its_way = true;
                    let deadline = Instant::now().checked_add(timeout);
                    let pending = Pending::Resubscribe {
                        old,
                        call,
                        after: timeout,
                    };
                    let mut waiting = Waiting::new(pending, deadline);
                    waiting.resend = Some(Box::new(request.clone()));
                    tables.pending.insert(id, waiting);
                    requests.push((id, request));
                }
                Err(error) => {
                    if let Some((sink, _)) = tables.orphans.remove(&old) {
                        sink.end(error);
                    }
                }
            }
        }
        if let Some(earliest) = requests
            .first()
            .and_then(|_| Instant::now().checked_add(timeout))
        {
            let wake = tables.next_sweep.is_none_or(|next| earliest < next);
            if wake {
                tables.next_sweep = Some(earliest);
                drop(tables);
                self.wake_sweeper();
            }
        }
        requests
    }

    /// The answer to the resubscribe of orphan `old`: on a subscription id, the orphan's
    /// stream gets its gap and its notifications come under the new id; on an error, its
    /// stream ends with it. If the subscription was dropped meanwhile, the new one is ended
    /// on the server (returned for the reader to send).
    pub(crate) fn resubscribed(
        &self,
        old: &OrphanKey,
        call: &SubscribeCall,
        response: RpcResponse,
        generation: u64,
    ) -> Option<Unsubscribe> {
        let new = (response.error.is_none())
            .then(|| response.result.as_ref().and_then(subscription_id))
            .flatten();
        let mut tables = self.lock();
        let Some((sink, _)) = tables.orphans.remove(old) else {
            return new.map(|id| Unsubscribe {
                method: call.unsubscribe.clone(),
                id,
                generation,
            });
        };
        match new {
            Some(new) => {
                tracing::debug!(?old, ?new, method = call.method, "subscription made again");
                sink.gap();
                sink.set_id(new.clone(), generation);
                tables.subscriptions.insert(new, sink);
            }
            None => {
                let error = match response.into_result() {
                    Err(error) => error,
                    Ok(other) => Error::Codec(format!(
                        "{:?} returned {other}, not a subscription id",
                        call.method
                    )),
                };
                sink.end(error);
            }
        }
        None
    }
}

/// How a session over a resilient connection makes its subscriptions again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resubscribe {
    pub(crate) codec: RpcCodec,
    pub(crate) timeout: Duration,
}

/// A subscribe call's description, kept with its subscription.
pub(crate) fn subscribe_call(
    method: &str,
    params: &serde_json::Value,
    unsubscribe: &str,
) -> Arc<SubscribeCall> {
    Arc::new(SubscribeCall {
        method: method.to_owned(),
        params: params.clone(),
        unsubscribe: unsubscribe.to_owned(),
    })
}

#[cfg(test)]
mod orphan_tests;
#[cfg(test)]
mod tests;
