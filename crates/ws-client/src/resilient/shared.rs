//! `Shared`: what the background task and the user's handles of one resilient connection
//! both see (metrics, the event channel, the status, the final error), and `Command`, what
//! the handles send to the task.

use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, oneshot, watch};

use super::classify::copy_error;
use super::events::{Event, EventStream, LinkStatus};
use super::metrics::Metrics;
use super::queue::Outgoing;
use crate::error::Error;

/// A request from a handle to the background task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Write this message (or keep it, or hand it back, per the queue policy).
    Send(Outgoing),
    /// Write these messages, in order, each as `Send` would (a batch: one command, each
    /// message answering the batch's shared receipt).
    SendBatch(std::collections::VecDeque<Outgoing>),
    /// Close the connection and stop; answer when done.
    Close(oneshot::Sender<Result<(), Error>>),
    /// Write these messages with one flush, but only on connection `generation`: if that
    /// connection is not the one up (it dropped, or a newer one is up), they are dropped
    /// unwritten. `done` is answered (or dropped) once they are written or dropped. For a
    /// layer above that knows which generation it sent on and treats a drop itself (RPC).
    Pinned(Pinned),
}

/// A burst of messages for one connection generation (see [`Command::Pinned`]).
#[derive(Debug)]
pub(crate) struct Pinned {
    pub(crate) generation: u64,
    pub(crate) messages: std::collections::VecDeque<crate::message::Message>,
    pub(crate) done: oneshot::Sender<()>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) metrics: Metrics,
    /// Dropped after the last event, so that every event stream ends.
    events: Mutex<Option<broadcast::Sender<Event>>>,
    /// Subscribed at creation, so the first reader of `events` sees the first connect too.
    first_events: Mutex<Option<broadcast::Receiver<Event>>>,
    status: watch::Sender<LinkStatus>,
    /// Why the connection ended, once it has.
    ended: Mutex<Option<Error>>,
}

impl Shared {
    pub(crate) fn new(event_capacity: usize, labels: &[(String, String)]) -> Arc<Self> {
        let (events, first) = broadcast::channel(event_capacity);
        Arc::new(Self {
            metrics: Metrics::new(labels),
            events: Mutex::new(Some(events)),
            first_events: Mutex::new(Some(first)),
            status: watch::Sender::new(LinkStatus::Starting),
            ended: Mutex::new(None),
        })
    }

    /// Publishes `event`; never waits (a slow reader loses the oldest events instead).
    pub(crate) fn emit(&self, event: Event) {
        tracing::debug!(?event, "resilient connection");
        if let Some(events) = &*self.events.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = events.send(event);
        }
    }

    /// Publishes the last event; every event stream ends after it.
    pub(crate) fn emit_last(&self, event: Event) {
        self.emit(event);
        self.events.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// The event stream: the first one made sees every event from the start (as far as the
    /// capacity keeps them), later ones from the moment they are made.
    pub(crate) fn events(&self) -> EventStream {
        let first = self
            .first_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let later = || match &*self.events.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(events) => events.subscribe(),
            // Ended: a stream that ends at once.
            None => broadcast::channel(1).1,
        };
        EventStream::new(first.unwrap_or_else(later))
    }

    pub(crate) fn set_status(&self, status: LinkStatus) {
        self.status.send_replace(status);
    }

    pub(crate) fn status(&self) -> watch::Receiver<LinkStatus> {
        self.status.subscribe()
    }

    /// Records why the connection ended (the first reason wins).
    pub(crate) fn end(&self, error: &Error) {
        self.ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| copy_error(error));
        self.set_status(LinkStatus::Ended);
        self.metrics.ended();
    }

    /// The error for using a connection that has ended.
    pub(crate) fn ended_error(&self) -> Error {
        self.ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(Error::ConnectionClosed, copy_error)
    }
}
