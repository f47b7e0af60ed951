//! `Subscription`: server notifications for one subscription as a `Stream`, with a bounded
//! buffer (its feed, see `feed`) and a documented policy for slow readers; unsubscribes
//! when dropped. It holds the connection's `Session`, not the client.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;
use crate::rpc::feed::{Item, SubscriptionSource};
use crate::rpc::session::Session;
use crate::rpc::types::Id;

/// Notifications of one subscription, decoded as `T`.
///
/// Items are `Ok(value)` in the order the server sent them. If the reader falls behind and
/// the buffer ([`RpcConfig::subscription_buffer`](crate::rpc::RpcConfig::subscription_buffer))
/// fills, newer notifications are dropped and the next item is
/// `Err(Error::SubscriptionLagged { missed })`. When the connection ends, the buffered items
/// come first, then one `Err` saying why, then the stream ends.
///
/// Over a resilient connection ([`RpcClient::connect_resilient`](crate::rpc::RpcClient::connect_resilient))
/// a reconnect does not end the stream: the subscription is made again on the new
/// connection with the same method and parameters, and the stream yields
/// `Err(Error::SubscriptionGap)` at that point (after the notifications of the old
/// connection, before those of the new one), because notifications sent meanwhile were
/// missed. The server gives it a new [`id`](Self::id) then. If making it again fails (an
/// error answer, or no answer while a connection stays up for the request timeout; a drop
/// meanwhile only makes it again on the next one), the stream ends with that error.
///
/// Dropping it unsubscribes with a notification to the unsubscribe method, queued without
/// waiting: if the outgoing queue is full (a server that stopped reading, see
/// [`RpcConfig::max_queued_bytes`](crate::rpc::RpcConfig::max_queued_bytes)) it is dropped
/// and logged, and the server keeps the subscription until the connection ends (its
/// notifications are discarded). [`unsubscribe`](Self::unsubscribe) does the same as a call
/// and waits for its answer. Over a resilient connection the unsubscribe goes out only on the
/// connection that holds the subscription: between a drop and the answer to its
/// resubscribe, no server holds it, and nothing is sent. A subscription keeps the connection
/// open, as a client does.
pub struct Subscription<T> {
    source: SubscriptionSource,
    session: Arc<Session>,
    unsubscribe_method: String,
    finished: bool,
    unsubscribed: bool,
    /// Set by `unsubscribe` once it has forgotten a live subscription (the connection
    /// generation that holds it), so that a cancelled `unsubscribe` still has `Drop` send
    /// the notification.
    forgotten_live: Option<u64>,
    _item: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id())
            .field("source", &self.source)
            .field("session", &self.session)
            .field("unsubscribe_method", &self.unsubscribe_method)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<T> Subscription<T> {
    pub(crate) fn new(
        source: SubscriptionSource,
        session: Arc<Session>,
        unsubscribe_method: String,
    ) -> Self {
        Self {
            source,
            session,
            unsubscribe_method,
            finished: false,
            unsubscribed: false,
            forgotten_live: None,
            _item: PhantomData,
        }
    }

    /// The subscription id the server assigned (a new one after each reconnect, over a
    /// resilient connection).
    pub fn id(&self) -> Id {
        self.source.id().unwrap_or(Id::Null)
    }

    /// Unsubscribes with a call to the unsubscribe method and returns its result. If this
    /// is cancelled, the unsubscribe is sent as dropping the stream sends it (possibly a
    /// second time, if the call had gone out).
    ///
    /// Over a resilient connection, a subscription whose connection has dropped is held by
    /// no server (until it is made again, which this stops): then nothing is sent, and this
    /// returns `Ok(Value::Null)`; so it does if the connection drops before the call's
    /// answer. The call never goes out on a connection other than the one that holds the
    /// subscription (the server there may have given its id to another subscription).
    pub async fn unsubscribe(mut self) -> Result<Value, Error> {
        let Some((id, generation)) = self.source.key() else {
            self.unsubscribed = true;
            return Ok(Value::Null);
        };
        if !self.session.forget_subscription(&id, generation) {
            self.unsubscribed = true;
            // Ended with the connection: the call would fail with why.
            if self.session.is_closed() {
                return Err(self.session.closed_error());
            }
            return Ok(Value::Null);
        }
        self.forgotten_live = Some(generation);
        let params = Value::Array(vec![id.to_value()]);
        let timeout = self.session.config().request_timeout;
        let answer = self
            .session
            .call_on(&self.unsubscribe_method, &params, timeout, generation)
            .await;
        // Only now: dropped before this (cancelled), `Drop` still unsubscribes.
        self.unsubscribed = true;
        match answer {
            // The connection that held it dropped: so did the subscription.
            Err(Error::CallInterrupted) => Ok(Value::Null),
            answer => answer?.into_result(),
        }
    }
}

impl<T: DeserializeOwned> Stream for Subscription<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let missed = self.source.take_missed();
        if missed > 0 {
            return Poll::Ready(Some(Err(Error::SubscriptionLagged { missed })));
        }
        match self.source.poll_recv(cx) {
            Poll::Ready(Some(Item::Value(value))) => Poll::Ready(Some(
                serde_json::from_value(value)
                    .map_err(|e| Error::Codec(format!("subscription item: {e}"))),
            )),
            Poll::Ready(Some(Item::Gap)) => Poll::Ready(Some(Err(Error::SubscriptionGap))),
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(self.source.take_end().map(Err))
            }
            // Read empty: a gap that found the buffer full comes now.
            Poll::Pending if self.source.take_gap() => {
                Poll::Ready(Some(Err(Error::SubscriptionGap)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        if self.unsubscribed {
            return;
        }
        let Some((id, generation)) = self.source.key() else {
            return;
        };
        // Only a live subscription, and only on the connection that holds it: an orphan of a
        // reconnect is held by no server (the answer to its resubscribe, if one is on its
        // way, is undone by the router).
        let live =
            self.forgotten_live.is_some() || self.session.forget_subscription(&id, generation);
        if live {
            let params = Value::Array(vec![id.to_value()]);
            (self.session).notify_nowait(&self.unsubscribe_method, params, generation);
        }
    }
}
