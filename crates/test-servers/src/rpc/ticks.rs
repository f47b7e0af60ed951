//! Tick subscriptions of the `rpc` server: `subscribe_ticks` starts a task that pushes N
//! notifications at an interval; `unsubscribe` or the end of the connection stops it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use ws_client::Message;

use crate::rpc::protocol::{Framing, RpcFailure};

/// The subscriptions of one connection.
#[derive(Debug)]
pub struct Ticks {
    next_id: AtomicU64,
    active: Mutex<HashMap<u64, CancellationToken>>,
    limit: usize,
    outbound: mpsc::Sender<Message>,
    connection: CancellationToken,
}

impl Ticks {
    /// Subscriptions that send on `outbound` and stop when `connection` is cancelled.
    pub fn new(
        limit: usize,
        outbound: mpsc::Sender<Message>,
        connection: CancellationToken,
    ) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            active: Mutex::new(HashMap::new()),
            limit,
            outbound,
            connection,
        }
    }

    /// Starts pushing `count` ticks, one every `interval`; returns the subscription id.
    pub fn start(
        self: &std::sync::Arc<Self>,
        count: u64,
        interval: Duration,
        framing: Framing,
    ) -> Result<u64, RpcFailure> {
        let token = self.connection.child_token();
        let id = {
            let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
            if active.len() >= self.limit {
                return Err(RpcFailure::busy(format!(
                    "too many subscriptions on this connection (limit {})",
                    self.limit
                )));
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            active.insert(id, token.clone());
            id
        };
        let ticks = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            let pushing = ticks.push(id, count, interval, framing);
            tokio::select! {
                () = pushing => {}
                () = token.cancelled() => {}
            }
            ticks
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
        Ok(id)
    }

    /// Stops subscription `id`; false if there was none.
    pub fn stop(&self, id: u64) -> bool {
        match self
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
        {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    async fn push(&self, id: u64, count: u64, interval: Duration, framing: Framing) {
        for n in 0..count {
            if interval.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(interval).await;
            }
            let tick = json!({"jsonrpc": "2.0", "method": "tick", "params": {"subscription": id, "result": {"n": n}}});
            if self
                .outbound
                .send(framing.encode_value(&tick))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
