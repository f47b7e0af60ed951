//! Batches: `BatchEntry` (a call or a notification), and sending a batch over a session
//! and collecting its answers in request order; an answer the router cannot match fails
//! the batch at once (see `Router::fail_batch`).

use serde_json::Value;

use crate::error::Error;
use crate::rpc::codec::Codec;
use crate::rpc::guards::PendingGuard;
use crate::rpc::request::WireRequest;
use crate::rpc::resume::NO_CALL;
use crate::rpc::router::Router;
use crate::rpc::session::Session;
use crate::rpc::table::{Outcome, Pending};
use crate::rpc::types::RpcResponse;

/// One entry of a [`batch`](crate::rpc::RpcClient::batch).
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

/// Sends `entries` as one batch and waits for every answer: one entry per request, in
/// request order (`None` for notifications). Unbounded: the caller bounds the whole of it.
pub(crate) async fn send_batch(
    session: &Session,
    entries: &[BatchEntry],
) -> Result<Vec<Option<RpcResponse>>, Error> {
    let config = session.config();
    let calls = entries
        .iter()
        .filter(|e| matches!(e, BatchEntry::Call { .. }))
        .count();
    let wanted = u32::try_from(calls.min(config.max_in_flight)).unwrap_or(u32::MAX);
    let _slots = session
        .slots
        .acquire_many(wanted)
        .await
        .map_err(|_| Error::ConnectionClosed)?;
    let router = &*session.router;
    let mut wire = Vec::with_capacity(entries.len());
    let mut answers = Vec::with_capacity(entries.len());
    let mut guards = Vec::with_capacity(calls);
    for entry in entries {
        match entry {
            BatchEntry::Call { method, params } => {
                let id = session.next_id();
                let (reply, answer) = tokio::sync::oneshot::channel();
                // The whole batch is bounded by the caller's timeout instead.
                router.register(id, Pending::Call(reply), None)?;
                guards.push(PendingGuard::new(router, id));
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
        router.register_batch(ids.clone());
        BatchGuard { router, first }
    });
    // Waiting for room is bounded by the caller's timeout, like the answers.
    let batch = ids.first().map_or(NO_CALL, |&first| -first);
    session
        .send_for(config.codec.encode(&wire)?, None, batch)
        .await?;
    let mut responses = Vec::with_capacity(answers.len());
    for answer in answers {
        responses.push(match answer {
            Some(answer) => match answer.await.map_err(|_| session.closed_error())? {
                Outcome::Answer(answer) => Some(answer.into_response()?),
                Outcome::Failed(error) => return Err(error),
                // Registered without a deadline, so the sweeper never ends these.
                Outcome::TimedOut => return Err(Error::ConnectionClosed),
            },
            None => None,
        });
    }
    guards.iter_mut().for_each(PendingGuard::answered);
    Ok(responses)
}
