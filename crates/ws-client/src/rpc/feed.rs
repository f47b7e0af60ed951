//! The feed of one subscription: a bounded channel carrying its notifications from the
//! reader (`SubscriptionSink`, which never waits) to its `Subscription`
//! (`SubscriptionSource`), with the count of notifications dropped while the buffer was
//! full, the gaps left by reconnects, the subscription's current id and the reason the feed
//! ended.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::rpc::table::SubscribeCall;
use crate::rpc::types::Id;

/// What the feed carries, in order.
#[derive(Debug)]
pub(crate) enum Item {
    /// A notification's result.
    Value(Value),
    /// The subscription was made again after a reconnect: notifications may have been
    /// missed here.
    Gap,
}

/// What the two ends share.
#[derive(Debug, Default)]
struct Shared {
    /// Notifications dropped since the reader last saw an item.
    missed: AtomicU64,
    /// A gap that found the buffer full, pending until the buffered items are read (or a
    /// later notification finds room for it first).
    gap: AtomicBool,
    /// The id the server gave the subscription (a new one after each reconnect), and the
    /// generation of the connection that gave it (0 on a plain connection).
    id: Mutex<Option<(Id, u64)>>,
    /// Why the subscription ended, if the connection did.
    ended: Mutex<Option<Error>>,
}

/// The reader's end: pushes notifications without ever waiting.
#[derive(Debug)]
pub(crate) struct SubscriptionSink {
    sender: mpsc::Sender<Item>,
    shared: Arc<Shared>,
    /// How the subscription was made, to make it again after a reconnect.
    pub(crate) call: Option<Arc<SubscribeCall>>,
}

impl SubscriptionSink {
    /// Buffers `value`; when the buffer is full the value is dropped and counted. A gap
    /// still pending goes in first (or the value is dropped: nothing may come before it).
    pub(crate) fn push(&self, value: Value) {
        let gap_pending = self.shared.gap.swap(false, Ordering::AcqRel);
        if gap_pending && self.sender.try_send(Item::Gap).is_err() {
            // Still no room for the gap: it stays pending, and this value is lost after it.
            self.shared.gap.store(true, Ordering::Release);
            self.shared.missed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.sender.try_send(Item::Value(value)).is_err() {
            self.shared.missed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks a gap (the subscription was made again after a reconnect), in order with the
    /// notifications; with the buffer full, it stays pending, and comes after the buffered
    /// items (the stream reports it once they are read) and before any later one.
    pub(crate) fn gap(&self) {
        if self.sender.try_send(Item::Gap).is_err() {
            self.shared.gap.store(true, Ordering::Release);
        }
    }

    /// Records the id the server gave the subscription on connection `generation`.
    pub(crate) fn set_id(&self, id: Id, generation: u64) {
        *self.shared.id.lock().unwrap_or_else(|e| e.into_inner()) = Some((id, generation));
    }

    /// The generation of the connection the subscription lives on (0 before it has an id).
    pub(crate) fn generation(&self) -> u64 {
        key(&self.shared).map_or(0, |(_, generation)| generation)
    }

    /// A handle that reads the subscription's id and generation once the router has set
    /// them, for whoever must undo the subscription after the sink is handed over.
    pub(crate) fn key_handle(&self) -> KeyHandle {
        KeyHandle(Arc::clone(&self.shared))
    }

    /// Ends the subscription with `reason` (the reader sees it after the buffered items).
    pub(crate) fn end(self, reason: Error) {
        *self.shared.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }
}

/// The subscription's end.
pub(crate) struct SubscriptionSource {
    receiver: mpsc::Receiver<Item>,
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

    /// Whether a gap that found the buffer full is still pending; resets it. For when the
    /// buffer has been read empty (the gap comes after what was buffered).
    pub(crate) fn take_gap(&self) -> bool {
        self.shared.gap.swap(false, Ordering::AcqRel)
    }

    /// The subscription's id now (`None` before the server gave one).
    pub(crate) fn id(&self) -> Option<Id> {
        key(&self.shared).map(|(id, _)| id)
    }

    /// The subscription's id now and the generation of the connection that gave it.
    pub(crate) fn key(&self) -> Option<(Id, u64)> {
        key(&self.shared)
    }

    /// The next buffered item; `Ready(None)` once the sink is gone and the buffer is empty.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
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

/// Reads a subscription's id and generation (see [`SubscriptionSink::key_handle`]).
#[derive(Debug)]
pub(crate) struct KeyHandle(Arc<Shared>);

impl KeyHandle {
    pub(crate) fn key(&self) -> Option<(Id, u64)> {
        key(&self.0)
    }
}

fn key(shared: &Shared) -> Option<(Id, u64)> {
    shared.id.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A sink and a source with room for `capacity` notifications; `call` is how the
/// subscription is made, if it is to be made again after a reconnect.
pub(crate) fn channel(
    capacity: usize,
    call: Option<Arc<SubscribeCall>>,
) -> (SubscriptionSink, SubscriptionSource) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    let shared = Arc::new(Shared::default());
    (
        SubscriptionSink {
            sender,
            shared: Arc::clone(&shared),
            call,
        },
        SubscriptionSource { receiver, shared },
    )
}
