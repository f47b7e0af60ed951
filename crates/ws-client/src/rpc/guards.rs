//! What a session leaves behind if dropped at the wrong time, undone on drop: `Tasks` (the
//! connection's reader and writer, aborted), `PendingGuard` (a call that ended without an
//! answer leaves the router's table) and `Unread` (a subscribe answered but never read is
//! ended on the server).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::rpc::feed::KeyHandle;
use crate::rpc::router::Router;
use crate::rpc::session::Session;
use crate::rpc::table::Outcome;

/// The connection's reader and writer tasks. Dropping this aborts both and fails whatever
/// still waits: a task is never left detached with the socket.
#[derive(Debug)]
pub(crate) struct Tasks {
    pub(crate) reader: JoinHandle<()>,
    pub(crate) writer: JoinHandle<()>,
    pub(crate) router: Arc<Router>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        let reader_ended = self.reader.is_finished();
        self.reader.abort();
        self.writer.abort();
        if !reader_ended {
            // The reader would have done this at its end.
            self.router.fail_all(Error::ConnectionClosed);
        }
    }
}

impl Tasks {
    /// Waits up to `after` for the reader to end (the server answered the close, or the
    /// connection ended); otherwise aborts both tasks, which drops the socket.
    pub(crate) async fn finish_within(mut self, after: Duration) -> Result<(), Error> {
        match tokio::time::timeout(after, &mut self.reader).await {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::CloseTimeout { after }),
        }
    }
}

/// Removes a call from the router if it ends without an answer (timeout or drop).
pub(crate) struct PendingGuard<'a> {
    router: &'a Router,
    pub(crate) id: i64,
    answered: bool,
}

impl<'a> PendingGuard<'a> {
    pub(crate) fn new(router: &'a Router, id: i64) -> Self {
        Self {
            router,
            id,
            answered: false,
        }
    }

    /// The call has its outcome: whatever gave it also took it out of the router.
    pub(crate) fn answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.router.forget(self.id);
        }
    }
}

/// The receiving end of a call's outcome, for a subscribe dropped after the router handed
/// it its answer but before it was read: the router took the call out of its table then, so
/// neither the guard nor the router can see that the subscription it started has no reader;
/// this ends it on the server as the router does for a late answer.
pub(crate) struct Unread<'a> {
    pub(crate) session: &'a Session,
    pub(crate) receiver: oneshot::Receiver<Outcome>,
    /// For a subscribe, until its caller has its outcome: its unsubscribe method, and where
    /// the router records the subscription's id and connection.
    pub(crate) subscription: Option<(String, KeyHandle)>,
}

impl Drop for Unread<'_> {
    fn drop(&mut self) {
        let Some((method, key)) = self.subscription.take() else {
            return;
        };
        // Closed first: an answer sent after this fails in the router, which then
        // unsubscribes itself; one sent before is read here.
        self.receiver.close();
        let Ok(Outcome::Answer(_)) = self.receiver.try_recv() else {
            return;
        };
        // Set by the router if the answer started a subscription.
        let Some((id, generation)) = key.key() else {
            return;
        };
        tracing::debug!(
            ?id,
            "subscribe dropped with its answer unread: unsubscribing"
        );
        if self.session.forget_subscription(&id, generation) {
            let params = Value::Array(vec![id.to_value()]);
            self.session.notify_nowait(&method, params, generation);
        }
    }
}
