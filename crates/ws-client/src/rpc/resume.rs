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
use crate::rpc::table::{Outcome, Pending, SubscribeCall, Unsubscribe, Waiting};
use crate::rpc::types::{Id, RpcResponse};

/// An entry of the writer's queue that carries no call.
pub(crate) const NO_CALL: i64 = 0;

impl Router {
    /// Records that the requests of `calls` (`(call id, _)` as the writer's queue holds
    /// them; a negative id stands for the batch whose first call is its opposite) are handed
    /// over on connection `generation`. Refused (`false`) if that connection is already
    /// known to have dropped: they must wait for the next one, or a drop handled before this
    /// stamp would leave them waiting for an answer that cannot come.
    pub(crate) fn stamp(&self, calls: impl Iterator<Item = i64>, generation: u64) -> bool {
        let mut tables = self.lock();
        if generation <= tables.lost {
            return false;
        }
        for id in calls {
            let ids = match id {
                NO_CALL => continue,
                id if id > 0 => vec![id],
                first => match tables
                    .batches
                    .iter()
                    .find(|ids| ids.first() == Some(&-first))
                {
                    Some(ids) => ids.clone(),
                    None => continue,
                },
            };
            for id in ids {
                if let Some(waiting) = tables.pending.get_mut(&id) {
                    waiting.sent_on = generation;
                }
            }
        }
        true
    }

    /// Connection `generation` (and any before it) dropped: fails the calls sent on it with
    /// [`Error::CallInterrupted`], and returns the requests to send again (idempotent calls
    /// and subscribes, oldest first); live subscriptions become orphans.
    pub(crate) fn connection_lost(&self, generation: u64) -> Vec<(i64, Message)> {
        let mut interrupted = Vec::new();
        let mut resend = Vec::new();
        {
            let mut tables = self.lock();
            if generation <= tables.lost {
                return resend;
            }
            tables.lost = generation;
            let sent: Vec<i64> = (tables.pending.iter())
                .filter(|(_, waiting)| (1..=generation).contains(&waiting.sent_on))
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
            let live: Vec<_> = tables.subscriptions.drain().collect();
            for (id, sink) in live {
                tables.orphans.insert(id, (sink, false));
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
        let due: Vec<Id> = (tables.orphans.iter())
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
        old: &Id,
        call: &SubscribeCall,
        response: RpcResponse,
    ) -> Option<Unsubscribe> {
        let new = (response.error.is_none())
            .then(|| response.result.as_ref().and_then(subscription_id))
            .flatten();
        let mut tables = self.lock();
        let Some((sink, _)) = tables.orphans.remove(old) else {
            return new.map(|id| Unsubscribe {
                method: call.unsubscribe.clone(),
                id,
            });
        };
        match new {
            Some(new) => {
                tracing::debug!(?old, ?new, method = call.method, "subscription made again");
                sink.gap();
                sink.set_id(new.clone());
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
mod tests;
