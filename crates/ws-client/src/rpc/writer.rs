//! `Writer`: the RPC client's write side. Callers put requests in a bounded queue (never
//! waiting on the socket, so a cancelled call cannot lose someone else's message); one task
//! writes everything queued and flushes once per burst, so 256 calls in flight cost a few
//! system calls, not 256.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::error::Error;
use crate::message::Message;
use crate::split::WsSender;

/// What a queued message counts against the queue's bound besides its own bytes: about
/// its share of the queue's bookkeeping, so that many tiny messages are bounded too.
const PER_MESSAGE_COST: usize = 64;

/// The queue between callers and the writing task.
///
/// Bounded in bytes ([`RpcConfig::max_queued_bytes`](crate::rpc::RpcConfig::max_queued_bytes)):
/// a message takes room (its length plus [`PER_MESSAGE_COST`]) before it is queued and gives
/// it back once the writing task has written it out, so the queue plus the burst being
/// written never hold more than the bound. A message larger than the whole bound takes all
/// of it, that is waits until the queue is empty.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Mutex<Queue>,
    wake: Notify,
    /// Set when the connection should be closed once the queue is written.
    closing: AtomicBool,
    /// Free room, in bytes; closed once nothing more will be written.
    room: Semaphore,
    /// The bound, as a number of permits a single message may take at most.
    capacity: usize,
}

/// The queued messages and, beside each, what it carries. Two deques rather than one of
/// pairs, so a burst of messages goes to the socket as it is.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) messages: VecDeque<Message>,
    pub(crate) calls: VecDeque<Entry>,
}

/// What a queued message carries, for a session over a resilient connection (see
/// `Router::stamp`); a plain session only counts its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The call id of a request; the opposite of its first call id for a batch; `NO_CALL`
    /// (0) for a notification.
    pub(crate) id: i64,
    /// The room it holds: 0 for a message queued without reserving any (a resend).
    pub(crate) room: u32,
    /// The only connection generation it may go out on (it names a subscription of that
    /// connection); 0 for any.
    pub(crate) only_on: u64,
}

impl Queue {
    /// Takes everything queued, leaving `self` with `spare`'s (empty) buffers.
    pub(crate) fn take(&mut self, spare: &mut Queue) {
        std::mem::swap(self, spare);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The room its messages hold.
    pub(crate) fn room(&self) -> usize {
        self.calls.iter().map(|entry| entry.room as usize).sum()
    }

    /// Drops the messages at `indices` (ascending) with their entries.
    pub(crate) fn remove(&mut self, indices: &[usize]) {
        retain_except(&mut self.messages, indices);
        retain_except(&mut self.calls, indices);
    }
}

/// Removes the items at `indices` (ascending) from `items`, in one pass.
fn retain_except<T>(items: &mut VecDeque<T>, indices: &[usize]) {
    let mut at = 0;
    let mut dropped = indices.iter().peekable();
    items.retain(|_| {
        let keep = dropped.next_if_eq(&&at).is_none();
        at += 1;
        keep
    });
}

/// Room reserved for one message, not used yet: given back if dropped.
#[derive(Debug)]
pub(crate) struct Room<'a> {
    permit: SemaphorePermit<'a>,
}

/// Why no room was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// The deadline passed while the queue stayed full.
    TimedOut,
    /// The connection is closing or has ended: nothing more will be written.
    Closed,
}

