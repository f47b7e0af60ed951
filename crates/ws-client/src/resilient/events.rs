//! Lifecycle events of a resilient connection (`Event`, read as an `EventStream`) and its
//! current `LinkStatus`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::broadcast;

use super::classify::RetryClass;
use crate::error::Error;

/// Default for [`ResilientConfig::event_capacity`](super::ResilientConfig::event_capacity):
/// 64 events kept for a slow reader before the oldest are overwritten.
pub const DEFAULT_EVENT_CAPACITY: usize = 64;

/// Something that happened to a resilient connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A connection attempt starts. `attempt` counts from 1 within one outage (or within
    /// the first connect).
    Connecting {
        /// Attempt number in this outage.
        attempt: u32,
    },
    /// A connection is up. `generation` counts connections from 1 (so `generation > 1` is
    /// a reconnect); `took` runs from the start of the outage (the drop, or the call to
    /// `connect`) to now, waits included.
    Connected {
        /// Which connection this is (1 for the first).
        generation: u64,
        /// The attempt that succeeded.
        attempt: u32,
        /// Time from the start of the outage (or of `connect`) to now.
        took: Duration,
    },
    /// The connection `generation` ended with `error`; `class` says whether a reconnect
    /// follows (anything but `Fatal`).
    Disconnected {
        /// The connection that ended.
        generation: u64,
        /// Why it ended.
        error: Arc<Error>,
        /// What happens next.
        class: RetryClass,
    },
    /// Attempt `attempt` will start after `delay`, because of `error` (the drop, or the
    /// previous attempt's failure).
    Reconnecting {
        /// The attempt that follows the wait.
        attempt: u32,
        /// The wait (backoff with jitter, or the server's `Retry-After`).
        delay: Duration,
        /// What made this wait necessary.
        error: Arc<Error>,
    },
    /// The resilient connection stopped: the error was not retryable, or the policy allowed
    /// no more attempts ([`Error::ReconnectGaveUp`]). Nothing more will happen.
    GaveUp {
        /// The final error, as `receive` and later sends report it.
        error: Arc<Error>,
    },
    /// The resilient connection was closed by its owner (`close`, or dropped).
    Closed,
    /// This reader fell behind and `missed` events were overwritten before it read them.
    Lagged {
        /// How many events this reader lost.
        missed: u64,
    },
}

/// Where the resilient connection stands now (see
/// [`ResilientConnection::status`](super::ResilientConnection::status)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    /// Connecting for the first time.
    Starting,
    /// Connection `generation` is up.
    Up {
        /// Which connection (1 for the first).
        generation: u64,
    },
    /// Connection `generation` dropped; reconnecting.
    Down {
        /// The connection that dropped.
        generation: u64,
    },
    /// Closed or given up: nothing more will happen.
    Ended,
}

/// The lifecycle events of one resilient connection, as a [`Stream`].
///
/// Backed by a broadcast channel of
/// [`event_capacity`](super::ResilientConfig::event_capacity) events: the connection never
/// waits for a reader. A reader that falls further behind loses the oldest events and is
/// told so with one [`Event::Lagged`] carrying the count. The stream ends after the
/// connection's last event (`GaveUp` or `Closed`).
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = Event> + Send>>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(receiver: broadcast::Receiver<Event>) -> Self {
        let inner = futures_util::stream::unfold(receiver, |mut receiver| async move {
            let event = match receiver.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(missed)) => Event::Lagged { missed },
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((event, receiver))
        });
        Self {
            inner: Box::pin(inner),
        }
    }
}

impl Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn a_slow_reader_is_told_what_it_lost_and_never_blocks_the_sender() {
        let (sender, receiver) = broadcast::channel(4);
        let mut stream = EventStream::new(receiver);
        for attempt in 1..=10 {
            // Never waits, whatever the reader does.
            let _ = sender.send(Event::Connecting { attempt });
        }
        drop(sender);
        match stream.next().await {
            Some(Event::Lagged { missed: 6 }) => {}
            other => panic!("expected Lagged 6, got {other:?}"),
        }
        let rest: Vec<u32> = stream
            .map(|event| match event {
                Event::Connecting { attempt } => attempt,
                other => panic!("{other:?}"),
            })
            .collect()
            .await;
        assert_eq!(rest, [7, 8, 9, 10]);
    }
}
