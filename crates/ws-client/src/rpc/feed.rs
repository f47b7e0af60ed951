//! The feed of one subscription: a bounded channel carrying its notifications from the
//! reader (`SubscriptionSink`, which never waits) to its `Subscription`
//! (`SubscriptionSource`), with the count of notifications dropped while the buffer was
//! full and the reason the feed ended.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::Error;

/// What the two ends share.
#[derive(Debug, Default)]
struct Shared {
    /// Notifications dropped since the reader last saw an item.
    missed: AtomicU64,
    /// Why the subscription ended, if the connection did.
    ended: Mutex<Option<Error>>,
}

/// The reader's end: pushes notifications without ever waiting.
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

/// The subscription's end.
pub(crate) struct SubscriptionSource {
    receiver: mpsc::Receiver<Value>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SubscriptionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionSource").finish_non_exhaustive()
    }
}

impl SubscriptionSource {
    /// How many notifications were dropped since the last call; resets the count.
    pub(crate) fn take_missed(&self) -> u64 {
        self.shared.missed.swap(0, Ordering::Relaxed)
    }

    /// The next buffered notification; `Ready(None)` once the sink is gone and the buffer
    /// is empty.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Value>> {
        self.receiver.poll_recv(cx)
    }

    /// Why the feed ended, once (after `poll_recv` gave `None`).
    pub(crate) fn take_end(&self) -> Option<Error> {
        self.shared
            .ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
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