impl Writer {
    /// An empty queue bounded to `max_queued_bytes`; [`write_loop`] writes it out.
    pub(crate) fn new(max_queued_bytes: usize) -> Arc<Self> {
        // A single message takes at most u32::MAX permits (tokio's `acquire_many`).
        let capacity = max_queued_bytes
            .clamp(1, Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            room: Semaphore::new(capacity),
            capacity,
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The room `message` takes in the queue.
    fn cost(&self, message: &Message) -> u32 {
        let cost = message.data.len().saturating_add(PER_MESSAGE_COST);
        // `capacity` fits a u32 (see `start`).
        u32::try_from(cost.min(self.capacity)).unwrap_or(u32::MAX)
    }

    /// Room for `message` if there is some now.
    pub(crate) fn try_reserve(&self, message: &Message) -> Option<Room<'_>> {
        let permit = self.room.try_acquire_many(self.cost(message)).ok()?;
        Some(Room { permit })
    }

    /// Room for `message`, waiting until `deadline` (`None`: as long as it takes) for the
    /// writing task to make some.
    pub(crate) async fn reserve(
        &self,
        message: &Message,
        deadline: Option<Instant>,
    ) -> Result<Room<'_>, NoRoom> {
        let cost = self.cost(message);
        let permit = match self.room.try_acquire_many(cost) {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(NoRoom::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let acquire = self.room.acquire_many(cost);
                let acquired = match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, acquire)
                        .await
                        .map_err(|_| NoRoom::TimedOut)?,
                    None => acquire.await,
                };
                acquired.map_err(|_| NoRoom::Closed)?
            }
        };
        Ok(Room { permit })
    }

    /// Queues `message` in the `room` reserved for it, in order with every other send, and
    /// wakes the writing task. The room comes back once the message is written. It carries
    /// call `id` (see [`Entry`]) and goes out only on connection generation `only_on` (0:
    /// any).
    pub(crate) fn push_call(&self, room: Room<'_>, message: Message, id: i64, only_on: u64) {
        let cost = self.cost(&message);
        debug_assert_eq!(room.permit.num_permits(), cost as usize);
        room.permit.forget();
        let mut queue = self.queue();
        queue.messages.push_back(message);
        queue.calls.push_back(Entry {
            id,
            room: cost,
            only_on,
        });
        drop(queue);
        self.wake.notify_one();
    }

    /// Queues requests to send again after a reconnect (`(call id, request)`, in order),
    /// ahead of everything queued, without reserving room: they are bounded by the calls in
    /// flight, which held room once already.
    pub(crate) fn push_front_unreserved(&self, resend: Vec<(i64, Message)>) {
        if resend.is_empty() {
            return;
        }
        let mut queue = self.queue();
        for (id, message) in resend.into_iter().rev() {
            queue.messages.push_front(message);
            queue.calls.push_front(Entry {
                id,
                room: 0,
                only_on: 0,
            });
        }
        drop(queue);
        self.wake.notify_one();
    }

    /// Puts a burst that could not go out back ahead of everything queued since, as it was.
    pub(crate) fn requeue_front(&self, burst: &mut Queue) {
        let mut queue = self.queue();
        while let (Some(message), Some(call)) = (burst.messages.pop_back(), burst.calls.pop_back())
        {
            queue.messages.push_front(message);
            queue.calls.push_front(call);
        }
    }

    /// Takes everything queued into `burst` (empty), for the writing task.
    pub(crate) fn take_burst(&self, burst: &mut Queue) {
        self.queue().take(burst);
    }

    /// Gives back the room a written burst held.
    pub(crate) fn release(&self, room: usize) {
        self.room.add_permits(room);
    }

    /// Resolves when something was queued or `close` was called since the last call.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Whether `close` was called.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Asks for the close handshake once everything queued is written; the task then ends
    /// (at once if the connection has already ended), letting its half of the socket go.
    /// Whoever still waits for room is refused.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.room.close();
        self.wake.notify_one();
    }
}

/// The writing task: writes bursts on `sender` until asked to close (then sends the close
/// frame) or the connection fails (then returns why, and the caller fails the calls).
pub(crate) async fn write_loop(writer: Arc<Writer>, sender: WsSender) -> Result<(), Error> {
    let mut burst = Queue::default();
    loop {
        writer.woken().await;
        loop {
            writer.take_burst(&mut burst);
            if burst.is_empty() {
                break;
            }
            let taken = burst.room();
            burst.calls.clear();
            let mut sink = sender.lock().await;
            let written = async {
                sink.queue_all(&mut burst.messages).await?;
                sink.flush().await
            }
            .await;
            // The caller fails the calls, then closes the queue (see `Writer::close`).
            written?;
            writer.release(taken);
        }
        if writer.is_closing() {
            // Fails if the connection has already ended, which is no news to anyone.
            let _ = sender.close(1000, "").await;
            return Ok(());
        }
    }
}
