//! `ParkedPong`: the pong a split connection's receiver owes while a sender holds the write
//! side (a long batch, a send to a slow reader), left for that sender to write between two
//! of its writes instead of waiting behind all of them.
//!
//! Only the latest pong is kept (RFC 6455 section 5.5.3 allows answering only the most
//! recent ping), so it costs at most one control payload (125 bytes). Every flush
//! ([`link::flush_until`](crate::link::flush_until)) first appends a parked pong behind the
//! frames already buffered (whole frames: a pong never lands inside one; behind a large
//! payload written from its own memory, in a second write once that payload is out), then
//! says when the flush carrying it has finished; the receiver waits for that, or for the
//! write side.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use crate::message::MessageType;
use crate::wire::Outbound;

/// The parked pong of one connection (see the module documentation).
#[derive(Debug)]
pub(crate) struct ParkedPong {
    /// Whether `slot` holds a pong: read on every flush without taking the lock.
    parked: AtomicBool,
    slot: Mutex<Slot>,
    /// The ticket of the last carried pong whose flush has finished (written, or failed
    /// with the connection).
    done: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Slot {
    pong: Option<Vec<u8>>,
    /// Counts the pongs parked so far; the one in `pong` has this ticket.
    ticket: u64,
}

impl Default for ParkedPong {
    fn default() -> Self {
        Self {
            parked: AtomicBool::new(false),
            slot: Mutex::new(Slot::default()),
            done: watch::Sender::new(0),
        }
    }
}

impl ParkedPong {
    /// Parks a pong with `payload` in place of any pong still parked; returns its ticket.
    pub(crate) fn park(&self, payload: Vec<u8>) -> u64 {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.ticket += 1;
        slot.pong = Some(payload);
        self.parked.store(true, Ordering::Release);
        slot.ticket
    }

    /// For the holder of the write side, about to flush: encodes the parked pong, if any,
    /// behind everything buffered (dropped instead when `open` is false: no pong follows
    /// our close frame), and returns its ticket for [`finished`](Self::finished). Left
    /// parked while a large payload is being written from its own memory (appending would
    /// copy it into the buffer): the same flush carries it once that payload is written.
    #[inline]
    pub(crate) fn carry(&self, out: &mut Outbound, open: bool) -> Option<u64> {
        if !self.parked.load(Ordering::Acquire) {
            return None;
        }
        self.carry_now(out, open)
    }

    #[cold]
    fn carry_now(&self, out: &mut Outbound, open: bool) -> Option<u64> {
        // `has_room` with no size limit: false only while a large payload is pending.
        if !out.has_room(usize::MAX) {
            return None;
        }
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let pong = slot.pong.take()?;
        self.parked.store(false, Ordering::Release);
        if open {
            out.encode(MessageType::Pong, &pong);
        }
        Some(slot.ticket)
    }

    /// The flush that carried the pong `ticket` has finished, written or failed.
    pub(crate) fn finished(&self, ticket: u64) {
        self.done.send_if_modified(|done| {
            let newer = ticket > *done;
            if newer {
                *done = ticket;
            }
            newer
        });
    }

    /// Waits until the flush carrying the pong `ticket` (or a later one) has finished.
    pub(crate) async fn written(&self, ticket: u64) {
        let mut done = self.done.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail while this waits.
        let _ = done.wait_for(|done| *done >= ticket).await;
    }
}

#[cfg(test)]
mod tests;
