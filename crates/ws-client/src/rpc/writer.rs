//! `Writer`: the RPC client's write side. Callers put requests in a queue (never waiting
//! on the socket, so a cancelled call cannot lose someone else's message); one task writes
//! everything queued and flushes once per burst, so 256 calls in flight cost a few
//! system calls, not 256.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::message::Message;
use crate::rpc::router::Router;
use crate::split::WsSender;

/// The queue between callers and the writing task.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    queue: Mutex<VecDeque<Message>>,
    wake: Notify,
    /// Set when the connection should be closed once the queue is written.
    closing: AtomicBool,
}

impl Writer {
    /// Starts the task that writes on `sender`; a write error fails every call in `router`.
    pub(crate) fn start(sender: WsSender, router: Arc<Router>) -> (Arc<Self>, JoinHandle<()>) {
        let writer = Arc::new(Self::default());
        let task = tokio::spawn(write_loop(Arc::clone(&writer), sender, router));
        (writer, task)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Message>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `message`, in order with every other send, and wakes the writing task.
    pub(crate) fn send(&self, message: Message) {
        self.queue().push_back(message);
        self.wake.notify_one();
    }

    /// Asks for the close handshake once everything queued is written; the task then ends
    /// (at once if the connection has already ended), letting its half of the socket go.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Writes bursts until asked to close or the connection fails.
async fn write_loop(writer: Arc<Writer>, sender: WsSender, router: Arc<Router>) {
    let mut burst = VecDeque::new();
    loop {
        writer.wake.notified().await;
        loop {
            std::mem::swap(&mut burst, &mut *writer.queue());
            if burst.is_empty() {
                break;
            }
            let mut sink = sender.lock().await;
            let written = async {
                sink.queue_all(&mut burst).await?;
                sink.flush().await
            }
            .await;
            if let Err(error) = written {
                return router.fail_all(error);
            }
        }
        if writer.closing.load(Ordering::Acquire) {
            let _ = sender.close(1000, "").await;
            return;
        }
    }
}
