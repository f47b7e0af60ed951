//! `Subscription`: server notifications for one subscription as a `Stream`, with a bounded
//! buffer and a documented policy for slow readers; unsubscribes when dropped.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::rpc::client::RpcClient;
use crate::rpc::types::Id;

/// What the router and the stream share.
#[derive(Debug, Default)]
struct Shared {
    /// Notifications dropped since the reader last saw an item.
    missed: AtomicU64,
    /// Why the subscription ended, if the connection did.
    ended: Mutex<Option<Error>>,
}

/// The router's end: pushes notifications without ever waiting.
#[derive(Debug)]
pub(crate) struct SubscriptionSink {
    sender: mpsc::Sender<Value>,
    shared: Arc<Shared>,
}

impl SubscriptionSink {
    /// Buffers `value`; when the buffer is full the value is dropped and counted.
    pub(crate) fn push(&self, value: Value) {
        if self.sender.try_send(value).is_err() {
            self.shared.missed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Ends the subscription with `reason` (the reader sees it after the buffered items).
    pub(crate) fn end(self, reason: Error) {
        *self.shared.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }
}

/// The reading end, before the server has confirmed the subscription.
pub(crate) struct SubscriptionSource {
    receiver: mpsc::Receiver<Value>,
    shared: Arc<Shared>,
}

/// A sink and a source with room for `capacity` notifications.
pub(crate) fn channel(capacity: usize) -> (SubscriptionSink, SubscriptionSource) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    let shared = Arc::new(Shared::default());
    (
        SubscriptionSink {
            sender,
            shared: Arc::clone(&shared),
        },
        SubscriptionSource { receiver, shared },
    )
}

/// Notifications of one subscription, decoded as `T`.
///
/// Items are `Ok(value)` in the order the server sent them. If the reader falls behind and
/// the buffer ([`RpcConfig::subscription_buffer`](crate::rpc::RpcConfig::subscription_buffer))
/// fills, newer notifications are dropped and the next item is
/// `Err(Error::SubscriptionLagged { missed })`. When the connection ends, the buffered items
/// come first, then one `Err` saying why, then the stream ends.
///
/// Dropping it unsubscribes with a notification to the unsubscribe method, queued without
/// waiting: if the outgoing queue is full (a server that stopped reading, see
/// [`RpcConfig::max_queued_bytes`](crate::rpc::RpcConfig::max_queued_bytes)) it is dropped
/// and logged, and the server keeps the subscription until the connection ends (its
/// notifications are discarded). [`unsubscribe`](Self::unsubscribe) does the same as a call
/// and waits for its answer.
#[derive(Debug)]
pub struct Subscription<T> {
    id: Id,
    receiver: mpsc::Receiver<Value>,
    shared: Arc<Shared>,
    client: RpcClient,
    unsubscribe_method: String,
    finished: bool,
    unsubscribed: bool,
    _item: PhantomData<fn() -> T>,
}

impl std::fmt::Debug for SubscriptionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionSource").finish_non_exhaustive()
    }
}

impl<T> Subscription<T> {
    pub(crate) fn new(
        id: Id,
        source: SubscriptionSource,
        client: RpcClient,
        unsubscribe_method: String,
    ) -> Self {
        Self {
            id,
            receiver: source.receiver,
            shared: source.shared,
            client,
            unsubscribe_method,
            finished: false,
            unsubscribed: false,
            _item: PhantomData,
        }
    }

    /// The subscription id the server assigned.
    pub fn id(&self) -> &Id {
        &self.id
    }

    /// Unsubscribes with a call to the unsubscribe method and returns its result.
    pub async fn unsubscribe(mut self) -> Result<Value, Error> {
        self.unsubscribed = true;
        self.client.forget_subscription(&self.id);
        let params = Value::Array(vec![self.id.to_value()]);
        self.client
            .request::<Value>(&self.unsubscribe_method, params)
            .await
    }
}

impl<T: DeserializeOwned> Stream for Subscription<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let missed = self.shared.missed.swap(0, Ordering::Relaxed);
        if missed > 0 {
            return Poll::Ready(Some(Err(Error::SubscriptionLagged { missed })));
        }
        match self.receiver.poll_recv(cx) {
            Poll::Ready(Some(value)) => Poll::Ready(Some(
                serde_json::from_value(value)
                    .map_err(|e| Error::Codec(format!("subscription item: {e}"))),
            )),
            Poll::Ready(None) => {
                self.finished = true;
                let reason = self
                    .shared
                    .ended
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                Poll::Ready(reason.map(Err))
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
        self.client.forget_subscription(&self.id);
        let params = Value::Array(vec![self.id.to_value()]);
        self.client.notify_nowait(&self.unsubscribe_method, params);
    }
}
