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
    queue: Mutex<VecDeque<Message>>,
    wake: Notify,
    /// Set when the connection should be closed once the queue is written.
    closing: AtomicBool,
    /// Free room, in bytes; closed once nothing more will be written.
    room: Semaphore,
    /// The bound, as a number of permits a single message may take at most.
    capacity: usize,
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
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            room: Semaphore::new(capacity),
            capacity,
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Message>> {
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
    /// wakes the writing task. The room comes back once the message is written.
    pub(crate) fn push(&self, room: Room<'_>, message: Message) {
        debug_assert_eq!(room.permit.num_permits(), self.cost(&message) as usize);
        room.permit.forget();
        self.queue().push_back(message);
        self.wake.notify_one();
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
    let mut burst = VecDeque::new();
    loop {
        writer.wake.notified().await;
        loop {
            std::mem::swap(&mut burst, &mut *writer.queue());
            if burst.is_empty() {
                break;
            }
            let taken: usize = burst.iter().map(|m| writer.cost(m) as usize).sum();
            let mut sink = sender.lock().await;
            let written = async {
                sink.queue_all(&mut burst).await?;
                sink.flush().await
            }
            .await;
            // The caller fails the calls, then closes the queue (see `Writer::close`).
            written?;
            writer.room.add_permits(taken);
        }
        if writer.closing.load(Ordering::Acquire) {
            // Fails if the connection has already ended, which is no news to anyone.
            let _ = sender.close(1000, "").await;
            return Ok(());
        }
    }
}
